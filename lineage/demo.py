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
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lineage.errors import ServiceUnavailable
from lineage.settings import StackSettings

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
    partition, offset = _publish(settings, key, raw)
    log(f"kafka: published the event to {settings.kafka.raw_topic}[{partition}]@{offset}")
    echoed = _read_back(settings, partition, offset)
    if echoed != raw:
        raise ServiceUnavailable("kafka returned different bytes than were published")
    log("kafka: read the same bytes back")
    upstream = _write_and_read_graph(settings, json.loads(echoed))
    log("neo4j: wrote the job and its datasets; upstream of market.sales:")
    for line in upstream:
        log(f"  {line}")
    log(f"Neo4j Browser: http://{settings.stack.host}:{settings.stack.http_port}/browser/ "
        f"(user neo4j, password in {settings.state_dir / 'neo4j' / 'password'})")


def _publish(settings: StackSettings, key: bytes, value: bytes) -> tuple[int, int]:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "acks": "all", "enable.idempotence": True, "log_level": 3})
    result: list[tuple[Any, Any]] = []
    producer.produce(settings.kafka.raw_topic, value, key=key,
                     on_delivery=lambda err, msg: result.append((err, msg)))
    producer.flush(30)
    if not result:
        raise ServiceUnavailable("kafka did not acknowledge the event within 30s")
    err, msg = result[0]
    if err is not None:
        raise ServiceUnavailable(f"kafka did not accept the event: {err}")
    return msg.partition(), msg.offset()


def _read_back(settings: StackSettings, partition: int, offset: int) -> bytes:
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "group.id": "lineage-demo", "enable.auto.commit": False})
    try:
        consumer.assign([TopicPartition(settings.kafka.raw_topic, partition, offset)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None and msg.offset() == offset:
                return msg.value() or b""
    finally:
        consumer.close()
    raise ServiceUnavailable("kafka did not return the published event within 30s")


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
