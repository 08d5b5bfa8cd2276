"""The raw limits of the pipeline's parts on this machine, measured in the same run.

- **Kafka:** the workload's exact bytes produced (the emitter's settings: idempotent,
  ``acks=all``, lz4) to a fresh topic while one confluent-kafka consumer reads them back; the
  clock runs from the first produce to the last message consumed.
- **Neo4j:** as many rows as the pipeline wrote change records, merged by ``UNWIND`` in batches
  of the sink's size on a uniquely constrained label, each row with a payload of the change
  records' mean size: the cheapest idempotent write Neo4j offers for that row count.

Example::

    $ lineage bench e2e bench/work/1k.ndjson     # runs both after the pipeline's runs
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from core.kafka_config import admin_client, consumer_config
from core.settings import CommonSettings
from core.topics import ensure_topics
from producers.emitter import Emitter

CEILING_LABEL = "LineageBenchCeiling"


@dataclass(frozen=True)
class Ceiling:
    """One part's raw throughput."""

    part: str
    items: int  # messages (Kafka) or rows (Neo4j)
    seconds: float

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


def kafka_ceiling(messages: Sequence[tuple[bytes, str | None]], settings: CommonSettings,
                  partitions: int | None = None) -> Ceiling:
    """Produce ``messages`` and consume them back concurrently (see the module docstring)."""
    from confluent_kafka import Consumer, TopicPartition

    kafka = settings.kafka
    topic = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    count = partitions or settings.kafka.raw_partitions
    ensure_topics(kafka, {topic: count})
    # Short fetch waits: the clock stops at the last message, not at a poll timeout.
    consumer = Consumer(consumer_config(kafka, f"{topic}-reader", **{
        "auto.offset.reset": "earliest", "fetch.max.bytes": 52_428_800,
        "fetch.wait.max.ms": 10}))
    consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
    done = threading.Event()
    received = [0]
    last = [0.0]

    def read() -> None:
        while received[0] < len(messages):
            for message in consumer.consume(10_000, timeout=0.05):
                if message.error() is None:
                    received[0] += 1
        last[0] = time.perf_counter()
        done.set()

    reader = threading.Thread(target=read, name="ceiling-reader", daemon=True)
    try:
        started = time.perf_counter()
        reader.start()
        with Emitter(kafka, topic) as emitter:
            for value, key in messages:
                emitter.emit_encoded(value, key)
        if not done.wait(600):
            raise TimeoutError(f"read back {received[0]} of {len(messages)} messages in 600s")
    finally:
        done.wait(5)
        consumer.close()
        admin_client(kafka, log_level=3).delete_topics([topic])
    return Ceiling("kafka produce+consume", len(messages), round(last[0] - started, 3))


def neo4j_ceiling(rows: int, settings: CommonSettings, *, batch_size: int = 2000,
                  payload_bytes: int = 500) -> Ceiling:
    """Merge ``rows`` rows by UNWIND in batches (see the module docstring), then remove them."""
    from core.neo4j_driver import driver as neo4j_driver

    database = settings.neo4j.database
    payload = "x" * payload_bytes
    tag = uuid.uuid4().hex[:8]
    with neo4j_driver(settings.neo4j) as driver:
        driver.execute_query(f"CREATE CONSTRAINT bench_ceiling_id IF NOT EXISTS FOR "
                             f"(n:{CEILING_LABEL}) REQUIRE n.id IS UNIQUE", database_=database)
        driver.execute_query("CALL db.awaitIndexes(300)", database_=database)
        try:
            started = time.perf_counter()
            for first in range(0, rows, batch_size):
                batch = [{"id": f"{tag}-{i}", "payload": payload}
                         for i in range(first, min(rows, first + batch_size))]
                driver.execute_query(
                    f"UNWIND $rows AS r MERGE (n:{CEILING_LABEL} {{id: r.id}}) "
                    "SET n.payload = r.payload", rows=batch, database_=database)
            seconds = time.perf_counter() - started
        finally:
            with driver.session(database=database) as session:
                session.run(f"MATCH (n:{CEILING_LABEL}) CALL (n) {{ DELETE n }} "
                            "IN TRANSACTIONS OF 10000 ROWS").consume()
    return Ceiling("neo4j unwind merge", rows, round(seconds, 3))
