"""What the graph can hold (:mod:`schemas.limits`), checked before an event is accepted
(DESIGN.md, guarantee 6).

An event the OpenLineage schema accepts can still name what Neo4j or the change records cannot
store; accepted, it would be refused further down the pipeline, where a refusal is costlier and
its reason less clear. So the validator refuses it up front, with one of two reason codes:

- ``name_too_long``: a job's or a dataset's namespace and name together take more than
  :data:`MAX_KEY_BYTES` bytes of UTF-8. They are the key of a uniqueness constraint, and Neo4j's
  index refuses a key of about 8 KiB or more ("Property value is too large to index");
- ``time_out_of_range``: the eventTime, in UTC, is not in [:data:`EARLIEST_TIME`,
  :data:`LATEST_TIME`). Python, the change records and Neo4j represent years 1 to 9999, and
  the end of that range is the open end of a validity interval in the graph
  (``sinks.timeline.STILL_VALID``).

>>> [r.code for r in limit_reasons({"eventTime": "9999-12-31T23:59:59-14:00",
...                                  "job": {"namespace": "ns", "name": "x" * 9000}})]
['time_out_of_range', 'name_too_long']
>>> limit_reasons({"eventTime": "2024-05-01T12:00:00Z", "job": {"namespace": "ns", "name": "a"}})
[]
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from schemas.limits import EARLIEST_TIME, LATEST_TIME, MAX_KEY_BYTES, key_bytes
from schemas.validation.results import Reason


def limit_reasons(event: Mapping[str, Any]) -> list[Reason]:
    """Why a schema-valid ``event`` cannot be stored (empty if it can)."""
    reasons = []
    text = event.get("eventTime")
    if isinstance(text, str):
        try:
            parsed = datetime.fromisoformat(text.strip().upper())
            instant = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            inside = EARLIEST_TIME <= instant < LATEST_TIME
        except (OverflowError, ValueError):  # beyond year 1 to 9999 once in UTC
            inside = False
        if not inside:
            reasons.append(Reason(
                "time_out_of_range", "/eventTime",
                f"{text!r} is outside what the graph can store: from "
                f"{EARLIEST_TIME.isoformat()} to before {LATEST_TIME.isoformat()} (UTC)"))
    for pointer, node in _named_nodes(event):
        size = key_bytes(node["namespace"], node["name"])
        if size > MAX_KEY_BYTES:
            reasons.append(Reason(
                "name_too_long", pointer,
                f"namespace and name take {size} bytes of UTF-8; a node key holds at most "
                f"{MAX_KEY_BYTES} (Neo4j's index limit)"))
    return reasons


def _named_nodes(event: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """The job and datasets the event names, with their JSON pointers."""
    places: list[tuple[str, Any]] = [("/job", event.get("job")), ("/dataset", event.get("dataset"))]
    for side in ("inputs", "outputs"):
        datasets = event.get(side)
        if isinstance(datasets, list):
            places += [(f"/{side}/{i}", d) for i, d in enumerate(datasets)]
    for pointer, node in places:
        if (isinstance(node, Mapping) and isinstance(node.get("namespace"), str)
                and isinstance(node.get("name"), str)):
            yield pointer, node
