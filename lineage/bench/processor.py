"""``lineage bench processor``: events/s of the processor, in-process and through Kafka.

In-process: parse + validate + dedup + version + suppress + Avro-encode, one core, on the
synthetic workload (2-5 inputs, 1-2 outputs, 10-40 columns with column lineage, 5% duplicates)
plus the shared OpenLineage corpus when it is present. Through Kafka: the same events published to
a fresh raw topic, one ``lineage process`` worker, timed until the worker has committed them all.

The other benchmarks make their change records with :func:`pipeline_changes`, as a worker
would.

Example::

    $ lineage bench processor --events 20000
    $ lineage bench processor --events 20000 --kafka

>>> events = encode_events(synthetic_events(jobs=2, runs_per_job=1, fail_rate=0.0))
>>> sorted({change.kind for change in pipeline_changes(value for _key, value in events)})[:2]
['ColumnLineage', 'Dataset']
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from core.kafka_config import consumer_config, producer_config
from lineage.bench.measure import EventRate, commit_window
from lineage.bench.workload import encode_events, synthetic_events
from lineage.rebuild import Replay
from schemas.codec import encode
from stream_processor.pipeline import process
from stream_processor.settings import ProcessorSettings
from stream_processor.state import Plan
from stream_processor.versioning import Change

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "openlineage" / "events"


@dataclass(frozen=True)
class BenchResult(EventRate):
    """What one benchmark run measured."""

    events: int
    seconds: float
    changes: int
    duplicates: int
    rejected: int


def workload(events: int, seed: int = 1,
             runs_per_job: int = 2) -> list[tuple[bytes | None, bytes]]:
    """About ``events`` messages: the synthetic workload plus the corpus (when present).

    Few runs per job is the hard case (most content is new); many runs per job is a steady
    state in which most records would change nothing and are suppressed.
    """
    corpus = [(None, p.read_bytes()) for p in sorted(CORPUS.rglob("*.json"))] if \
        CORPUS.is_dir() else []
    jobs = max(1, (events - len(corpus)) // (2 * runs_per_job))  # START + COMPLETE per run
    pairs: list[tuple[bytes | None, bytes]] = list(
        encode_events(synthetic_events(jobs=jobs, runs_per_job=runs_per_job, seed=seed)))
    return pairs + corpus


def pipeline_changes(values: Iterable[bytes], *, retention_days: float | None = None,
                     stats: Counter[str] | None = None) -> Iterator[Change]:
    """The change records the processor makes of raw ``values``, state in a dict as a worker.

    Every value must be accepted (a benchmark's workload is valid). With ``retention_days``,
    state entries whose last time is that far behind the newest event are expired from time
    to time, as the worker does, so that the state stays small on long workloads (the product's
    :class:`lineage.rebuild.Replay`, which ``lineage rebuild`` runs). ``stats`` counts the
    ``events`` and ``records`` so far.
    """
    replay = Replay(retention_days=retention_days)
    for value in values:
        outcome = replay.feed(value)
        if not outcome.accepted:
            raise RuntimeError(f"a generated event was refused: {outcome.dead_letters}")
        yield from outcome.changes
        if stats is not None:
            stats["events"] += 1
            stats["records"] += len(outcome.changes)


def bench_in_process(messages: list[tuple[bytes | None, bytes]]) -> BenchResult:
    """Run the whole per-message pipeline over ``messages`` with a dict as state."""
    state: dict[str, list[int]] = {}
    changes = duplicates = rejected = 0
    started = time.perf_counter()
    for _key, value in messages:
        outcome = process(value, Plan(state), ingested_at=0)
        for change in outcome.changes:
            encode(change.record(0))
        outcome.plan.commit()
        changes += len(outcome.changes)
        duplicates += outcome.duplicate
        rejected += not outcome.accepted
    return BenchResult(len(messages), time.perf_counter() - started, changes, duplicates,
                       rejected)


def bench_kafka(messages: list[tuple[bytes | None, bytes]], settings: ProcessorSettings,
                log: Callable[[str], None] = print) -> BenchResult:
    """Publish ``messages`` to fresh topics, run one worker, time until all are committed."""
    from confluent_kafka import Consumer, Producer

    tag = uuid.uuid4().hex[:8]
    env = {
        "LINEAGE_KAFKA__RAW_TOPIC": f"bench-raw-{tag}",
        "LINEAGE_KAFKA__DLQ_TOPIC": f"bench-dlq-{tag}",
        "LINEAGE_KAFKA__CHANGES_TOPIC": f"bench-changes-{tag}",
        "LINEAGE_PROCESSOR__APP_ID": f"bench-{tag}",
        "LINEAGE_PROCESSOR__METRICS_PORT": "0",
        "LINEAGE_PROCESSOR__DATA_DIR": tempfile.mkdtemp(prefix="lineage-bench-"),
    }
    producer = Producer(producer_config(settings.kafka, **{
        "linger.ms": 20, "message.max.bytes": 8_000_000}))
    for key, value in messages:
        producer.produce(env["LINEAGE_KAFKA__RAW_TOPIC"], value, key=key)
        producer.poll(0)
    producer.flush(120)
    log(f"published {len(messages)} events to {env['LINEAGE_KAFKA__RAW_TOPIC']}; "
        "starting a worker")
    launched = time.perf_counter()
    worker = subprocess.Popen([sys.executable, "-m", "lineage", "process"],
                              env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    consumer = Consumer(consumer_config(settings.kafka, env["LINEAGE_PROCESSOR__APP_ID"]))
    try:
        def check() -> None:
            if worker.poll() is not None:
                raise RuntimeError("the benchmark worker exited early")

        window = commit_window(consumer, env["LINEAGE_KAFKA__RAW_TOPIC"], check, interval=0.2)
    finally:
        worker.terminate()
        worker.wait(60)
        consumer.close()
    # Timed from the first commit, so the worker's start-up and group join are not counted.
    events, seconds, from_start = window.timed(len(messages), launched)
    if from_start:
        log("the first commit covered every event: timed from the worker's start instead")
    return BenchResult(events, seconds, 0, 0, 0)
