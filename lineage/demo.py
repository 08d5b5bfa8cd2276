"""``lineage demo``: README command 1, the whole pipeline end to end on the local stack.

It brings the stack up, starts a stream processor (``lineage process``) and a sink (``lineage
sink``) as child processes, publishes a small retail pipeline's OpenLineage events to the raw
topic with the standard Kafka transport's keys, waits until the sink has written them into Neo4j,
prints the lineage it reads back (job level and column level), and stops the two children.

>>> [e["eventType"] for e in demo_events()]
['START', 'COMPLETE', 'START', 'COMPLETE']
"""

from __future__ import annotations

import json
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

from lineage.errors import ServiceUnavailable
from lineage.settings import StackSettings

NAMESPACE = "demo://awsome-retail"
WAREHOUSE = "postgres://retail-db:5432"
PRODUCER = "https://github.com/openlineage-stream/demo"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = "https://openlineage.io/spec/facets"
WAIT_SECONDS = 120


def _dataset(name: str, columns: list[str], lineage: dict[str, list[str]] | None = None,
             ) -> dict[str, Any]:
    facets: dict[str, Any] = {"schema": {
        "_producer": PRODUCER,
        "_schemaURL": f"{FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        "fields": [{"name": c, "type": "decimal(18,2)" if c == "amount" else "string"}
                   for c in columns]}}
    if lineage:
        facets["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": f"{FACETS}/1-2-0/ColumnLineageDatasetFacet.json#/$defs/"
                          "ColumnLineageDatasetFacet",
            "fields": {target: {"inputFields": [
                {"namespace": WAREHOUSE, "name": source.rsplit(".", 1)[0],
                 "field": source.rsplit(".", 1)[1],
                 "transformations": [{"type": "DIRECT", "subtype": "AGGREGATION"}]}
                for source in sources]} for target, sources in lineage.items()}}
    return {"namespace": WAREHOUSE, "name": name, "facets": facets}


def demo_events(now: datetime | None = None) -> list[dict[str, Any]]:
    """Two jobs, each run once: retail + online sales -> market.sales -> reports.daily_sales."""
    start = (now or datetime.now(UTC)) - timedelta(minutes=10)
    retail = _dataset("market.retail_sales", ["store_id", "day", "amount"])
    online = _dataset("market.online_sales", ["order_id", "day", "amount"])
    sales = _dataset("market.sales", ["day", "amount"], {
        "day": ["market.retail_sales.day", "market.online_sales.day"],
        "amount": ["market.retail_sales.amount", "market.online_sales.amount"]})
    report = _dataset("reports.daily_sales", ["day", "amount"], {
        "day": ["market.sales.day"], "amount": ["market.sales.amount"]})
    events = []
    for offset, (job, inputs, outputs) in enumerate((
            ("sales_rollup", [retail, online], [sales]),
            ("daily_report", [sales], [report]))):
        run_id = str(uuid.uuid4())
        for minutes, event_type in ((offset * 4, "START"), (offset * 4 + 3, "COMPLETE")):
            events.append({
                "eventType": event_type,
                "eventTime": (start + timedelta(minutes=minutes)).isoformat(),
                "run": {"runId": run_id},
                "job": {"namespace": NAMESPACE, "name": job},
                "inputs": inputs, "outputs": outputs,
                "producer": PRODUCER, "schemaURL": SCHEMA_URL,
            })
    return events


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
    """Stack up, processor + sink, publish the demo events, print what the graph says."""
    from confluent_kafka import Producer
    from neo4j import GraphDatabase

    from lineage.stack import LocalStack
    from producers.synthetic import transport_key

    seconds = LocalStack(settings, log=log).up()
    log(f"stack is up ({seconds:.1f}s)")
    settings = StackSettings()  # re-read: `up` may just have written the connection file
    events = demo_events()
    with _pipeline(settings.state_dir, log), GraphDatabase.driver(
            settings.neo4j.uri, auth=settings.neo4j.auth()) as driver:
        producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                             "acks": "all", "enable.idempotence": True})
        for event in events:
            producer.produce(settings.kafka.raw_topic, json.dumps(event).encode(),
                             key=transport_key(event))
        if producer.flush(30):
            raise ServiceUnavailable("Kafka did not acknowledge the demo events")
        log(f"kafka: published {len(events)} OpenLineage events to {settings.kafka.raw_topic}")
        last_run = events[-1]["run"]["runId"]
        deadline = time.monotonic() + WAIT_SECONDS
        while not driver.execute_query(
                "MATCH (r:Run {runId: $id, state: 'COMPLETE'})-[:WROTE]->() RETURN r",
                id=last_run, database_=settings.neo4j.database).records:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"the demo events did not reach Neo4j within {WAIT_SECONDS}s",
                    hint=f"see the logs in {settings.state_dir / 'demo'}")
            time.sleep(1)
        log("neo4j: the processor and the sink wrote the lineage graph")
        for line in _lineage_lines(driver, settings.neo4j.database):
            log(f"  {line}")
    log(f"Neo4j Browser: http://{settings.stack.host}:{settings.stack.http_port}/browser/ "
        f"(user neo4j, password in {settings.state_dir / 'neo4j' / 'password'})")


def _lineage_lines(driver: Any, database: str) -> list[str]:
    jobs, _, _ = driver.execute_query(
        "MATCH (src:Dataset)-[:INPUT_TO]->(j:Job)-[:OUTPUT_TO]->(out:Dataset) "
        "WHERE j.namespace = $ns "
        "RETURN src.name AS source, j.name AS job, out.name AS output ORDER BY output, source",
        ns=NAMESPACE, database_=database)
    columns, _, _ = driver.execute_query(
        "MATCH p = (src:Field)-[:FEEDS*1..4]->(:Field {namespace: $ns, dataset: $dataset, "
        "name: $field}) WHERE NOT ()-[:FEEDS]->(src) "
        "RETURN [f IN nodes(p) | f.dataset + '.' + f.name] AS path ORDER BY path",
        ns=WAREHOUSE, dataset="reports.daily_sales", field="amount", database_=database)
    return ([f"{r['source']} -> {r['job']} -> {r['output']}" for r in jobs]
            + ["column lineage of reports.daily_sales.amount:"]
            + ["  " + " -> ".join(r["path"]) for r in columns])
