"""``lineage bench emitter``: events/s from the emitter to an acknowledged Kafka topic.

The events are the synthetic workload's (about 9 KB of JSON each, with schemas and column
lineage), built before the clock starts; the clock stops when every event is acknowledged
(``acks=all``). A fresh topic per run, deleted afterwards.

Example::

    $ lineage bench emitter --events 50000
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from core.kafka_config import admin_client
from core.settings import KafkaSettings
from core.topics import ensure_topics
from lineage.bench.measure import EventRate
from lineage.bench.workload import synthetic_events
from producers.emitter import Emitter


@dataclass(frozen=True)
class EmitterResult(EventRate):
    """One emitter benchmark run."""

    events: int
    megabytes: float
    seconds: float


def bench_emitter(kafka: KafkaSettings, events: int, *, partitions: int = 6,
                  compression: Literal["zstd", "lz4", "none"] = "lz4") -> EmitterResult:
    """Emit about ``events`` synthetic events and wait for every acknowledgement."""
    batch = list(synthetic_events(jobs=max(1, events // 4), runs_per_job=2, seed=1,
                                  duplicate_rate=0.0))[:events]
    size = sum(len(json.dumps(e)) for e in batch) / 1e6
    topic = f"bench-emitter-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka, {topic: partitions})
    try:
        started = time.perf_counter()
        with Emitter(kafka, topic, compression=compression) as emitter:
            emitter.emit_all(batch)
        seconds = time.perf_counter() - started
    finally:
        admin_client(kafka).delete_topics([topic])
    return EmitterResult(len(batch), size, seconds)
