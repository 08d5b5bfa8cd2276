"""The gateway's Prometheus metrics (served by ``lineage gateway`` on ``GET /metrics``).

Labels are bounded: endpoints (a fixed map of paths, anything else is ``other``), HTTP status
codes, and reason codes (the validator's codes and the gateway's own, listed on
:data:`EVENTS_REFUSED`). No job, dataset or run name is ever a label.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter("lineage_gateway_requests_total", "HTTP requests, by endpoint and status.",
                   ["endpoint", "status"])
REQUEST_LATENCY = Histogram("lineage_gateway_request_seconds",
                            "From a request's arrival to its answer, by endpoint.", ["endpoint"],
                            buckets=_LATENCY_BUCKETS)
EVENTS_ACCEPTED = Counter("lineage_gateway_events_accepted_total",
                          "Events written to the raw topic, acknowledged by Kafka, answered 201.")
EVENTS_REFUSED = Counter(
    "lineage_gateway_events_refused_total",
    "Events (or, before the body is read, requests) refused, by reason: a validator reason code "
    "(its first one), or unauthorized, forbidden, unsupported_media_type, too_large, "
    "too_many_events, bad_request, idempotency_conflict, batch_refused, kafka_unavailable.",
    ["reason"])
KAFKA_ACK_LATENCY = Histogram("lineage_gateway_kafka_ack_seconds",
                              "From producing a request's events to Kafka's last acknowledgement.",
                              buckets=_LATENCY_BUCKETS)
IDEMPOTENT_REPLAYS = Counter("lineage_gateway_idempotent_replays_total",
                             "Requests answered from the idempotency store, not published again.")
LINEAGE_QUERY_LATENCY = Histogram(
    "lineage_gateway_lineage_query_seconds",
    "The Neo4j query of a lineage read (GET /api/v1/lineage), driver call included.",
    buckets=_LATENCY_BUCKETS)
