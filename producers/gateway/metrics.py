"""The gateway's Prometheus metrics (served by ``lineage gateway`` on ``GET /metrics``) and the
middleware that counts and times every answer.

Labels are bounded: endpoints (a fixed map of paths, anything else is ``other``), HTTP status
codes, and reason codes (the validator's codes and the gateway's own, listed on
:data:`EVENTS_REFUSED`). No job, dataset or run name is ever a label. The lineage read's own
query latency is declared beside the read (:mod:`lineage.read_api`).

>>> observe = Observe(None, {"/api/v1/lineage": "lineage"}, reads={"/api/v1/lineage": "read"})
>>> observe.endpoint("/api/v1/lineage/", "POST"), observe.endpoint("/api/v1/lineage", "HEAD")
('lineage', 'read')
>>> observe.endpoint("/favicon.ico", "GET")
'other'
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Final

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "EVENTS_ACCEPTED",
    "EVENTS_REFUSED",
    "IDEMPOTENT_REPLAYS",
    "KAFKA_ACK_LATENCY",
    "LATENCY_BUCKETS",
    "REQUESTS",
    "REQUEST_LATENCY",
    "Observe",
]

LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

REQUESTS = Counter("lineage_gateway_requests_total", "HTTP requests, by endpoint and status.",
                   ["endpoint", "status"])
REQUEST_LATENCY = Histogram("lineage_gateway_request_seconds",
                            "From a request's arrival to its answer, by endpoint.", ["endpoint"],
                            buckets=LATENCY_BUCKETS)
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
                              buckets=LATENCY_BUCKETS)
IDEMPOTENT_REPLAYS = Counter("lineage_gateway_idempotent_replays_total",
                             "Requests answered from the idempotency store, not published again.")

_READ_METHODS: Final = frozenset({"GET", "HEAD"})


class Observe:
    """ASGI middleware: counts every answer by endpoint and status, and times it.

    ``endpoints`` names each path's endpoint label; ``reads`` names the label of a GET (or HEAD)
    on a path whose read is another endpoint than its write (Marquez reads lineage on the path
    it writes it to).
    """

    def __init__(self, app: ASGIApp, endpoints: Mapping[str, str],
                 reads: Mapping[str, str] | None = None) -> None:
        self.app = app
        self.endpoints = dict(endpoints)
        self.reads = dict(reads or {})

    def endpoint(self, path: str, method: str) -> str:
        """The endpoint label of a request (``other`` for a path the gateway does not serve)."""
        path = path.rstrip("/") or "/"
        if method in _READ_METHODS and path in self.reads:
            return self.reads[path]
        return self.endpoints.get(path, "other")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = self.endpoint(scope["path"], scope["method"])
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            REQUESTS.labels(endpoint, str(status)).inc()
            REQUEST_LATENCY.labels(endpoint).observe(time.perf_counter() - started)
