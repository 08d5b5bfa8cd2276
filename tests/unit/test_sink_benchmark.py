"""Unit tests of the pure parts of the sink and query benchmarks (sinks/benchmark.py)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from sinks.benchmark import (
    QUERIES,
    GraphShape,
    Latency,
    SinkResult,
    column_names,
    graph_events,
    percentile,
    pipeline_records,
    plan_graph,
    query_targets,
)
from stream_processor.validation import validate

pytestmark = pytest.mark.unit

SMALL = GraphShape(datasets=300, jobs=120, runs=360, layers=4)


# -- percentiles ---------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [15.0, 20.0, 35.0, 40.0, 50.0]
    assert percentile(values, 0) == 15.0
    assert percentile(values, 100) == 50.0
    assert percentile(values, 50) == 35.0
    assert percentile(values, 40) == pytest.approx(29.0)  # numpy.percentile(values, 40)
    assert percentile(values, 99) == pytest.approx(49.6)


def test_percentile_does_not_depend_on_the_order_of_the_values() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == percentile([1.0, 2.0, 3.0], 50) == 2.0


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.5], 1) == percentile([7.5], 99) == 7.5


@pytest.mark.parametrize(("values", "q"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_percentile_refuses_what_has_no_answer(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=r"percentile|q must"):
        percentile(values, q)


def test_latency_and_sink_result_summaries() -> None:
    latency = Latency("upstream", [float(ms) for ms in range(1, 101)], [3] * 100)
    assert latency.p50 == pytest.approx(50.5)
    assert latency.p99 == pytest.approx(99.01)
    assert latency.mean == pytest.approx(50.5)
    assert latency.mean_rows == 3
    result = SinkResult(records=40_000, events=8_000, seconds=2.0)
    assert (result.rate, result.event_rate) == (20_000, 4_000)
    assert SinkResult(records=1, events=1, seconds=0.0).rate == 0.0


# -- the graph's shape ---------------------------------------------------------------------------


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


def test_runs_after_the_first_share_its_content_and_add_four_records_each() -> None:
    one_round = GraphShape(**{**SMALL.__dict__, "runs": SMALL.jobs})
    records = {shape.runs: Counter(r["payload"][0] for r in pipeline_records(
        graph_events(plan_graph(shape)))) for shape in (one_round, SMALL)}
    more = records[SMALL.runs] - records[one_round.runs]
    extra_runs = SMALL.runs - one_round.runs
    # START: Run, JobLineage (lastSeen moves on), RunIO; COMPLETE: Run. Nothing else is new.
    assert more == {"Run": 2 * extra_runs, "JobLineage": extra_runs, "RunIO": extra_runs}
    # The first runs carry the schema and column lineage of every output.
    outputs = sum(len(job.outputs) for job in plan_graph(one_round).jobs)
    assert records[one_round.runs]["ColumnLineage"] == outputs
    assert records[one_round.runs]["DatasetVersion"] == outputs


# -- query targets -------------------------------------------------------------------------------


def test_query_targets_are_deterministic_and_shared_by_the_two_upstream_forms() -> None:
    plan = plan_graph(SMALL)
    upstream = query_targets(plan, "upstream", 50)
    assert upstream == query_targets(plan, "upstream", 50)
    assert upstream == query_targets(plan, "upstream_bfs", 50)
    assert upstream == query_targets(plan, "upstream_shortest", 50)
    written = {plan.datasets[o][0] for o in plan.outputs()}
    assert {p["name"] for p in upstream} <= written


def test_column_targets_name_columns_of_datasets_with_column_lineage() -> None:
    plan = plan_graph(SMALL)
    by_name = {name: columns for name, _, columns in plan.datasets}
    for p in query_targets(plan, "columns", 50):
        assert p["name"] in column_names(p["dataset"], by_name[p["dataset"]])
        assert p["dataset"].startswith("mart.")


def test_every_query_names_the_parameters_its_targets_give() -> None:
    plan = plan_graph(SMALL)
    for name, text in QUERIES.items():
        for key in query_targets(plan, name, 1)[0]:
            assert f"${key}" in text
