"""Repair mode: known harmless deviations from the spec, repaired before the check.

No ``schemaURL``, an ``eventTime`` without offset, a run id (or the parent facet's run ids) that
is not a UUID. Each repair is listed, and the accepted event records them, with the original
values, in a custom ``lineage_repairs`` facet (:func:`mark_repairs`).

>>> event = {"eventTime": "2024-05-01T12:00:00", "run": {"runId": "nightly-1"},
...          "job": {"namespace": "etl", "name": "daily"}}
>>> repairs, originals = [], {}
>>> repair_event(event, repairs, originals)
>>> repairs
['missing_schema_url', 'event_time_without_offset', 'non_uuid_run_id']
>>> event["eventTime"], event["run"]["runId"], originals["/run/runId"]
('2024-05-01T12:00:00Z', '5b562711-e837-5e6f-99c6-a48e65ca9ace', 'nightly-1')
"""

from __future__ import annotations

from typing import Any, Final
from uuid import NAMESPACE_URL, uuid5

from schemas.validation.event_check import intended_kinds
from schemas.validation.formats import TIME_WITHOUT_OFFSET, is_uuid, time_status
from schemas.validation.results import EventKind, RepairCode
from schemas.validation.spec import CORE_ID

REPAIRS_FACET: Final = "lineage_repairs"
"""Key of the custom facet that marks a repaired event (on its run, job or dataset)."""

PRODUCER: Final = "https://github.com/openlineage-stream/stream_processor"
"""``_producer`` of the facets this module writes."""

RUN_ID_NAMESPACE: Final = uuid5(NAMESPACE_URL, f"{CORE_ID}#/$defs/Run/properties/runId")
"""Namespace of the name-based (uuid5) run ids made by the run id repairs.

It is the uuid5, in the URL namespace, of the URL of the spec's ``runId`` definition:
``81fb7c6a-b4ee-5dd1-8cf0-a232821282c1``. It must never change, or a run would get a different
id after an upgrade.
"""

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


def repair_event(
    event: dict[str, Any], repairs: list[RepairCode], originals: dict[str, Any]
) -> None:
    """Repair ``event`` in place; appends each repair to ``repairs`` and what it replaced (by
    JSON pointer; None for what was absent) to ``originals``."""
    kinds = intended_kinds(event)
    if "schemaURL" not in event and kinds:
        event["schemaURL"] = f"{CORE_ID}#/$defs/{_EVENT_DEF_OF_KIND[kinds[0]]}"
        originals["/schemaURL"] = None
        repairs.append("missing_schema_url")
    event_time = event.get("eventTime")
    if isinstance(event_time, str) and time_status(event_time) == TIME_WITHOUT_OFFSET:
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
    if not isinstance(run_id, str) or is_uuid(run_id):
        return False
    holder["runId"] = str(uuid5(RUN_ID_NAMESPACE, run_id))
    originals[pointer] = run_id
    return True


def mark_repairs(
    event: dict[str, Any], kind: EventKind, repairs: list[RepairCode], originals: dict[str, Any]
) -> None:
    """Record the repairs in the ``lineage_repairs`` facet of the accepted event's ``kind``."""
    facets = event[kind].setdefault("facets", {})
    facets[REPAIRS_FACET] = {
        "_producer": PRODUCER,
        "_schemaURL": f"{CORE_ID}#/$defs/{_FACET_BASE_OF_KIND[kind]}",
        "repairs": list(repairs),
        "originals": originals,
    }

