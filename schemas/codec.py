"""Avro single-object encoding of the change records on ``lineage.changes``.

Every message is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the writer's
schema (its Parsing Canonical Form) + the Avro binary body. The reader keeps every schema version
ever published (``schemas/lineage_change.v<N>.avsc``) and decodes any of them into the newest one
through Avro schema resolution, so evolution is additive: new fields come with defaults, old
records stay readable.

>>> record = {"eventTime": 1, "ingestedAt": 2,
...           "payload": ("Job", {"namespace": "ns", "name": "job", "facets": None})}
>>> decode(encode(record))["payload"]
('Job', {'namespace': 'ns', 'name': 'job', 'facets': None})
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, Final

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from core.errors import FatalError, UndecodableRecord

MAGIC = b"\xc3\x01"
NAMESPACE = "openlineage_stream.changes"
SCHEMA_DIR = Path(__file__).resolve().parent
_VERSION_FILE = re.compile(r"lineage_change\.v(\d+)\.avsc$")

ChangeRecord = dict[str, Any]


@cache
def schema_versions() -> dict[int, Any]:
    """Every published version of the change schema, parsed, by version number."""
    versions = {}
    for path in SCHEMA_DIR.glob("lineage_change.v*.avsc"):
        match = _VERSION_FILE.search(path.name)
        if match:
            versions[int(match.group(1))] = parse_schema(json.loads(path.read_text("utf-8")))
    return dict(sorted(versions.items()))


def _fingerprint(schema: Any) -> bytes:
    # fastavro's hex digest is already the little-endian byte order the header wants.
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


@cache
def _writers() -> dict[bytes, Any]:
    return {_fingerprint(schema): schema for schema in schema_versions().values()}


def current_schema() -> Any:
    """The newest schema: what the processor writes and what readers decode into."""
    return schema_versions()[max(schema_versions())]


@cache
def _current_header() -> bytes:
    return MAGIC + _fingerprint(current_schema())


def micros(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (the records' time unit)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def encode(record: ChangeRecord, schema: Any = None) -> bytes:
    """Encode ``record`` in single-object encoding, with the newest schema by default.

    ``record["payload"]`` is a pair (short record name, fields), e.g. ``("Job", {...})``.
    """
    schema = schema or current_schema()
    if schema is current_schema():
        # Anything the fast path does not expect: fastavro below writes it or gives the error.
        with contextlib.suppress(Exception):
            return _fast_encode(record)
    kind, body = record["payload"]
    out = io.BytesIO()
    out.write(_current_header() if schema is current_schema() else MAGIC + _fingerprint(schema))
    schemaless_writer(out, schema, {**record, "payload": (f"{NAMESPACE}.{kind}", body)})
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# The fast path: Avro writers generated from the current schema.
#
# fastavro's schemaless_writer picks every union branch by validating the value against each
# candidate; for the processor's records (dozens of nested edges and fields, most of them
# ["null", "string"] unions) that costs far more than the bytes. The writers below are generated
# once from the parsed schema, for the subset of Avro it uses (records, arrays, strings, ints,
# longs, booleans and ["null", X] unions), and write exactly the bytes of the Avro binary
# encoding that fastavro writes (a non-empty array as one block: count, items, 0). Short strings,
# which repeat in every record (names, namespaces, types), are encoded once. Anything unexpected
# (a wrong type, a missing field, a datetime instead of microseconds) raises inside the fast path
# and the record goes through fastavro instead, which writes it or raises its usual error.
# ---------------------------------------------------------------------------------------------


class _Unsupported(FatalError):
    """A schema construct the generated writers do not handle (fastavro is used instead)."""


_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
_SHORT_STRING = 64
_CACHE_LIMIT = 65_536
_SMALL_INTS: Final = tuple(bytes((n << 1,)) for n in range(64))
_strings: dict[str, bytes] = {}
_optional_strings: dict[str, bytes] = {}
_longs: dict[int, bytes] = {}


def _varint(n: int) -> bytes:
    """Zig-zag already applied: the little-endian base-128 varint of ``n`` >= 0."""
    if n < 0x80:
        return bytes((n,))
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _long(value: Any) -> bytes:
    found = _longs.get(value) if type(value) is int else None
    if found is not None:
        return found
    if type(value) is not int or not _LONG_MIN <= value <= _LONG_MAX:
        raise TypeError(f"not an Avro long: {value!r}")
    encoded = _varint((value << 1) ^ (value >> 63))
    if len(_longs) >= _CACHE_LIMIT:
        _longs.clear()
    _longs[value] = encoded
    return encoded


def _int(value: Any) -> bytes:
    if type(value) is not int or not _INT_MIN <= value <= _INT_MAX:
        raise TypeError(f"not an Avro int: {value!r}")
    return _long(value)


def _optional_string(value: Any) -> bytes:
    """The second branch of ["null", "string"]: index 1, then the string."""
    encoded = b"\x02" + _string(value)
    if len(value) <= _SHORT_STRING:
        if len(_optional_strings) >= _CACHE_LIMIT:
            _optional_strings.clear()
        _optional_strings[value] = encoded
    return encoded


def _string(value: Any) -> bytes:
    """Length-prefixed UTF-8 (the caller has looked in ``_strings`` already)."""
    if type(value) is not str:
        raise TypeError(f"not an Avro string: {value!r}")
    raw = value.encode()
    encoded = _long(len(raw)) + raw
    if len(value) <= _SHORT_STRING:
        if len(_strings) >= _CACHE_LIMIT:
            _strings.clear()
        _strings[value] = encoded
    return encoded


class _WriterSource:
    """Python source of one writer per payload branch: ``(body, out: bytearray) -> None``."""

    def __init__(self, named: dict[str, Any]) -> None:
        self.named = named
        self.lines: list[str] = []
        self.count = 0

    def local(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def write(self, schema: Any, value: str, depth: int) -> None:
        pad = "    " * depth
        if isinstance(schema, str) and schema in self.named:
            schema = self.named[schema]
        if isinstance(schema, list):
            self.union(schema, value, depth)
            return
        kind = schema["type"] if isinstance(schema, dict) else schema
        if isinstance(schema, dict) and kind not in ("record", "array") and set(schema) - {
            "type", "logicalType"}:
            raise _Unsupported(f"annotated primitive {schema!r}")
        if kind == "string":
            # A cached encoding is never empty (it starts with the length), so `or` is safe.
            self.lines.append(f"{pad}out += _strings.get({value}) or _string({value})")
        elif kind == "long":
            if isinstance(schema, dict) and schema.get("logicalType", "timestamp-micros") not in (
                    "timestamp-micros",):
                raise _Unsupported(f"logical type {schema!r}")
            self.lines.append(f"{pad}out += _long({value})")
        elif kind == "int" and not isinstance(schema, dict):
            if not value.isidentifier():
                local = self.local("number")
                self.lines.append(f"{pad}{local} = {value}")
                value = local
            # Small counts (ordinals) are one byte, looked up.
            self.lines.append(f"{pad}out += _small_ints[{value}] if type({value}) is int and "
                              f"0 <= {value} < 64 else _int({value})")
        elif kind == "boolean" and not isinstance(schema, dict):
            if not value.isidentifier():
                local = self.local("flag")
                self.lines.append(f"{pad}{local} = {value}")
                value = local
            self.lines += [f"{pad}if {value} is True:", f"{pad}    out += b'\\x01'",
                           f"{pad}elif {value} is False:", f"{pad}    out += b'\\x00'",
                           f"{pad}else:", f"{pad}    raise TypeError({value})"]
        elif kind == "array":
            items, item = self.local("items"), self.local("item")
            self.lines += [f"{pad}{items} = {value}",
                           f"{pad}if type({items}) is not list:",
                           f"{pad}    raise TypeError({items})",
                           f"{pad}if {items}:",
                           f"{pad}    out += _long(len({items}))",
                           f"{pad}    for {item} in {items}:"]
            self.write(schema["items"], item, depth + 2)
            self.lines.append(f"{pad}out += b'\\x00'")
        elif kind == "record":
            if isinstance(schema, dict) and "name" in schema:
                self.named.setdefault(schema["name"], schema)
            record = value
            if not value.isidentifier():
                record = self.local("record")
                self.lines.append(f"{pad}{record} = {value}")
            for field in schema["fields"]:
                self.write(field["type"], f"{record}[{field['name']!r}]", depth)
        else:
            raise _Unsupported(f"Avro type {schema!r}")

    def union(self, branches: list[Any], value: str, depth: int) -> None:
        if len(branches) != 2 or branches[0] != "null" or branches[1] == "null":
            raise _Unsupported(f"union {branches!r}")
        pad = "    " * depth
        local = self.local("optional")
        if branches[1] == "string":  # the common case, one line: index and string together
            self.lines += [f"{pad}{local} = {value}",
                           f"{pad}out += b'\\x00' if {local} is None else "
                           f"_optional_strings.get({local}) or _optional_string({local})"]
            return
        self.lines += [f"{pad}{local} = {value}",
                       f"{pad}if {local} is None:", f"{pad}    out += b'\\x00'",
                       f"{pad}else:", f"{pad}    out += b'\\x02'"]
        self.write(branches[1], local, depth + 1)


def _compile_writers(schema: Any) -> dict[str, tuple[bytes, Any]]:
    """Short payload name -> (union index bytes, writer), for ``schema``'s payload branches."""
    fields = [field["name"] for field in schema["fields"]]
    if fields != ["eventTime", "ingestedAt", "payload"]:
        raise _Unsupported(f"top-level fields {fields}")
    for field in schema["fields"][:2]:
        if field["type"] != {"type": "long", "logicalType": "timestamp-micros"}:
            raise _Unsupported(f"time field {field!r}")
    branches = schema["fields"][2]["type"]
    namespace: dict[str, Any] = {"_strings": _strings, "_string": _string, "_long": _long,
                                 "_int": _int, "_small_ints": _SMALL_INTS,
                                 "_optional_strings": _optional_strings,
                                 "_optional_string": _optional_string}
    source = _WriterSource({})
    writers: dict[str, tuple[bytes, Any]] = {}
    for index, branch in enumerate(branches):
        if not isinstance(branch, dict) or branch.get("type") != "record":
            raise _Unsupported(f"payload branch {branch!r}")
        name = f"_write_{index}"
        source.lines = []
        source.write(branch, "body", 1)
        code = "\n".join([f"def {name}(body, out):", *source.lines])
        exec(compile(code, f"<avro writer of {branch['name']}>", "exec"), namespace)  # noqa: S102
        writers[branch["name"].rsplit(".", 1)[-1]] = (_varint(index << 1), namespace[name])
    return writers


@cache
def _fast_writers() -> dict[str, tuple[bytes, Any]]:
    try:
        return _compile_writers(current_schema())
    except _Unsupported:
        return {}


def _fast_encode(record: ChangeRecord) -> bytes:
    kind, body = record["payload"]
    index, write = _fast_writers()[kind]
    out = bytearray(_current_header())
    out += _long(record["eventTime"])
    out += _long(record["ingestedAt"])
    out += index
    write(body, out)
    return bytes(out)


def decode(message: bytes) -> ChangeRecord:
    """Decode a single-object-encoded change record into the newest schema's shape.

    Raises UndecodableRecord (with a precise cause) for anything else.
    """
    if len(message) < 10 or message[:2] != MAGIC:
        raise UndecodableRecord("not Avro single-object encoding (no C3 01 marker)")
    writer = _writers().get(message[2:10])
    if writer is None:
        raise UndecodableRecord(f"unknown writer schema fingerprint {message[2:10].hex()}")
    body = io.BytesIO(message[10:])
    try:
        decoded = schemaless_reader(body, writer, current_schema(), return_record_name=True)
    except (EOFError, ValueError, KeyError, IndexError, UnicodeDecodeError,
            OverflowError) as exc:
        raise UndecodableRecord(f"Avro body does not match its schema: {exc!r}"[:300]) from exc
    if not isinstance(decoded, dict):
        raise UndecodableRecord("the Avro body is not a record")
    if body.tell() != len(message) - 10:
        raise UndecodableRecord(f"{len(message) - 10 - body.tell()} bytes after the record")
    # fastavro reads timestamp-micros as datetime; the contract is microseconds.
    for name in ("eventTime", "ingestedAt"):
        if isinstance(decoded.get(name), datetime):
            decoded[name] = micros(decoded[name])
    kind, body = decoded["payload"]
    decoded["payload"] = (kind.rsplit(".", 1)[-1], body)
    return decoded
