"""The spec's string formats (uuid, date-time, uri), as the official schema's checker reads them.

They mirror jsonschema's ``FormatChecker`` with the format-nongpl extras, the oracle of the
differential test, quirks included (see each test).

>>> FORMATS["uuid"].test("0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"), is_uri("no scheme")
(True, False)
>>> time_status("2024-05-01T12:00:00Z") == TIME_OK, time_status("2024-05-01T12:00:00")
(True, 1)
>>> format_message(FORMATS["date-time"], "2024-05-01T12:00:00")  # doctest: +ELLIPSIS
'expected an RFC 3339 date-time with an offset, ... which has no UTC offset'
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final, NamedTuple
from uuid import UUID

from schemas.validation.results import ReasonCode, describe

_CANONICAL_UUID: Final = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)


def is_uuid(value: str) -> bool:
    """Whether ``value`` is a UUID as the official checker decides it."""
    if _CANONICAL_UUID.fullmatch(value):
        return True
    # The official checker accepts whatever uuid.UUID parses (braces, "urn:uuid:", surplus
    # hyphens, ...) provided the four canonical hyphens are in place; mirror it instead of
    # approximating it.
    try:
        UUID(value)
    except ValueError:
        return False
    return all(value[position] == "-" for position in (8, 13, 18, 23))


# The oracle upper-cases the value and then matches with `$`, so a lower-case "t"/"z" and one
# trailing newline are accepted; the offset is optional here only to recognise repairable times.
_DATE_TIME: Final = re.compile(
    r"(\d{4})-(0[1-9]|1[0-2])-(\d{2})[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?"
    r"([Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)?(\n?)",
    re.ASCII,
)
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
TIME_OK, TIME_WITHOUT_OFFSET, TIME_BAD = 0, 1, 2


def time_status(value: str) -> int:
    """``TIME_OK`` for an RFC 3339 date-time, ``TIME_WITHOUT_OFFSET`` for one that lacks only
    its offset (repairable), ``TIME_BAD`` for anything else."""
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return TIME_BAD
    year, month, day = match.group(1, 2, 3)
    # Days 01-28 exist in every month: the calendar is only consulted beyond them.
    if year == "0000" or day == "00" or (day > "28" and not _day_exists(year, month, day)):
        return TIME_BAD
    if match[4] is not None:
        return TIME_OK
    return TIME_BAD if match[5] else TIME_WITHOUT_OFFSET


def _day_exists(year: str, month: str, day: str) -> bool:
    number, days = int(year), _DAYS_IN_MONTH[int(month)]
    leap = month == "02" and number % 4 == 0 and (number % 100 != 0 or number % 400 == 0)
    return int(day) <= days + leap


def is_date_time(value: str) -> bool:
    """Whether ``value`` is an RFC 3339 date-time with an offset."""
    return time_status(value) == TIME_OK


def _uri_pattern() -> re.Pattern[str]:
    """RFC 3986 ``URI`` (absolute, with a scheme), written from the RFC's ABNF."""
    chars = r"A-Za-z0-9\-._~!$&'()*+,;="  # unreserved and sub-delims
    pct = r"%[0-9A-Fa-f]{2}"
    pchar = rf"(?:[{chars}:@]|{pct})"
    h16 = r"[0-9A-Fa-f]{1,4}"
    # Leading zeros ("01") are accepted as the oracle's regex does, although RFC 3986 refuses them.
    octet = r"(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
    ipv4 = rf"{octet}(?:\.{octet}){{3}}"
    ls32 = rf"(?:{h16}:{h16}|{ipv4})"
    tails = (
        rf"(?:{h16}:){{4}}{ls32}",
        rf"(?:{h16}:){{3}}{ls32}",
        rf"(?:{h16}:){{2}}{ls32}",
        rf"{h16}:{ls32}",
        ls32,
        h16,
        "",
    )
    ipv6 = "|".join(
        [rf"(?:{h16}:){{6}}{ls32}", rf"::(?:{h16}:){{5}}{ls32}"]
        + [rf"(?:(?:{h16}:){{0,{k}}}{h16})?::{tail}" for k, tail in enumerate(tails)]
    )
    ip_literal = rf"\[(?:{ipv6}|v[0-9A-Fa-f]+\.[{chars}:]+)\]"
    authority = rf"(?:(?:[{chars}:]|{pct})*@)?(?:{ip_literal}|(?:[{chars}]|{pct})*)(?::[0-9]*)?"
    hier_part = (
        rf"(?://{authority}(?:/{pchar}*)*|/(?:{pchar}+(?:/{pchar}*)*)?|{pchar}+(?:/{pchar}*)*|)"
    )
    query = rf"(?:{pchar}|[/?])*"
    # `\n?` because the oracle anchors with `$`, which also matches before a final newline.
    return re.compile(rf"[A-Za-z][A-Za-z0-9+.\-]*:{hier_part}(?:\?{query})?(?:#{query})?\n?")


_URI: Final = _uri_pattern()


def is_uri(value: str) -> bool:
    """Whether ``value`` is an absolute RFC 3986 URI (with a scheme)."""
    # Producer and schema URLs repeat in almost every event and facet, so they are remembered;
    # long one-off values are not worth it and must not pin memory.
    return _is_short_uri(value) if len(value) <= 512 else _URI.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _is_short_uri(value: str) -> bool:
    return _URI.fullmatch(value) is not None


class Format(NamedTuple):
    """A string format: its test, the reason code of a failure, and what was expected."""

    test: Callable[[str], bool]
    code: ReasonCode
    expected: str


FORMATS: Final = {
    "uuid": Format(is_uuid, "bad_uuid", "a UUID (8-4-4-4-12 hexadecimal digits)"),
    "date-time": Format(
        is_date_time, "bad_time", "an RFC 3339 date-time with an offset, e.g. 2024-05-01T12:00:00Z"
    ),
    "uri": Format(is_uri, "bad_uri", "an absolute URI (RFC 3986, with a scheme)"),
}


def format_message(fmt: Format, value: str) -> str:
    """The message of a reason for ``value`` failing ``fmt``."""
    note = ""
    if fmt.code == "bad_time" and time_status(value) == TIME_WITHOUT_OFFSET:
        note = ", which has no UTC offset"
    return f"expected {fmt.expected}, found {describe(value)}{note}"
