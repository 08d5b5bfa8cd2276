"""The pure parts of the sink and query benchmarks (lineage/bench/sink.py, query.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from lineage.bench.query import QUERIES, Latency, pipeline_records, query_targets
from lineage.bench.sink import SinkResult
from lineage.bench.workload import GraphShape, column_names, graph_events, plan_graph

pytestmark = pytest.mark.unit

SMALL = GraphShape(datasets=300, jobs=120, runs=360, layers=4)


def test_latency_and_sink_result_summaries() -> None:
    latency = Latency("upstream", [float(ms) for ms in range(1, 101)], [3] * 100)
    assert latency.p50 == pytest.approx(50.5)
    assert latency.p99 == pytest.approx(99.01)
    assert latency.mean == pytest.approx(50.5)
    assert latency.mean_rows == 3
    result = SinkResult(records=40_000, events=8_000, seconds=2.0)
    assert (result.rate, result.event_rate) == (20_000, 4_000)
    assert SinkResult(records=1, events=1, seconds=0.0).rate == 0.0


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
