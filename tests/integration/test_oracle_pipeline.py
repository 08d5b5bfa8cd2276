"""Random histories through the real pipeline answer as the reference model says (issue #13,
Build 8).

Twenty histories drawn by :func:`tests.oracle.histories.histories` (partial RUNNING events,
rollbacks, schema changes, symlink aliases read by other jobs, DAG parents, duplicates, any
arrival order), each in namespaces of its own, go through Kafka, the real processor and sink
into Neo4j in one load. Then, for each history, the graph's answers are compared with the
model's (:mod:`tests.oracle.model`):

- every job's history: its validity intervals, each version's datasets, and its runs;
- upstream and downstream of every dataset and of every job that ran, as of times of interest
  (before the first event, at and between events, after the last) and now, and "ever";
- the column impact of every column of every dataset at those times, with hops and indirectness.

- the schema of every dataset at those times: that of the latest event carrying one, under
  any of its names, so a schema readers see again after another is current again.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from neo4j import Driver, GraphDatabase

from lineage import queries
from lineage.stack.settings import StackSettings
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import load_graph
from tests.oracle.histories import (
    ALIAS_NAMESPACE,
    DATASETS,
    FIELDS,
    JOB_NAMESPACE,
    NAMESPACE,
    histories,
    renamespaced,
    times_of_interest,
)
from tests.oracle.model import Model, Node, dataset, parse_time

pytestmark = pytest.mark.integration

HISTORIES = 20
TIMES_PER_HISTORY = 8
NOW = parse_time("2100-01-01T00:00:00Z")

Answer = dict[tuple[str, str, str], int]


@dataclass
class History:
    """One drawn history in namespaces ending with ``suffix``, and its model."""

    events: list[dict[str, Any]]
    suffix: str
    model: Model

    def datasets(self) -> list[Node]:
        return [dataset(d.namespace + self.suffix, d.name) for d in DATASETS]

    def jobs(self) -> list[Node]:
        return sorted(j for j in self.model.jobs() if self.model.job_history(j))

    def namespaces(self) -> list[str]:
        return [ns + self.suffix for ns in (NAMESPACE, ALIAS_NAMESPACE, JOB_NAMESPACE)]


@pytest.fixture(scope="module")
def driver(stack: StackSettings) -> Iterator[Driver]:
    with GraphDatabase.driver(stack.neo4j.uri, auth=stack.neo4j.auth()) as neo4j:
        yield neo4j


def graph_answer(driver: Driver, recipe: str, node: Node, at: datetime | None) -> Answer:
    """{(kind, namespace, name): hops} of a lineage recipe (``at`` None: the _EVER one)."""
    parameters: dict[str, Any] = {"namespace": node.namespace, "name": node.name, "hops": 20}
    if at is not None:
        parameters["asOf"] = at
    kind = "JOB" if node.kind == "Job" else "DATASET"
    text = queries.RECIPES[f"{kind}_{recipe}" + ("" if at is not None else "_EVER")]
    records, _, _ = driver.execute_query(text, parameters, routing_="r")
    return {(r["kind"], r["namespace"], r["name"]): r["hops"] for r in records}


def model_answer(model: Model, recipe: str, node: Node, at: datetime | None) -> Answer:
    ask = model.upstream if recipe == "UPSTREAM" else model.downstream
    lineage = ask(node, at, 20, ever=at is None)
    return {(n.kind, n.namespace, n.name): hops for n, hops in lineage.nodes.items()}


ColumnAnswer = dict[tuple[str, str, str | None], tuple[int, bool]]


def graph_columns(driver: Driver, node: Node, field: str, at: datetime | None) -> ColumnAnswer:
    """{(namespace, dataset, field): (hops, indirect)} of a column's impact."""
    parameters: dict[str, Any] = {"namespace": node.namespace, "dataset": node.name,
                                  "field": field}
    if at is not None:
        parameters["asOf"] = at
    text = queries.RECIPES["COLUMN_DOWNSTREAM" + ("" if at is not None else "_EVER")]
    records, _, _ = driver.execute_query(text, parameters, routing_="r")
    return {(r["namespace"], r["dataset"], r["field"]): (r["hops"], r["indirect"])
            for r in records}


def column_validity(driver: Driver, node: Node, field: str) -> list[Any]:
    """The FEEDS/AFFECTS edges from a column with their validity lists (to explain a miss)."""
    records, _, _ = driver.execute_query(
        "MATCH (:Field {namespace: $ns, dataset: $name, name: $field})-[e:FEEDS|AFFECTS]->(t) "
        "RETURN t.dataset AS dataset, t.name AS name, e.validJob AS job, "
        "[x IN coalesce(e.validFrom, []) | toString(x)] AS since, "
        "[x IN coalesce(e.validTo, []) | toString(x)] AS until",
        ns=node.namespace, name=node.name, field=field, routing_="r")
    return [r.data() for r in records]


def model_columns(model: Model, node: Node, field: str, at: datetime | None) -> ColumnAnswer:
    found = model.impact(node, field, at, ever=at is None).columns
    return {(c.namespace, c.dataset, c.field): (e.hops, e.indirect) for c, e in found.items()}


def graph_schema(driver: Driver, node: Node, at: datetime) -> tuple[tuple[str, str | None], ...]:
    records, _, _ = driver.execute_query(
        queries.DATASET_SCHEMA, {"namespace": node.namespace, "name": node.name, "asOf": at},
        routing_="r")
    return tuple((r["field"], r["type"]) for r in records)


def job_history(driver: Driver, the_job: Node) -> list[tuple[Any, ...]]:
    records, _, _ = driver.execute_query(
        queries.JOB_HISTORY, {"namespace": the_job.namespace, "name": the_job.name},
        routing_="r")
    return [(queries.plain(r["validFrom"]), queries.plain(r["validTo"]),
             sorted((d["namespace"], d["name"]) for d in r["reads"]),
             sorted((d["namespace"], d["name"]) for d in r["writes"]), r["runs"])
            for r in records]


def model_job_history(model: Model, the_job: Node) -> list[tuple[Any, ...]]:
    return [(queries.iso(i.valid_from), queries.iso(i.valid_to) if i.valid_to else None,
             sorted((d.namespace, d.name) for d in i.version.inputs),
             sorted((d.namespace, d.name) for d in i.version.outputs), len(i.runs))
            for i in model.job_history(the_job)]


def drawn_histories(count: int) -> list[list[dict[str, Any]]]:
    """``count`` histories drawn by hypothesis (deterministically): the richest of the first
    ``3 * count`` it generates (its first examples are the simplest ones)."""
    found: list[list[dict[str, Any]]] = []

    @settings(max_examples=3 * count, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(histories())
    def collect(events: list[dict[str, Any]]) -> None:
        found.append(events)

    collect()
    return sorted(found, key=len, reverse=True)[:count]


def test_twenty_random_histories_through_the_pipeline_answer_as_the_oracle(
        stack: StackSettings, tmp_path_factory: pytest.TempPathFactory, driver: Driver) -> None:
    drawn = drawn_histories(HISTORIES)
    run = uuid.uuid4().hex[:6]
    loaded = []
    for index, events in enumerate(drawn):
        suffix = f"-{run}-{index}"
        mine = renamespaced(events, suffix)
        loaded.append(History(mine, suffix, Model.from_events(mine)))
    try:
        load_graph(stack, Path(tmp_path_factory.mktemp("oracle-pipeline")),
                   iter([e for h in loaded for e in h.events]))
        mismatches: list[str] = []
        compared = answered = differs_from_ever = 0
        for index, h in enumerate(loaded):
            for the_job in h.jobs():
                compared += 1
                if job_history(driver, the_job) != model_job_history(h.model, the_job):
                    mismatches.append(f"history {index}: history of {the_job}: graph "
                                      f"{job_history(driver, the_job)} != model "
                                      f"{model_job_history(h.model, the_job)}")
            times = times_of_interest(h.events)
            chosen = random.Random(index).sample(times, min(TIMES_PER_HISTORY, len(times)))
            for at in [*chosen, NOW, None]:
                for node in [*h.datasets(), *h.jobs()]:
                    for recipe in ("UPSTREAM", "DOWNSTREAM"):
                        compared += 1
                        graph = graph_answer(driver, recipe, node, at)
                        model = model_answer(h.model, recipe, node, at)
                        answered += bool(model)
                        differs_from_ever += at is not None and model != model_answer(
                            h.model, recipe, node, None)
                        if graph != model:
                            mismatches.append(
                                f"history {index}: {recipe.lower()} of {node} "
                                f"{'ever' if at is None else 'as of ' + at.isoformat()}: "
                                f"graph {sorted(graph.items(), key=str)} != model "
                                f"{sorted(model.items(), key=str)}")
            for at in [*chosen, NOW, None]:
                for node in h.datasets():
                    for field in FIELDS:
                        compared += 1
                        graph = graph_columns(driver, node, field, at)
                        model = model_columns(h.model, node, field, at)
                        answered += bool(model)
                        if graph != model:
                            mismatches.append(
                                f"history {index}: impact of {node}.{field} "
                                f"{'ever' if at is None else 'as of ' + at.isoformat()}: "
                                f"graph {sorted(graph.items(), key=str)} != model "
                                f"{sorted(model.items(), key=str)}; the graph's edges from it: "
                                f"{column_validity(driver, node, field)}")
            for at in [*chosen, NOW]:
                for node in h.datasets():
                    compared += 1
                    graph_fields = graph_schema(driver, node, at)
                    model_fields = h.model.schema(node, at) or ()
                    answered += bool(model_fields)
                    if graph_fields != model_fields:
                        mismatches.append(f"history {index}: schema of {node} as of "
                                          f"{at.isoformat()}: graph {graph_fields} != model "
                                          f"{model_fields}")
        # The comparison means something: most answers are not empty, and many differ from
        # "ever" (time travel is exercised, not only the union of all time).
        print(f"compared {compared} answers: {answered} not empty, {differs_from_ever} "
              "differ from ever")
        assert compared > HISTORIES * 50
        assert answered > compared // 5 and differs_from_ever > compared // 40
        assert not mismatches, (f"{len(mismatches)} of {compared} answers differ:\n"
                                + "\n".join(mismatches[:15]))
    finally:
        for h in loaded:
            for namespace in h.namespaces():
                delete_namespace(driver, namespace)

