"""What validation answers: the result types, the codes, and how reasons name values and places.

>>> reason = Reason("bad_uuid", "/run/runId", f"expected a UUID, found {describe('x1')}")
>>> reason.as_dict()
{'code': 'bad_uuid', 'pointer': '/run/runId', 'message': 'expected a UUID, found the string "x1"'}
>>> "/run/facets" + pointer_token("a/b~c")
'/run/facets/a~1b~0c'
"""

from __future__ import annotations

import json
from typing import Any, Literal

import msgspec

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
    "name_too_long",  # a job's or dataset's namespace + name is over the graph's key limit
    "time_out_of_range",  # an eventTime the graph cannot store (UTC years 1-9999)
]


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


class FacetJson(msgspec.Struct, dict=True):
    """The JSON bytes (msgspec's encoding) of the standard facets one validation checked.

    Validation encodes every standard facet to key its verdict cache; versioning keys its own
    caches with the same bytes instead of encoding the facets again. It is looked up by the
    facet object itself (``facet_json(facet)``), which holds only while the event is not
    changed. Runtime state for the pipeline, not part of the result's JSON form: it has no
    fields, so it encodes as ``{}`` (the table is an undeclared attribute).
    """

    def __post_init__(self) -> None:
        self._by_id: dict[int, tuple[Any, bytes]] = {}

    def add(self, facet: Any, raw: bytes) -> None:
        """Record ``raw`` as the JSON of ``facet``."""
        self._by_id[id(facet)] = (facet, raw)  # holds the facet, so its id stays its own

    def __call__(self, facet: Any) -> bytes | None:
        """The JSON bytes of ``facet``, if this validation encoded it."""
        found = self._by_id.get(id(facet))
        return found[1] if found is not None and found[0] is facet else None


class ValidationResult(msgspec.Struct, frozen=True):
    """The outcome of :func:`schemas.validation.validate`."""

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
    facet_json: FacetJson = msgspec.field(default_factory=FacetJson)
    """The JSON bytes of the standard facets checked, for versioning (see :class:`FacetJson`)."""


def describe(value: Any) -> str:
    """How a reason names a JSON value it found, e.g. ``the string "x"`` or ``an object``."""
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


def pointer_token(token: str | int) -> str:
    """One RFC 6901 reference token, with its ``/``: ``~`` and ``/`` escaped."""
    if isinstance(token, int):
        return f"/{token}"
    if "~" in token or "/" in token:
        token = token.replace("~", "~0").replace("/", "~1")
    return f"/{token}"
