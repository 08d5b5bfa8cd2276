"""The sink's Prometheus metrics (served by ``lineage sink`` on ``METRICS_PORT``).

Labels are bounded: record kinds (the Avro payload types), dead-letter reasons, the consumer
group and partitions, and the graph contract's node labels and relationship types
(:data:`sinks.graph.NODE_LABELS`, :data:`sinks.graph.RELATIONSHIP_TYPES`). No job, dataset or run
name is ever a label. Label values known in advance are created at import with a zero.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from sinks.graph import ORDER

# Fine below a minute (a live pipeline, where the SLO and the benchmark's percentiles sit), then
# coarse up to a day (a replay, a backfill, a pipeline catching up).
_FRESHNESS_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 45,
                      60, 120, 300, 900, 3600, 21600, 86400)

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
    "lineage_sink_write_retries_total",
    "Neo4j writes (or the schema migration) retried because Neo4j was unavailable or busy.",
)
STATEMENT_SECONDS = Histogram(
    "lineage_sink_statement_seconds",
    "Time of each record kind's statement inside a batch's transaction (VersionValidity: the "
    "datasets' validTo recompute; JobTimeline: job versions and intervals from the runs); the "
    "sums say where Neo4j's time goes.", ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_RECORDS = Histogram(
    "lineage_sink_batch_records", "Change records per batch.",
    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
)
LAST_COMMIT = Gauge(
    "lineage_sink_last_commit_timestamp_seconds", "When the sink last committed offsets.",
)
FRESHNESS = Histogram(
    "lineage_sink_freshness_seconds",
    "From a change record's event eventTime to the commit of its Neo4j transaction (queryable).",
    buckets=_FRESHNESS_BUCKETS,
)
ARRIVAL_FRESHNESS = Histogram(
    "lineage_sink_arrival_freshness_seconds",
    "From its event's arrival on the raw topic to the commit of a change record in Neo4j.",
    buckets=_FRESHNESS_BUCKETS,
)
CONSUMER_LAG = Gauge(
    "lineage_sink_consumer_lag_messages",
    "Change records behind the end of the changes topic, by consumer group and partition.",
    ["group", "partition"],
)
GRAPH_NODES = Gauge(
    "lineage_sink_graph_nodes", "Nodes in the graph, by label (refreshed periodically).",
    ["label"],
)
GRAPH_RELATIONSHIPS = Gauge(
    "lineage_sink_graph_relationships",
    "Relationships in the graph, by type (refreshed periodically).", ["type"],
)

for _kind in ORDER:
    RECORDS_WRITTEN.labels(_kind)
for _reason in ("undecodable", "contract", "neo4j_refused"):
    DEAD_LETTERS.labels(_reason)
