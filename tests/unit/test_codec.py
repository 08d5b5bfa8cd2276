"""Unit tests of the change records' Avro codec (schemas/codec.py, schemas/lineage_change.v*.avsc).

Samples are generated from the schema itself, one per payload branch, so a new branch or field
is covered without editing this file; what must be edited on purpose is PUBLISHED_FINGERPRINTS.
"""

from __future__ import annotations

import random
from itertools import pairwise
from typing import Any

import pytest
from fastavro.schema import to_parsing_canonical_form

from schemas.codec import (
    MAGIC,
    UndecodableRecord,
    current_schema,
    decode,
    encode,
    schema_versions,
)

pytestmark = pytest.mark.unit

# The CRC-64-AVRO fingerprint of every *published* schema version. A published version is frozen:
# editing its .avsc in place changes its fingerprint and fails test_published_versions_are_frozen.
# Change the schema by adding lineage_change.v<N+1>.avsc (new fields with defaults) and its entry.
PUBLISHED_FINGERPRINTS: dict[int, int] = {
    1: 0x22C9CAC4851C8E43,
    2: 0x9FF0D86332F6C23A,
}

_MASK = (1 << 64) - 1
_EMPTY = 0xC15D213AA4D7A795


def _crc64_table() -> list[int]:
    table = []
    for byte in range(256):
        fp = byte
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """The Rabin fingerprint of the Avro specification ("Schema Fingerprints"), written out here
    so the codec's header is checked against the spec rather than against the same library."""
    fp = _EMPTY
    for byte in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ byte) & 0xFF]
    return fp


def fingerprint_of(schema: Any) -> int:
    return crc64_avro(to_parsing_canonical_form(schema).encode())


# --- samples generated from a schema ------------------------------------------------------------

PRIMITIVES: dict[str, Any] = {"int": 7, "long": 1_714_564_800_000_000, "boolean": True,
                              "float": 1.5, "double": 2.5, "bytes": b"\x01"}


def named_types(schema: Any, into: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every named type (record, enum, fixed) defined anywhere in ``schema``, by full name."""
    into = {} if into is None else into
    if isinstance(schema, list):
        for branch in schema:
            named_types(branch, into)
    elif isinstance(schema, dict):
        if schema.get("type") in ("record", "enum", "fixed"):
            into[schema["name"]] = schema
        for field in schema.get("fields", ()):
            named_types(field["type"], into)
        for key in ("items", "values"):
            if key in schema:
                named_types(schema[key], into)
    return into


def sample(schema: Any, named: dict[str, Any], full: bool, label: str = "value") -> Any:
    """A valid value of ``schema``: ``full`` fills every optional part, otherwise none."""
    if isinstance(schema, str):
        if schema in named:
            return sample(named[schema], named, full, label)
        return f"{label}-1" if schema == "string" else PRIMITIVES.get(schema)
    if isinstance(schema, list):
        if "null" in schema and not full:
            return None
        return sample(next(s for s in schema if s != "null"), named, full, label)
    kind = schema["type"]
    if kind == "record":
        return {f["name"]: sample(f["type"], named, full, f["name"]) for f in schema["fields"]}
    if kind == "enum":
        return schema["symbols"][-1]
    if kind == "array":
        return [sample(schema["items"], named, full, label)] if full else []
    if kind == "map":
        return {"k": sample(schema["values"], named, full, label)} if full else {}
    if kind == "fixed":
        return b"\x00" * schema["size"]
    return sample(kind, named, full, label)


def resolve(value: Any, reader: Any, named: dict[str, Any]) -> Any:
    """``value`` as a reader of schema ``reader`` sees it: new record fields take their default."""
    if isinstance(reader, str) and reader in named:
        return resolve(value, named[reader], named)
    if isinstance(reader, list):
        return None if value is None else resolve(
            value, next(s for s in reader if s != "null"), named)
    if isinstance(reader, dict) and reader["type"] == "record":
        return {f["name"]: resolve(value[f["name"]], f["type"], named) if f["name"] in value
                else f["default"] for f in reader["fields"]}
    if isinstance(reader, dict) and reader["type"] == "array":
        return [resolve(item, reader["items"], named) for item in value]
    return value


def payload_branches(schema: Any) -> dict[str, Any]:
    """The payload union's record schemas, by short name (what a record's payload kind is)."""
    payload = next(f["type"] for f in schema["fields"] if f["name"] == "payload")
    return {branch["name"].rsplit(".", 1)[-1]: branch for branch in payload}


def record_of(schema: Any, kind: str, full: bool = True) -> dict[str, Any]:
    body = sample(payload_branches(schema)[kind], named_types(schema), full)
    return {"eventTime": 1_714_564_800_123_456, "ingestedAt": 1_714_564_801_000_000,
            "payload": (kind, body)}


KINDS = sorted(payload_branches(current_schema()))


# --- round trips --------------------------------------------------------------------------------

def test_the_samples_cover_the_payload_kinds_the_processor_writes() -> None:
    assert {"Job", "Dataset", "Run", "JobVersion", "DatasetVersion", "RunIO",
            "ColumnLineage", "Symlink"} <= set(KINDS)


@pytest.mark.parametrize("full", [True, False], ids=["every optional part", "no optional part"])
@pytest.mark.parametrize("kind", KINDS)
def test_every_payload_kind_round_trips(kind: str, full: bool) -> None:
    record = record_of(current_schema(), kind, full)
    assert decode(encode(record))["payload"] == record["payload"]


def test_decoded_times_are_the_encoded_microseconds() -> None:
    record = record_of(current_schema(), KINDS[0])
    decoded = decode(encode(record))
    assert (decoded["eventTime"], decoded["ingestedAt"]) == (
        record["eventTime"], record["ingestedAt"])


def test_every_schema_version_decodes_into_the_current_schema() -> None:
    current = current_schema()
    reader_named = named_types(current)
    for version, schema in schema_versions().items():
        for kind, branch in payload_branches(schema).items():
            record = record_of(schema, kind)
            decoded = decode(encode(record, schema=schema))
            expected = resolve(record["payload"][1], payload_branches(current)[kind],
                               reader_named)
            assert decoded["payload"] == (kind, expected), f"v{version} {branch['name']}"


# --- the wire format ----------------------------------------------------------------------------

def test_the_crc64_avro_oracle_matches_the_spec_test_vectors() -> None:
    # apache/avro share/test/data/schema-tests.txt, as signed 64-bit integers.
    assert crc64_avro(b'"null"') == 7195948357588979594
    assert crc64_avro(b'"boolean"') == -6970731678124411036 & _MASK


def test_a_message_is_the_marker_then_the_little_endian_fingerprint_then_the_body() -> None:
    message = encode(record_of(current_schema(), KINDS[0]))
    expected = MAGIC + fingerprint_of(current_schema()).to_bytes(8, "little")
    assert message[:10].hex() == expected.hex()


def test_published_versions_are_frozen() -> None:
    fingerprints = {v: fingerprint_of(s) for v, s in schema_versions().items()}
    assert {v: hex(fp) for v, fp in fingerprints.items()} == {
        v: hex(fp) for v, fp in PUBLISHED_FINGERPRINTS.items()}


def fields_added_without_default(old: Any, new: Any) -> list[str]:
    """``record.field`` for each field ``new`` adds to a record of ``old`` without a default."""
    old_records = {name: {f["name"] for f in t["fields"]}
                   for name, t in named_types(old).items() if t["type"] == "record"}
    return [f"{name}.{field['name']}"
            for name, t in named_types(new).items() if name in old_records
            for field in t["fields"]
            if field["name"] not in old_records[name] and "default" not in field]


def test_each_schema_version_only_adds_fields_with_defaults() -> None:
    versions = list(schema_versions().items())
    assert versions, "no schema version found"
    for (old_v, old), (new_v, new) in pairwise(versions):
        assert fields_added_without_default(old, new) == [], f"v{old_v} -> v{new_v}"


def test_the_additivity_check_finds_a_new_field_without_default() -> None:
    def schema(*extra: dict[str, Any]) -> dict[str, Any]:
        return {"type": "record", "name": "ns.R", "fields": [
            {"name": "a", "type": "string"},
            {"name": "inner", "type": {"type": "record", "name": "ns.Inner", "fields": [
                {"name": "x", "type": "int"}, *extra]}},
        ]}

    old = schema()
    assert fields_added_without_default(old, schema(
        {"name": "y", "type": ["null", "string"], "default": None})) == []
    assert fields_added_without_default(old, schema({"name": "y", "type": "string"})) == [
        "ns.Inner.y"]


# --- what decode refuses ------------------------------------------------------------------------

def _valid() -> bytes:
    return encode(record_of(current_schema(), "Run"))


@pytest.mark.parametrize(("message", "cause"), [
    (b"", "C3 01"),
    (b"\xc3", "C3 01"),
    (b"{\"eventType\": \"START\"}", "C3 01"),
    (b"\xc3\x02" + _valid()[2:], "C3 01"),
    (MAGIC + b"\x00" * 8 + _valid()[10:], "fingerprint"),
    (_valid()[:10], "body"),
    (_valid()[:-1], "body"),
    (_valid()[:len(_valid()) // 2], "body"),
    (_valid() + b"\x00", None),
], ids=["empty", "one byte", "json", "wrong marker", "unknown fingerprint", "no body",
        "body short by one byte", "half a body", "trailing bytes"])
def test_decode_refuses_what_is_not_a_change_record_with_its_cause(
        message: bytes, cause: str | None) -> None:
    with pytest.raises(UndecodableRecord) as refused:
        decode(message)
    assert refused.value.cause
    if cause is not None:
        assert cause in refused.value.cause


def test_decode_raises_nothing_but_undecodable_record_for_hostile_bodies() -> None:
    header = _valid()[:10]
    rng = random.Random(20240501)
    bodies = [bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60))) for _ in range(2000)]
    # A long beyond any datetime, where a timestamp-micros is expected.
    bodies.append(encode({**record_of(current_schema(), "Job"), "eventTime": 2**62})[10:])
    escaped = []
    for body in bodies:
        try:
            decode(header + body)
        except UndecodableRecord:
            continue
        except Exception as exc:  # what this test looks for
            escaped.append(f"{body.hex()}: {exc!r}")
    assert escaped == [], f"{len(escaped)} escaped, e.g. {escaped[:3]}"


# --- the generated writers write exactly what fastavro writes -------------------------------------

def _fastavro_bytes(record: dict[str, Any]) -> bytes:
    import io

    from fastavro import schemaless_writer

    from schemas.codec import NAMESPACE, _current_header

    kind, body = record["payload"]
    out = io.BytesIO()
    out.write(_current_header())
    schemaless_writer(out, current_schema(), {**record, "payload": (f"{NAMESPACE}.{kind}", body)})
    return out.getvalue()


def _vary(value: Any, rng: random.Random) -> Any:
    """``value`` (a schema sample) with other strings, numbers and lengths of the same types."""
    if isinstance(value, dict):
        return {k: _vary(v, rng) for k, v in value.items()}
    if isinstance(value, list):
        return [_vary(value[0], rng) for _ in range(rng.choice([0, 1, 2, 70, 130]))] if value \
            else []
    if isinstance(value, bool):
        return rng.choice([True, False])
    if isinstance(value, int):
        return rng.choice([0, 1, 63, 64, -1, -64, -65, 2**31 - 1, -(2**31)])
    if isinstance(value, str):
        return rng.choice(["", "a", "é", "\U0001f600", "x" * 63, "y" * 64, "z" * 65, "n" * 300,
                           "\x00\n\"\\"])
    return value


def test_the_fast_path_writes_the_bytes_fastavro_writes_for_every_kind() -> None:
    rng = random.Random(7)
    schema = current_schema()
    for kind in KINDS:
        for full in (True, False):
            for _ in range(60):
                record = record_of(schema, kind, full)
                record["payload"] = (kind, _vary(record["payload"][1], rng))
                record["eventTime"] = rng.choice([0, 1, -1, 2**62, -(2**63), 2**63 - 1,
                                                  1_714_564_800_123_456])
                if not full:  # None where a union allows it, sometimes
                    record["payload"] = (kind, record_of(schema, kind, False)["payload"][1])
                assert encode(record) == _fastavro_bytes(record), (kind, record)


@pytest.mark.parametrize("change", [
    lambda body: body.update(namespace=3),  # a wrong type
    lambda body: body.pop("facets"),  # a field left out, with a default
    lambda body: body.update(facets=b"bytes"),  # a value of no branch of the union
])
def test_what_the_fast_path_does_not_expect_goes_through_fastavro(change: Any) -> None:
    record = record_of(current_schema(), "Job")
    change(record["payload"][1])
    try:
        expected: bytes | type[Exception] = _fastavro_bytes(record)
    except Exception as exc:  # whatever fastavro raises, encode raises too
        expected = type(exc)
    if isinstance(expected, bytes):
        assert encode(record) == expected
    else:
        with pytest.raises(expected):
            encode(record)


def test_a_datetime_time_goes_through_fastavro() -> None:
    from datetime import UTC, datetime

    record = record_of(current_schema(), "Job")
    record["eventTime"] = datetime(2024, 5, 1, tzinfo=UTC)
    assert decode(encode(record))["eventTime"] == 1_714_521_600_000_000
