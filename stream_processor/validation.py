"""Validation of raw OpenLineage events: the stream processor's first decision.

:func:`validate` takes the raw bytes of one message and returns a :class:`ValidationResult`:
either the accepted event (a dict, without the standard facets that broke their own schema), or
a rejection with machine-readable :class:`Reason` objects whose ``pointer`` is an RFC 6901 JSON
pointer into the event. The policy (DESIGN.md, "Validation policy"; docs/validation.md):

1. at most ``max_bytes`` bytes, then JSON, then a JSON object;
2. the core structure of OpenLineage 2-0-2 exactly as the official JSON Schema decides it,
   formats (uuid, date-time, uri) included: RunEvent, DatasetEvent or JobEvent, by its ``oneOf``;
3. a standard facet that violates its own schema is dropped and reported in
   :attr:`ValidationResult.dropped_facets`, and the event is kept; a custom facet only has to be a
   facet (an object with ``_producer`` and ``_schemaURL`` URIs), as the core schema requires;
4. with ``repair=True``, known harmless deviations (no ``schemaURL``, an ``eventTime`` without
   offset, a run id that is not a UUID) are repaired, listed in :attr:`ValidationResult.repairs`
   and recorded in a custom ``lineage_repairs`` facet.

Nothing runs jsonschema per event: the core is checked by hand below, and the standard facets by
checkers compiled at import from the schema files shipped in ``stream_processor/spec/`` (a small
compiler for the subset of JSON Schema those files use; it refuses any keyword it does not know,
so a newer spec cannot be half-enforced silently).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Final, Literal, NamedTuple
from uuid import NAMESPACE_URL, UUID, uuid5

import msgspec

__all__ = [
    "PRODUCER",
    "REPAIRS_FACET",
    "RUN_ID_NAMESPACE",
    "SPEC_VERSION",
    "STANDARD_FACETS",
    "DroppedFacet",
    "EventKind",
    "Reason",
    "ReasonCode",
    "RepairCode",
    "ValidationResult",
    "encoded_facet",
    "validate",
]

EventKind = Literal["run", "dataset", "job"]

RepairCode = Literal[
    "missing_schema_url",  # schemaURL filled with the 2-0-2 URL of the event's kind
    "event_time_without_offset",  # eventTime read as UTC: "Z" appended
    "non_uuid_run_id",  # run.runId replaced by uuid5(RUN_ID_NAMESPACE, original)
    "non_uuid_parent_run_id",  # the same for the parent facet's run (and root run) ids
]

ReasonCode = Literal[
    "too_large",  # the message is longer than max_bytes
    "not_json",  # not UTF-8 JSON as msgspec reads it
    "not_object",  # JSON, but not an object
    "too_deep",  # nested deeper than can be decoded (the message) or checked (a facet)
    "missing_field",  # a required field is absent
    "wrong_type",  # a value has the wrong JSON type
    "unexpected_field",  # a field that the schema forbids (additionalProperties: false)
    "bad_uuid",  # not a uuid (format: uuid)
    "bad_time",  # not an RFC 3339 date-time with an offset (format: date-time)
    "bad_uri",  # not an RFC 3986 URI (format: uri)
    "bad_enum",  # not one of the allowed values (enum, const)
    "out_of_range",  # below the schema's minimum
    "no_match",  # matches none of the alternatives of an anyOf / oneOf
    "ambiguous_match",  # matches more than one alternative of a oneOf
    "unknown_event_type",  # none of run, job, dataset: neither RunEvent, JobEvent nor DatasetEvent
    "ambiguous_event_type",  # a valid JobEvent and a valid DatasetEvent at once
]

SPEC_VERSION: Final = "2-0-2"
_CORE_ID: Final = f"https://openlineage.io/spec/{SPEC_VERSION}/OpenLineage.json"

REPAIRS_FACET: Final = "lineage_repairs"
"""Key of the custom facet that marks a repaired event (on its run, job or dataset)."""

PRODUCER: Final = "https://github.com/openlineage-stream/stream_processor"
"""``_producer`` of the facets this module writes."""

RUN_ID_NAMESPACE: Final = uuid5(NAMESPACE_URL, f"{_CORE_ID}#/$defs/Run/properties/runId")
"""Namespace of the name-based (uuid5) run ids made by the run id repairs.

It is the uuid5, in the URL namespace, of the URL of the spec's ``runId`` definition:
``81fb7c6a-b4ee-5dd1-8cf0-a232821282c1``. It must never change, or a run would get a different
id after an upgrade.
"""

_SPEC_DIR: Final = Path(__file__).with_name("spec")
_MISSING: Final[Any] = object()


class Reason(msgspec.Struct, frozen=True):
    """Why (part of) an event was refused: a code, where, and a human-readable explanation."""

    code: ReasonCode
    pointer: str
    """RFC 6901 JSON pointer to the offending value, or to where a missing field belongs."""
    message: str

    def as_dict(self) -> dict[str, str]:
        """The reason as JSON-ready builtins."""
        return {"code": self.code, "pointer": self.pointer, "message": self.message}


class DroppedFacet(msgspec.Struct, frozen=True):
    """A standard facet that violated its own schema and was removed from the event."""

    key: str
    pointer: str
    """Where it sat, e.g. ``/run/facets/parent`` or ``/inputs/0/inputFacets/dataQualityMetrics``."""
    value: Any
    """The facet's original JSON value."""
    reasons: tuple[Reason, ...]

    def as_dict(self) -> dict[str, Any]:
        """The dropped facet, value and reasons included, as JSON-ready builtins."""
        return {
            "key": self.key,
            "pointer": self.pointer,
            "value": self.value,
            "reasons": [reason.as_dict() for reason in self.reasons],
        }


class ValidationResult(msgspec.Struct, frozen=True):
    """The outcome of :func:`validate`."""

    ok: bool
    event: dict[str, Any] | None
    """The accepted event, bad standard facets removed and repairs applied; ``None`` if refused."""
    kind: EventKind | None
    reasons: tuple[Reason, ...] = ()
    """Why the event was refused (empty when ``ok``)."""
    dropped_facets: tuple[DroppedFacet, ...] = ()
    """Standard facets removed for violating their schema (also reported for refused events)."""
    repairs: tuple[RepairCode, ...] = ()
    """The repairs applied (only with ``repair=True``)."""


def validate(raw: bytes, *, max_bytes: int = 1_048_576, repair: bool = False) -> ValidationResult:
    """Validate one raw OpenLineage event (see the module docstring for the policy).

    Never raises for bad input: every problem is a :class:`Reason`.

    >>> event = (
    ...     b'{"eventType": "START", "eventTime": "2024-05-01T12:00:00Z",'
    ...     b' "producer": "https://example.com/etl", "schemaURL": "https://openlineage.io/spec/'
    ...     b'2-0-2/OpenLineage.json#/$defs/RunEvent",'
    ...     b' "run": {"runId": "0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"},'
    ...     b' "job": {"namespace": "etl", "name": "daily"}}'
    ... )
    >>> result = validate(event)
    >>> result.ok, result.kind, result.event["job"]["name"]
    (True, 'run', 'daily')
    >>> refused = validate(event.replace(b'"runId": "0190b6d2', b'"runId": "x0190b6d2'))
    >>> refused.ok, [(reason.code, reason.pointer) for reason in refused.reasons]
    (False, [('bad_uuid', '/run/runId')])
    >>> repaired = validate(event.replace(b'12:00:00Z', b'12:00:00'), repair=True)
    >>> repaired.event["eventTime"], repaired.repairs
    ('2024-05-01T12:00:00Z', ('event_time_without_offset',))
    """
    _encoded.clear()
    if len(raw) > max_bytes:
        return _refused(
            Reason("too_large", "", f"the message has {len(raw)} bytes; the limit is {max_bytes}")
        )
    try:
        event = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        return _refused(Reason("not_json", "", f"not valid UTF-8 JSON: {exc}"))
    except RecursionError:
        return _refused(Reason("too_deep", "", "the JSON is nested too deeply to decode"))
    if not isinstance(event, dict):
        return _refused(Reason("not_object", "", f"expected a JSON object, found {_found(event)}"))
    return _validate_event(event, repair)


def _refused(*reasons: Reason) -> ValidationResult:
    return ValidationResult(ok=False, event=None, kind=None, reasons=reasons)


# ---------------------------------------------------------------------------------------------
# Formats, mirroring jsonschema's FormatChecker with the format-nongpl extras (the oracle).
# ---------------------------------------------------------------------------------------------

_CANONICAL_UUID: Final = re.compile(
    r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)


def _is_uuid(value: str) -> bool:
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
_TIME_OK, _TIME_WITHOUT_OFFSET, _TIME_BAD = 0, 1, 2


def _time_status(value: str) -> int:
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        return _TIME_BAD
    year, month, day = match.group(1, 2, 3)
    # Days 01-28 exist in every month: the calendar is only consulted beyond them.
    if year == "0000" or day == "00" or (day > "28" and not _day_exists(year, month, day)):
        return _TIME_BAD
    if match[4] is not None:
        return _TIME_OK
    return _TIME_BAD if match[5] else _TIME_WITHOUT_OFFSET


def _day_exists(year: str, month: str, day: str) -> bool:
    number, days = int(year), _DAYS_IN_MONTH[int(month)]
    leap = month == "02" and number % 4 == 0 and (number % 100 != 0 or number % 400 == 0)
    return int(day) <= days + leap


def _is_date_time(value: str) -> bool:
    return _time_status(value) == _TIME_OK


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


def _is_uri(value: str) -> bool:
    # Producer and schema URLs repeat in almost every event and facet, so they are remembered;
    # long one-off values are not worth it and must not pin memory.
    return _is_short_uri(value) if len(value) <= 512 else _URI.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def _is_short_uri(value: str) -> bool:
    return _URI.fullmatch(value) is not None


class _Format(NamedTuple):
    test: Callable[[str], bool]
    code: ReasonCode
    expected: str


_FORMATS: Final = {
    "uuid": _Format(_is_uuid, "bad_uuid", "a UUID (8-4-4-4-12 hexadecimal digits)"),
    "date-time": _Format(
        _is_date_time, "bad_time", "an RFC 3339 date-time with an offset, e.g. 2024-05-01T12:00:00Z"
    ),
    "uri": _Format(_is_uri, "bad_uri", "an absolute URI (RFC 3986, with a scheme)"),
}


def _format_message(fmt: _Format, value: str) -> str:
    note = ""
    if fmt.code == "bad_time" and _time_status(value) == _TIME_WITHOUT_OFFSET:
        note = ", which has no UTC offset"
    return f"expected {fmt.expected}, found {_found(value)}{note}"


# ---------------------------------------------------------------------------------------------
# Messages and pointers
# ---------------------------------------------------------------------------------------------


def _found(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        text = str(value) if abs(value) < 10**30 else "a very large number"
        return f"an integer ({text})"
    if isinstance(value, float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        text = json.dumps(value if len(value) <= 80 else value[:77] + "...", ensure_ascii=False)
        return f"the string {text}"
    if isinstance(value, list):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    return "an object"


def _token(token: str | int) -> str:
    if isinstance(token, int):
        return f"/{token}"
    if "~" in token or "/" in token:
        token = token.replace("~", "~0").replace("/", "~1")
    return f"/{token}"


class _Err:
    """A failure inside a compiled check, with its path collected on the way back up.

    Paths are only built for failures, so a valid facet costs no pointer arithmetic at all.
    """

    __slots__ = ("code", "message", "tokens")

    def __init__(self, code: ReasonCode, message: str, token: str | None = None) -> None:
        self.code = code
        self.message = message
        self.tokens: list[str | int] = [] if token is None else [token]

    def pointer(self, prefix: str) -> str:
        return prefix + "".join(_token(token) for token in reversed(self.tokens))


_Errs = list[_Err] | None
_Check = Callable[[Any], _Errs]


def _reasons(errors: Iterable[_Err], prefix: str) -> list[Reason]:
    return [Reason(error.code, error.pointer(prefix), error.message) for error in errors]


# ---------------------------------------------------------------------------------------------
# A compiler from the JSON Schema subset of the OpenLineage spec files to checker functions
# ---------------------------------------------------------------------------------------------
#
# Each schema becomes the Python source of one function, `value -> list of _Err | None`, in
# which nested objects and arrays are checked inline: a function call per nested value, as
# closures would need, costs more than the check itself, and large facets (column lineage,
# schemas of wide tables) hold hundreds of values. Only recursive definitions and the branches
# of anyOf / oneOf are functions of their own.

_ANNOTATIONS: Final = frozenset(
    {"$schema", "$id", "$defs", "$comment", "title", "description", "example", "examples"}
    | {"default", "deprecated", "documentation"}
)
_KEYWORDS: Final = frozenset(
    {"type", "properties", "required", "additionalProperties", "dependentRequired", "items"}
    | {"$ref", "allOf", "anyOf", "oneOf", "enum", "const", "format", "minimum"}
)
_TYPE_NAMES: Final = {
    "object": "an object",
    "array": "an array",
    "string": "a string",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}
_TYPE_TESTS: Final = {  # Python expressions, ``{}`` standing for the value
    "object": "isinstance({}, dict)",
    "array": "isinstance({}, list)",
    "string": "isinstance({}, str)",
    "boolean": "isinstance({}, bool)",
    "integer": "_is_integer({})",
    "number": "_is_number({})",
    "null": "{} is None",
}


def _is_integer(value: Any) -> bool:
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _wrong_type(expected: str, value: Any) -> list[_Err]:
    return [_Err("wrong_type", f"expected {_TYPE_NAMES[expected]}, found {_found(value)}")]


def _missing(name: str) -> list[_Err]:
    return [_Err("missing_field", f"required field '{name}' is missing", name)]


def _missing_with(name: str, need: str) -> list[_Err]:
    return [_Err("missing_field", f"field '{need}' is required with '{name}'", need)]


def _unexpected(name: str, allowed: str) -> list[_Err]:
    return [
        _Err("unexpected_field", f"field '{name}' is not allowed here (allowed: {allowed})", name)
    ]


def _bad_format(fmt: _Format, value: str) -> list[_Err]:
    return [_Err(fmt.code, _format_message(fmt, value))]


def _bad_enum(expected: str, value: Any) -> list[_Err]:
    return [_Err("bad_enum", f"expected {expected}, found {_found(value)}")]


def _below(minimum: float, value: Any) -> list[_Err]:
    return [_Err("out_of_range", f"expected a number >= {minimum}, found {_found(value)}")]


def _add(errors: _Errs, more: list[_Err], path: tuple[str | int, ...]) -> list[_Err]:
    """``errors`` plus ``more``, whose values sit at ``path`` below the checked value."""
    for error in more:
        error.tokens.extend(reversed(path))
    return more if errors is None else errors + more


_Located = tuple[Mapping[str, Any], str]
"""A schema and the id of the document it sits in (the base of its local ``$ref``s)."""


class _Merged:
    """The keywords of a schema merged with those its ``allOf`` and ``$ref`` pull in.

    Merging turns a facet's chain (facet -> RunFacet -> BaseFacet) into one object check. It is
    exact for the keywords merged here: ``allOf`` means every part applies, and object parts that
    leave undeclared fields free simply pool their properties. A part that constrains undeclared
    fields (``additionalProperties`` other than true) is kept apart, since its notion of
    "undeclared" is its own.
    """

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.properties: dict[str, list[_Located]] = {}
        self.required: dict[str, None] = {}  # an ordered set: reasons follow the schema's order
        self.dependent: dict[str, list[str]] = {}
        self.closed: list[_Located] = []
        self.items: list[_Located] = []
        self.alternatives: list[tuple[bool, list[_Located]]] = []  # (oneOf?, alternatives)
        self.formats: list[str] = []
        self.enums: list[list[Any]] = []
        self.minimums: list[float] = []
        self.recursive_refs: list[str] = []


class _Source:
    """Lines of Python being written, with indentation and fresh local names.

    ``with source.block(header):`` indents the lines written inside; a block that gets none is
    closed with ``pass``.
    """

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names = 0
        self._starts: list[int] = []

    def line(self, text: str) -> None:
        self.lines.append("    " * (len(self._starts) + 1) + text)

    def block(self, header: str) -> _Source:
        self.line(header)
        return self

    def __enter__(self) -> None:
        self._starts.append(len(self.lines))

    def __exit__(self, *exc: object) -> None:
        if len(self.lines) == self._starts[-1]:
            self.line("pass")
        self._starts.pop()

    def local(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"


class _SchemaCompiler:
    """Compiles schemas of the spec files into ``value -> errors | None`` functions."""

    def __init__(self, documents: Mapping[str, Mapping[str, Any]]) -> None:
        self._documents = documents
        self._recursive: dict[str, bool] = {}
        self._functions: dict[str, str] = {}  # $ref URI -> name of its function
        self._unrolled: set[str] = set()  # recursive definitions being written inline
        # The globals of the generated functions: the helpers, then constants and functions.
        helpers = [_is_integer, _is_number, _wrong_type, _missing, _missing_with, _unexpected]
        helpers += [_bad_format, _bad_enum, _below, _add, _format_message]
        self._namespace: dict[str, Any] = {helper.__name__: helper for helper in helpers}
        self._namespace["_MISSING"] = _MISSING

    def resolve(self, uri: str) -> Mapping[str, Any]:
        document_id, _, fragment = uri.partition("#")
        node: Any = self._documents[document_id]
        for part in fragment.split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node  # type: ignore[no-any-return]

    def compile(self, located: Iterable[_Located], label: str) -> _Check:
        """One checker for all of ``located`` (schemas that all apply to the same value)."""
        name = self._define(self._merged(located), label)
        return self._namespace[name]  # type: ignore[no-any-return]

    def ref(self, uri: str) -> str:
        """The name of the function for the definition at ``uri``, defined on first use."""
        name = self._functions.get(uri)
        if name is None:
            # Named before it is written, so that a recursive definition can call itself.
            name = self._functions[uri] = self._name()
            self._define(self._merged([(self.resolve(uri), uri.partition("#")[0])]), uri, name)
        return name

    def _name(self) -> str:
        return f"_check_{len(self._namespace)}"

    def _constant(self, value: Any) -> str:
        name = f"_constant_{len(self._namespace)}"
        self._namespace[name] = value
        return name

    def _define(self, merged: _Merged, label: str, name: str | None = None) -> str:
        name = name or self._name()
        self._namespace.setdefault(name, None)  # reserve the name
        source = _Source()
        source.line("errors = None")
        self._check(merged, "value", (), source)
        source.line("return errors")
        code = "\n".join([f"def {name}(value):", *source.lines])
        exec(compile(code, f"<checker of {label}>", "exec"), self._namespace)  # noqa: S102
        return name

    def _merged(self, located: Iterable[_Located]) -> _Merged:
        merged = _Merged()
        for schema, base in located:
            self._merge(schema, base, merged)
        return merged

    def _is_recursive(self, uri: str) -> bool:
        """Whether the definition at ``uri`` refers back to itself, directly or not."""
        if uri not in self._recursive:
            seen: set[str] = set()
            todo = [uri]
            while todo:
                current = todo.pop()
                document_id = current.partition("#")[0]
                for ref in _refs_in(self.resolve(current)):
                    target = _absolute(ref, document_id)
                    if target not in seen:
                        seen.add(target)
                        todo.append(target)
            self._recursive[uri] = uri in seen
        return self._recursive[uri]

    def reaches_recursion(self, schema: Mapping[str, Any], base: str) -> bool:
        """Whether checking ``schema`` can recurse (it reaches a recursive definition), so that
        how deep its checker goes depends on how deeply the value nests."""
        seen: set[str] = set()
        todo = [_absolute(ref, base) for ref in _refs_in(schema)]
        while todo:
            uri = todo.pop()
            if uri in seen:
                continue
            seen.add(uri)
            if self._is_recursive(uri):
                return True
            document_id = uri.partition("#")[0]
            todo += [_absolute(ref, document_id) for ref in _refs_in(self.resolve(uri))]
        return False

    def _merge(self, schema: Mapping[str, Any], base: str, into: _Merged) -> None:
        unknown = schema.keys() - _KEYWORDS - _ANNOTATIONS
        if unknown:
            raise ValueError(f"unsupported JSON Schema keywords {sorted(unknown)} in {base}")
        if "type" in schema:
            if schema["type"] not in _TYPE_NAMES:
                raise ValueError(f"unsupported JSON Schema type {schema['type']!r} in {base}")
            into.types.add(schema["type"])
        if "$ref" in schema:
            uri = _absolute(schema["$ref"], base)
            # Inlining a recursive definition would never end: those get a function.
            if self._is_recursive(uri):
                into.recursive_refs.append(uri)
            else:
                self._merge(self.resolve(uri), uri.partition("#")[0], into)
        for sub in schema.get("allOf", ()):
            self._merge(sub, base, into)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                alternatives = [(sub, base) for sub in schema[keyword]]
                into.alternatives.append((keyword == "oneOf", alternatives))
        if schema.get("additionalProperties", True) is not True:
            into.closed.append((schema, base))
        else:
            for name, sub in schema.get("properties", {}).items():
                into.properties.setdefault(name, []).append((sub, base))
            into.required.update(dict.fromkeys(schema.get("required", ())))
            for name, needs in schema.get("dependentRequired", {}).items():
                into.dependent.setdefault(name, []).extend(needs)
        if "items" in schema:
            into.items.append((schema["items"], base))
        if "format" in schema:
            if schema["format"] not in _FORMATS:
                raise ValueError(f"unsupported JSON Schema format {schema['format']!r} in {base}")
            into.formats.append(schema["format"])
        if "enum" in schema or "const" in schema:
            values = schema["enum"] if "enum" in schema else [schema["const"]]
            if not all(isinstance(value, str) for value in values):
                raise ValueError(f"unsupported non-string enum {values!r} in {base}")
            into.enums.append(values)
        if "minimum" in schema:
            into.minimums.append(schema["minimum"])

    # Writing the checks. ``value`` is the name of a local holding the value, ``path`` the
    # Python expressions of the tokens that lead to it from the function's argument.

    def _check(self, merged: _Merged, value: str, path: tuple[str, ...], source: _Source) -> None:
        if len(merged.types) > 1:
            raise ValueError(f"unsupported conflicting JSON Schema types {sorted(merged.types)}")
        expected = next(iter(merged.types), None)
        if expected is None:
            self._check_content(merged, value, path, source, known=None)
            return
        at = _tuple(path)
        with source.block(f"if not {_TYPE_TESTS[expected].format(value)}:"):
            source.line(f"errors = _add(errors, _wrong_type({expected!r}, {value}), {at})")
        with source.block("else:"):
            self._check_content(merged, value, path, source, known=expected)

    def _check_content(
        self, merged: _Merged, value: str, path: tuple[str, ...], source: _Source, known: str | None
    ) -> None:
        """Everything but the type; ``known`` is the type already checked, if any."""
        at = _tuple(path)
        for uri in merged.recursive_refs:
            if uri in self._unrolled:
                self._call(self.ref(uri), value, path, source)
                continue
            # One level of a recursive definition is written inline, so that the common case
            # (schema fields without nested fields) needs no call per element.
            self._unrolled.add(uri)
            definition = self._merged([(self.resolve(uri), uri.partition("#")[0])])
            self._check(definition, value, path, source)
            self._unrolled.discard(uri)
        for exactly_one, alternatives in merged.alternatives:
            self._call(
                self._constant(self._alternatives(alternatives, exactly_one)), value, path, source
            )
        for schema, base in merged.closed:
            properties = {name: [(sub, base)] for name, sub in schema.get("properties", {}).items()}
            self._object(
                properties,
                schema.get("required", ()),
                schema.get("dependentRequired", {}),
                value,
                path,
                source,
                known,
            )
            additional = schema["additionalProperties"]
            with self._only_if("object", known, value, source):
                key, item = source.local("key"), source.local("item")
                with source.block(f"for {key}, {item} in {value}.items():"):
                    source.line(f"if {key} in {self._constant(frozenset(properties))}:")
                    source.line("    continue")
                    if additional is False:
                        allowed = self._constant(", ".join(properties))
                        source.line(f"errors = _add(errors, _unexpected({key}, {allowed}), {at})")
                    else:
                        self._check(self._merged([(additional, base)]), item, (*path, key), source)
        if merged.properties or merged.required or merged.dependent:
            self._object(
                merged.properties, merged.required, merged.dependent, value, path, source, known
            )
        if merged.items:
            with self._only_if("array", known, value, source):
                index, item = source.local("index"), source.local("item")
                with source.block(f"for {index}, {item} in enumerate({value}):"):
                    self._check(self._merged(merged.items), item, (*path, index), source)
        for name in merged.formats:
            fmt = self._constant(_FORMATS[name])
            with (
                self._only_if("string", known, value, source),
                source.block(f"if not {fmt}.test({value}):"),
            ):
                source.line(f"errors = _add(errors, _bad_format({fmt}, {value}), {at})")
        for values in merged.enums:
            allowed = self._constant(frozenset(values))
            expected = self._constant(" or ".join(json.dumps(value) for value in values))
            with source.block(f"if not (isinstance({value}, str) and {value} in {allowed}):"):
                source.line(f"errors = _add(errors, _bad_enum({expected}, {value}), {at})")
        for minimum in merged.minimums:
            with source.block(f"if _is_number({value}) and {value} < {minimum!r}:"):
                source.line(f"errors = _add(errors, _below({minimum!r}, {value}), {at})")

    def _object(
        self,
        properties: Mapping[str, list[_Located]],
        required: Iterable[str],
        dependent: Mapping[str, list[str]],
        value: str,
        path: tuple[str, ...],
        source: _Source,
        known: str | None,
    ) -> None:
        at = _tuple(path)
        required = tuple(required)
        with self._only_if("object", known, value, source):
            for name, located in properties.items():
                item = source.local("item")
                source.line(f"{item} = {value}.get({name!r}, _MISSING)")
                if name in required:
                    with source.block(f"if {item} is _MISSING:"):
                        source.line(f"errors = _add(errors, _missing({name!r}), {at})")
                    guard = "else:"
                else:
                    guard = f"if {item} is not _MISSING:"
                with source.block(guard):
                    self._check(self._merged(located), item, (*path, repr(name)), source)
            for name in required:
                if name not in properties:
                    with source.block(f"if {name!r} not in {value}:"):
                        source.line(f"errors = _add(errors, _missing({name!r}), {at})")
            for name, needs in dependent.items():
                for need in needs:
                    with source.block(f"if {name!r} in {value} and {need!r} not in {value}:"):
                        source.line(
                            f"errors = _add(errors, _missing_with({name!r}, {need!r}), {at})"
                        )

    def _only_if(
        self, kind: str, known: str | None, value: str, source: _Source
    ) -> contextlib.AbstractContextManager[None]:
        """A block for checks that apply to one JSON type only (not needed if it is known)."""
        if known == kind:
            return contextlib.nullcontext()
        if known is not None:
            return source.block("if False:")  # another type: the checks never apply
        return source.block(f"if {_TYPE_TESTS[kind].format(value)}:")

    def _call(self, function: str, value: str, path: tuple[str, ...], source: _Source) -> None:
        found = source.local("found")
        with source.block(f"if {found} := {function}({value}):"):
            source.line(f"errors = _add(errors, {found}, {_tuple(path)})")

    def _alternatives(self, subs: list[_Located], exactly_one: bool) -> _Check:
        named = [
            (
                sub["$ref"].rpartition("/")[2] if "$ref" in sub else f"#{i + 1}",
                self.compile([(sub, base)], f"{base} alternative {i + 1}"),
            )
            for i, (sub, base) in enumerate(subs)
        ]

        def check(value: Any) -> _Errs:
            matched: list[str] = []
            failed: list[tuple[str, list[_Err]]] = []
            for name, alternative in named:
                errors = alternative(value)
                if errors:
                    failed.append((name, errors))
                elif not exactly_one:
                    return None
                else:
                    matched.append(name)
            if len(matched) == 1:
                return None
            if matched:
                return [
                    _Err(
                        "ambiguous_match",
                        f"matches {len(matched)} alternatives ({', '.join(matched)}); "
                        "exactly one is allowed",
                    )
                ]
            return _no_match(failed)

        return check


def _tuple(path: tuple[str, ...]) -> str:
    return f"({', '.join(path)},)" if path else "()"


def _refs_in(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs_in(value)


def _no_match(failed: list[tuple[str, list[_Err]]]) -> list[_Err]:
    """Explain why a value matches none of the alternatives.

    Problems that every alternative reports (a facet without ``_producer``) are the precise
    answer; otherwise each alternative's first problem is summarised.
    """

    def key(error: _Err) -> tuple[str, str, str]:
        return (error.code, error.pointer(""), error.message)

    shared = set.intersection(*({key(error) for error in errors} for _, errors in failed))
    if shared:
        return [error for error in failed[0][1] if key(error) in shared]
    summaries = "; ".join(
        f"{name}: {errors[0].pointer('') or '/'} {errors[0].message}" for name, errors in failed
    )
    return [_Err("no_match", f"matches none of the alternatives ({summaries})")]


def _absolute(ref: str, base: str) -> str:
    return base + ref if ref.startswith("#") else ref


# ---------------------------------------------------------------------------------------------
# The shipped spec: facet bases per place, and the standard facets compiled per place
# ---------------------------------------------------------------------------------------------

_Place = Literal["run", "job", "dataset", "input", "output"]
_PLACE_OF_BASE: Final[dict[str, _Place]] = {
    "RunFacet": "run",
    "JobFacet": "job",
    "DatasetFacet": "dataset",
    "InputDatasetFacet": "input",
    "OutputDatasetFacet": "output",
}


_Verdict = tuple[tuple[ReasonCode, str, str], ...] | None
"""What a standard facet's check found: (code, pointer below the facet, message) per problem,
or None when the facet is valid."""

_MEMO_ENTRIES: Final = 65_536
_MEMO_BYTES: Final = 64 << 20
_MEMO_FACET_BYTES: Final = 256 << 10
_MEMO_NESTING: Final = 100
_facet_encoder: Final = msgspec.json.Encoder()


class _VerdictMemo:
    """Verdicts of the standard facet checkers, by checker and facet JSON bytes.

    The same facets arrive again and again (a dataset's schema in every event that reads it, a
    job's sql in every run), so each distinct facet is checked once. The key is msgspec's encoding
    of the decoded value, which tells apart everything a check can tell apart (key order, 1 and
    1.0, true and 1).

    Bounded by entries and key bytes, as a segmented LRU: a new verdict waits in a first-in
    first-out probation segment and moves to the protected segment (least recently used out
    first) when it is asked for again, so facets seen once (a run's own column lineage) do not
    push out those that repeat. Facets over ``_MEMO_FACET_BYTES`` are not remembered.

    A checker that can recurse (nested schema fields, subset conditions) hits Python's recursion
    limit on a deep enough facet, at a depth that depends on the caller's stack; its verdicts
    are only remembered for facets with at most ``_MEMO_NESTING`` objects and arrays, far too
    shallow to reach the limit from any caller, so a remembered verdict is the one a fresh check
    would give anywhere.
    """

    __slots__ = ("kept", "kept_size", "new", "new_size", "recursive")

    def __init__(self) -> None:
        self.recursive: set[_Check] = set()
        self.new: dict[tuple[_Check, bytes], _Verdict] = {}
        self.kept: dict[tuple[_Check, bytes], _Verdict] = {}
        self.new_size = self.kept_size = 0

    def get(self, key: tuple[_Check, bytes]) -> Any:
        """The verdict remembered for ``key``, or ``_MISSING``."""
        kept = self.kept
        found = kept.pop(key, _MISSING)
        if found is not _MISSING:
            kept[key] = found  # the most recently used last
            return found
        found = self.new.pop(key, _MISSING)
        if found is _MISSING:
            return found
        self.new_size -= len(key[1])
        while kept and (len(kept) >= _MEMO_ENTRIES // 2
                        or self.kept_size + len(key[1]) > _MEMO_BYTES // 2):
            self.kept_size -= len(next(iter(kept))[1])
            del kept[next(iter(kept))]
        kept[key] = found
        self.kept_size += len(key[1])
        return found

    def put(self, key: tuple[_Check, bytes], verdict: _Verdict) -> None:
        raw = key[1]
        if len(raw) > _MEMO_FACET_BYTES or (
            key[0] in self.recursive and raw.count(b"{") + raw.count(b"[") > _MEMO_NESTING
        ):
            return
        new = self.new
        while new and (len(new) >= _MEMO_ENTRIES // 2
                       or self.new_size + len(raw) > _MEMO_BYTES // 2):
            self.new_size -= len(next(iter(new))[1])
            del new[next(iter(new))]
        new[key] = verdict
        self.new_size += len(raw)

    def clear(self) -> None:
        self.new.clear()
        self.kept.clear()
        self.new_size = self.kept_size = 0


_VERDICTS: Final = _VerdictMemo()


_encoded: dict[int, tuple[Any, bytes]] = {}
"""The JSON bytes of the standard facets checked during the latest validate() call, by id (the
entry holds the facet, so its id stays its own)."""


def encoded_facet(facet: Any) -> bytes | None:
    """msgspec's JSON encoding of ``facet``, if the latest validate() call encoded it (a
    standard facet of the event it returned); versioning keys its memos with it."""
    found = _encoded.get(id(facet))
    return found[1] if found is not None and found[0] is facet else None


def _facet_verdict(check: _Check, facet: Any) -> _Verdict:
    """The verdict of ``check`` on a standard facet, remembered per distinct facet content."""
    key: tuple[_Check, bytes] | None = None
    with contextlib.suppress(TypeError, ValueError, OverflowError, RecursionError):
        key = (check, _facet_encoder.encode(facet))
    if key is not None:
        _encoded[id(facet)] = (facet, key[1])
        found = _VERDICTS.get(key)
        if found is not _MISSING:
            return found  # type: ignore[no-any-return]
    # Called here, as before the memo, so the checker runs at the same stack depth as before.
    try:
        errors = check(facet)
    except RecursionError:
        # Recursive facet schemas (nested schema fields, subset conditions) let a message nest
        # deeper than Python recurses; that facet cannot be vouched for, the event still can.
        return (("too_deep", "", "the facet is nested too deeply to be checked"),)
    verdict = tuple((e.code, e.pointer(""), e.message) for e in errors) if errors else None
    if key is not None:
        _VERDICTS.put(key, verdict)
    return verdict


class _Spec(NamedTuple):
    bases: dict[_Place, _Check]
    """What every facet at a place must be (the core schema's RunFacet, JobFacet, ...)."""
    standard: dict[_Place, dict[str, _Check]]
    """Standard facet key -> checker of its own schema, per place."""


def _load_spec(directory: Path) -> _Spec:
    paths = [directory / "OpenLineage.json", *sorted((directory / "facets").glob("*.json"))]
    documents = {doc["$id"]: doc for doc in (json.loads(path.read_bytes()) for path in paths)}
    if _CORE_ID not in documents:
        raise ValueError(f"{directory} does not hold the OpenLineage {SPEC_VERSION} core schema")
    compiler = _SchemaCompiler(documents)
    bases = {
        place: compiler.compile([(compiler.resolve(f"{_CORE_ID}#/$defs/{name}"), _CORE_ID)], name)
        for name, place in _PLACE_OF_BASE.items()
    }
    standard: dict[_Place, dict[str, _Check]] = {place: {} for place in bases}
    for document_id, document in documents.items():
        if document_id == _CORE_ID:
            continue
        for key, schema in document["properties"].items():
            places = {_PLACE_OF_BASE[name] for name in _facet_bases(compiler, schema, document_id)}
            if not places:
                raise ValueError(f"facet {key!r} of {document_id} extends no OpenLineage facet")
            check = compiler.compile([(schema, document_id)], f"{document_id} {key}")
            if compiler.reaches_recursion(schema, document_id):
                _VERDICTS.recursive.add(check)
            for place in places:
                if key in standard[place]:
                    raise ValueError(f"two standard {place} facets are called {key!r}")
                standard[place][key] = check
    return _Spec(bases, standard)


def _facet_bases(compiler: _SchemaCompiler, schema: Mapping[str, Any], base: str) -> set[str]:
    """Which core facet types (RunFacet, JobFacet, ...) a facet schema extends.

    Only ``$ref`` and the combinators are followed: a facet that merely *mentions* another facet
    type in a property (the parent facet's ``job.facets``) does not extend it.
    """
    found: set[str] = set()
    if "$ref" in schema:
        uri = _absolute(schema["$ref"], base)
        document_id, _, fragment = uri.partition("#")
        if document_id == _CORE_ID:
            found.add(fragment.rpartition("/")[2])
        else:
            found |= _facet_bases(compiler, compiler.resolve(uri), document_id)
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(keyword, ()):
            found |= _facet_bases(compiler, sub, base)
    return found & _PLACE_OF_BASE.keys()


_SPEC: Final = _load_spec(_SPEC_DIR)
STANDARD_FACETS: Final[Mapping[str, frozenset[str]]] = {
    place: frozenset(table) for place, table in _SPEC.standard.items()
}
"""The standard facet keys per place: ``run``, ``job``, ``dataset`` (``facets`` of any dataset),
``input`` (``inputFacets``) and ``output`` (``outputFacets``)."""


# ---------------------------------------------------------------------------------------------
# The core, by hand: OpenLineage.json's oneOf of RunEvent, DatasetEvent and JobEvent
# ---------------------------------------------------------------------------------------------

_EVENT_TYPES: Final = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
_URI_FORMAT: Final = _FORMATS["uri"]
_DATASET_SIDES: Final[tuple[tuple[str, str, _Place], ...]] = (
    ("inputs", "inputFacets", "input"),
    ("outputs", "outputFacets", "output"),
)


def _check_string(
    holder: dict[str, Any], name: str, pointer: str, out: list[Reason], fmt: _Format | None = None
) -> None:
    """A required string field, optionally with a format."""
    value = holder.get(name, _MISSING)
    if value is _MISSING:
        message = f"required field '{name}' is missing"
        out.append(Reason("missing_field", f"{pointer}/{name}", message))
    elif not isinstance(value, str):
        message = f"expected a string, found {_found(value)}"
        out.append(Reason("wrong_type", f"{pointer}/{name}", message))
    elif fmt is not None and not fmt.test(value):
        out.append(Reason(fmt.code, f"{pointer}/{name}", _format_message(fmt, value)))


def _check_object(value: Any, pointer: str, out: list[Reason]) -> bool:
    if isinstance(value, dict):
        return True
    out.append(Reason("wrong_type", pointer, f"expected an object, found {_found(value)}"))
    return False


def _intended_kinds(event: Mapping[str, Any]) -> list[EventKind]:
    """The kinds an event may be by the keys it has, most likely first.

    The spec's alternatives: RunEvent needs run and job; JobEvent needs job and forbids run;
    DatasetEvent needs dataset and forbids run and job together. A run without a job is read as
    a RunEvent missing its job, unless a dataset makes it a DatasetEvent.
    """
    has_run, has_job, has_dataset = "run" in event, "job" in event, "dataset" in event
    kinds: list[EventKind] = []
    if has_run and (has_job or not has_dataset):
        kinds.append("run")
    if has_job and not has_run:
        kinds.append("job")
    if has_dataset and not (has_job and has_run):
        kinds.append("dataset")
    return kinds


class _EventCheck:
    """The check of one event: the core decision, and the standard facets dropped on the way.

    Each facet map is walked once: a standard facet that violates its own schema is dropped (the
    core never looks at standard facets, so this changes no decision), and a custom facet is
    checked against the core's facet type for its place.
    """

    __slots__ = ("dropped",)

    def __init__(self) -> None:
        self.dropped: list[DroppedFacet] = []

    def classify(self, event: dict[str, Any]) -> tuple[EventKind | None, list[Reason]]:
        base: list[Reason] = []
        _check_string(event, "eventTime", "", base, _FORMATS["date-time"])
        _check_string(event, "producer", "", base, _URI_FORMAT)
        _check_string(event, "schemaURL", "", base, _URI_FORMAT)
        kinds = _intended_kinds(event)
        candidates = [(kind, _KIND_CHECKS[kind](self, event)) for kind in kinds]
        self._drop_elsewhere(event, kinds)
        if not candidates:
            message = (
                "expected a RunEvent (run and job), a JobEvent (job) or a DatasetEvent "
                "(dataset); the event has none of run, job and dataset"
            )
            return None, [*base, Reason("unknown_event_type", "", message)]
        valid = [kind for kind, errors in candidates if not errors]
        if not base and len(valid) == 1:
            return valid[0], []
        if not base and valid:
            message = (
                "the event is both a valid JobEvent and a valid DatasetEvent (job and dataset, "
                "no run); the spec requires it to be exactly one"
            )
            return None, [Reason("ambiguous_event_type", "", message)]
        _, errors = min(candidates, key=lambda candidate: len(candidate[1]))
        return None, [*base, *errors]

    def run_event(self, event: dict[str, Any]) -> list[Reason]:
        out: list[Reason] = []
        event_type = event.get("eventType", _MISSING)
        if event_type is not _MISSING and event_type not in _EVENT_TYPES:
            code: ReasonCode = "bad_enum" if isinstance(event_type, str) else "wrong_type"
            message = f"expected one of {', '.join(_EVENT_TYPES)}, found {_found(event_type)}"
            out.append(Reason(code, "/eventType", message))
        run = event["run"]
        if _check_object(run, "/run", out):
            _check_string(run, "runId", "/run", out, _FORMATS["uuid"])
            self._facets(run, "facets", "/run", "run", out)
        self._job(event, out)
        self._inputs_and_outputs(event, out)
        return out

    def job_event(self, event: dict[str, Any]) -> list[Reason]:
        out: list[Reason] = []
        self._job(event, out)
        self._inputs_and_outputs(event, out)
        return out

    def dataset_event(self, event: dict[str, Any]) -> list[Reason]:
        out: list[Reason] = []
        self._dataset(event["dataset"], "/dataset", out)
        return out

    def _job(self, event: dict[str, Any], out: list[Reason]) -> None:
        job = event.get("job", _MISSING)
        if job is _MISSING:
            out.append(Reason("missing_field", "/job", "required field 'job' is missing"))
        elif _check_object(job, "/job", out):
            _check_string(job, "namespace", "/job", out)
            _check_string(job, "name", "/job", out)
            self._facets(job, "facets", "/job", "job", out)

    def _inputs_and_outputs(self, event: dict[str, Any], out: list[Reason]) -> None:
        for side, extra, place in _DATASET_SIDES:
            datasets = event.get(side, _MISSING)
            if datasets is _MISSING:
                continue
            if not isinstance(datasets, list):
                message = f"expected an array, found {_found(datasets)}"
                out.append(Reason("wrong_type", f"/{side}", message))
                continue
            for index, dataset in enumerate(datasets):
                self._dataset(dataset, f"/{side}/{index}", out, extra, place)

    def _dataset(
        self,
        dataset: Any,
        pointer: str,
        out: list[Reason],
        extra: str | None = None,
        extra_place: _Place = "dataset",
    ) -> None:
        if not _check_object(dataset, pointer, out):
            return
        _check_string(dataset, "namespace", pointer, out)
        _check_string(dataset, "name", pointer, out)
        self._facets(dataset, "facets", pointer, "dataset", out)
        if extra is not None:
            self._facets(dataset, extra, pointer, extra_place, out)

    def _facets(
        self,
        holder: dict[str, Any],
        name: str,
        pointer: str,
        place: _Place,
        out: list[Reason] | None,
    ) -> None:
        """Walk the facet map ``holder[name]``; ``out`` is None where the core sets no rules."""
        facets = holder.get(name, _MISSING)
        if facets is _MISSING:
            return
        if not isinstance(facets, dict):
            if out is not None:
                message = f"expected an object, found {_found(facets)}"
                out.append(Reason("wrong_type", f"{pointer}/{name}", message))
            return
        standard = _SPEC.standard[place]
        base = _SPEC.bases[place]
        bad: list[tuple[str, tuple[tuple[ReasonCode, str, str], ...]]] = []
        for key, value in facets.items():
            check = standard.get(key)
            if check is not None:
                if verdict := _facet_verdict(check, value):
                    bad.append((key, verdict))
            elif out is not None and (errors := base(value)):
                out.extend(_reasons(errors, f"{pointer}/{name}{_token(key)}"))
        for key, verdict in bad:
            facet_pointer = f"{pointer}/{name}{_token(key)}"
            reasons = tuple(Reason(code, facet_pointer + below, message)
                            for code, below, message in verdict)
            self.dropped.append(DroppedFacet(key, facet_pointer, facets.pop(key), reasons))

    def _drop_elsewhere(self, event: dict[str, Any], kinds: list[EventKind]) -> None:
        """Drop bad standard facets where the candidate kinds did not look.

        Standard facets are dropped wherever any kind of event may hold them, so that what is
        dropped does not depend on the kind; only odd events (a RunEvent with a ``dataset``)
        have facet maps outside their kind.
        """
        looked = {member for kind in kinds for member in _MEMBERS_OF_KIND[kind]}
        for name in ("run", "job", "dataset"):
            holder = event.get(name)
            if name not in looked and isinstance(holder, dict):
                self._facets(holder, "facets", f"/{name}", name, None)
        for side, extra, place in _DATASET_SIDES:
            datasets = event.get(side)
            if side in looked or not isinstance(datasets, list):
                continue
            for index, dataset in enumerate(datasets):
                if isinstance(dataset, dict):
                    self._facets(dataset, "facets", f"/{side}/{index}", "dataset", None)
                    self._facets(dataset, extra, f"/{side}/{index}", place, None)


_MEMBERS_OF_KIND: Final[dict[EventKind, tuple[str, ...]]] = {
    "run": ("run", "job", "inputs", "outputs"),
    "job": ("job", "inputs", "outputs"),
    "dataset": ("dataset",),
}
_KIND_CHECKS: Final[dict[EventKind, Callable[[_EventCheck, dict[str, Any]], list[Reason]]]] = {
    "run": _EventCheck.run_event,
    "job": _EventCheck.job_event,
    "dataset": _EventCheck.dataset_event,
}


# ---------------------------------------------------------------------------------------------
# Repairs
# ---------------------------------------------------------------------------------------------

_FACET_BASE_OF_KIND: Final[dict[EventKind, str]] = {
    "run": "RunFacet",
    "job": "JobFacet",
    "dataset": "DatasetFacet",
}
_EVENT_DEF_OF_KIND: Final[dict[EventKind, str]] = {
    "run": "RunEvent",
    "job": "JobEvent",
    "dataset": "DatasetEvent",
}


def _repair(event: dict[str, Any], repairs: list[RepairCode], originals: dict[str, Any]) -> None:
    kinds = _intended_kinds(event)
    if "schemaURL" not in event and kinds:
        event["schemaURL"] = f"{_CORE_ID}#/$defs/{_EVENT_DEF_OF_KIND[kinds[0]]}"
        originals["/schemaURL"] = None
        repairs.append("missing_schema_url")
    event_time = event.get("eventTime")
    if isinstance(event_time, str) and _time_status(event_time) == _TIME_WITHOUT_OFFSET:
        event["eventTime"] = event_time + "Z"
        originals["/eventTime"] = event_time
        repairs.append("event_time_without_offset")
    run = event.get("run")
    if not isinstance(run, dict):
        return
    if _repair_run_id(run, "/run/runId", originals):
        repairs.append("non_uuid_run_id")
    # The parent's own events get the same name-based id, so repairing the reference too keeps
    # the parent link instead of dropping the parent facet.
    facets = run.get("facets")
    parent = facets.get("parent") if isinstance(facets, dict) else None
    if isinstance(parent, dict):
        root = parent.get("root")
        repaired = _repair_run_id(parent.get("run"), "/run/facets/parent/run/runId", originals)
        if isinstance(root, dict):
            pointer = "/run/facets/parent/root/run/runId"
            repaired = _repair_run_id(root.get("run"), pointer, originals) or repaired
        if repaired:
            repairs.append("non_uuid_parent_run_id")


def _repair_run_id(holder: Any, pointer: str, originals: dict[str, Any]) -> bool:
    run_id = holder.get("runId") if isinstance(holder, dict) else None
    if not isinstance(run_id, str) or _is_uuid(run_id):
        return False
    holder["runId"] = str(uuid5(RUN_ID_NAMESPACE, run_id))
    originals[pointer] = run_id
    return True


def _mark_repairs(
    event: dict[str, Any], kind: EventKind, repairs: list[RepairCode], originals: dict[str, Any]
) -> None:
    facets = event[kind].setdefault("facets", {})
    facets[REPAIRS_FACET] = {
        "_producer": PRODUCER,
        "_schemaURL": f"{_CORE_ID}#/$defs/{_FACET_BASE_OF_KIND[kind]}",
        "repairs": list(repairs),
        "originals": originals,
    }


# ---------------------------------------------------------------------------------------------


def _validate_event(event: dict[str, Any], repair: bool) -> ValidationResult:
    repairs: list[RepairCode] = []
    originals: dict[str, Any] = {}
    if repair:
        _repair(event, repairs, originals)
    check = _EventCheck()
    kind, reasons = check.classify(event)
    dropped = tuple(check.dropped)
    if kind is None:
        return ValidationResult(
            ok=False,
            event=None,
            kind=None,
            reasons=tuple(reasons),
            dropped_facets=dropped,
            repairs=tuple(repairs),
        )
    if repairs:
        _mark_repairs(event, kind, repairs, originals)
    return ValidationResult(
        ok=True, event=event, kind=kind, dropped_facets=dropped, repairs=tuple(repairs)
    )
