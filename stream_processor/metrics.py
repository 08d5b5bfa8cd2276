"""The processor's Prometheus metrics (served on ``LINEAGE_PROCESSOR__METRICS_PORT``).

Labels are bounded: ingest paths (:data:`core.topics.INGEST_PATHS`), reason codes, standard
facet keys, repair codes, record and dead-letter kinds, the consumer group and partitions. No
job, dataset or run name is ever a label. Label values known in advance are created at import
with a zero, so dashboards and alerts see a series before the first event of its kind.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from core.topics import INGEST_PATHS

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_AGE_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400)

EVENTS_CONSUMED = Counter(
    "lineage_processor_events_consumed_total",
    "Raw messages consumed from the raw topic, by the path they came in (lineage.path header).",
    ["path"],
)
EVENTS_ACCEPTED = Counter(
    "lineage_processor_events_accepted_total", "Events that passed validation."
)
EVENTS_REJECTED = Counter(
    "lineage_processor_events_rejected_total",
    "Messages sent to the DLQ, by their first reason code.", ["reason"],
)
DEAD_LETTERS = Counter(
    "lineage_processor_dead_letters_total",
    "Messages sent to the DLQ topic, by kind: event (rejected), facet (one facet dropped).",
    ["kind"],
)
FACETS_DROPPED = Counter(
    "lineage_processor_facets_dropped_total",
    "Standard facets dropped for violating their schema, by facet key.", ["facet"],
)
DUPLICATES = Counter(
    "lineage_processor_duplicates_total", "Events already processed (same canonical content)."
)
REPAIRS = Counter(
    "lineage_processor_repairs_total", "Repairs applied in repair mode, by repair.", ["repair"]
)
CHANGES = Counter(
    "lineage_processor_changes_total", "Change records sent to the changes topic, by kind.",
    ["kind"],
)
CHANGES_SUPPRESSED = Counter(
    "lineage_processor_changes_suppressed_total",
    "Change records not sent because they would change nothing in the graph.",
)
EVENT_AGE = Histogram(
    "lineage_processor_event_age_seconds",
    "From an event's eventTime to the moment its changes were acknowledged by Kafka.",
    buckets=_AGE_BUCKETS,
)
PROCESSING_LATENCY = Histogram(
    "lineage_processor_latency_seconds",
    "From a message's arrival on the raw topic to the acknowledgement of its changes.",
    buckets=_LATENCY_BUCKETS,
)
BATCH_EVENTS = Histogram(
    "lineage_processor_batch_events", "Messages processed per batch.",
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2500),
)
CONSUMER_LAG = Gauge(
    "lineage_processor_consumer_lag_messages",
    "Messages behind the end of the raw topic, by consumer group and partition (set per batch).",
    ["group", "partition"],
)
STATE_EXPIRED = Counter(
    "lineage_processor_state_expired_total",
    "Dedup and suppression entries expired past the retention.",
)
PARTITIONS_REREAD = Counter(
    "lineage_processor_partitions_reread_total",
    "Raw partitions re-read from their commit because it stopped moving with events to go.",
)

for _path in INGEST_PATHS:
    EVENTS_CONSUMED.labels(_path)
for _kind in ("event", "facet"):
    DEAD_LETTERS.labels(_kind)
