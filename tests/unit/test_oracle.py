"""The reference model (``tests/oracle``) satisfies its own spec, on hand-made and drawn histories.

The model is the spec of issue #13 in code; these tests are its consistency checks: the answers
depend on the set of events only; partial events add no version; the cases of the issue come
out as the issue asks; and the drawn events are valid OpenLineage, so the same histories can go
through the real pipeline later.
"""

from __future__ import annotations

import doctest
import itertools
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.oracle import histories, model, spec
from tests.oracle.histories import (
    DAG,
    DATASETS,
    DAY,
    FIELDS,
    arrivals,
    column_lineage,
    entry,
    partial_run_history,
    rollback_history,
    run_event,
    run_id,
    timelines,
    times_of_interest,
)
from tests.oracle.model import Column, Model, Node, dataset, job

# Deterministic, so CI sees the same examples every run; no deadline, as answers are recomputed
# from scratch on purpose.
MAIN = settings(max_examples=200, derandomize=True, database=None, deadline=None,
                print_blob=False,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SOME = settings(MAIN, max_examples=60)

Events = list[dict[str, Any]]


def names_in(events: Events, the_model: Model) -> list[Node]:
    """Every job and dataset name the events use (aliases and the DAG included)."""
    found = set(the_model.jobs()) | {DAG}
    for event in events:
        for side in ("inputs", "outputs"):
            found |= {dataset(d["namespace"], d["name"]) for d in event.get(side) or ()}
        if "dataset" in event:
            found |= the_model.names(dataset(event["dataset"]["namespace"],
                                             event["dataset"]["name"]))
    return sorted(found)


def answers(the_model: Model, events: Events) -> dict[Any, Any]:
    """Every question of the model about every name, at each event time, before them and ever.

    (Between two event times nothing changes, so the instants between them are left out here.)
    """
    out: dict[Any, Any] = {"runs": the_model.runs}
    event_times = {model.parse_time(e["eventTime"]) for e in events}
    times: list[datetime | None] = [
        *(t for t in times_of_interest(events) if t in event_times or t < min(event_times)),
        None]
    for name in names_in(events, the_model):
        out["jobs", name] = the_model.job_history(name)
        out["datasets", name] = the_model.dataset_history(name)
        for ever in (False, True):
            for at in times if not ever else [None]:
                out["up", name, at, ever] = the_model.upstream(name, at, ever=ever)
                out["down", name, at, ever] = the_model.downstream(name, at, ever=ever)
                if name.kind == "Dataset":
                    out["impact", name, at, ever] = the_model.impact(name, None, at, ever=ever)
                    out["schema", name, at] = the_model.schema(name, at)
        if name.kind == "Dataset":
            for field in FIELDS:
                out["columns", name, field] = the_model.columns(name, field)
                out["impact", name, field] = the_model.impact(name, field)
    return out


def timeline_and_arrival() -> st.SearchStrategy[tuple[Events, Events]]:
    return timelines().flatmap(lambda events: st.tuples(st.just(events), arrivals(events)))


# -- the set of events decides -------------------------------------------------------------


@MAIN
@given(timeline_and_arrival())
def test_the_answers_depend_on_the_set_of_events_not_on_their_order_or_duplicates(
        drawn: tuple[Events, Events]) -> None:
    timeline, arrived = drawn
    assert answers(Model.from_events(arrived), timeline) == \
        answers(Model.from_events(timeline), timeline)


@SOME
@given(timelines())
def test_a_jobs_history_agrees_with_its_version_at_every_time(events: Events) -> None:
    the_model = Model.from_events(events)
    for the_job in the_model.jobs():
        history = the_model.job_history(the_job)
        for at in times_of_interest(events):
            valid = [i.version for i in history
                     if i.valid_from <= at and (i.valid_to is None or at < i.valid_to)]
            assert the_model.version_at(the_job, at) == (valid[0] if valid else None)
        assert all(a.version != b.version for a, b in itertools.pairwise(history))


def test_a_runs_state_comes_from_its_latest_event_and_a_terminal_state_wins_a_tie() -> None:
    the_job, out = job("etl", "j"), [entry(dataset("pg", "out"))]
    first, second, third = (run_id("state", n) for n in range(3))
    later = DAY + timedelta(minutes=1)
    the_model = Model.from_events([
        run_event("FAIL", later, first, the_job, outputs=out),  # arrives before its START
        run_event("START", DAY, first, the_job, outputs=out),
        run_event("START", DAY, second, the_job, outputs=out),
        run_event("COMPLETE", DAY, second, the_job, outputs=out),
        run_event("RUNNING", later, third, the_job, outputs=out),
        run_event("OTHER", DAY, third, the_job, outputs=out),
    ])
    runs = the_model.runs
    assert (runs[first].state, runs[first].started_at) == ("FAIL", DAY)
    assert (runs[second].state, runs[second].started_at) == ("COMPLETE", DAY)
    assert (runs[third].state, runs[third].started_at) == ("RUNNING", DAY)


# -- versions from the run timeline (issue #13, cases 1 and 2) -----------------------------


def test_a_partial_running_event_adds_to_its_run_and_makes_no_version() -> None:
    the_model = Model.from_events(partial_run_history())
    [interval] = the_model.job_history(job("etl", "load"))
    assert {d.name for d in interval.version.inputs} == {"a", "b"}
    assert {d.name for d in interval.version.outputs} == {"out"}
    after = DAY + timedelta(hours=1)
    assert job("etl", "load") in the_model.as_of(dataset("pg", "out"), after).nodes
    assert the_model.upstream(dataset("pg", "out"), after).nodes == \
        the_model.upstream(dataset("pg", "out"), ever=True).nodes


@SOME
@given(timelines())
def test_partial_running_events_never_add_a_version_nor_change_lineage(events: Events) -> None:
    without = [e for e in events if e.get("eventType") != "RUNNING"]
    full, bare = Model.from_events(events), Model.from_events(without)
    for the_job in full.jobs() | bare.jobs():
        assert full.job_history(the_job) == bare.job_history(the_job)
    for at in times_of_interest(events):
        assert full.pairs(at) == bare.pairs(at)
        assert full.column_edges(at) == bare.column_edges(at)
    assert full.pairs(ever=True) == bare.pairs(ever=True)


def test_a_rollback_gives_three_intervals_and_as_of_day_4_does_not_list_customers() -> None:
    the_model = Model.from_events(rollback_history())
    first, second, third = the_model.job_history(job("etl", "daily_revenue"))
    assert first.version == third.version != second.version
    assert (first.valid_to, second.valid_to, third.valid_to) == (
        second.valid_from, third.valid_from, None)
    revenue, customers = dataset("pg", "revenue"), dataset("pg", "customers")
    assert customers in the_model.as_of(revenue, DAY + timedelta(days=1, hours=1)).nodes
    assert customers not in the_model.as_of(revenue, DAY + timedelta(days=3, hours=1)).nodes
    assert customers not in the_model.upstream(revenue).nodes  # now, after day 4
    assert customers in the_model.upstream(revenue, ever=True).nodes
    assert the_model.version_at(job("etl", "daily_revenue"), DAY - timedelta(seconds=1)) is None


# -- schemas of every dataset (case 3) ------------------------------------------------------


def test_a_dataset_that_is_only_read_has_its_schema() -> None:
    source, target = dataset("pg", "source"), dataset("pg", "target")
    the_model = Model.from_events([run_event(
        "COMPLETE", DAY, run_id("read"), job("etl", "copy"),
        inputs=[entry(source, ["id", "amount"])], outputs=[entry(target)])])
    assert the_model.schema(source) == (("id", "bigint"), ("amount", "decimal(10,2)"))
    assert the_model.schema(source, DAY - timedelta(seconds=1)) is None
    [version] = the_model.dataset_history(source)
    assert (version.valid_from, version.fields, version.written_by) == (
        DAY, the_model.schema(source), ())
    [written] = the_model.dataset_history(target)
    assert (written.fields, written.written_by) == (None, (run_id("read"),))


@SOME
@given(timelines())
def test_every_dataset_an_event_gave_a_schema_has_one_from_then_on(events: Events) -> None:
    the_model = Model.from_events(events)
    for event in events:
        at = model.parse_time(event["eventTime"])
        for body in [*(event.get("inputs") or ()), *(event.get("outputs") or ())]:
            if "schema" in (body.get("facets") or {}):
                assert the_model.schema(dataset(body["namespace"], body["name"]), at)


# -- any name (case 4) -------------------------------------------------------------------------


def test_a_symlink_alias_and_its_primary_answer_alike_and_say_which_name_was_resolved() -> None:
    path = dataset("file", "/warehouse/mart.db/customer_totals")
    table = dataset("file:/warehouse", "mart.customer_totals")
    report = dataset("pg", "report")
    the_model = Model.from_events([
        run_event("COMPLETE", DAY, run_id("spark"), job("spark", "totals"),
                  inputs=[entry(dataset("pg", "orders"))],
                  outputs=[entry(path, ["id"], aliases=[table])]),
        run_event("COMPLETE", DAY + timedelta(hours=1), run_id("report"), job("dbt", "report"),
                  inputs=[entry(table)], outputs=[entry(report)]),
    ])
    by_alias, by_path = the_model.upstream(table), the_model.upstream(path)
    assert (by_alias.asked, by_alias.resolved) == (table, path)
    assert by_alias.nodes == by_path.nodes
    assert job("dbt", "report") in the_model.downstream(path).nodes
    assert path in the_model.upstream(report).nodes
    assert the_model.schema(table) == (("id", "bigint"),)


@SOME
@given(timelines())
def test_every_alias_answers_like_its_primary(events: Events) -> None:
    the_model = Model.from_events(events)
    for primary in DATASETS:
        for alias in the_model.names(primary) - {primary}:
            for at in [*times_of_interest(events), None]:
                for question in (the_model.upstream, the_model.downstream):
                    by_alias, by_primary = question(alias, at), question(primary, at)
                    assert (by_alias.asked, by_alias.resolved) == (alias, primary)
                    assert by_alias.nodes == by_primary.nodes
                assert the_model.impact(alias, None, at).columns == \
                    the_model.impact(primary, None, at).columns
                assert the_model.schema(alias, at) == the_model.schema(primary, at)


# -- parents (case 5) ------------------------------------------------------------------------


def test_a_parent_job_answers_with_the_lineage_of_its_children_and_lists_them() -> None:
    dag, task_a, task_b = job("airflow", "dag"), job("airflow", "dag.a"), job("airflow", "dag.b")
    x, y, z = (dataset("pg", n) for n in "xyz")
    parent = (run_id("dag"), dag)
    the_model = Model.from_events([
        run_event("START", DAY, parent[0], dag),
        run_event("COMPLETE", DAY + timedelta(hours=1), run_id("a"), task_a,
                  inputs=[entry(x)], outputs=[entry(y)], parent=parent),
        run_event("COMPLETE", DAY + timedelta(hours=2), run_id("b"), task_b,
                  inputs=[entry(y)], outputs=[entry(z)], parent=parent),
    ])
    upstream = the_model.upstream(dag)
    assert upstream.children == (task_a, task_b)
    assert upstream.nodes == {x: 1, y: 1, task_a: 1}
    assert the_model.downstream(dag).nodes == {y: 1, z: 1, task_b: 1}
    assert the_model.upstream(dag, DAY + timedelta(minutes=90)).children == (task_a,)


@SOME
@given(timelines())
def test_a_parent_jobs_upstream_is_the_union_of_its_childrens(events: Events) -> None:
    the_model = Model.from_events(events)
    for at in [*times_of_interest(events), None]:
        answer = the_model.upstream(DAG, at)
        assert answer.children == the_model.children(DAG, at)
        union: dict[Node, int] = {}
        for child in answer.children:
            for node, hops in the_model.upstream(child, at).nodes.items():
                union[node] = min(hops, union.get(node, hops))
        assert answer.nodes == union


# -- indirect column dependencies (case 6) ---------------------------------------------------


def test_column_impact_includes_indirect_dependencies_marked_as_such() -> None:
    orders, totals, report = (dataset("pg", n) for n in ("orders", "totals", "report"))
    the_model = Model.from_events([
        run_event("COMPLETE", DAY, run_id("totals"), job("etl", "totals"), inputs=[entry(orders)],
                  outputs=[entry(totals, ["cust_id", "total"], lineage=column_lineage(
                      {"cust_id": [(orders, "cust_id", "DIRECT/IDENTITY")],
                       "total": [(orders, "amount", "DIRECT/AGGREGATION")]},
                      [(orders, "cust_id", "INDIRECT/GROUP_BY")]))]),
        run_event("COMPLETE", DAY, run_id("report"), job("etl", "report"), inputs=[entry(totals)],
                  outputs=[entry(report, ["total"], lineage=column_lineage(
                      {"total": [(totals, "total", "DIRECT/IDENTITY")]},
                      [(totals, "cust_id", "INDIRECT/FILTER")]))]),
    ])
    impact = the_model.impact(orders, "cust_id").columns
    assert {c: (e.hops, e.indirect) for c, e in impact.items()} == {
        Column("pg", "totals", "cust_id"): (1, False),
        Column("pg", "totals", None): (1, True),
        Column("pg", "report", None): (2, True),
    }
    assert impact[Column("pg", "report", None)].transformations == {"INDIRECT/FILTER"}
    assert set(the_model.impact(orders, "cust_id", direct_only=True).columns) == {
        Column("pg", "totals", "cust_id")}
    upstream = the_model.columns(report, "total").columns
    assert {c: e.indirect for c, e in upstream.items()} == {
        Column("pg", "totals", "total"): False, Column("pg", "totals", "cust_id"): True,
        Column("pg", "orders", "amount"): False, Column("pg", "orders", "cust_id"): True}


@SOME
@given(timelines())
def test_direct_only_removes_exactly_the_indirect_entries(events: Events) -> None:
    the_model = Model.from_events(events)
    for at in [*times_of_interest(events)[::4], None]:
        for name in DATASETS:
            for field in (None, *FIELDS):
                every = the_model.impact(name, field, at).columns
                direct = the_model.impact(name, field, at, direct_only=True).columns
                assert set(direct) == {c for c, e in every.items() if not e.indirect}
                assert not any(e.indirect for e in direct.values())
                if field is not None:
                    every = the_model.columns(name, field, at).columns
                    direct = the_model.columns(name, field, at, direct_only=True).columns
                    assert set(direct) == {c for c, e in every.items() if not e.indirect}


# -- the histories are valid OpenLineage -----------------------------------------------------


@pytest.fixture
def official_schema(shared_openlineage: Path) -> spec.OfficialSchema:
    return spec.OfficialSchema(shared_openlineage / "spec")


def test_the_hand_made_histories_are_valid_openlineage(official_schema: spec.OfficialSchema
                                                       ) -> None:
    for event in [*rollback_history(), *partial_run_history()]:
        assert official_schema.errors(event) == []


@settings(SOME, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
@given(events=histories.histories())
def test_the_drawn_events_are_valid_openlineage_2_0_2(official_schema: spec.OfficialSchema,
                                                       events: Events) -> None:
    for event in events:
        assert official_schema.errors(event) == [], event


def test_the_schema_check_finds_what_is_wrong(official_schema: spec.OfficialSchema) -> None:
    event = rollback_history()[0]
    event["run"]["runId"] = "not-a-uuid"
    del event["job"]["facets"]["sql"]["query"]
    errors = official_schema.errors(event)
    assert any("/run/runId" in e for e in errors)
    assert any(e.startswith("/job/facets/sql") and "query" in e for e in errors)


@pytest.mark.parametrize("module", [model, histories, spec])
def test_the_docstring_examples_of_the_oracle_run(module: Any) -> None:
    result = doctest.testmod(module)
    assert (result.attempted > 0, result.failed) == (True, 0)
