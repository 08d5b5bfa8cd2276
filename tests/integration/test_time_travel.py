"""Time travel on the real pipeline (issue #13, cases 1, 2 and 7): versions from the run
timeline, and lineage "as of" a time by default.

Each hand-made history of :mod:`tests.oracle.histories` goes through Kafka, the real processor
and sink into Neo4j, in namespaces of its own; each question is asked as a user asks it (a
child process) and compared with what the reference model (:mod:`tests.oracle.model`) says.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from neo4j import GraphDatabase

from lineage.stack.settings import StackSettings
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import load_graph
from tests.integration.test_query_cli import query, query_json
from tests.oracle.histories import DAY, partial_run_history, renamespaced, rollback_history
from tests.oracle.model import Model, dataset, job

pytestmark = pytest.mark.integration


class Loaded:
    """A history loaded into the graph under namespaces ending in ``suffix``."""

    def __init__(self, events: list[dict[str, Any]], suffix: str) -> None:
        self.events, self.suffix = events, suffix
        self.model = Model.from_events(events)

    def ns(self, namespace: str) -> str:
        return namespace + self.suffix


@pytest.fixture(scope="module")
def histories(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[dict[str, Loaded]]:
    suffix = "-" + uuid.uuid4().hex[:8]
    loaded = {"partial": Loaded(renamespaced(partial_run_history(), suffix), suffix),
              "rollback": Loaded(renamespaced(rollback_history(), suffix), suffix)}
    events = [e for history in loaded.values() for e in history.events]
    with GraphDatabase.driver(stack.neo4j.uri, auth=stack.neo4j.auth()) as driver:
        try:
            load_graph(stack, Path(tmp_path_factory.mktemp("time-travel")), iter(events))
            yield loaded
        finally:
            for namespace in ("etl", "pg"):
                delete_namespace(driver, namespace + suffix)


def names(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((r["kind"], r["name"]) for r in rows)


# --- case 1: partial events make no version --------------------------------------------------

def test_a_run_with_a_partial_running_event_has_one_version_with_all_its_datasets(
        histories: dict[str, Loaded]) -> None:
    h = histories["partial"]
    history = query_json("history", "--job", f"{h.ns('etl')}:load")["rows"]
    assert [(sorted(d["name"] for d in r["reads"]), [d["name"] for d in r["writes"]], r["runs"],
             r["validTo"]) for r in history] == [(["a", "b"], ["out"], 1, None)]
    [interval] = h.model.job_history(job(h.ns("etl"), "load"))
    assert sorted(d.name for d in interval.version.inputs) == ["a", "b"]


def test_after_the_complete_the_job_is_upstream_of_its_output_as_of_then_and_now(
        histories: dict[str, Loaded]) -> None:
    h = histories["partial"]
    ref = f"{h.ns('pg')}:out"
    after = (DAY + timedelta(minutes=3)).isoformat()
    expected = [("Dataset", "a"), ("Dataset", "b"), ("Job", "load")]
    assert names(query_json("as-of", ref, "--at", after)["rows"]) == expected
    assert names(query_json("upstream", ref)["rows"]) == expected
    # Between the START and the partial RUNNING: the run's version is the whole run's.
    during = (DAY + timedelta(seconds=30)).isoformat()
    assert names(query_json("upstream", ref, "--at", during)["rows"]) == expected
    oracle = h.model.upstream(dataset(h.ns("pg"), "out"), DAY + timedelta(seconds=30))
    assert sorted((n.kind, n.name) for n in oracle.nodes) == expected


# --- case 2: a rollback is three intervals ---------------------------------------------------

def test_a_rollback_shows_as_three_intervals_in_the_jobs_history(
        histories: dict[str, Loaded]) -> None:
    h = histories["rollback"]
    rows = query_json("history", "--job", f"{h.ns('etl')}:daily_revenue")["rows"]
    assert [sorted(d["name"] for d in r["reads"]) for r in rows] == [
        ["orders"], ["customers", "orders"], ["orders"]]
    assert rows[0]["version"] == rows[2]["version"] != rows[1]["version"]
    assert [(r["validFrom"], r["validTo"]) for r in rows] == [
        ("2024-05-01T06:00:00Z", "2024-05-02T06:00:00Z"),
        ("2024-05-02T06:00:00Z", "2024-05-04T06:00:00Z"),
        ("2024-05-04T06:00:00Z", None)]
    model = h.model.job_history(job(h.ns("etl"), "daily_revenue"))
    assert [sorted(d.name for d in i.version.inputs) for i in model] == [
        sorted(d["name"] for d in r["reads"]) for r in rows]


def test_the_day_four_run_ran_as_the_version_valid_from_day_four(
        histories: dict[str, Loaded]) -> None:
    h = histories["rollback"]
    job_ref = f"{h.ns('etl')}:daily_revenue"
    history = query_json("history", "--job", job_ref)["rows"]
    runs = query_json("runs", job_ref)["rows"]
    assert [r["versions"] for r in runs] == [[history[2]["version"]], [history[1]["version"]],
                                             [history[0]["version"]]]


def test_as_of_day_four_the_rolled_back_job_no_longer_reads_customers(
        histories: dict[str, Loaded]) -> None:
    h = histories["rollback"]
    ref = f"{h.ns('pg')}:revenue"
    day4 = (DAY + timedelta(days=3, hours=1)).isoformat()
    assert names(query_json("as-of", ref, "--at", day4)["rows"]) == [
        ("Dataset", "orders"), ("Job", "daily_revenue")]
    day2 = (DAY + timedelta(days=1, hours=1)).isoformat()
    assert names(query_json("as-of", ref, "--at", day2)["rows"]) == [
        ("Dataset", "customers"), ("Dataset", "orders"), ("Job", "daily_revenue")]
    before = (DAY - timedelta(hours=1)).isoformat()
    assert query_json("as-of", ref, "--at", before)["rows"] == []


# --- case 7: "now" is the default; --ever is every pair observed ------------------------------

def test_impact_of_an_input_the_job_dropped_is_empty_now_and_full_with_ever(
        histories: dict[str, Loaded]) -> None:
    h = histories["rollback"]
    customers = f"{h.ns('pg')}:customers"
    assert query("impact", customers) == (
        f"impact of dataset {customers}\n0 jobs and 0 datasets downstream\n")
    assert names(query_json("impact", customers, "--ever")["rows"]) == [
        ("Dataset", "revenue"), ("Job", "daily_revenue")]
    day2 = (DAY + timedelta(days=1, hours=1)).isoformat()
    assert names(query_json("impact", customers, "--at", day2)["rows"]) == [
        ("Dataset", "revenue"), ("Job", "daily_revenue")]
    model = h.model
    assert not model.downstream(dataset(h.ns("pg"), "customers")).nodes
    assert len(model.downstream(dataset(h.ns("pg"), "customers"), ever=True).nodes) == 2


def test_upstream_says_when_it_answers_for_and_refuses_at_with_ever(
        histories: dict[str, Loaded]) -> None:
    h = histories["rollback"]
    ref = f"{h.ns('pg')}:revenue"
    assert query("upstream", ref, "--at", "2024-05-02T07:00:00Z").endswith(
        "1 job and 2 datasets upstream within 3 hops as of 2024-05-02T07:00:00Z\n")
    assert query("upstream", ref, "--ever").endswith(
        "1 job and 2 datasets upstream within 3 hops, ever\n")
    assert query("upstream", ref).endswith("1 job and 1 dataset upstream within 3 hops\n")
    error = query("upstream", ref, "--at", "2024-05-02", "--ever", ok=False)
    assert "--at and --ever contradict each other" in error
