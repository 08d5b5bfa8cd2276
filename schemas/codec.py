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

import io
import json
import re
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from fastavro import schemaless_reader, schemaless_writer
from fastavro.schema import fingerprint, parse_schema, to_parsing_canonical_form

from lineage.errors import LineageError

MAGIC = b"\xc3\x01"
NAMESPACE = "openlineage_stream.changes"
SCHEMA_DIR = Path(__file__).resolve().parent
_VERSION_FILE = re.compile(r"lineage_change\.v(\d+)\.avsc$")

ChangeRecord = dict[str, Any]


class UndecodableRecord(LineageError):
    """A message on the changes topic that is not a change record this reader understands.

    This is data, not a crash: the sink sends it to the changes DLQ with ``cause`` as reason.
    """


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
    kind, body = record["payload"]
    out = io.BytesIO()
    out.write(_current_header() if schema is current_schema() else MAGIC + _fingerprint(schema))
    schemaless_writer(out, schema, {**record, "payload": (f"{NAMESPACE}.{kind}", body)})
    return out.getvalue()


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
