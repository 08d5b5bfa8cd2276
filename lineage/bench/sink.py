"""``lineage bench sink``: change records/s written to Neo4j by the sink's code path.

Change records made by the real processor pipeline
(:func:`lineage.bench.processor.pipeline_changes` over a
:func:`lineage.bench.workload.synthetic_events` workload in a namespace of its own) are written
to Neo4j by the sink's own code path: :func:`sinks.graph.row` for each record, records grouped
by kind in batches of the sink's batch size, each batch one ``execute_write`` transaction of
:func:`sinks.graph.write_batch` (:func:`lineage.bench.neo4j_io.write_records`). In-process the
records are already decoded; ``--kafka`` publishes them (Avro, as the processor does) to a fresh
changes topic and times a real ``lineage sink`` subprocess until it has committed every offset.

Run it against a stack of its own, never one that tests or users share (see
docs/benchmarks.md for the environment)::

    $ lineage bench sink --events 10000              # in-process write path
    $ lineage bench sink --events 10000 --kafka      # changes topic -> `lineage sink`

>>> SinkResult(records=40_000, events=8_000, seconds=2.0).rate
20000.0
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from lineage.bench.measure import CommitWindow, commit_window
from lineage.bench.neo4j_io import connect, write_records
from lineage.bench.processor import pipeline_changes
from lineage.bench.workload import encode_events, synthetic_events
from schemas.codec import decode, encode
from sinks import graph
from sinks.settings import SinkSettings

Log = Callable[[str], None]


@dataclass(frozen=True)
class SinkWorkload:
    """Change records from the processor pipeline, Avro-encoded as they travel on Kafka."""

    namespace: str
    events: int
    messages: list[tuple[bytes, bytes]]

    @property
    def records(self) -> int:
        return len(self.messages)

    def kinds(self) -> Counter[str]:
        return Counter(decode(value)["payload"][0] for _key, value in self.messages)


@dataclass(frozen=True)
class SinkResult:
    """What one sink benchmark run measured."""

    records: int
    events: int
    seconds: float
    row_seconds: float = 0.0
    batches: int = 0
    wall_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Change records per second."""
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def event_rate(self) -> float:
        """The raw events per second these records stand for."""
        return self.events / self.seconds if self.seconds else 0.0


def sink_workload(events: int, *, runs_per_job: int = 2, seed: int = 1,
                  namespace: str | None = None) -> SinkWorkload:
    """About ``events`` synthetic events run through ``process()``; their records, encoded.

    The namespace is fresh unless given, so every run writes new nodes (the cold, all-create
    case) and never touches anyone else's.
    """
    namespace = namespace or f"bench://sink-{uuid.uuid4().hex[:8]}"
    jobs = max(1, events // (2 * runs_per_job))  # START + COMPLETE per run
    raw = encode_events(synthetic_events(jobs=jobs, runs_per_job=runs_per_job, seed=seed,
                                         namespace=namespace))
    messages = [(change.key.encode(), encode(change.record(0)))
                for change in pipeline_changes(value for _key, value in raw)]
    return SinkWorkload(namespace, len(raw), messages)


def bench_sink_in_process(workload: SinkWorkload, settings: SinkSettings,
                          batch_size: int | None = None) -> SinkResult:
    """Records already decoded, straight into Neo4j through the sink's write path."""
    records = [decode(value) for _key, value in workload.messages]
    driver = connect(settings)
    try:
        graph.migrate(driver, settings.neo4j.database)
        started = time.perf_counter()
        count, batches, row_seconds = write_records(
            driver, records, batch_size=batch_size or settings.sink.batch_size,
            database=settings.neo4j.database)
        seconds = time.perf_counter() - started
    finally:
        driver.close()
    return SinkResult(count, workload.events, seconds, row_seconds, batches, seconds)


def bench_sink_kafka(workload: SinkWorkload, settings: SinkSettings, *,
                     batch_size: int | None = None, log: Log = print) -> SinkResult:
    """Publish the records to a fresh changes topic; time one ``lineage sink`` until committed.

    ``seconds`` runs from the sink's first offset commit to its last (start-up, schema check and
    the group join are not counted; the first batch is then not counted either);
    ``wall_seconds`` from starting the subprocess to the last commit.
    """
    from confluent_kafka import Consumer, Producer, TopicPartition

    from core import topics
    from core.kafka_config import admin_client, consumer_config, producer_config

    tag = uuid.uuid4().hex[:8]
    topic, dlq, group = f"bench-changes-{tag}", f"bench-changes-dlq-{tag}", f"bench-sink-{tag}"
    kafka = settings.kafka
    topics.ensure_topics(kafka, {topic: kafka.changes_partitions, dlq: 1})
    producer = Producer(producer_config(kafka, **{
        "linger.ms": 20, "compression.type": "lz4", "message.max.bytes": 8_000_000}))
    for key, value in workload.messages:
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    producer.flush(120)
    log(f"published {workload.records} change records to {topic}; starting `lineage sink`")
    env = {**os.environ, "LINEAGE_KAFKA__CHANGES_TOPIC": topic,
           "LINEAGE_KAFKA__CHANGES_DLQ_TOPIC": dlq, "LINEAGE_SINK__GROUP_ID": group,
           "LINEAGE_SINK__METRICS_PORT": "0"}
    if batch_size:
        env["LINEAGE_SINK__BATCH_SIZE"] = str(batch_size)
    consumer = Consumer(consumer_config(kafka, group))
    # The sink's log goes to a file: a pipe nobody reads could fill up and stall the sink.
    with tempfile.TemporaryFile() as errors:
        launched = time.perf_counter()
        sink = subprocess.Popen([sys.executable, "-m", "lineage", "sink"], env=env,
                                stdout=subprocess.DEVNULL, stderr=errors)
        try:
            window = _wait_for_commits(consumer, topic, workload.records, sink, errors, log)
            dead = consumer.get_watermark_offsets(TopicPartition(dlq, 0), timeout=30)[1]
        finally:
            sink.terminate()
            sink.wait(60)
            consumer.close()
            admin_client(kafka).delete_topics([topic, dlq])
    if dead:
        log(f"warning: {dead} records went to the changes DLQ")
    records, seconds, from_start = window.timed(workload.records, launched)
    if from_start:
        log("the first commit covered every record: timed from the sink's start instead")
    return SinkResult(records, round(workload.events * records / max(1, workload.records)),
                      seconds, wall_seconds=window.last - launched)


def _wait_for_commits(consumer: Any, topic: str, records: int, sink: subprocess.Popen[bytes],
                      errors: IO[bytes], log: Log) -> CommitWindow:
    """The sink group's first and last commit on ``topic`` (see
    :func:`lineage.bench.measure.commit_window`)."""
    def check() -> None:
        if sink.poll() is not None:
            errors.seek(0)
            error = errors.read().decode(errors="replace")
            raise RuntimeError(f"the benchmark's sink exited early: {error[-2000:]}")

    return commit_window(consumer, topic, check,
                         lambda done: log(f"  sink committed {done}/{records} records"),
                         progress_seconds=5)
