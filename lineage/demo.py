"""``lineage demo``: README command 1, the "AWSomeRetail" story through the whole pipeline.

It brings the stack up, starts a stream processor (``lineage process``) and a sink (``lineage
sink``) as child processes, and plays the three capture paths of Amazon DataZone's OpenLineage
walkthrough on the local stack:

1. an Airflow-like DAG run ``awsome_retail_daily`` whose task runs carry parent facets:
   a crawler-like task registers ``raw/inventory`` from the object store (schema, and a symlink
   to its catalog table name), and a Spark-like task ``inventory_insights`` aggregates it
   (schema and column lineage);
2. the SQL ``sales`` example harvested from query history (``lineage harvest sql``'s parser):
   ``market.retail_sales`` and ``market.online_sales`` into ``market.sales``;

then waits until the sink has written it all, prints the upstream trees of ``sales`` and
``inventory_insights`` with their columns, says where to look next, and stops the children.

>>> sorted({e["job"]["name"] for e in story_events()})
['awsome_retail_daily', 'awsome_retail_daily.crawl_inventory', 'inventory_insights']
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.errors import ServiceUnavailable
from lineage.stack.settings import StackSettings

AIRFLOW = "airflow://awsome-retail"
SPARK = "spark://awsome-retail"
LAKE = "s3://awsome-retail-lake"
CATALOG = "awsdatacatalog://us-east-1"
WAREHOUSE = "postgres://retail-db:5432"
PRODUCER = "https://github.com/openlineage-stream/demo"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = "https://openlineage.io/spec/facets"
SALES_SQL = ("CREATE TABLE market.sales AS "
             "SELECT store_id AS channel_id, day, amount FROM market.retail_sales "
             "UNION ALL SELECT order_id, day, amount FROM market.online_sales")
WAIT_SECONDS = 120


def _facet(spec: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"{FACETS}/{spec}", **body}


def _schema(columns: dict[str, str]) -> dict[str, Any]:
    return _facet("1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
                  {"fields": [{"name": n, "type": t} for n, t in columns.items()]})


def _lineage(namespace: str, source: str, fields: dict[str, tuple[str, str]]) -> dict[str, Any]:
    return _facet("1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet", {
        "fields": {target: {"inputFields": [{
            "namespace": namespace, "name": source, "field": column,
            "transformations": [{"type": "DIRECT", "subtype": subtype}]}]}
            for target, (column, subtype) in fields.items()}})


def story_events(now: datetime | None = None) -> list[dict[str, Any]]:
    """The DAG run and its two tasks, START and COMPLETE each, ten minutes ago."""
    start = (now or datetime.now(UTC)) - timedelta(minutes=10)
    dag_run = str(uuid.uuid4())
    inventory = {"namespace": LAKE, "name": "raw/inventory", "facets": {
        "schema": _schema({"product_id": "string", "warehouse": "string", "quantity": "int",
                           "updated_at": "timestamp"}),
        "symlinks": _facet("1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet", {
            "identifiers": [{"namespace": CATALOG, "name": "retail.inventory",
                             "type": "TABLE"}]})}}
    insights = {"namespace": LAKE, "name": "curated/inventory_insights", "facets": {
        "schema": _schema({"warehouse": "string", "product_id": "string",
                           "total_quantity": "bigint", "last_update": "timestamp"}),
        "columnLineage": _lineage(LAKE, "raw/inventory", {
            "warehouse": ("warehouse", "IDENTITY"), "product_id": ("product_id", "IDENTITY"),
            "total_quantity": ("quantity", "AGGREGATION"),
            "last_update": ("updated_at", "AGGREGATION")})}}
    parent = _facet("1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet", {
        "run": {"runId": dag_run}, "job": {"namespace": AIRFLOW, "name": "awsome_retail_daily"}})
    runs = [(AIRFLOW, "awsome_retail_daily", dag_run, {}, [], [], 0, 12),
            (AIRFLOW, "awsome_retail_daily.crawl_inventory", str(uuid.uuid4()),
             {"parent": parent}, [], [inventory], 1, 3),
            (SPARK, "inventory_insights", str(uuid.uuid4()), {"parent": parent}, [inventory],
             [insights], 4, 10)]
    events = []
    for namespace, job, run_id, facets, inputs, outputs, began, ended in runs:
        for minutes, event_type in ((began, "START"), (ended, "COMPLETE")):
            events.append({
                "eventType": event_type,
                "eventTime": (start + timedelta(minutes=minutes)).isoformat(),
                "run": {"runId": run_id, "facets": facets},
                "job": {"namespace": namespace, "name": job},
                "inputs": inputs, "outputs": outputs,
                "producer": PRODUCER, "schemaURL": SCHEMA_URL,
            })
    return sorted(events, key=lambda e: e["eventTime"])


@contextmanager
def _pipeline(state_dir: Path, log: Callable[[str], None]) -> Iterator[None]:
    """A processor and a sink as child processes, stopped (SIGTERM) on the way out."""
    folder = state_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    children = []
    try:
        for command in ("process", "sink"):
            with (folder / f"{command}.log").open("ab") as out:
                child = subprocess.Popen(  # our own CLI, same interpreter
                    [sys.executable, "-m", "lineage", command], stdout=out,
                    stderr=subprocess.STDOUT, env=os.environ.copy(), start_new_session=True)
            children.append(child)
            log(f"{command}: started (pid {child.pid}, log {folder / (command + '.log')})")
        yield
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()


def run_demo(settings: StackSettings, log: Callable[[str], None] = print) -> None:
    """Stack up, processor + sink, play the story, print what the graph says."""
    from core.neo4j_driver import driver as neo4j_driver
    from lineage.stack import LocalStack
    from producers.emitter import Emitter
    from producers.harvest_sql import Naming, Options, harvest_sql_text

    seconds = LocalStack(settings, log=log).up()
    log(f"stack is up ({seconds:.1f}s)")
    settings = StackSettings()  # re-read: `up` may just have written the connection file
    events = story_events()
    with _pipeline(settings.state_dir, log), neo4j_driver(settings.neo4j) as driver:
        with Emitter(settings.kafka, settings.kafka.raw_topic) as emitter:
            emitter.emit_all(events)
            log(f"airflow: the DAG run and its two task runs, {len(events)} OpenLineage events")
            harvest_sql_text(SALES_SQL, "query history", emitter,
                             Options(naming=Naming(WAREHOUSE, "retail"), job="load_sales"),
                             event_time=datetime.now(UTC) - timedelta(minutes=5),
                             log=lambda line: log(f"harvest sql: {line}"))
        log(f"kafka: all acknowledged on {settings.kafka.raw_topic}")
        _wait_for_graph(driver, settings, [e["run"]["runId"] for e in events])
        log("neo4j: the processor and the sink wrote the lineage graph")
        for namespace, name in ((WAREHOUSE, "retail.market.sales"),
                                (LAKE, "curated/inventory_insights")):
            for line in upstream_tree(driver, settings.neo4j.database, namespace, name):
                log(line)
    stack = settings.stack
    password = settings.state_dir / "neo4j" / "password"
    log("\nwhere to look next:")
    log(f"  Neo4j Browser  http://{stack.host}:{stack.http_port}/browser/ "
        f"(user neo4j, password in {password})")
    log("  paste this     MATCH p = (:Dataset)-[:INPUT_TO|OUTPUT_TO*1..6]->"
        "(:Dataset {name: 'retail.market.sales'}) RETURN p")
    log("  metrics        http://127.0.0.1:9101/metrics (processor), "
        "http://127.0.0.1:9102/metrics (sink), while they run")
    log(f"  their logs     {settings.state_dir / 'demo'}")


def _wait_for_graph(driver: Any, settings: StackSettings, run_ids: list[str]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    query = ("MATCH (r:Run) WHERE r.runId IN $ids AND r.state = 'COMPLETE' "
             "WITH count(r) AS done "
             "MATCH (:Job {name: 'load_sales'})-[:OUTPUT_TO]->(:Dataset {name: $sales}) "
             "RETURN done")
    while True:
        records = driver.execute_query(query, ids=run_ids, sales="retail.market.sales",
                                       database_=settings.neo4j.database).records
        if records and records[0]["done"] == len(set(run_ids)):
            return
        if time.monotonic() > deadline:
            raise ServiceUnavailable(
                f"the demo events did not reach Neo4j within {WAIT_SECONDS}s",
                hint=f"see the logs in {settings.state_dir / 'demo'}")
        time.sleep(1)


def upstream_tree(driver: Any, database: str, namespace: str, name: str,
                  depth: int = 4) -> list[str]:
    """Lines of the upstream tree of a dataset: jobs and their inputs, then its columns."""
    lines = [f"upstream of {name} ({namespace})"]

    def walk(ns: str, dataset: str, indent: str, seen: frozenset[tuple[str, str]]) -> None:
        records = driver.execute_query(
            "MATCH (src:Dataset)-[:INPUT_TO]->(j:Job)-[:OUTPUT_TO]->(:Dataset {namespace: $ns, "
            "name: $name}) OPTIONAL MATCH (alias:Dataset)-[:SYMLINK_OF]->(src) "
            "RETURN j.name AS job, src.namespace AS ns, src.name AS name, "
            "collect(alias.name) AS aliases ORDER BY job, name",
            ns=ns, name=dataset, database_=database).records
        for record in records:
            aliases = f" (also {', '.join(record['aliases'])})" if record["aliases"] else ""
            lines.append(f"{indent}<- {record['job']} <- {record['name']}{aliases}")
            key = (record["ns"], record["name"])
            if key not in seen and len(indent) < 2 * depth:
                walk(record["ns"], record["name"], indent + "   ", seen | {key})

    walk(namespace, name, "  ", frozenset({(namespace, name)}))
    columns = driver.execute_query(
        "MATCH (:Dataset {namespace: $ns, name: $name})-[:HAS_FIELD]->(f:Field) "
        "OPTIONAL MATCH (s:Field)-[e:FEEDS]->(f) "
        "WITH f, s, e ORDER BY s.dataset, s.name "
        "RETURN f.name AS column, collect(s.dataset + '.' + s.name + "
        "CASE WHEN e.transformation = 'UNKNOWN' THEN '' "
        "ELSE ' (' + e.transformation + ')' END) AS sources ORDER BY column",
        ns=namespace, name=name, database_=database).records
    lines.append("  columns:")
    lines += [f"    {r['column']} <- {', '.join(r['sources']) or '(no column lineage)'}"
              for r in columns]
    return lines
