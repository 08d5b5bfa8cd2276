"""The *runs* shape of the workload generator (lineage/bench/workload/runs.py)."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

import pytest

from lineage.bench.workload import encode_events, synthetic_events
from schemas.validation import validate
from tests.unit.test_versioning import PARENT, ROOT, facet, run_event

pytestmark = pytest.mark.unit


def workload(**options: Any) -> list[tuple[bytes, bytes]]:
    return encode_events(synthetic_events(**{"jobs": 10, "runs_per_job": 2, **options}))


def test_the_same_seed_gives_the_same_bytes() -> None:
    assert workload(seed=7) == workload(seed=7)


def test_another_seed_gives_another_workload() -> None:
    assert workload(seed=7) != workload(seed=8)


def test_every_generated_event_is_valid_as_it_stands() -> None:
    for _key, value in workload(jobs=15, fail_rate=0.5, duplicate_rate=0.2):
        result = validate(value)
        assert result.ok, result.reasons
        assert result.dropped_facets == ()
        assert result.repairs == ()


def _duplicates(events: list[dict[str, Any]]) -> int:
    return sum(current == previous for previous, current in pairwise(events))


@pytest.mark.parametrize("rate", [0.0, 0.1, 0.3])
def test_about_the_requested_share_of_events_is_repeated_verbatim(rate: float) -> None:
    events = list(synthetic_events(jobs=100, runs_per_job=2, duplicate_rate=rate))
    duplicates = _duplicates(events)
    originals = len(events) - duplicates
    assert originals == 2 * 100 * 2
    assert abs(duplicates / originals - rate) <= 0.05


def test_each_run_starts_then_ends_and_events_come_in_event_time_order() -> None:
    events = list(synthetic_events(jobs=20, runs_per_job=2, fail_rate=0.3, duplicate_rate=0.0))
    by_run: dict[str, list[str]] = {}
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event["eventType"])
    assert len(by_run) == 40
    assert {tuple(types) for types in by_run.values()} == {
        ("START", "COMPLETE"), ("START", "FAIL")}
    times = [event["eventTime"] for event in events]
    assert times == sorted(times)


def _with_parent(parent: dict[str, Any] | None) -> dict[str, Any]:
    facets = {} if parent is None else {
        "parent": facet("facets/1-1-0/ParentRunFacet.json", **parent)}
    return run_event(run_facets=facets)


@pytest.mark.parametrize(("parent", "key"), [
    (None, b"run:etl/daily"),
    (PARENT, b"run:airflow/dag.task"),
    ({**PARENT, "root": ROOT}, b"run:airflow/dag"),
], ids=["no parent: its own job", "the parent job", "the root job"])
def test_encode_events_keys_a_run_event_as_the_openlineage_kafka_transport_does(
        parent: dict[str, Any] | None, key: bytes) -> None:
    # openlineage-python KafkaTransport._get_run_message_key: run:<namespace>/<name> of
    # run.facets.parent.root.job, else run.facets.parent.job, else the event's own job.
    event = _with_parent(parent)
    ((encoded_key, value),) = encode_events(iter([event]))
    assert encoded_key == key
    assert json.loads(value) == event


def test_every_run_points_at_a_shared_scheduler_run_as_its_parent() -> None:
    events = list(synthetic_events(jobs=5, runs_per_job=2, duplicate_rate=0.0))
    parents = {e["run"]["runId"]: e["run"]["facets"]["parent"]["run"]["runId"] for e in events}
    assert all(parent != run_id for run_id, parent in parents.items())
    assert len(set(parents.values())) < len(parents)
