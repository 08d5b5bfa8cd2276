"""The sink's Prometheus metrics (served by ``lineage sink`` on ``METRICS_PORT``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECORDS_WRITTEN = Counter(
    "lineage_sink_records_total", "Change records written to Neo4j, by kind.", ["kind"],
)
DEAD_LETTERS = Counter(
    "lineage_sink_dead_letters_total", "Change records sent to the changes DLQ, by reason.",
    ["reason"],
)
WRITE_SECONDS = Histogram(
    "lineage_sink_write_seconds", "Time to write one batch to Neo4j (committed transaction).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WRITE_RETRIES = Counter(
    "lineage_sink_write_retries_total", "Batch writes retried because Neo4j was unavailable.",
)
BATCH_RECORDS = Histogram(
    "lineage_sink_batch_records", "Change records per batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
LAST_COMMIT = Gauge(
    "lineage_sink_last_commit_timestamp_seconds", "When the sink last committed offsets.",
)
