"""The *graph* shape of the workload generator (lineage/bench/workload/graph.py): the query
benchmark's graph, its plan and its events."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from lineage.bench.workload import GraphShape, graph_events, plan_graph
from schemas.validation import validate

pytestmark = pytest.mark.unit

SMALL = GraphShape(datasets=300, jobs=120, runs=360, layers=4)


@pytest.mark.parametrize("shape", [
    SMALL,
    GraphShape(datasets=40, jobs=12, runs=30, layers=3),
    GraphShape(datasets=1_000, jobs=500, runs=10_000, layers=10),
    GraphShape(datasets=11, jobs=10, runs=10, layers=1),
])
def test_the_plan_has_exactly_the_datasets_jobs_and_runs_asked_for(shape: GraphShape) -> None:
    plan = plan_graph(shape)
    assert len(plan.datasets) == shape.datasets
    assert len({name for name, _, _ in plan.datasets}) == shape.datasets
    assert len({job.name for job in plan.jobs}) == shape.jobs
    assert sum(job.runs for job in plan.jobs) == shape.runs
    # Runs are spread evenly: many runs per job, none forgotten.
    assert max(job.runs for job in plan.jobs) - min(job.runs for job in plan.jobs) <= 1


def test_the_plan_is_a_wide_dag_of_jobs_with_2_to_5_inputs_and_1_or_2_outputs() -> None:
    shape = GraphShape(datasets=2_000, jobs=1_000, runs=1_000, layers=10)
    plan = plan_graph(shape)
    written = Counter(o for job in plan.jobs for o in job.outputs)
    assert set(written.values()) == {1}  # each output has exactly one writer
    read = {i for job in plan.jobs for i in job.inputs}
    for index, (_name, layer, columns) in enumerate(plan.datasets):
        assert (layer == 0) == (index not in written)  # sources are what nobody writes
        assert index in read or index in written  # every dataset appears in some event
        assert shape.columns[0] <= columns <= shape.columns[1]
    inputs = Counter(len(job.inputs) for job in plan.jobs)
    assert min(inputs) >= 2
    assert sum(n for size, n in inputs.items() if size > 5) <= len(plan.jobs) // 100
    assert {len(job.outputs) for job in plan.jobs} == {1, 2}
    for job in plan.jobs:
        layers = [plan.datasets[i][1] for i in job.inputs]
        assert max(layers) == job.layer - 1  # reads the layer before it (depth) ...
        assert all(plan.datasets[o][1] == job.layer for o in job.outputs)  # ... and no cycle
    assert Counter(job.layer for job in plan.jobs) == dict.fromkeys(range(1, 11), 100)


def test_the_default_plan_is_the_size_the_issue_asks_for() -> None:
    plan = plan_graph(GraphShape())
    assert (len(plan.datasets), len(plan.jobs), sum(j.runs for j in plan.jobs)) == (
        100_000, 50_000, 1_000_000)
    assert min(job.runs for job in plan.jobs) == 20


def test_a_plan_needs_more_datasets_than_jobs() -> None:
    with pytest.raises(ValueError, match="datasets must exceed jobs"):
        plan_graph(GraphShape(datasets=10, jobs=10, runs=10))


def test_the_same_seed_gives_the_same_graph_and_events() -> None:
    first, second = plan_graph(SMALL), plan_graph(SMALL)
    assert first == second
    assert list(graph_events(first)) == list(graph_events(second))
    other = plan_graph(GraphShape(**{**SMALL.__dict__, "seed": 2}))
    assert other.jobs != first.jobs


def test_the_events_are_valid_and_name_every_job_dataset_and_run() -> None:
    plan = plan_graph(SMALL)
    events = list(graph_events(plan, namespace="test://graph"))
    assert len(events) == 2 * SMALL.runs
    runs: dict[str, list[str]] = {}
    jobs, datasets = set(), set()
    for event in events:
        result = validate(json.dumps(event).encode())
        assert result.ok, result.reasons
        assert result.dropped_facets == ()
        runs.setdefault(event["run"]["runId"], []).append(event["eventType"])
        jobs.add(event["job"]["name"])
        datasets.update(d["name"] for d in event.get("inputs", []) + event.get("outputs", []))
        assert event["job"]["namespace"] == "test://graph"
    assert len(runs) == SMALL.runs
    assert set(map(tuple, runs.values())) == {("START", "COMPLETE")}
    assert jobs == {job.name for job in plan.jobs}
    assert datasets == {name for name, _, _ in plan.datasets}


def test_another_namespace_gets_other_run_ids() -> None:
    # The Run key is the run id alone: shared ids would make two workloads share runs.
    plan = plan_graph(SMALL)
    ids = [{e["run"]["runId"] for e in graph_events(plan, namespace=ns)}
           for ns in ("test://a", "test://b")]
    assert len(ids[0]) == SMALL.runs
    assert not ids[0] & ids[1]
