"""The pure parts of the sink and query benchmarks (lineage/bench/sink.py, query.py)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime

import pytest

from lineage import queries
from lineage.bench.query import (
    DEFAULT_QUERIES,
    QUERIES,
    RECIPE_HOPS,
    Latency,
    pipeline_records,
    query_targets,
)
from lineage.bench.sink import SinkResult
from lineage.bench.workload import (
    QUERY_NAMESPACE,
    GraphShape,
    column_names,
    graph_events,
    plan_graph,
)

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
    # START: Run, JobLineage (lastSeen moves on), RunIO; COMPLETE: Run; each event the Job
    # (the latest of its facets, whatever arrives later: issue #14). Nothing else is new.
    assert more == {"Run": 2 * extra_runs, "Job": 2 * extra_runs, "JobLineage": extra_runs,
                    "RunIO": extra_runs}
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
    # The as-of form and the cookbook's recipes ask about the same datasets.
    for name in ("upstream_as_of", "upstream_as_of_qpp", "recipe_upstream",
                 "recipe_upstream_ever"):
        assert [p["name"] for p in query_targets(plan, name, 50)] == [
            p["name"] for p in upstream]
    written = {plan.datasets[o][0] for o in plan.outputs()}
    assert {p["name"] for p in upstream} <= written


def test_as_of_and_recipe_targets_carry_as_of_hops_and_the_recipes_names() -> None:
    plan = plan_graph(SMALL)
    when = datetime(2026, 12, 4, tzinfo=UTC)
    assert QUERIES["recipe_upstream"] == queries.DATASET_UPSTREAM
    assert QUERIES["recipe_upstream_ever"] == queries.DATASET_UPSTREAM_EVER
    as_of = query_targets(plan, "upstream_as_of", 3, as_of=when)
    assert {p["asOf"] for p in as_of} == {when}
    assert all(sorted(p) == ["asOf", "name", "ns"] for p in as_of)
    recipe = query_targets(plan, "recipe_upstream", 3, as_of=when)
    assert all(p == {"namespace": QUERY_NAMESPACE, "name": p["name"], "hops": RECIPE_HOPS,
                     "asOf": when} for p in recipe)
    ever = query_targets(plan, "recipe_upstream_ever", 3)
    assert all(sorted(p) == ["hops", "name", "namespace"] for p in ever)
    # Now by default, the same instant for every sample of one call.
    now = query_targets(plan, "upstream_as_of", 5)
    assert len({p["asOf"] for p in now}) == 1
    assert now[0]["asOf"].tzinfo is not None
    # The as-of form is upstream_bfs with the validity predicate on every step.
    assert "all(r IN relationships(p) WHERE any(i IN range(0, size(coalesce(r.validFrom, []))" \
        " - 1) WHERE r.validFrom[i] <= $asOf < r.validTo[i]))" in QUERIES["upstream_as_of"]
    assert {"upstream_as_of", "recipe_upstream"} <= set(DEFAULT_QUERIES)


def test_column_targets_name_columns_of_datasets_with_column_lineage() -> None:
    plan = plan_graph(SMALL)
    by_name = {name: columns for name, _, columns in plan.datasets}
    for p in query_targets(plan, "columns", 50):
        assert p["name"] in column_names(p["dataset"], by_name[p["dataset"]])
        assert p["dataset"].startswith("mart.")


def test_every_query_names_the_parameters_its_targets_give() -> None:
    plan = plan_graph(SMALL)
    for name, text in QUERIES.items():
        given = query_targets(plan, name, 1)[0]
        for key in given:
            assert f"${key}" in text
        # ... and gets every parameter it names.
        assert set(re.findall(r"\$(\w+)", text)) <= set(given), name
