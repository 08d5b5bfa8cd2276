"""The processor's logic for one raw message, free of Kafka: parse -> validate -> dedup -> version.

The Faust worker (:mod:`stream_processor.worker`) and the benchmark both call :func:`process`;
it returns everything the message leads to (dead letters, change records, a duplicate verdict)
and a :class:`~stream_processor.state.Plan` to commit once those records are acknowledged.

>>> from stream_processor.state import Plan
>>> state: dict[str, list[int]] = {}
>>> raw = (b'{"eventType": "START", "eventTime": "2024-05-01T12:00:00Z",'
...        b' "producer": "https://example.com/etl", "schemaURL": "https://openlineage.io/spec/'
...        b'2-0-2/OpenLineage.json#/$defs/RunEvent",'
...        b' "run": {"runId": "0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"},'
...        b' "job": {"namespace": "etl", "name": "daily"}}')
>>> outcome = process(raw, Plan(state), ingested_at=0)
>>> [c.kind for c in outcome.changes], outcome.duplicate
(['Job', 'Run'], False)
>>> _ = outcome.plan.commit()
>>> process(raw, Plan(state), ingested_at=0).duplicate
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from schemas.validation import DroppedFacet, Reason, validate
from stream_processor.state import Plan, Rule
from stream_processor.versioning import (
    Change,
    Prepared,
    changes_for,
    content_id,
    event_content_id,
    to_micros,
)

DEFAULT_MAX_BYTES = 1_048_576

# Which state rule decides whether a record of each kind is worth sending (see state.py).
_RULES: dict[str, tuple[str, Rule]] = {
    "Job": ("n", "latest"),
    "Dataset": ("n", "latest"),
    "JobVersion": ("v", "min"),
    "DatasetVersion": ("s", "once"),
    "JobLineage": ("r", "range"),
    "Run": ("r", "range"),
    "RunIO": ("o", "once"),
    "ColumnLineage": ("o", "once"),
    "Symlink": ("o", "once"),
}


@dataclass(frozen=True)
class DeadLetter:
    """A message (or a facet of it) refused, with machine-readable reasons."""

    kind: Literal["event", "facet"]
    reasons: tuple[dict[str, Any], ...]


@dataclass
class Outcome:
    """Everything one raw message leads to."""

    plan: Plan
    dead_letters: list[DeadLetter] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    duplicate: bool = False
    accepted: bool = False
    repairs: tuple[str, ...] = ()
    event_time: int | None = None
    suppressed: int = 0


def dedup_key(event: dict[str, Any], dropped: tuple[DroppedFacet, ...] = (),
              prepared: Prepared | None = None) -> str:
    """The identity of an event: its canonical JSON with eventTime normalised to UTC micros.

    Facets the validator dropped are part of it: an event that differs only in a bad facet is
    not a duplicate, so that facet still reaches the DLQ. (``event_content_id`` is
    ``content_id`` with the datasets' canonical facets worked out once, in ``prepared``.)
    """
    content = {**event, "eventTime": to_micros(event["eventTime"])}
    if dropped:
        content["__dropped"] = [[d.pointer, d.value] for d in dropped]
    return "x|" + event_content_id(content, prepared)


def state_key(change: Change) -> tuple[str, Rule]:
    """The state entry and rule that decide whether ``change`` is worth sending.

    The content id comes from ``change.content`` when versioning worked it out already (once
    per distinct content), else it is computed here; either way it is the same id.
    """
    prefix, rule = _RULES[change.kind]
    body = change.body
    if prefix == "v":
        return f"v|{body['id']}", rule
    if prefix == "s":  # every sighting of a schema counts (sinks.timeline.schema_intervals)
        return f"s|{body['id']}|{change.event_time}", rule
    if prefix == "n":
        # The node's earliest time (firstSeen) and its latest facets (what the node shows), from
        # the events that carry facets; those without count for firstSeen only.
        return (f"n|{change.key}", rule) if body["facets"] is not None else (
            f"n0|{change.key}", "min")
    known = change.content
    return f"{prefix}|{content_id(body) if known is None else known}", rule


def process(raw: bytes, plan: Plan, *, ingested_at: int, repair: bool = False,
            max_bytes: int = DEFAULT_MAX_BYTES) -> Outcome:
    """Validate, deduplicate and version one raw message against ``plan``'s state."""
    outcome = Outcome(plan=plan)
    result = validate(raw, max_bytes=max_bytes, repair=repair)
    if not result.ok or result.event is None:
        outcome.dead_letters.append(DeadLetter("event", _reason_dicts(result.reasons)))
        return outcome
    event = result.event
    outcome.accepted = True
    outcome.repairs = result.repairs
    outcome.event_time = to_micros(event["eventTime"])
    # The validator encoded the event's standard facets for its verdict cache and returns the
    # bytes; versioning keys its own caches with them (nothing changes the event in between).
    prepared = Prepared(result.facet_json)
    if not plan.wants(dedup_key(event, result.dropped_facets, prepared), outcome.event_time,
                      "once"):
        outcome.duplicate = True
        return outcome
    if result.dropped_facets:
        # One dead letter for the event, whatever the number of facets dropped: a copy of the
        # event per facet would let one message write its size times its facet count.
        outcome.dead_letters.append(DeadLetter("facet", tuple(
            {**reason.as_dict(), "pointer": reason.pointer or dropped.pointer, "facet": dropped.key}
            for dropped in result.dropped_facets for reason in dropped.reasons
        )))
    try:
        changes = changes_for(event, result.repairs, prepared)
    except Exception as exc:  # a bug here must not stop the worker on every restart
        plan.pending.clear()  # not processed: a replay after the fix must not be a duplicate
        outcome.accepted = False
        outcome.dead_letters = [DeadLetter("event", ({
            "code": "internal_error", "pointer": "",
            "message": f"the processor could not version this valid event: {exc!r}"[:500]},))]
        return outcome
    for change in changes:
        key, rule = state_key(change)
        if plan.wants(key, change.event_time, rule):
            outcome.changes.append(change)
        else:
            outcome.suppressed += 1
    return outcome


def _reason_dicts(reasons: tuple[Reason, ...]) -> tuple[dict[str, Any], ...]:
    return tuple(reason.as_dict() for reason in reasons)
