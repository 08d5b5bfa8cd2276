"""The gateway's app: OpenLineage's standard HTTP transport in, the raw Kafka topic out.

Pipelines that cannot reach Kafka (or whose OpenLineage integration only speaks HTTP) point their
``http`` transport at the gateway instead of at Marquez. The gateway validates each event with the
processor's own validator (:func:`schemas.validation.validate`), writes it to the raw topic
under the key the standard OpenLineage Kafka transport would give it, and answers **201 only after
Kafka acknowledged the write** (``acks=all``, idempotent producer). Everything else gets a clear
refusal as an RFC 9457 problem document (``application/problem+json``) with a machine-readable
``code`` and, for invalid events, the validator's reasons (code, JSON pointer, message).

Endpoints (details, settings and examples: docs/gateway.md):

=============================  ==========================================================
``POST /api/v1/lineage``       one event, as openlineage-python's ``HttpTransport``, Marquez
                               and DataZone's PostLineageEvent take it (JSON, optionally
                               ``Content-Encoding: gzip``)
``POST /api/v1/lineage/batch`` a JSON array (``application/json``) or NDJSON
                               (``application/x-ndjson``); all or nothing: one invalid
                               event refuses the batch (422, every bad index listed)
``GET /healthz``               200 when Kafka answers and the raw topic exists, else 503
``GET /metrics``               Prometheus metrics
=============================  ==========================================================

The caller adds read routes (:class:`ReadRoute`) behind the same bearer tokens: ``lineage
gateway`` adds Marquez's ``GET /api/v1/lineage``, answered from Neo4j by
:mod:`lineage.read_api`.

Status codes: 201 written and acknowledged; 400 not JSON, not an object, not an array, a bad
header; 401 no or unknown bearer token (with ``WWW-Authenticate``); 403 a read-only token
posting; 409 an ``Idempotency-Key`` reused with another body; 413 over the size or count limit;
415 not JSON / NDJSON, or a content coding other than gzip; 422 a core spec violation; 503 Kafka
unavailable or slower than the ack timeout (with ``Retry-After``; never a 201 then).

From a shell (``lineage gateway`` listens on 127.0.0.1:5000, Marquez's API port)::

    curl -i http://127.0.0.1:5000/api/v1/lineage \\
         -H 'Content-Type: application/json' -H "Authorization: Bearer $TOKEN" \\
         --data-binary @event.json
    gzip -c event.json | curl -i http://127.0.0.1:5000/api/v1/lineage \\
         -H 'Content-Type: application/json' -H 'Content-Encoding: gzip' --data-binary @-
    curl -i http://127.0.0.1:5000/api/v1/lineage/batch \\
         -H 'Content-Type: application/x-ndjson' -H 'Idempotency-Key: nightly-2024-05-01' \\
         --data-binary @events.ndjson
    curl -s http://127.0.0.1:5000/healthz

The message key is the standard OpenLineage Kafka transport's
(:func:`producers.emitter.message_key`).

>>> answer = problem(415, "unsupported_media_type", "send application/json")
>>> answer.status, answer.media_type, msgspec.json.decode(answer.body)["code"]
(415, 'application/problem+json', 'unsupported_media_type')
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

import msgspec
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from core.errors import BadBody, BadRequest, ConfigError, RefusedByKafka, ServiceUnavailable
from producers.emitter import message_key
from producers.gateway.auth import TokenTable
from producers.gateway.body import NDJSON_TYPES, gunzip, media_type, split_json_array, split_ndjson
from producers.gateway.idempotency import IdempotencyStore, idempotency_key
from producers.gateway.metrics import EVENTS_ACCEPTED, EVENTS_REFUSED, IDEMPOTENT_REPLAYS, Observe
from producers.gateway.publish import KafkaPublisher, Publisher
from producers.gateway.settings import GatewaySettings
from schemas.validation import ValidationResult, validate

__all__ = [
    "BATCH_PATH",
    "EVENT_PATH",
    "Answer",
    "Gateway",
    "Handler",
    "ReadRoute",
    "create_app",
    "problem",
    "run_gateway",
]

log = logging.getLogger("lineage.gateway")

EVENT_PATH: Final = "/api/v1/lineage"
BATCH_PATH: Final = "/api/v1/lineage/batch"
# Answers an Idempotency-Key replays: the ones that the same body always gets again. A 503 is
# not kept, so that a retry after an outage publishes.
_REPLAYABLE: Final = frozenset({201, 400, 413, 422})

Handler = Callable[[Request], Awaitable[Response]]
Closer = Callable[[], Awaitable[None]]


# ---------------------------------------------------------------------------------------------
# Answers (RFC 9457 problem documents for refusals)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer, kept as bytes so that an idempotent replay repeats it exactly."""

    status: int
    body: bytes
    media_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def response(self, *extra: tuple[str, str]) -> Response:
        """The answer as a Starlette response, with ``extra`` headers."""
        return Response(self.body, self.status, dict((*self.headers, *extra)), self.media_type)


def problem(status: int, code: str, detail: str, *, headers: Mapping[str, str] | None = None,
            **extra: Any) -> Answer:
    """A refusal as an RFC 9457 problem document with a machine-readable ``code``.

    >>> msgspec.json.decode(problem(404, "node_not_found", "no such node").body)["title"]
    'Not Found'
    """
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "code": code, "detail": detail, **extra}
    return Answer(status, msgspec.json.encode(body), "application/problem+json",
                  tuple((headers or {}).items()))


# A BadRequest, so on the fatal branch: it carries only the 4xx refusals (400, 401, 403, 413,
# 415) of the steps before a POST's events are validated, and the same request gets the same
# refusal again. The gateway's 503 (Kafka away: retryable) never travels in it; _process
# answers it where the publisher raises it.
class _Refused(BadRequest):
    """Carries a 4xx refusal's answer out of a step of a POST."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(f"refused with {answer.status}")
        self.answer = answer


@dataclass(frozen=True, slots=True)
class ReadRoute:
    """A GET route the caller adds to the gateway, behind its bearer tokens.

    When tokens are configured, ``handler`` runs only for a known token (read or write; others
    get the gateway's 401). ``endpoint`` is the route's label on the request metrics. A path the
    gateway posts to (``/api/v1/lineage``) answers GET with the route and POST as before.
    """

    path: str
    handler: Handler
    endpoint: str


def _reasons(result: ValidationResult) -> list[dict[str, str]]:
    return [reason.as_dict() for reason in result.reasons]


def _dropped(result: ValidationResult) -> list[dict[str, Any]]:
    return [{"key": d.key, "pointer": d.pointer, "reasons": [r.as_dict() for r in d.reasons]}
            for d in result.dropped_facets]


class Gateway:
    """The request handlers and what they share: settings, tokens, Kafka, idempotency keys.

    ``on_shutdown`` runs after Kafka's last acknowledgements, when the app stops (the read
    routes' caller closes its clients there).
    """

    def __init__(self, settings: GatewaySettings, publisher: Publisher | None = None,
                 on_shutdown: Sequence[Closer] = ()) -> None:
        self.settings = settings
        self.options = settings.gateway
        self.tokens = TokenTable.from_options(self.options)
        self.publisher: Publisher = publisher or KafkaPublisher(
            settings.kafka, settings.kafka.raw_topic,
            ack_timeout=self.options.ack_timeout_seconds,
            max_message_bytes=self.options.max_body_bytes,
            health_timeout=self.options.health_timeout_seconds,
            partitions=settings.kafka.raw_partitions)
        self.idempotency: IdempotencyStore[Answer] = IdempotencyStore(
            self.options.idempotency_retention_seconds, self.options.idempotency_max_keys)
        self.on_shutdown = list(on_shutdown)

    # -- lifecycle ---------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.announce_auth()
        self.publisher.start()
        try:
            yield
        finally:
            await self.publisher.close()
            for close in self.on_shutdown:
                await close()

    def announce_auth(self) -> None:
        if self.tokens.enabled:
            write = sum(scope == "write" for scope in self.tokens.scopes.values())
            log.info("authentication on: %d write and %d read-only bearer tokens", write,
                     len(self.tokens.scopes) - write)
            return
        log.warning(
            "AUTHENTICATION IS OFF: no bearer token is configured, so anyone who can reach "
            "%s:%d can publish lineage events. Set LINEAGE_GATEWAY__TOKENS to turn it on.",
            self.options.host, self.options.port)

    # -- handlers ----------------------------------------------------------------------------

    async def post_event(self, request: Request) -> Response:
        return await self._answer(request, batch=False)

    async def post_batch(self, request: Request) -> Response:
        return await self._answer(request, batch=True)

    async def healthz(self, _request: Request) -> Response:
        trouble = await self.publisher.check()
        if trouble is None:
            return Response(msgspec.json.encode({"status": "ok", "kafka": "ok"}), 200,
                            media_type="application/json")
        body = {"status": "unavailable", "kafka": trouble}
        return Response(msgspec.json.encode(body), 503,
                        {"Retry-After": str(self.options.retry_after_seconds)},
                        "application/json")

    async def metrics(self, _request: Request) -> Response:
        """Prometheus' text (served behind :meth:`guarded`)."""
        return Response(generate_latest(), 200, media_type=CONTENT_TYPE_LATEST)

    def guarded(self, handler: Handler) -> Handler:
        """``handler`` behind the bearer-token check for reading: when tokens are configured,
        it runs only for a known one (a write token may read too)."""

        async def endpoint(request: Request) -> Response:
            status, value = self.tokens.check(request.headers.get("authorization"), "read")
            if status != 200:
                return self._auth_problem(status, value).response()
            return await handler(request)

        return endpoint

    # -- the steps of a POST -----------------------------------------------------------------

    async def _answer(self, request: Request, *, batch: bool) -> Response:
        try:
            principal = self._authorize(request)
            ndjson = self._content_type(request, batch)
            limit = self.options.max_batch_bytes if batch else self.options.max_body_bytes
            body = await self._read_body(request, limit)
            key = self._idempotency_key(request)
        except _Refused as refused:
            return refused.answer.response()
        if key is None:
            return (await self._process(body, batch, ndjson)).response()
        scope = f"{principal} {request.url.path} {key}"
        fingerprint = hashlib.sha256(bytes([ndjson]) + body).digest()
        while True:
            claim = self.idempotency.claim(scope, fingerprint)
            if claim.state == "replay" and claim.answer is not None:
                IDEMPOTENT_REPLAYS.inc()
                return claim.answer.response(("Idempotent-Replayed", "true"))
            if claim.state == "conflict":
                EVENTS_REFUSED.labels("idempotency_conflict").inc()
                return problem(409, "idempotency_key_reused",
                               "this Idempotency-Key came with another body within the last "
                               f"{self.options.idempotency_retention_seconds:g}s; use a new key "
                               "for a new request").response()
            if claim.waiter is None:
                break
            await claim.waiter  # the first request with this key is still running
        answer: Answer | None = None
        try:
            answer = await self._process(body, batch, ndjson)
            return answer.response()
        finally:
            self.idempotency.release(
                scope, answer if answer is not None and answer.status in _REPLAYABLE else None)

    def _auth_problem(self, status: int, challenge: str) -> Answer:
        if status == 401:
            EVENTS_REFUSED.labels("unauthorized").inc()
            return problem(401, "unauthorized", "send a valid bearer token in Authorization",
                           headers={"WWW-Authenticate": challenge})
        EVENTS_REFUSED.labels("forbidden").inc()
        return problem(403, "forbidden", "this token may not publish events (read-only)",
                       headers={"WWW-Authenticate": challenge})

    @staticmethod
    def _idempotency_key(request: Request) -> str | None:
        try:
            return idempotency_key(request.headers.get("idempotency-key"))
        except BadRequest as exc:
            raise _Refused(problem(400, "bad_idempotency_key", exc.cause)) from None

    def _authorize(self, request: Request) -> str:
        status, value = self.tokens.check(request.headers.get("authorization"), "write")
        if status != 200:
            raise _Refused(self._auth_problem(status, value))
        return value

    @staticmethod
    def _content_type(request: Request, batch: bool) -> bool:
        """True for NDJSON, False for JSON; 415 for anything else."""
        kind, charset = media_type(request.headers.get("content-type"))
        json_ok = kind == "application/json" or (kind.startswith("application/")
                                                 and kind.endswith("+json"))
        ndjson = batch and kind in NDJSON_TYPES
        if (json_ok or ndjson) and charset in (None, "utf-8", "utf8", "us-ascii"):
            return ndjson
        accepted = "application/json, application/x-ndjson" if batch else "application/json"
        EVENTS_REFUSED.labels("unsupported_media_type").inc()
        raise _Refused(problem(
            415, "unsupported_media_type",
            f"send {accepted} in UTF-8; got Content-Type {request.headers.get('content-type')!r}",
            headers={"Accept-Post": accepted}))

    async def _read_body(self, request: Request, limit: int) -> bytes:
        encoding = request.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("identity", "gzip", "x-gzip"):
            EVENTS_REFUSED.labels("unsupported_media_type").inc()
            raise _Refused(problem(415, "unsupported_content_encoding",
                                   f"Content-Encoding {encoding!r} is not supported; send gzip "
                                   "or no encoding", headers={"Accept-Encoding": "gzip, identity"}))
        length = request.headers.get("content-length")
        if length is not None and not length.strip().isdigit():
            raise _Refused(problem(400, "bad_request", "Content-Length is not a number"))
        if length is not None and int(length) > limit:
            raise _Refused(self._too_large(limit))
        chunks: list[bytes] = []
        size = 0
        seconds = self.options.body_timeout_seconds
        try:
            async with asyncio.timeout(seconds):  # a client sending a byte at a time
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:  # a chunked body, or a Content-Length that lied
                        raise _Refused(self._too_large(limit))
                    chunks.append(chunk)
        except ClientDisconnect:
            raise _Refused(problem(400, "bad_request", "the client went away")) from None
        except TimeoutError:
            EVENTS_REFUSED.labels("too_slow").inc()
            raise _Refused(problem(408, "too_slow", f"the body did not arrive within {seconds:g}s",
                                   headers={"Connection": "close"})) from None
        body = b"".join(chunks)
        if encoding == "identity":
            return body
        try:
            return gunzip(body, limit)
        except OverflowError:
            raise _Refused(self._too_large(limit, " once decompressed")) from None
        except BadBody as exc:
            EVENTS_REFUSED.labels("bad_request").inc()
            raise _Refused(problem(400, "bad_gzip", str(exc))) from None

    @staticmethod
    def _too_large(limit: int, how: str = "") -> Answer:
        EVENTS_REFUSED.labels("too_large").inc()
        return problem(413, "too_large", f"the body is larger than {limit} bytes{how}",
                       limit=limit)

    async def _process(self, body: bytes, batch: bool, ndjson: bool) -> Answer:
        """Validate and publish one request's events: the answer, whatever happens."""
        opts = self.options
        # Splitting and validating a batch takes CPU time in proportion to its size: off the
        # event loop, so that other requests (and health probes) are answered meanwhile.
        checked = await asyncio.get_running_loop().run_in_executor(
            None, self._check, body, batch, ndjson)
        if isinstance(checked, Answer):
            return checked
        items, results = checked
        messages = []
        for item, result in zip(items, results, strict=True):
            assert result.event is not None
            # The original bytes go to Kafka: the processor validates them again, repairs them
            # in its repair mode and dead-letters their bad facets with the reasons.
            messages.append((message_key(result.event).encode(), item))
        try:
            deliveries = await self.publisher.publish(messages)
        except RefusedByKafka as exc:
            EVENTS_REFUSED.labels("too_large").inc(len(messages))
            return problem(413, "too_large_for_kafka", f"Kafka refused the write: {exc}")
        except ServiceUnavailable as exc:
            EVENTS_REFUSED.labels("kafka_unavailable").inc(len(messages))
            log.warning("answering 503: %s", exc.cause)
            return problem(503, "kafka_unavailable",
                           f"{exc.cause}; nothing is acknowledged, send it again later",
                           headers={"Retry-After": str(opts.retry_after_seconds)})
        EVENTS_ACCEPTED.inc(len(messages))
        events = []
        for index, ((key, _), delivery, result) in enumerate(
                zip(messages, deliveries, results, strict=True)):
            entry: dict[str, Any] = {"index": index, "key": key.decode(),
                                     "partition": delivery.partition, "offset": delivery.offset}
            if result.dropped_facets:
                entry["droppedFacets"] = _dropped(result)
            if result.repairs:
                entry["repairs"] = list(result.repairs)
            events.append(entry)
        body_out = {"status": "accepted", "accepted": len(events), "events": events}
        return Answer(201, msgspec.json.encode(body_out))

    def _check(self, body: bytes, batch: bool, ndjson: bool
               ) -> Answer | tuple[list[bytes], list[ValidationResult]]:
        """A request's events and their validation, or the answer that refuses them."""
        opts = self.options
        if not batch:
            items = [body]
        else:
            try:
                items = (split_ndjson(body, opts.max_batch_events) if ndjson
                         else split_json_array(body, opts.max_batch_events))
            except BadBody as exc:
                EVENTS_REFUSED.labels("bad_request").inc()
                return problem(400, "bad_batch", str(exc))
            if not items:
                EVENTS_REFUSED.labels("bad_request").inc()
                return problem(400, "empty_batch", "the batch holds no event")
            if len(items) > opts.max_batch_events:  # it stopped splitting one past the limit
                EVENTS_REFUSED.labels("too_many_events").inc()
                return problem(413, "too_many_events", f"the batch holds more than "
                               f"{opts.max_batch_events} events, the limit",
                               limit=opts.max_batch_events)
        results = [validate(item, max_bytes=opts.max_body_bytes, repair=opts.repair)
                   for item in items]
        invalid = [(index, result) for index, result in enumerate(results) if not result.ok]
        if invalid:
            return self._invalid(invalid, len(results), batch)
        return items, results

    @staticmethod
    def _invalid(invalid: list[tuple[int, ValidationResult]], total: int, batch: bool) -> Answer:
        for _, result in invalid:
            EVENTS_REFUSED.labels(result.reasons[0].code).inc()
        if batch:
            EVENTS_REFUSED.labels("batch_refused").inc(total - len(invalid))
            listed = [{"index": index, "reasons": _reasons(result)} for index, result in invalid]
            return problem(422, "invalid_events", f"{len(invalid)} of {total} events are invalid; "
                           "none was published", invalid=listed)
        result = invalid[0][1]
        first = result.reasons[0]
        extra: dict[str, Any] = {"reasons": _reasons(result)}
        if result.dropped_facets:
            extra["droppedFacets"] = _dropped(result)
        if first.code == "too_large":
            return problem(413, "too_large", first.message, **extra)
        if first.code in ("not_json", "not_object", "too_deep"):
            return problem(400, first.code, first.message, **extra)
        return problem(422, "invalid_event", "the event violates the OpenLineage spec: "
                       f"{first.pointer or '/'}: {first.message}", **extra)



def _by_method(handlers: Mapping[str, Handler]) -> Handler:
    """One endpoint for a path that several methods answer (HEAD is answered as GET)."""

    async def endpoint(request: Request) -> Response:
        return await handlers["GET" if request.method == "HEAD" else request.method](request)

    return endpoint


def create_app(settings: GatewaySettings, publisher: Publisher | None = None, *,
               reads: Sequence[ReadRoute] = (), on_shutdown: Sequence[Closer] = ()) -> Starlette:
    """The gateway as an ASGI app (``publisher`` defaults to Kafka, from ``settings``).

    ``reads`` adds GET routes behind the bearer tokens; ``on_shutdown`` runs when the app
    stops, after Kafka's last acknowledgements (the read routes close their clients there).

    >>> from starlette.testclient import TestClient
    >>> client = TestClient(create_app(GatewaySettings(gateway={"tokens": ["s3cret"]})))
    >>> answer = client.post("/api/v1/lineage", content=b"{}")
    >>> answer.status_code, answer.json()["code"], answer.headers["www-authenticate"]
    (401, 'unauthorized', 'Bearer realm="lineage-gateway"')
    """
    gateway = Gateway(settings, publisher, on_shutdown)
    handlers: dict[str, dict[str, Handler]] = {
        EVENT_PATH: {"POST": gateway.post_event},
        BATCH_PATH: {"POST": gateway.post_batch},
        "/healthz": {"GET": gateway.healthz},
        "/metrics": {"GET": gateway.guarded(gateway.metrics)},
    }
    endpoints = {EVENT_PATH: "lineage", BATCH_PATH: "batch", "/healthz": "healthz",
                 "/metrics": "metrics"}
    read_endpoints: dict[str, str] = {}
    for read in reads:
        methods = handlers.setdefault(read.path, {})
        if "GET" in methods:
            raise ValueError(f"the gateway already answers GET {read.path}")
        methods["GET"] = gateway.guarded(read.handler)
        endpoints.setdefault(read.path, read.endpoint)
        read_endpoints[read.path] = read.endpoint
    # One route per path, whatever answers its methods: a method that none answers gets a 405
    # whose Allow header lists them all.
    routes = [Route(path, _by_method(methods), methods=list(methods))
              for path, methods in handlers.items()]
    middleware = [Middleware(Observe, endpoints=endpoints, reads=read_endpoints)]
    app = Starlette(routes=routes, middleware=middleware, lifespan=gateway.lifespan)
    app.state.gateway = gateway
    return app


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must say TCP: asyncio sets TCP_NODELAY only on such sockets, and without it every
    # answer waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"the gateway cannot listen on {host}:{port}: {exc.strerror}",
                          hint="stop what uses that port or choose another with "
                          "LINEAGE_GATEWAY__PORT (and LINEAGE_GATEWAY__HOST)") from exc
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _protocol_with_header_deadline(seconds: float) -> type[Any]:
    """uvicorn's HTTP/1.1 protocol, closing a connection whose request headers are not all in
    ``seconds`` after it opened or after its last answer (a client sending them a byte at a
    time held a connection for as long as it liked)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.cycle is not None and not self.cycle.response_complete and self.deadline:
                self.deadline.cancel()  # the headers are in: the body has its own deadline
                self.deadline = None

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()  # the next request on this connection

        def connection_lost(self, exc: Exception | None) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
            self.deadline = self.loop.call_later(seconds, self._too_slow)

        def _too_slow(self) -> None:
            if not self.transport.is_closing() and (self.cycle is None
                                                     or self.cycle.response_complete):
                self.transport.close()

    return HeaderDeadline


class QuietQueries(logging.Filter):
    """Keeps query strings out of the access log: a client may put a token there (tokens go in
    the Authorization header, but a refused one in a URL must not be written down either).

    >>> record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"',
    ...                            ("127.0.0.1", "POST", "/api/v1/lineage?token=s3cret"), None)
    >>> QuietQueries().filter(record), record.getMessage()
    (True, '127.0.0.1 - "POST /api/v1/lineage?…"')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(arg.split("?", 1)[0] + "?…" if isinstance(arg, str)
                                and arg.startswith("/") and "?" in arg else arg
                                for arg in record.args)
        return True


def run_gateway(settings: GatewaySettings, *, app: Starlette | None = None,
                loglevel: str = "warning", echo: Callable[[str], Any] = print) -> None:
    """Serve ``app`` (by default :func:`create_app` of ``settings``) until SIGINT or SIGTERM;
    in-flight requests are answered first."""
    import uvicorn

    opts = settings.gateway
    if app is None:
        app = create_app(settings)  # token files are read here: a bad one stops us before binding
    sock = _listen(opts.host, opts.port)
    config = uvicorn.Config(app, host=opts.host, port=opts.port, log_level=loglevel.lower(),
                            access_log=loglevel.lower() in ("debug", "info"), lifespan="on",
                            server_header=False, timeout_graceful_shutdown=30,
                            http=_protocol_with_header_deadline(opts.header_timeout_seconds),
                            limit_concurrency=opts.max_connections)
    server = uvicorn.Server(config)  # configures uvicorn's loggers: the filter comes after
    logging.getLogger("uvicorn.access").addFilter(QuietQueries())
    echo(f"gateway on http://{opts.host}:{opts.port}{EVENT_PATH} -> Kafka "
         f"{settings.kafka.bootstrap_servers} topic {settings.kafka.raw_topic}")
    server.run(sockets=[sock])
    if not server.started:  # the lifespan failed; uvicorn logged why
        raise ServiceUnavailable("the gateway did not start", hint="see the log above")
