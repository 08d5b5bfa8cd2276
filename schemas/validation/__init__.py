"""Validation of raw OpenLineage events: the processor's first decision, and the gateway's.

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
   and recorded in a custom ``lineage_repairs`` facet;
5. what the graph cannot store is refused (:mod:`~schemas.validation.limits`): a job or dataset
   key over Neo4j's index limit, an eventTime outside years 1 to 9999 in UTC.

Nothing runs jsonschema per event. The package, by seam:

- :mod:`~schemas.validation.results`: the result types and the codes;
- :mod:`~schemas.validation.formats`: uuid, date-time and uri, as the official checker reads them;
- :mod:`~schemas.validation.compiler`: a compiler from the JSON Schema subset of the spec files
  to checker functions (it refuses any keyword it does not know, so a newer spec cannot be
  half-enforced silently);
- :mod:`~schemas.validation.spec`: the schema files shipped in ``schemas/openlineage_spec/``,
  compiled at import into the standard facets' checkers, per place;
- :mod:`~schemas.validation.verdicts`: facet verdicts remembered per distinct facet content;
- :mod:`~schemas.validation.event_check`: the core, checked by hand, with the facet maps;
- :mod:`~schemas.validation.repair`: repair mode;
- :mod:`~schemas.validation.limits`: what the graph can hold.
"""

from __future__ import annotations

from typing import Any

import msgspec

from schemas.validation.event_check import EventCheck
from schemas.validation.limits import limit_reasons
from schemas.validation.repair import (
    PRODUCER,
    REPAIRS_FACET,
    RUN_ID_NAMESPACE,
    mark_repairs,
    repair_event,
)
from schemas.validation.results import (
    DroppedFacet,
    EventKind,
    FacetJson,
    Reason,
    ReasonCode,
    RepairCode,
    ValidationResult,
    describe,
)
from schemas.validation.spec import SPEC_VERSION, STANDARD_FACETS

__all__ = [
    "PRODUCER",
    "REPAIRS_FACET",
    "RUN_ID_NAMESPACE",
    "SPEC_VERSION",
    "STANDARD_FACETS",
    "DroppedFacet",
    "EventKind",
    "FacetJson",
    "Reason",
    "ReasonCode",
    "RepairCode",
    "ValidationResult",
    "validate",
]


def validate(raw: bytes, *, max_bytes: int = 1_048_576, repair: bool = False) -> ValidationResult:
    """Validate one raw OpenLineage event (see the module docstring for the policy).

    Never raises for bad input: every problem is a :class:`Reason`. The result also carries the
    JSON bytes of the standard facets it checked (:attr:`ValidationResult.facet_json`), which
    versioning reuses.

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
        found = describe(event)
        return _refused(Reason("not_object", "", f"expected a JSON object, found {found}"))
    return _validate_event(event, repair)


def _refused(*reasons: Reason) -> ValidationResult:
    return ValidationResult(ok=False, event=None, kind=None, reasons=reasons)


def _validate_event(event: dict[str, Any], repair: bool) -> ValidationResult:
    repairs: list[RepairCode] = []
    originals: dict[str, Any] = {}
    if repair:
        repair_event(event, repairs, originals)
    check = EventCheck()
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
            facet_json=check.facet_json,
        )
    limits = limit_reasons(event)
    if limits:
        return ValidationResult(ok=False, event=None, kind=None, reasons=tuple(limits),
                                dropped_facets=dropped, repairs=tuple(repairs),
                                facet_json=check.facet_json)
    if repairs:
        mark_repairs(event, kind, repairs, originals)
    return ValidationResult(
        ok=True,
        event=event,
        kind=kind,
        dropped_facets=dropped,
        repairs=tuple(repairs),
        facet_json=check.facet_json,
    )
