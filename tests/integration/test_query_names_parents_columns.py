"""``lineage query`` on what Spark and Airflow send: any name of a dataset, parent jobs, and
indirect column dependencies (issue #13, cases 4, 5 and 6).

The events of :class:`~tests.integration.known_graph.SparkAndAirflow` go through Kafka, the real
processor and sink into Neo4j; each question is asked as a user asks it (a child process).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import GraphDatabase

from lineage.stack.settings import StackSettings
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import load_graph
from tests.integration.known_graph import SparkAndAirflow
from tests.integration.test_query_cli import query, query_json


@pytest.fixture(scope="module")
def spark(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[SparkAndAirflow]:
    events = SparkAndAirflow()
    with GraphDatabase.driver(stack.neo4j.uri, auth=stack.neo4j.auth()) as driver:
        try:
            load_graph(stack, Path(tmp_path_factory.mktemp("query-names")),
                       iter(events.events()))
            yield events
        finally:
            for namespace in events.namespaces():
                delete_namespace(driver, namespace)
            # The namespace "file" is shared: this test's datasets and fields have its root.
            driver.execute_query(
                "MATCH (n) WHERE n.namespace = 'file' "
                "AND coalesce(n.dataset, n.name) STARTS WITH $prefix DETACH DELETE n",
                prefix=events.file_prefix())


# --- case 4: any name of a dataset --------------------------------------------------------------

def test_upstream_of_sparks_catalog_name_answers_for_the_table_and_says_so(
        spark: SparkAndAirflow) -> None:
    totals = spark.path("warehouse/mart.db/customer_totals")
    assert query("upstream", f"{spark.warehouse}:mart.customer_totals") == f"""\
resolved alias {spark.warehouse}:mart.customer_totals to file:{totals}
dataset file:{totals}
└── job {spark.spark}:customer_totals_app.insert_totals
    └── dataset {spark.path("data/orders.csv")}
1 job and 1 dataset upstream within 3 hops
"""


def test_downstream_of_a_metastore_alias_counts_the_jobs_reading_any_name(
        spark: SparkAndAirflow) -> None:
    totals = spark.path("warehouse/mart.db/customer_totals")
    tree = f"""\
dataset file:{totals}
└── job {spark.airflow}:reporting.publish_totals
    └── dataset {spark.postgres}:public.totals_report
1 job and 1 dataset downstream within 3 hops
"""
    # The Airflow task reads the Hive name; asked by that name or the primary, it is found.
    assert query("downstream", f"{spark.hive}:mart.customer_totals") == (
        f"resolved alias {spark.hive}:mart.customer_totals to file:{totals}\n" + tree)
    assert query("downstream", f"file:{totals}") == tree


def test_json_says_which_name_was_asked_and_which_dataset_it_resolved_to(
        spark: SparkAndAirflow) -> None:
    totals = {"namespace": "file", "name": spark.path("warehouse/mart.db/customer_totals")}
    output = query_json("impact", f"{spark.hive}:mart.customer_totals")
    assert output["resolved"] == {
        "asked": {"namespace": spark.hive, "name": "mart.customer_totals"}, "primary": totals}
    assert output["parameters"].pop("asOf")  # now
    assert output["parameters"] == totals
    assert [(r["hops"], r["kind"], r["name"]) for r in output["rows"]] == [
        (1, "Job", "reporting.publish_totals"), (1, "Dataset", "public.totals_report")]
    assert query_json("impact", f"file:{totals['name']}")["resolved"] is None


def test_history_and_as_of_of_an_alias_are_the_primarys(spark: SparkAndAirflow) -> None:
    history = query_json("history", f"{spark.warehouse}:mart.customer_totals")
    assert [(r["fields"], r["writtenBy"]) for r in history["rows"]] == [
        (["total"], [{"runId": spark.runs["totals"], "state": "COMPLETE"}])]
    as_of = query_json("as-of", f"{spark.hive}:mart.customer_totals", "--at", "2024-05-02",
                       "--downstream")
    assert as_of["resolved"] is not None
    assert [(r["kind"], r["name"], r["version"] is not None) for r in as_of["rows"]] == [
        ("Job", "reporting.publish_totals", True), ("Dataset", "public.totals_report", False)]


# --- case 5: parent jobs ------------------------------------------------------------------------

def test_upstream_of_a_spark_application_is_the_lineage_of_its_jobs(
        spark: SparkAndAirflow) -> None:
    assert query("upstream", "--job", f"{spark.spark}:customer_totals_app") == f"""\
job {spark.spark}:customer_totals_app
├── child job customer_totals_app.insert_totals
│   └── dataset file:{spark.path("data/orders.csv")}
└── child job customer_totals_app.join_big_orders
    ├── dataset file:{spark.path("data/customers.csv")}
    └── dataset file:{spark.path("data/orders.csv")}
2 child jobs, 0 jobs and 2 datasets upstream within 3 hops
"""


def test_downstream_of_an_airflow_dag_is_what_its_tasks_write(spark: SparkAndAirflow) -> None:
    assert query("downstream", "--job", f"{spark.airflow}:reporting") == f"""\
job {spark.airflow}:reporting
└── child job reporting.publish_totals
    └── dataset {spark.postgres}:public.totals_report
1 child job, 0 jobs and 1 dataset downstream within 3 hops
"""
    output = query_json("downstream", "--job", f"{spark.airflow}:reporting")
    child, *_ = output["rows"]
    assert (child["hops"], child["name"], child["via"]) == (
        0, "reporting.publish_totals", [{"namespace": spark.airflow, "name": "reporting"}])


# --- case 6: indirect column dependencies -------------------------------------------------------

def test_impact_of_a_join_and_filter_column_reaches_the_datasets_it_affects(
        spark: SparkAndAirflow) -> None:
    orders = f"file:{spark.path('data/orders.csv')}"
    assert query("impact", orders, "--field", "cust_id") == f"""\
impact of column {orders}.cust_id
└── hop 1
    ├── dataset {spark.path("warehouse/mart.db/big_orders")} (INDIRECT/JOIN; indirect)
    └── dataset {spark.path("warehouse/mart.db/customer_totals")} (INDIRECT/FILTER; indirect)
0 columns and 2 datasets downstream, 2 indirect
"""
    assert query("impact", orders, "--field", "cust_id", "--direct-only") == f"""\
impact of column {orders}.cust_id
0 columns downstream
"""


def test_column_impact_rows_mark_each_column_or_dataset_direct_or_not(
        spark: SparkAndAirflow) -> None:
    orders = spark.path("data/orders.csv")
    output = query_json("impact", f"file:{orders}", "--field", "amount")
    assert output["recipes"] == ["COLUMN_DOWNSTREAM"]
    assert output["rows"] == [
        {"hops": 1, "namespace": "file", "dataset": spark.path("warehouse/mart.db/customer_totals"),
         "field": "total", "indirect": False,
         "via": [{"namespace": "file", "dataset": orders, "field": "amount",
                  "transformations": ["DIRECT/AGGREGATION"]}]}]


def test_columns_lists_the_join_columns_of_a_dataset_as_indirect_sources(
        spark: SparkAndAirflow) -> None:
    big = f"file:{spark.path('warehouse/mart.db/big_orders')}"
    customers, orders = spark.path("data/customers.csv"), spark.path("data/orders.csv")
    assert query("columns", big, "--field", "order_id") == f"""\
column {big}.order_id
upstream: where it comes from
├── {customers}.id (INDIRECT/JOIN; indirect)
├── {orders}.cust_id (INDIRECT/JOIN; indirect)
└── {orders}.order_id (DIRECT/IDENTITY)
downstream: what it feeds
    (none)
"""
    assert query("columns", big, "--field", "order_id", "--direct-only") == f"""\
column {big}.order_id
upstream: where it comes from
└── {orders}.order_id (DIRECT/IDENTITY)
downstream: what it feeds
    (none)
"""


def test_columns_of_an_alias_are_the_columns_of_its_dataset(spark: SparkAndAirflow) -> None:
    output = query_json("columns", f"{spark.warehouse}:mart.customer_totals", "--field", "total")
    assert output["resolved"] is not None
    assert [(r["direction"], r["field"], r["indirect"]) for r in output["rows"]] == [
        ("upstream", "amount", False), ("upstream", "cust_id", True)]
