"""Every recipe of docs/cypher-cookbook.md, run on a graph the real pipeline wrote.

The recipes are read from the Markdown (so the docs are what is tested), the known graph of
``known_graph.py`` goes through ``lineage process`` and ``lineage sink``, and each recipe's
answer is compared in full with the answer worked out by hand from the events.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver, GraphDatabase

from lineage.queries import plain, recipes_in
from lineage.stack.settings import StackSettings
from tests.conftest import REPO
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import load_graph as load
from tests.integration.known_graph import Known, KnownGraph, cases_of, read, version_ids

RECIPES = recipes_in((REPO / "docs" / "cypher-cookbook.md").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def driver(stack: StackSettings) -> Iterator[Driver]:
    with GraphDatabase.driver(stack.neo4j.uri, auth=stack.neo4j.auth()) as neo4j_driver:
        yield neo4j_driver


@pytest.fixture(scope="module")
def known(stack: StackSettings, driver: Driver,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    graph = KnownGraph(f"test://{uuid.uuid4().hex[:10]}")
    try:
        load(stack, Path(tmp_path_factory.mktemp("cookbook")), iter(graph.events()))
        yield Known(graph.namespace, graph.runs, version_ids(driver, graph))
    finally:
        delete_namespace(driver, graph.namespace)


# The FIND_ recipes look in every namespace, and other tests share this Neo4j: their answers are
# compared within this test's namespace (the unknown names must find nothing anywhere).
SHARED_NAMES = {"FIND_DATASETS", "FIND_JOBS"}


def test_every_recipe_of_the_cookbook_has_cases_and_one_with_an_answer(known: Known) -> None:
    cases = cases_of(known)
    assert set(cases) == set(RECIPES)
    for name, recipe_cases in cases.items():
        assert any(expected for _, expected in recipe_cases), f"{name}: only empty answers"


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_the_cookbook_recipe_gives_the_exact_answer(name: str, known: Known,
                                                     driver: Driver) -> None:
    for parameters, expected in cases_of(known)[name]:
        rows = plain(read(driver, RECIPES[name], **parameters))
        if name in SHARED_NAMES and expected:
            rows = [r for r in rows if r["namespace"] == known.ns]
        assert rows == expected, f"{name} with {parameters}"


def _operators(plan: Any) -> Iterator[str]:
    yield plan.operator_type if hasattr(plan, "operator_type") else plan["operatorType"]
    for child in plan.children if hasattr(plan, "children") else plan.get("children", []):
        yield from _operators(child)


# The walks keep Neo4j's breadth-first pruning expansion (the cookbook's "Maximum depths"): a
# filter in the wrong place (on the end node inside the MATCH) makes it enumerate every path,
# which is fine on this small graph and hopeless on a big one, so only the plan can tell.
@pytest.mark.parametrize("name", [
    "DATASET_UPSTREAM", "DATASET_UPSTREAM_EVER", "DATASET_DOWNSTREAM", "DATASET_IMPACT",
    "DATASET_IMPACT_EVER", "JOB_UPSTREAM", "JOB_DOWNSTREAM_EVER", "AS_OF_UPSTREAM",
    "FIELD_IMPACT", "FIELD_UPSTREAM", "COLUMN_DOWNSTREAM"])
def test_the_lineage_walk_is_planned_breadth_first_with_pruning(name: str,
                                                                driver: Driver) -> None:
    with driver.session() as session:
        summary = session.run("EXPLAIN " + RECIPES[name], namespace="ns", name="n",
                              dataset="d", field="f", hops=3,
                              asOf=datetime.now(UTC)).consume()
    operators = list(_operators(summary.plan))
    assert any("VarLengthExpand(Pruning,BFS" in op for op in operators), operators
