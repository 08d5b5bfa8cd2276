"""Request bodies: media types, gzip, and the events of a batch (a JSON array or NDJSON).

What cannot be read as its headers say is a :class:`core.errors.BadBody`; the app answers it
with a 400.

>>> split_ndjson(b'{"a": 1}\\r\\n\\n  {"b": 2}\\n', 10)
[b'{"a": 1}', b'  {"b": 2}']
"""

from __future__ import annotations

import json
import re
import zlib
from typing import Final

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


def split_ndjson(body: bytes, limit: int) -> list[bytes]:
    """The events of an NDJSON body: one per non-blank line (``\\n`` or ``\\r\\n`` endings),
    at most ``limit + 1`` of them (the caller refuses more than ``limit``): a body of millions
    of tiny lines never becomes millions of objects.

    >>> split_ndjson(b'{"a": 1}\\r\\n\\n{"b": 2}\\n', 10)
    [b'{"a": 1}', b'{"b": 2}']
    >>> len(split_ndjson(b"1\\n" * 1_000_000, 10))
    11
    """
    items: list[bytes] = []
    start = 0
    while start < len(body) and len(items) <= limit:
        end = body.find(b"\n", start)
        end = len(body) if end < 0 else end
        line = body[start:end].rstrip(b"\r")
        if line.strip():
            items.append(line)
        start = end + 1
    return items


_ITEM: Final = json.JSONDecoder()
_SPACE: Final = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, at: int) -> int:
    """Where JSON white space from ``at`` ends."""
    found = _SPACE.match(text, at)
    return found.end() if found else at


def split_json_array(body: bytes, limit: int) -> list[bytes]:
    """The items of a JSON array, each as its own original bytes (nothing is re-encoded), at
    most ``limit + 1`` of them (the caller refuses more than ``limit``).

    Items are found one at a time and the scan stops past ``limit``: a 16 MB array of tiny
    items costs what ``limit`` items cost, not millions of objects. Each item is checked as an
    event afterwards (the validator), so only the array's own syntax is judged here.

    >>> split_json_array(b'[{"a": 1}, {"b": [2]}]', 10)
    [b'{"a": 1}', b'{"b": [2]}']
    >>> len(split_json_array(b"[" + b"1," * 1_000_000 + b"1]", 10))
    11
    >>> split_json_array(b'{"a": 1}', 10)
    Traceback (most recent call last):
    ...
    core.errors.BadBody: a batch is a JSON array of events, found an object
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadBody(f"not valid UTF-8 JSON: {exc}") from None
    at = _skip_space(text, 0)
    if not text.startswith("[", at):
        found = {"{": "an object", '"': "a string"}.get(text[at:at + 1],
                                                        "a value that is not an array")
        raise BadBody(f"a batch is a JSON array of events, found {found}")
    items: list[bytes] = []
    at = _skip_space(text, at + 1)
    closed = text.startswith("]", at)
    while not closed and len(items) <= limit:
        try:
            _, end = _ITEM.raw_decode(text, at)
        except (ValueError, RecursionError) as exc:
            raise BadBody(f"not valid UTF-8 JSON at character {at}: {exc}") from None
        items.append(text[at:end].encode("utf-8"))
        at = _skip_space(text, end)
        closed = text.startswith("]", at)
        if not closed and not text.startswith(",", at):
            raise BadBody(f"not valid UTF-8 JSON: expected ',' or ']' at character {at}")
        if not closed:
            at = _skip_space(text, at + 1)
    if closed and _skip_space(text, at + 1) != len(text):
        raise BadBody("not valid UTF-8 JSON: data after the array")
    return items
