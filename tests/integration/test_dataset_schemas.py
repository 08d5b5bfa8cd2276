"""Every dataset has its schema: one only read too (issue #13, case 3), on the real pipeline.

Events go through Kafka, the real processor and sink into Neo4j; ``lineage query history`` and
the gateway's Marquez-compatible ``GET /api/v1/lineage`` are asked as a user would ask them::

    data/orders.csv (CSV, read by Spark) ─> orders_app.totals ─> out/totals
    public.customers (read by openlineage-python) ─> crm.export ─> out/customers.parquet
    inventory: read (schema v1) ─ written (v2) ─ read (v2), sent in reverse order, twice
    catalog: read with schema A, then B, then A again (readers only), in reverse order too

The Spark events have the shape Spark 3.5's OpenLineage listener gives a CSV read (a ``file``
dataset with its ``dataSource`` and ``schema`` facets); the openlineage-python one is made by the
openlineage-python client itself.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from neo4j import Driver
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import schema_dataset
from openlineage.client.serde import Serde

from core.neo4j_driver import driver
from lineage.stack.settings import StackSettings
from schemas.codec import decode, encode
from sinks import graph
from stream_processor.pipeline import process
from stream_processor.state import Plan
from tests.conftest import run_cli
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import Gateway, load_graph, start_gateway

PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.24.2/integration/spark"
RUN_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
ORDERS = [("order_id", "integer"), ("cust_id", "integer"), ("amount", "double")]
CUSTOMERS = [("id", "bigint"), ("name", "text")]
INVENTORY_V1 = [("sku", "string"), ("count", "integer")]
INVENTORY_V2 = [("sku", "string"), ("count", "long"), ("site", "string")]
CATALOG_A = [("item", "string"), ("price", "double")]
CATALOG_B = [("item", "string"), ("price", "decimal(10,2)"), ("currency", "string")]


def spark_facet(spec: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"https://openlineage.io/spec/facets/{spec}",
            **body}


@dataclass(frozen=True)
class Scenario:
    """The events of the module docstring's picture, under names of their own: files under
    ``root``, jobs in ``spark``, the openlineage-python table in ``postgres``."""

    root: str
    spark: str
    postgres: str
    runs: dict[str, str]

    @classmethod
    def fresh(cls) -> Scenario:
        uid = uuid.uuid4().hex[:10]
        return cls(f"/tmp/{uid}", f"spark-{uid}", f"postgres://{uid}-db:5432",
                   {run: str(uuid.uuid4())
                    for run in ("totals", "export", "read1", "write", "read2", "sawA", "sawB",
                                "sawA2")})

    def file(self, name: str, columns: list[tuple[str, str]] | None = None) -> dict[str, Any]:
        """A ``file`` dataset as Spark reports it, with its schema when ``columns`` is given."""
        facets = {"dataSource": spark_facet(
            "1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
            {"name": "file", "uri": "file"})}
        if columns:
            facets["schema"] = spark_facet(
                "1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
                {"fields": [{"name": n, "type": t} for n, t in columns]})
        return {"namespace": "file", "name": f"{self.root}/{name}", "facets": facets}

    def spark_event(self, kind: str, time: str, job: str, run: str,
                    inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
                    ) -> dict[str, Any]:
        return {"eventType": kind, "eventTime": time, "producer": PRODUCER,
                "schemaURL": RUN_SCHEMA_URL, "run": {"runId": self.runs[run], "facets": {}},
                "job": {"namespace": self.spark, "name": job, "facets": {}},
                "inputs": inputs, "outputs": outputs}

    def python_event(self) -> dict[str, Any]:
        """A COMPLETE that the openlineage-python client makes, reading a table with a schema."""
        def schema(columns: list[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
            return schema_dataset.SchemaDatasetFacet(fields=[
                schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in columns])

        event = RunEvent(
            eventType=RunState.COMPLETE, eventTime="2024-06-01T11:00:00.000000+00:00",
            run=Run(runId=self.runs["export"]), job=Job(namespace=self.spark, name="crm.export"),
            producer="https://github.com/OpenLineage/OpenLineage/tree/1.24.2/client/python",
            inputs=[InputDataset(namespace=self.postgres, name="public.customers",
                                 facets={"schema": schema(CUSTOMERS)})],
            outputs=[OutputDataset(namespace="file", name=f"{self.root}/out/customers.parquet")])
        encoded: dict[str, Any] = json.loads(Serde.to_json(event))
        return encoded

    def inventory(self) -> list[dict[str, Any]]:
        """Read with v1 on day 1, written with v2 on day 2, read with v2 on day 3."""
        inventory = "data/inventory.csv"
        return [
            self.spark_event("START", "2024-06-01T12:00:00Z", "stock.count", "read1",
                             [self.file(inventory, INVENTORY_V1)], [self.file("out/stock")]),
            self.spark_event("COMPLETE", "2024-06-01T12:01:00Z", "stock.count", "read1",
                             [self.file(inventory, INVENTORY_V1)], [self.file("out/stock")]),
            self.spark_event("START", "2024-06-02T12:00:00Z", "stock.load", "write",
                             [], [self.file(inventory)]),
            self.spark_event("COMPLETE", "2024-06-02T12:01:00Z", "stock.load", "write",
                             [], [self.file(inventory, INVENTORY_V2)]),
            self.spark_event("START", "2024-06-03T12:00:00Z", "stock.count", "read2",
                             [self.file(inventory, INVENTORY_V2)], [self.file("out/stock")]),
            self.spark_event("COMPLETE", "2024-06-03T12:01:00Z", "stock.count", "read2",
                             [self.file(inventory, INVENTORY_V2)], [self.file("out/stock")]),
        ]

    def comeback(self) -> list[dict[str, Any]]:
        """The catalog read with schema A on day 1, B on day 2 and A again on day 3."""
        return [self.spark_event("COMPLETE", f"2024-06-0{day}T08:00:00Z", "catalog.scan", run,
                                 [self.file("data/catalog.csv", columns)],
                                 [self.file("out/scan")])
                for day, run, columns in ((1, "sawA", CATALOG_A), (2, "sawB", CATALOG_B),
                                          (3, "sawA2", CATALOG_A))]

    def events(self) -> list[dict[str, Any]]:
        orders, totals = self.file("data/orders.csv", ORDERS), self.file("out/totals")
        history = self.inventory() + self.comeback()
        return [
            self.spark_event("START", "2024-06-01T10:00:00Z", "orders_app.totals", "totals",
                             [orders], [totals]),
            self.spark_event("COMPLETE", "2024-06-01T10:02:00Z", "orders_app.totals", "totals",
                             [orders], [totals]),
            self.python_event(),
            # Latest first, and each twice: arrival order and replays must change nothing.
            *reversed(history), *history,
        ]


def delete(neo4j: Driver, scenario: Scenario) -> None:
    """Remove the scenario's subgraph: its namespaces, and its names in the shared ``file``."""
    for namespace in (scenario.spark, scenario.postgres):
        delete_namespace(neo4j, namespace)
    neo4j.execute_query(
        "MATCH (n) WHERE n.namespace = 'file' "
        "AND (n.name STARTS WITH $root OR n.dataset STARTS WITH $root) DETACH DELETE n",
        root=scenario.root + "/")


@pytest.fixture(scope="module")
def loaded(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[Scenario]:
    scenario = Scenario.fresh()
    with driver(stack.neo4j) as neo4j:
        try:
            load_graph(stack, Path(tmp_path_factory.mktemp("dataset-schemas")),
                       scenario.events())
            yield scenario
        finally:
            delete(neo4j, scenario)


@pytest.fixture(scope="module")
def gateway(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Gateway]:
    folder = tmp_path_factory.mktemp("dataset-schemas-gateway")
    started = start_gateway(stack.kafka.bootstrap_servers, folder / "gateway.log")
    try:
        yield started
    finally:
        started.remove()


def iso(value: Any) -> str | None:
    """A Neo4j DateTime (or None) as ISO 8601 text."""
    return None if value is None else str(value.to_native().isoformat())


def history(namespace: str, name: str) -> dict[str, Any]:
    """``lineage query history --json`` of a dataset."""
    proc = run_cli("query", "history", "--namespace", namespace, name, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    answer: dict[str, Any] = json.loads(proc.stdout)
    return answer


def marquez_fields(gateway: Gateway, namespace: str, name: str) -> list[tuple[str, str]]:
    """The ``fields`` of the dataset's node in the gateway's ``GET /api/v1/lineage``."""
    node = f"dataset:{namespace}:{name}"
    answer = httpx.get(f"{gateway.url}/api/v1/lineage", params={"nodeId": node, "depth": "0"},
                       timeout=30)
    assert answer.status_code == 200, answer.text
    [data] = [n["data"] for n in answer.json()["graph"] if n["id"] == node]
    return [(f["name"], f["type"]) for f in data["fields"]]


@pytest.mark.parametrize(("dataset", "columns"), [
    pytest.param(("file", "data/orders.csv"), ORDERS, id="spark-csv"),
    pytest.param(("postgres", "public.customers"), CUSTOMERS, id="openlineage-python"),
])
def test_a_dataset_that_is_only_read_has_its_schema_in_history_and_the_read_api(
    loaded: Scenario, gateway: Gateway, dataset: tuple[str, str], columns: list[tuple[str, str]],
) -> None:
    namespace, name = ((loaded.postgres, dataset[1]) if dataset[0] == "postgres"
                       else ("file", f"{loaded.root}/{dataset[1]}"))
    answer = history(namespace, name)
    assert [row["fields"] for row in answer["rows"]] == [[n for n, _ in columns]]
    assert [row["writtenBy"] for row in answer["rows"]] == [[]]
    assert marquez_fields(gateway, namespace, name) == columns


def test_the_run_that_read_a_schema_reads_that_dataset_version(
    stack: StackSettings, loaded: Scenario,
) -> None:
    with driver(stack.neo4j) as neo4j:
        records, _, _ = neo4j.execute_query(
            "MATCH (r:Run {runId: $run})-[:READ]->(v:DatasetVersion)<-[:HAS_VERSION]-(d) "
            "RETURN d.name AS name, "
            "COLLECT { MATCH (v)-[h:HAS_FIELD]->(f) RETURN f.name ORDER BY h.ordinal } AS fields",
            run=loaded.runs["totals"], routing_="r")
    assert [(r["name"], r["fields"]) for r in records] == [
        (f"{loaded.root}/data/orders.csv", [n for n, _ in ORDERS])]


def inventory_intervals(neo4j: Driver, scenario: Scenario) -> list[tuple[Any, ...]]:
    """The inventory's versions that change it: (validFrom, validTo, fields, writers)."""
    records, _, _ = neo4j.execute_query(
        "MATCH (:Dataset {namespace: 'file', name: $name})-[i:VALID_AS]->(v) "
        "RETURN i.validFrom AS validFrom, i.validTo AS validTo, "
        "COLLECT { MATCH (v)-[h:HAS_FIELD]->(f) RETURN f.name ORDER BY h.ordinal } AS fields,"
        " COLLECT { MATCH (r:Run)-[:WROTE]->(v) RETURN r.runId } AS writers "
        "ORDER BY i.validFrom", name=f"{scenario.root}/data/inventory.csv", routing_="r")
    return [(iso(r["validFrom"]), iso(r["validTo"]), r["fields"], r["writers"])
            for r in records]


def expected_inventory(scenario: Scenario) -> list[tuple[Any, ...]]:
    """v1 from the day-1 read to the write, the write's v2 from then on; the day-3 read of v2
    changes nothing."""
    return [("2024-06-01T12:00:00+00:00", "2024-06-02T12:01:00+00:00",
             [n for n, _ in INVENTORY_V1], []),
            ("2024-06-02T12:01:00+00:00", None, [n for n, _ in INVENTORY_V2],
             [scenario.runs["write"]])]


def test_a_schema_read_before_a_later_write_never_becomes_the_current_one(
    stack: StackSettings, loaded: Scenario, gateway: Gateway,
) -> None:
    """The inventory's events went through Kafka latest first, and twice."""
    with driver(stack.neo4j) as neo4j:
        assert inventory_intervals(neo4j, loaded) == expected_inventory(loaded)
    assert marquez_fields(gateway, "file", f"{loaded.root}/data/inventory.csv") == INVENTORY_V2


def test_history_lists_the_changes_of_a_schema_and_not_its_re_sightings(
    stack: StackSettings, loaded: Scenario,
) -> None:
    """Read with v1, written with v2, read with v2: two versions, the day-3 read is none."""
    answer = history("file", f"{loaded.root}/data/inventory.csv")
    rows = answer["rows"]
    assert len(rows) == 2, rows


def test_a_schema_that_readers_see_again_after_another_is_current_again(
    loaded: Scenario,
) -> None:
    """A on day 1, B on day 2, A on day 3, all from readers and sent latest first: three
    versions in history, the first and the third the same, and A is the schema now."""
    name = f"{loaded.root}/data/catalog.csv"
    rows = history("file", name)["rows"]
    assert [(r["validFrom"], r["validTo"], r["fields"]) for r in rows] == [
        ("2024-06-01T08:00:00Z", "2024-06-02T08:00:00Z", [n for n, _ in CATALOG_A]),
        ("2024-06-02T08:00:00Z", "2024-06-03T08:00:00Z", [n for n, _ in CATALOG_B]),
        ("2024-06-03T08:00:00Z", None, [n for n, _ in CATALOG_A])]
    assert rows[0]["version"] == rows[2]["version"]
    for at, columns in (("2024-06-02T20:00", CATALOG_B), ("2024-06-03T20:00", CATALOG_A)):
        proc = run_cli("query", "schema", "--namespace", "file", name, "--at", at, "--json")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert [(r["field"], r["type"]) for r in json.loads(proc.stdout)["rows"]] == columns
    proc = run_cli("query", "schema", "--namespace", "file", name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "price  double" in proc.stdout, proc.stdout


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_validity_of_schemas_does_not_depend_on_how_records_are_batched_or_ordered(
    stack: StackSettings, seed: int,
) -> None:
    """Every change record in a transaction of its own, in a random order, some twice: the
    sink recomputes validity from all of a dataset's versions, whichever came last."""
    scenario = Scenario.fresh()
    records = []
    for event in scenario.inventory():
        outcome = process(json.dumps(event).encode(), Plan({}), ingested_at=0)
        assert outcome.accepted, outcome.dead_letters
        records += [decode(encode(change.record(0))) for change in outcome.changes]
    rng = random.Random(seed)
    records += rng.sample(records, len(records) // 3)
    rng.shuffle(records)
    with driver(stack.neo4j) as neo4j:
        try:
            graph.migrate(neo4j)
            with neo4j.session() as session:
                for record in records:
                    kind = record["payload"][0]
                    session.execute_write(graph.write_batch, {kind: [graph.row(kind, record)]})
            assert inventory_intervals(neo4j, scenario) == expected_inventory(scenario)
        finally:
            delete(neo4j, scenario)
