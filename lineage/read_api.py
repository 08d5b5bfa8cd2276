"""Marquez's lineage read on the gateway: ``GET /api/v1/lineage?nodeId=...&depth=N`` from Neo4j.

The gateway (:mod:`producers.gateway`) is a stage: it publishes and knows nothing of the graph.
This module adds the read as a route of its app (:class:`producers.gateway.app.ReadRoute`, behind
the gateway's bearer tokens: any known token may read), and :func:`create_app` is the app that
``lineage gateway`` serves. :mod:`lineage.marquez_api` parses the request, holds the Cypher
statement (every user value a parameter) and shapes the answer; this module runs it and answers
over HTTP (docs/gateway.md, "Reading lineage"):

200 Marquez's graph; 400 a bad ``nodeId`` or ``depth`` (every reason listed); 401 no or an
unknown token; 404 no such node; 503 Neo4j unavailable, or the query ran past
``LINEAGE_GATEWAY__LINEAGE_TIMEOUT_SECONDS`` (with ``Retry-After``); 500 Neo4j refused the
query.

The Neo4j driver (:func:`core.neo4j_driver.driver`) is opened on the first read, so that a
gateway that only publishes never needs Neo4j (nor its password).

>>> from starlette.testclient import TestClient
>>> from producers.gateway.settings import GatewaySettings
>>> client = TestClient(create_app(GatewaySettings()))
>>> answer = client.get("/api/v1/lineage", params={"nodeId": "table:pg:orders"})
>>> answer.status_code, answer.json()["reasons"][0]["parameter"]
(400, 'nodeId')
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Final

import anyio.to_thread
import msgspec
from neo4j.exceptions import (
    AuthError,
    ConnectionAcquisitionTimeoutError,
    DriverError,
    Neo4jError,
    SessionExpired,
    TransientError,
)
from neo4j.exceptions import ServiceUnavailable as Neo4jUnavailable
from prometheus_client import Histogram
from starlette.requests import Request
from starlette.responses import Response

from core.errors import BadRequest, ConfigError
from core.neo4j_driver import driver
from lineage import marquez_api
from producers.gateway.app import EVENT_PATH, Answer, ReadRoute, problem
from producers.gateway.app import create_app as create_gateway_app
from producers.gateway.metrics import LATENCY_BUCKETS

if TYPE_CHECKING:
    from neo4j import Driver
    from starlette.applications import Starlette

    from producers.gateway.publish import Publisher
    from producers.gateway.settings import GatewaySettings

__all__ = ["LINEAGE_QUERY_LATENCY", "LineageReads", "create_app"]

log = logging.getLogger("lineage.gateway")

LINEAGE_QUERY_LATENCY: Final = Histogram(
    "lineage_gateway_lineage_query_seconds",
    "The Neo4j query of a lineage read (GET /api/v1/lineage), driver call included.",
    buckets=LATENCY_BUCKETS)

class LineageReads:
    """The lineage read route and the Neo4j driver it shares across requests."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.options = settings.gateway
        self._neo4j: Driver | None = None
        self._neo4j_lock = threading.Lock()

    @property
    def routes(self) -> list[ReadRoute]:
        """The read routes to add to the gateway's app."""
        return [ReadRoute(EVENT_PATH, self.get_lineage, "lineage_read")]

    async def get_lineage(self, request: Request) -> Response:
        """Marquez's lineage around ``nodeId``, ``depth`` steps out (the token is checked)."""
        params = request.query_params
        reasons: list[dict[str, str]] = []
        ref: marquez_api.NodeRef | None = None
        depth = marquez_api.DEFAULT_DEPTH
        try:
            ref = marquez_api.parse_node_id(params.get("nodeId"))
        except BadRequest as exc:
            reasons.append({"code": "bad_node_id", "parameter": "nodeId", "message": str(exc)})
        try:
            depth = marquez_api.parse_depth(params.get("depth"))
        except BadRequest as exc:
            reasons.append({"code": "bad_depth", "parameter": "depth", "message": str(exc)})
        if reasons or ref is None:
            first = reasons[0]
            return problem(400, first["code"], first["message"], reasons=reasons).response()
        answer = await anyio.to_thread.run_sync(self._read, ref, depth, params["nodeId"])
        return answer.response()

    async def close(self) -> None:
        """Close the driver, if a read opened it."""
        if self._neo4j is not None:
            await anyio.to_thread.run_sync(self._neo4j.close)

    def _driver(self) -> Driver:
        """The driver for lineage reads, created on first use (in a worker thread)."""
        with self._neo4j_lock:
            if self._neo4j is None:
                timeout = self.options.lineage_timeout_seconds
                self._neo4j = driver(
                    self.settings.neo4j, connection_timeout=min(timeout, 5.0),
                    connection_acquisition_timeout=timeout, max_transaction_retry_time=timeout,
                    # e.g. "property description does not exist": the graph model allows that
                    notifications_min_severity="OFF")
            return self._neo4j

    def _read(self, ref: marquez_api.NodeRef, depth: int, asked: str) -> Answer:
        """The answer from Neo4j (blocking): the graph, a 404, or the 503 or 500 of a failure."""
        opts = self.options
        retry = {"Retry-After": str(opts.retry_after_seconds)}
        try:
            neo4j = self._driver()
            started = time.perf_counter()
            graph = marquez_api.fetch_lineage(neo4j, ref, depth,
                                              database=self.settings.neo4j.database,
                                              timeout=opts.lineage_timeout_seconds)
            LINEAGE_QUERY_LATENCY.observe(time.perf_counter() - started)
        except (Neo4jUnavailable, SessionExpired, ConnectionAcquisitionTimeoutError,
                TransientError, OSError) as exc:
            log.warning("answering 503 to a lineage read: Neo4j is unavailable: %s", exc)
            return problem(503, "neo4j_unavailable", f"cannot reach Neo4j at "
                           f"{self.settings.neo4j.uri}; try again later", headers=retry)
        except (ConfigError, AuthError) as exc:
            log.error("answering 503 to a lineage read: %s", exc)
            return problem(503, "neo4j_unavailable", "the gateway cannot log in to Neo4j (see "
                           "its log)", headers=retry)
        except Neo4jError as exc:
            if "TransactionTimedOut" in (exc.code or ""):
                return problem(503, "neo4j_timeout", f"the query ran longer than "
                               f"{opts.lineage_timeout_seconds:g}s; try a smaller depth",
                               headers=retry)
            log.exception("Neo4j refused a lineage read")
            return problem(500, "neo4j_error", "Neo4j refused the query (see the gateway's log)")
        except DriverError:
            log.exception("a lineage read failed")
            return problem(500, "neo4j_error", "the lineage read failed (see the gateway's log)")
        if graph is None:
            return problem(404, "node_not_found", f"{asked} is not in the lineage graph",
                           reasons=[{"code": "node_not_found", "parameter": "nodeId",
                                     "message": "no such node"}])
        return Answer(200, msgspec.json.encode(graph))


def create_app(settings: GatewaySettings, publisher: Publisher | None = None) -> Starlette:
    """The gateway with Marquez's lineage read: what ``lineage gateway`` serves."""
    reads = LineageReads(settings)
    return create_gateway_app(settings, publisher, reads=reads.routes, on_shutdown=[reads.close])
