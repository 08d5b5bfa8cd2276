"""``lineage demo``: README command 1.

Until the processor and the sink land, the demo proves the foundation end to end: it brings the
stack up, publishes a real OpenLineage RunEvent to the raw topic with the standard transport's
key, reads that exact message back from Kafka, writes the job and its datasets to Neo4j with the
graph contract's labels (parameterised Cypher, idempotent MERGE), and reads the upstream of the
output dataset back.

>>> from lineage.settings import StackSettings
>>> run_demo(StackSettings())   # doctest: +SKIP
stack is up ...
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lineage.settings import StackSettings
from lineage.stack.services import produce_and_read_back

NAMESPACE = "demo://awsome-retail"
PRODUCER = "https://github.com/openlineage-stream/demo"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def demo_event(run_id: str) -> dict[str, Any]:
    """A small but complete OpenLineage RunEvent: two inputs aggregated into one output."""

    def dataset(name: str) -> dict[str, Any]:
        return {"namespace": "postgres://retail-db:5432", "name": name}

    return {
        "eventType": "COMPLETE",
        "eventTime": datetime.now(UTC).isoformat(),
        "run": {"runId": run_id},
        "job": {"namespace": NAMESPACE, "name": "sales_rollup"},
        "inputs": [dataset("market.retail_sales"), dataset("market.online_sales")],
        "outputs": [dataset("market.sales")],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def run_demo(settings: StackSettings, log: Callable[[str], None] = print) -> None:
    """Stack up, then a verified Kafka round trip and Neo4j write/read of one event."""
    from lineage.stack import LocalStack

    seconds = LocalStack(settings, log=log).up()
    log(f"stack is up ({seconds:.1f}s)")
    settings = StackSettings()  # re-read: `up` may just have written the connection file
    event = demo_event(str(uuid.uuid4()))
    raw = json.dumps(event).encode()
    key = f"run:{event['job']['namespace']}/{event['job']['name']}".encode()
    partition, offset = produce_and_read_back(settings.kafka.bootstrap_servers,
                                              settings.kafka.raw_topic, raw, key=key)
    log(f"kafka: published the event to {settings.kafka.raw_topic}[{partition}]@{offset}")
    log("kafka: read the same bytes back")
    upstream = _write_and_read_graph(settings, event)
    log("neo4j: wrote the job and its datasets; upstream of market.sales:")
    for line in upstream:
        log(f"  {line}")
    log(f"Neo4j Browser: http://{settings.stack.host}:{settings.stack.http_port}/browser/ "
        f"(user neo4j, password in {settings.state_dir / 'neo4j' / 'password'})")


def _write_and_read_graph(settings: StackSettings, event: dict[str, Any]) -> list[str]:
    from neo4j import GraphDatabase

    write = """
    MERGE (j:Job {namespace: $job.namespace, name: $job.name})
    WITH j
    UNWIND $inputs AS i
    MERGE (d:Dataset {namespace: i.namespace, name: i.name})
    MERGE (d)-[r:INPUT_TO]->(j)
      ON CREATE SET r.firstSeen = $time
    SET r.lastSeen = $time
    WITH DISTINCT j
    UNWIND $outputs AS o
    MERGE (d:Dataset {namespace: o.namespace, name: o.name})
    MERGE (j)-[r:OUTPUT_TO]->(d)
      ON CREATE SET r.firstSeen = $time
    SET r.lastSeen = $time
    """
    read = """
    MATCH (src:Dataset)-[:INPUT_TO]->(j:Job)
          -[:OUTPUT_TO]->(out:Dataset {namespace: $ns, name: $name})
    RETURN src.name AS source, j.name AS job, out.name AS output ORDER BY source
    """
    output = event["outputs"][0]
    with GraphDatabase.driver(settings.neo4j.uri, auth=settings.neo4j.auth()) as driver:
        driver.execute_query(write, job=event["job"], inputs=event["inputs"],
                             outputs=event["outputs"], time=event["eventTime"],
                             database_=settings.neo4j.database)
        records, _, _ = driver.execute_query(read, ns=output["namespace"], name=output["name"],
                                             database_=settings.neo4j.database)
    return [f"{r['source']} -> {r['job']} -> {r['output']}" for r in records]
