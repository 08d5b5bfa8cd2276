"""Request bodies: media types, gzip, and the events of a batch (a JSON array or NDJSON).

What cannot be read as its headers say is a :class:`core.errors.BadBody`; the app answers it
with a 400.

>>> split_ndjson(b'{"a": 1}\\r\\n\\n  {"b": 2}\\n')
[b'{"a": 1}', b'  {"b": 2}']
"""

from __future__ import annotations

import zlib
from typing import Final

import msgspec

from core.errors import BadBody

__all__ = ["NDJSON_TYPES", "gunzip", "media_type", "split_json_array", "split_ndjson"]

NDJSON_TYPES: Final = frozenset({
    "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
    "application/jsonlines",
})


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """(media type, charset) of a Content-Type value, lower-cased.

    >>> media_type('Application/JSON; charset="UTF-8"')
    ('application/json', 'utf-8')
    """
    if not content_type:
        return "", None
    kind, *params = (part.strip() for part in content_type.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return kind.lower(), charset


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip ``data`` (every member), refusing output past ``limit`` bytes.

    Raises :class:`OverflowError` past the limit (a zip bomb stops there) and :class:`BadBody`
    for data that is not gzip.

    >>> import gzip
    >>> gunzip(gzip.compress(b"x" * 10), limit=10)
    b'xxxxxxxxxx'
    >>> gunzip(gzip.compress(b"x" * 11), limit=10)
    Traceback (most recent call last):
    ...
    OverflowError: more than 10 bytes once decompressed
    """
    out = bytearray()
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise OverflowError(f"more than {limit} bytes once decompressed")
            if not inflater.eof:
                raise BadBody("the gzip stream is truncated")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise BadBody(f"not a gzip stream: {exc}") from exc
    return bytes(out)


def split_ndjson(body: bytes) -> list[bytes]:
    """The events of an NDJSON body: one per non-blank line (``\\n`` or ``\\r\\n`` endings)."""
    lines = (line.rstrip(b"\r") for line in body.split(b"\n"))
    return [line for line in lines if line.strip()]


_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])


def split_json_array(body: bytes) -> list[bytes]:
    """The items of a JSON array, each as its own original bytes (nothing is re-encoded).

    >>> split_json_array(b'[{"a": 1}, {"b": [2]}]')
    [b'{"a": 1}', b'{"b": [2]}']
    >>> split_json_array(b'{"a": 1}')
    Traceback (most recent call last):
    ...
    core.errors.BadBody: a batch is a JSON array of events, found an object
    """
    try:
        return [bytes(item) for item in _RAW_LIST.decode(body)]
    except msgspec.ValidationError:
        head = body.lstrip()[:1]
        found = {b"{": "an object", b'"': "a string"}.get(head, "a value that is not an array")
        raise BadBody(f"a batch is a JSON array of events, found {found}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadBody(f"not valid UTF-8 JSON: {exc}") from None
