"""The HTTP gateway: OpenLineage's standard HTTP transport in, the raw Kafka topic out.

Pipelines that cannot reach Kafka (or whose OpenLineage integration only speaks HTTP) point their
``http`` transport at the gateway instead of at Marquez. The gateway validates each event with the
processor's own validator (:func:`stream_processor.validation.validate`), writes it to the raw topic
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
``GET /api/v1/lineage``        Marquez's lineage read: the graph around ``nodeId`` up to
                               ``depth`` steps, answered from Neo4j
                               (:mod:`lineage.marquez_api`)
``GET /healthz``               200 when Kafka answers and the raw topic exists, else 503
``GET /metrics``               Prometheus metrics
=============================  ==========================================================

Status codes: 201 written and acknowledged; 400 not JSON, not an object, not an array, a bad
header; 401 no or unknown bearer token (with ``WWW-Authenticate``); 403 a read-only token
posting; 409 an ``Idempotency-Key`` reused with another body; 413 over the size or count limit;
415 not JSON / NDJSON, or a content coding other than gzip; 422 a core spec violation; 503 Kafka
unavailable or slower than the ack timeout (with ``Retry-After``; never a 201 then). A lineage
read answers 200, 400 (a bad ``nodeId`` or ``depth``), 401, 404 (no such node) or 503 (Neo4j
unavailable, with ``Retry-After``).

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
    curl -s 'http://127.0.0.1:5000/api/v1/lineage?nodeId=dataset:warehouse:orders&depth=2'

The message key is the standard OpenLineage Kafka transport's
(:func:`producers.emitter.message_key`). The pure parts work on their own:

>>> split_ndjson(b'{"a": 1}\\r\\n\\n  {"b": 2}\\n')
[b'{"a": 1}', b'  {"b": 2}']
>>> store: IdempotencyStore[str] = IdempotencyStore(retention_seconds=60, max_keys=10)
>>> store.claim("key-1", b"body-A").state
'new'
>>> store.release("key-1", "201 Created")
>>> store.claim("key-1", b"body-A").answer, store.claim("key-1", b"body-B").state
('201 Created', 'conflict')
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import threading
import time
import zlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, Protocol, TypeVar

import anyio.to_thread
import msgspec
from confluent_kafka import KafkaError, KafkaException, Producer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.errors import ConfigError, ServiceUnavailable
from core.kafka_config import producer_config
from core.settings import CommonSettings, KafkaSettings
from core.topics import path_header
from lineage import marquez_api
from producers.emitter import message_key
from producers.gateway_metrics import (
    EVENTS_ACCEPTED,
    EVENTS_REFUSED,
    IDEMPOTENT_REPLAYS,
    KAFKA_ACK_LATENCY,
    LINEAGE_QUERY_LATENCY,
    REQUEST_LATENCY,
    REQUESTS,
)
from stream_processor.validation import ValidationResult, validate

if TYPE_CHECKING:
    from neo4j import Driver

__all__ = [
    "Answer",
    "Delivery",
    "GatewayOptions",
    "GatewaySettings",
    "IdempotencyStore",
    "KafkaPublisher",
    "Publisher",
    "TokenTable",
    "create_app",
    "gunzip",
    "problem",
    "run_gateway",
    "split_json_array",
    "split_ndjson",
]

log = logging.getLogger("lineage.gateway")

EVENT_PATH: Final = "/api/v1/lineage"
BATCH_PATH: Final = "/api/v1/lineage/batch"
REALM: Final = "lineage-gateway"
NDJSON_TYPES: Final = frozenset({
    "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines",
    "application/jsonlines",
})
MAX_IDEMPOTENCY_KEY: Final = 255
# Answers an Idempotency-Key replays: the ones that the same body always gets again. A 503 is
# not kept, so that a retry after an outage publishes.
_REPLAYABLE: Final = frozenset({201, 400, 413, 422})


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------

TokenSource = tuple[SecretStr, ...] | Path


class GatewayOptions(BaseModel):
    """How the gateway runs (``LINEAGE_GATEWAY__...``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(default="127.0.0.1", description="0.0.0.0 to listen on every interface")
    port: int = Field(default=5000, ge=1, le=65535, description="Marquez's API port")
    tokens: TokenSource = Field(
        default=(), description="bearer tokens that may publish: a JSON list, or a file path "
        "(one token a line, '#' comments); none at all turns authentication off")
    read_tokens: TokenSource = Field(
        default=(), description="read-only tokens (may read /metrics and GET /api/v1/lineage, "
        "may not publish: 403)")
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024,
        description="one event (and each event of a batch), after gzip; the processor's limit")
    max_batch_bytes: int = Field(default=16_777_216, ge=1024, description="one batch request")
    max_batch_events: int = Field(default=1000, ge=1)
    repair: bool = Field(
        default=False, description="accept what the processor's repair mode repairs; set it "
        "as the processor's LINEAGE_PROCESSOR__REPAIR")
    idempotency_retention_seconds: float = Field(default=86_400.0, gt=0)
    idempotency_max_keys: int = Field(default=100_000, ge=1, description="per gateway instance")
    ack_timeout_seconds: float = Field(
        default=4.0, gt=0, description="below openlineage-python's 5 s request timeout, so that "
        "the client gets a 503 rather than a read timeout")
    retry_after_seconds: int = Field(default=5, ge=1, description="Retry-After of a 503")
    health_timeout_seconds: float = Field(default=2.0, gt=0)
    lineage_timeout_seconds: float = Field(
        default=10.0, gt=0, description="how long a GET /api/v1/lineage retries reaching Neo4j, "
        "and the longest its query may run there, before a 503")


class GatewaySettings(CommonSettings):
    """Settings of ``lineage gateway``.

    >>> GatewaySettings(gateway={"port": 5001}).gateway.port
    5001
    """

    gateway: GatewayOptions = GatewayOptions()


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
        return Response(self.body, self.status, dict((*self.headers, *extra)), self.media_type)


def problem(status: int, code: str, detail: str, *, headers: Mapping[str, str] | None = None,
            **extra: Any) -> Answer:
    """A refusal as an RFC 9457 problem document with a machine-readable ``code``.

    >>> answer = problem(415, "unsupported_media_type", "send application/json")
    >>> answer.status, answer.media_type, msgspec.json.decode(answer.body)["code"]
    (415, 'application/problem+json', 'unsupported_media_type')
    """
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status,
            "code": code, "detail": detail, **extra}
    return Answer(status, msgspec.json.encode(body), "application/problem+json",
                  tuple((headers or {}).items()))


class _Refused(Exception):
    """Carries a refusal's answer out of a step of a POST."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


# ---------------------------------------------------------------------------------------------
# Bearer tokens
# ---------------------------------------------------------------------------------------------

Permission = Literal["read", "write"]


def _token_list(source: TokenSource, setting: str) -> list[str]:
    if not isinstance(source, Path):
        tokens = [token.get_secret_value().strip() for token in source]
        if any(not token for token in tokens):
            raise ConfigError(f"{setting} holds an empty token", hint="remove it")
        return tokens
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(
            f"{setting} names {source}, which cannot be read: {exc.strerror}",
            hint=f'give a JSON list (\'["token"]\') or the path of a readable file in {setting}',
        ) from exc
    tokens = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not tokens:
        raise ConfigError(f"{setting} names {source}, which holds no token",
                          hint="one token a line; an empty file would lock everybody out")
    return tokens


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


@dataclass(frozen=True)
class TokenTable:
    """Which bearer tokens may do what. Tokens are kept only as SHA-256 digests.

    >>> table = TokenTable.from_tokens(write=["s3cret-w"], read=["s3cret-r"])
    >>> table.check("Bearer s3cret-w", "write")[0], table.check("Bearer s3cret-r", "write")[0]
    (200, 403)
    >>> table.check(None, "write")[0], table.check("Bearer nope", "read")[0]
    (401, 401)
    """

    scopes: Mapping[bytes, Permission] = field(default_factory=dict)

    @classmethod
    def from_tokens(cls, *, write: Sequence[str], read: Sequence[str] = ()) -> TokenTable:
        both = set(write) & set(read)
        if both:
            raise ConfigError("a token is both a write token and a read-only token",
                              hint="list it in LINEAGE_GATEWAY__TOKENS or __READ_TOKENS, not both")
        scopes: dict[bytes, Permission] = {_digest(token): "read" for token in read}
        scopes.update({_digest(token): "write" for token in write})
        return cls(scopes)

    @classmethod
    def from_options(cls, options: GatewayOptions) -> TokenTable:
        return cls.from_tokens(write=_token_list(options.tokens, "LINEAGE_GATEWAY__TOKENS"),
                               read=_token_list(options.read_tokens,
                                                "LINEAGE_GATEWAY__READ_TOKENS"))

    @property
    def enabled(self) -> bool:
        """Authentication is on when at least one token is configured."""
        return bool(self.scopes)

    def check(self, authorization: str | None, need: Permission) -> tuple[int, str]:
        """(200, principal), or (401 or 403, a ``WWW-Authenticate`` value) for ``need``.

        The principal is a short digest of the token (``-`` when authentication is off): it scopes
        idempotency keys, and it is safe to log.
        """
        if not self.enabled:
            return 200, "-"
        challenge = f'Bearer realm="{REALM}"'
        if not authorization:
            return 401, challenge
        scheme, _, token = authorization.strip().partition(" ")
        scope = self.scopes.get(_digest(token.strip())) if scheme.lower() == "bearer" else None
        if scope is None:
            return 401, f'{challenge}, error="invalid_token"'
        if need == "write" and scope != "write":
            return 403, f'{challenge}, error="insufficient_scope", scope="write"'
        return 200, _digest(token.strip()).hex()[:16]


# ---------------------------------------------------------------------------------------------
# Bodies: media types, gzip, batches, keys
# ---------------------------------------------------------------------------------------------


class BadBody(ValueError):
    """The request body cannot be read as what its headers say it is."""


def _media_type(content_type: str | None) -> tuple[str, str | None]:
    """(media type, charset) of a Content-Type value, lower-cased."""
    if not content_type:
        return "", None
    kind, *params = (part.strip() for part in content_type.split(";"))
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return kind.lower(), charset


def gunzip(data: bytes, limit: int) -> bytes:
    """Decompress gzip ``data`` (every member), refusing output past ``limit`` bytes.

    Raises :class:`OverflowError` past the limit (a zip bomb stops there) and :class:`BadBody`
    for data that is not gzip.

    >>> import gzip
    >>> gunzip(gzip.compress(b"x" * 10), limit=10)
    b'xxxxxxxxxx'
    >>> gunzip(gzip.compress(b"x" * 11), limit=10)
    Traceback (most recent call last):
    ...
    OverflowError: more than 10 bytes once decompressed
    """
    out = bytearray()
    rest = data
    try:
        while rest:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise OverflowError(f"more than {limit} bytes once decompressed")
            if not inflater.eof:
                raise BadBody("the gzip stream is truncated")
            rest = inflater.unused_data
    except zlib.error as exc:
        raise BadBody(f"not a gzip stream: {exc}") from exc
    return bytes(out)


def split_ndjson(body: bytes) -> list[bytes]:
    """The events of an NDJSON body: one per non-blank line (``\\n`` or ``\\r\\n`` endings)."""
    lines = (line.rstrip(b"\r") for line in body.split(b"\n"))
    return [line for line in lines if line.strip()]


_RAW_LIST: Final = msgspec.json.Decoder(list[msgspec.Raw])


def split_json_array(body: bytes) -> list[bytes]:
    """The items of a JSON array, each as its own original bytes (nothing is re-encoded).

    >>> split_json_array(b'[{"a": 1}, {"b": [2]}]')
    [b'{"a": 1}', b'{"b": [2]}']
    >>> split_json_array(b'{"a": 1}')
    Traceback (most recent call last):
    ...
    producers.gateway.BadBody: a batch is a JSON array of events, found an object
    """
    try:
        return [bytes(item) for item in _RAW_LIST.decode(body)]
    except msgspec.ValidationError:
        head = body.lstrip()[:1]
        found = {b"{": "an object", b'"': "a string"}.get(head, "a value that is not an array")
        raise BadBody(f"a batch is a JSON array of events, found {found}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise BadBody(f"not valid UTF-8 JSON: {exc}") from None


# ---------------------------------------------------------------------------------------------
# Idempotency keys
# ---------------------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    fingerprint: bytes
    answer: T | None  # None while the first request is still being answered
    expires: float
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Claim(Generic[T]):
    """What :meth:`IdempotencyStore.claim` decided.

    ``new``: the caller answers the request and then calls :meth:`IdempotencyStore.release`;
    ``replay``: ``answer`` is the first answer; ``conflict``: the key came with another body;
    ``pending``: the first request is still running, await ``waiter`` and claim again.
    """

    state: Literal["new", "replay", "conflict", "pending"]
    answer: T | None = None
    waiter: asyncio.Future[None] | None = None


class IdempotencyStore(Generic[T]):
    """Answers by idempotency key, for ``retention_seconds``, at most ``max_keys`` (oldest go).

    In memory, so per gateway instance: a repeat that reaches another instance is published
    again, and the processor's deduplication drops it there.
    """

    def __init__(self, retention_seconds: float, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.retention_seconds = retention_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, key: str, fingerprint: bytes) -> Claim[T]:
        """Look ``key`` up for a request whose body has ``fingerprint``."""
        now = self._clock()
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(fingerprint, None, now + self.retention_seconds)
            while len(self._entries) > self.max_keys:
                _, evicted = self._entries.popitem(last=False)
                self._wake(evicted)
            return Claim("new")
        if entry.fingerprint != fingerprint:
            return Claim("conflict")
        if entry.answer is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry.waiters.append(waiter)
            return Claim("pending", waiter=waiter)
        return Claim("replay", answer=entry.answer)

    def release(self, key: str, answer: T | None) -> None:
        """End the ``new`` claim of ``key``: keep ``answer`` for replays, or forget the key."""
        entry = self._entries.get(key)
        if entry is None or entry.answer is not None:
            return
        if answer is None:
            del self._entries[key]
        else:
            entry.answer = answer
            entry.expires = self._clock() + self.retention_seconds
            self._entries.move_to_end(key)
        self._wake(entry)

    def _expire(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.expires > now:
                return
            del self._entries[key]
            self._wake(entry)

    @staticmethod
    def _wake(entry: _Entry[T]) -> None:
        for waiter in entry.waiters:
            if not waiter.done():
                waiter.set_result(None)
        entry.waiters.clear()


def _idempotency_key(value: str | None) -> str | None:
    """The header's key (a structured-field string, quotes optional), or None when absent."""
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not all(" " <= c <= "~" for c in key):
        raise _Refused(problem(
            400, "bad_idempotency_key",
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"))
    return key


# ---------------------------------------------------------------------------------------------
# Metrics (declared in producers.gateway_metrics)
# ---------------------------------------------------------------------------------------------

_PATH_HEADERS: Final = path_header("gateway")
_ENDPOINTS: Final = {EVENT_PATH: "lineage", BATCH_PATH: "batch", "/healthz": "healthz",
                     "/metrics": "metrics"}
_READ_METHODS: Final = frozenset({"GET", "HEAD"})


class _Observe:
    """ASGI middleware: counts every answer by status and times it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint = _ENDPOINTS.get(scope["path"].rstrip("/") or "/", "other")
        if endpoint == "lineage" and scope["method"] in _READ_METHODS:
            endpoint = "lineage_read"  # Marquez's read on the path of its write
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


# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where Kafka put one message."""

    partition: int
    offset: int


class RefusedByKafka(Exception):
    """Kafka refused a message for good (it is too large for the broker)."""


class Publisher(Protocol):
    """What the app needs from Kafka (:class:`KafkaPublisher`)."""

    def start(self) -> None: ...

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> list[Delivery]:
        """Write (key, value) pairs; return only once every one is acknowledged.

        Raises :class:`ServiceUnavailable` when that does not happen in time, and
        :class:`RefusedByKafka` for a message the broker will never take.
        """
        ...

    async def check(self) -> str | None:
        """None when Kafka answers and the topic exists, else what is wrong."""
        ...

    async def close(self) -> None: ...


_Future = asyncio.Future[Delivery | KafkaError]
_Settled = tuple[_Future, KafkaError | None, Any]


class KafkaPublisher:
    """An idempotent librdkafka producer whose acknowledgements resolve asyncio futures.

    One thread serves librdkafka's callbacks (``poll``) and hands the settled deliveries to the
    event loop in bulk, so the loop never blocks on Kafka.

    >>> KafkaPublisher(KafkaSettings(bootstrap_servers="127.0.0.1:9"), "raw",
    ...                ack_timeout=4).config["acks"]
    'all'
    """

    def __init__(self, kafka: KafkaSettings, topic: str, *, ack_timeout: float,
                 max_message_bytes: int = 1_048_576, health_timeout: float = 2.0,
                 partitions: int = 6) -> None:
        self.kafka = kafka
        self.topic = topic
        self.partitions = partitions
        self.ack_timeout = ack_timeout
        self.health_timeout = health_timeout
        self.config: dict[str, Any] = producer_config(kafka, **{
            "linger.ms": 2,  # callers wait for the ack: batch concurrent requests, briefly
            "compression.type": "lz4",
            # librdkafka gives up on a message when the gateway would answer 503 anyway.
            "message.timeout.ms": max(1, int(ack_timeout * 1000)),
            "message.max.bytes": max_message_bytes + 65_536,  # key, headers, batch overhead
            "reconnect.backoff.max.ms": 2000,
            # The health probe asks for the topic's metadata: that must not create it with the
            # broker's default partition count before the gateway creates it with its own.
            "allow.auto.create.topics": False,
            "error_cb": self._on_error,
            # Errors reach error_cb, which logs them at most every 10 s; librdkafka's own log
            # would print a line per reconnection attempt while Kafka is away.
            "log_level": 0,
        })
        self._producer: Producer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._settled: deque[_Settled] = deque()
        self._fatal = False
        self._last_error_log = 0.0
        self._health: tuple[float, tuple[bool, str | None]] = (0.0, (False, "not checked"))
        self._health_lock = asyncio.Lock()
        self._topic_task: asyncio.Task[None] | None = None

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("the publisher is not started")
        return self._producer

    def start(self) -> None:
        """Connect (lazily, in librdkafka) and start serving callbacks; call inside the loop."""
        self._loop = asyncio.get_running_loop()
        self._producer = Producer(self.config)
        self._thread = threading.Thread(target=self._serve, name="gateway-kafka", daemon=True)
        self._thread.start()
        self._topic_task = asyncio.create_task(self._ensure_topic())

    async def _ensure_topic(self) -> None:
        """Create the topic when it is missing; keep trying while Kafka is away."""
        from core.topics import ensure_topics

        loop = asyncio.get_running_loop()
        while True:
            reachable, trouble = await self._status()
            if trouble is None:
                return
            if reachable:  # the topic is missing (while Kafka is away, an admin client is noise)
                try:
                    await loop.run_in_executor(None, lambda: ensure_topics(
                        self.kafka, {self.topic: self.partitions}, timeout=10))
                    return
                except ServiceUnavailable as exc:
                    trouble = exc.cause
            log.warning("cannot make sure the raw topic %s exists yet: %s", self.topic, trouble)
            await asyncio.sleep(5)

    def _serve(self) -> None:
        assert self._loop is not None
        while not self._stopping.is_set():
            if self._fatal:
                self._replace_producer()
            self.producer.poll(0.05)
            if self._settled:
                self._loop.call_soon_threadsafe(self._drain)

    def _replace_producer(self) -> None:
        # A fatal error (idempotence state lost) leaves the producer unusable: fail what it still
        # holds (those requests get a 503) and start afresh.
        old = self.producer
        self._producer = Producer(self.config)
        self._fatal = False
        old.purge()
        old.poll(0)
        log.warning("replaced the Kafka producer after a fatal error")

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = True
            log.error("Kafka producer fatal error: %s", error.str())
        elif time.monotonic() - self._last_error_log > 10:  # an outage repeats this every second
            self._last_error_log = time.monotonic()
            log.warning("Kafka: %s", error.str())

    def _drain(self) -> None:
        while self._settled:
            future, error, message = self._settled.popleft()
            if future.done():  # the request stopped waiting (ack timeout)
                continue
            if error is not None:
                future.set_result(error)
            else:
                future.set_result(Delivery(message.partition(), message.offset()))

    def _callback(self, future: _Future) -> Callable[[Any, Any], None]:
        def delivered(error: KafkaError | None, message: Any) -> None:
            self._settled.append((future, error, message))

        return delivered

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> list[Delivery]:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        deadline = loop.time() + self.ack_timeout
        futures: list[_Future] = []
        for key, value in messages:
            future: _Future = loop.create_future()
            delivered = self._callback(future)
            while True:
                try:
                    self.producer.produce(self.topic, value, key, headers=_PATH_HEADERS,
                                          on_delivery=delivered)
                    break
                except BufferError:  # librdkafka's queue is full: Kafka is slow or away
                    if loop.time() >= deadline:
                        raise ServiceUnavailable("the Kafka send queue stayed full") from None
                    await asyncio.sleep(0.01)
                except KafkaException as exc:
                    error = exc.args[0]
                    if error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
                        raise RefusedByKafka(error.str()) from exc
                    raise ServiceUnavailable(f"Kafka refused the write: {error.str()}") from exc
            futures.append(future)
        try:
            # librdkafka fails a message after message.timeout.ms too, but checks only once a
            # second: the answer must not wait for that. A message still in librdkafka's hands
            # may be written after the 503; the client's retry is then a duplicate, which the
            # processor drops.
            results = await asyncio.wait_for(asyncio.gather(*futures),
                                             max(0.0, deadline - loop.time()))
        except TimeoutError:
            raise ServiceUnavailable(
                f"Kafka did not acknowledge within {self.ack_timeout:g}s") from None
        errors = [result for result in results if isinstance(result, KafkaError)]
        if errors:
            if any(error.code() == KafkaError.MSG_SIZE_TOO_LARGE for error in errors):
                raise RefusedByKafka(errors[0].str())
            raise ServiceUnavailable(f"Kafka did not acknowledge {len(errors)} of {len(results)} "
                                     f"events: {errors[0].str()}")
        KAFKA_ACK_LATENCY.observe(time.perf_counter() - started)
        return [result for result in results if isinstance(result, Delivery)]

    async def check(self) -> str | None:
        return (await self._status())[1]

    async def _status(self) -> tuple[bool, str | None]:
        """(Kafka answers, what is wrong or None)."""
        # Probes come every few seconds from several places; one metadata request a second
        # answers them all.
        async with self._health_lock:
            checked, status = self._health
            if time.monotonic() - checked < 1.0:
                return status
            status = await asyncio.get_running_loop().run_in_executor(None, self._probe)
            self._health = (time.monotonic(), status)
            return status

    def _probe(self) -> tuple[bool, str | None]:
        try:
            metadata = self.producer.list_topics(self.topic, timeout=self.health_timeout)
        except KafkaException as exc:
            return False, f"Kafka did not answer in {self.health_timeout:g}s ({exc.args[0].str()})"
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            why = topic.error.str() if topic is not None else "no metadata"
            return True, f"the raw topic is missing ({why})"
        return True, None

    async def close(self) -> None:
        """Wait (up to the ack timeout) for what is in flight, then stop."""
        if self._topic_task is not None:
            self._topic_task.cancel()
        self._stopping.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 5.0)
        if self._producer is not None:
            left = await asyncio.get_running_loop().run_in_executor(
                None, self._producer.flush, self.ack_timeout)
            if left:
                log.warning("%d messages were not acknowledged before shutdown", left)
        self._drain()


# ---------------------------------------------------------------------------------------------
# The app
# ---------------------------------------------------------------------------------------------


def _reasons(result: ValidationResult) -> list[dict[str, str]]:
    return [reason.as_dict() for reason in result.reasons]


def _dropped(result: ValidationResult) -> list[dict[str, Any]]:
    return [{"key": d.key, "pointer": d.pointer, "reasons": [r.as_dict() for r in d.reasons]}
            for d in result.dropped_facets]


class Gateway:
    """The request handlers and what they share: settings, tokens, Kafka, idempotency keys."""

    def __init__(self, settings: GatewaySettings, publisher: Publisher | None = None) -> None:
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
        # Neo4j, for lineage reads only: connected on the first read, so that a gateway that
        # only publishes never needs Neo4j (nor its password).
        self._neo4j: Driver | None = None
        self._neo4j_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------------

    @asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        self.announce_auth()
        self.publisher.start()
        try:
            yield
        finally:
            await self.publisher.close()
            if self._neo4j is not None:
                await anyio.to_thread.run_sync(self._neo4j.close)

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

    async def metrics(self, request: Request) -> Response:
        status, value = self.tokens.check(request.headers.get("authorization"), "read")
        if status != 200:
            return self._auth_problem(status, value).response()
        return Response(generate_latest(), 200, media_type=CONTENT_TYPE_LATEST)

    async def lineage(self, request: Request) -> Response:
        """``/api/v1/lineage``: POST publishes an event, GET reads lineage (as in Marquez)."""
        if request.method == "POST":
            return await self.post_event(request)
        return await self.get_lineage(request)

    # -- Marquez's lineage read --------------------------------------------------------------

    async def get_lineage(self, request: Request) -> Response:
        status, value = self.tokens.check(request.headers.get("authorization"), "read")
        if status != 200:
            return self._auth_problem(status, value).response()
        params = request.query_params
        reasons: list[dict[str, str]] = []
        ref: marquez_api.NodeRef | None = None
        depth = marquez_api.DEFAULT_DEPTH
        try:
            ref = marquez_api.parse_node_id(params.get("nodeId"))
        except marquez_api.BadRequest as exc:
            reasons.append({"code": "bad_node_id", "parameter": "nodeId", "message": str(exc)})
        try:
            depth = marquez_api.parse_depth(params.get("depth"))
        except marquez_api.BadRequest as exc:
            reasons.append({"code": "bad_depth", "parameter": "depth", "message": str(exc)})
        if reasons or ref is None:
            first = reasons[0]
            return problem(400, first["code"], first["message"], reasons=reasons).response()
        try:
            graph = await anyio.to_thread.run_sync(self._read_lineage, ref, depth)
        except _Refused as refused:
            return refused.answer.response()
        if graph is None:
            return problem(404, "node_not_found", f"{params['nodeId']} is not in the lineage graph",
                           reasons=[{"code": "node_not_found", "parameter": "nodeId",
                                     "message": "no such node"}]).response()
        return Response(msgspec.json.encode(graph), 200, media_type="application/json")

    def _neo4j_driver(self) -> Driver:
        """The driver for lineage reads, created on first use (in a worker thread)."""
        from neo4j import GraphDatabase

        with self._neo4j_lock:
            if self._neo4j is None:
                neo4j, timeout = self.settings.neo4j, self.options.lineage_timeout_seconds
                self._neo4j = GraphDatabase.driver(
                    neo4j.uri, auth=neo4j.auth(), connection_timeout=min(timeout, 5.0),
                    connection_acquisition_timeout=timeout, max_transaction_retry_time=timeout,
                    # e.g. "property description does not exist": the graph model allows that
                    notifications_min_severity="OFF")
            return self._neo4j

    def _read_lineage(self, ref: marquez_api.NodeRef, depth: int) -> dict[str, Any] | None:
        """Marquez's answer from Neo4j (blocking); a 503 or 500 as :class:`_Refused`."""
        from neo4j.exceptions import (
            AuthError,
            ConnectionAcquisitionTimeoutError,
            DriverError,
            Neo4jError,
            SessionExpired,
            TransientError,
        )
        from neo4j.exceptions import ServiceUnavailable as Neo4jUnavailable

        opts = self.options
        retry = {"Retry-After": str(opts.retry_after_seconds)}
        try:
            driver = self._neo4j_driver()
            started = time.perf_counter()
            graph = marquez_api.fetch_lineage(driver, ref, depth,
                                              database=self.settings.neo4j.database,
                                              timeout=opts.lineage_timeout_seconds)
            LINEAGE_QUERY_LATENCY.observe(time.perf_counter() - started)
            return graph
        except (Neo4jUnavailable, SessionExpired, ConnectionAcquisitionTimeoutError,
                TransientError, OSError) as exc:
            log.warning("answering 503 to a lineage read: Neo4j is unavailable: %s", exc)
            raise _Refused(problem(503, "neo4j_unavailable",
                                   f"cannot reach Neo4j at {self.settings.neo4j.uri}; try "
                                   "again later", headers=retry)) from None
        except (ConfigError, AuthError) as exc:
            log.error("answering 503 to a lineage read: %s", exc)
            raise _Refused(problem(503, "neo4j_unavailable", "the gateway cannot log in to "
                                   "Neo4j (see its log)", headers=retry)) from None
        except Neo4jError as exc:
            if "TransactionTimedOut" in (exc.code or ""):
                raise _Refused(problem(
                    503, "neo4j_timeout", f"the query ran longer than "
                    f"{opts.lineage_timeout_seconds:g}s; try a smaller depth",
                    headers=retry)) from None
            log.exception("Neo4j refused a lineage read")
            raise _Refused(problem(500, "neo4j_error", "Neo4j refused the query (see the "
                                   "gateway's log)")) from None
        except DriverError:
            log.exception("a lineage read failed")
            raise _Refused(problem(500, "neo4j_error", "the lineage read failed (see the "
                                   "gateway's log)")) from None

    # -- the steps of a POST -----------------------------------------------------------------

    async def _answer(self, request: Request, *, batch: bool) -> Response:
        try:
            principal = self._authorize(request)
            ndjson = self._content_type(request, batch)
            limit = self.options.max_batch_bytes if batch else self.options.max_body_bytes
            body = await self._read_body(request, limit)
            key = _idempotency_key(request.headers.get("idempotency-key"))
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

    def _authorize(self, request: Request) -> str:
        status, value = self.tokens.check(request.headers.get("authorization"), "write")
        if status != 200:
            raise _Refused(self._auth_problem(status, value))
        return value

    @staticmethod
    def _content_type(request: Request, batch: bool) -> bool:
        """True for NDJSON, False for JSON; 415 for anything else."""
        kind, charset = _media_type(request.headers.get("content-type"))
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
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:  # a chunked body, or a Content-Length that lied
                    raise _Refused(self._too_large(limit))
                chunks.append(chunk)
        except ClientDisconnect:
            raise _Refused(problem(400, "bad_request", "the client went away")) from None
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
        if not batch:
            items = [body]
        else:
            try:
                items = split_ndjson(body) if ndjson else split_json_array(body)
            except BadBody as exc:
                EVENTS_REFUSED.labels("bad_request").inc()
                return problem(400, "bad_batch", str(exc))
            if not items:
                EVENTS_REFUSED.labels("bad_request").inc()
                return problem(400, "empty_batch", "the batch holds no event")
            if len(items) > opts.max_batch_events:
                EVENTS_REFUSED.labels("too_many_events").inc(len(items))
                return problem(413, "too_many_events", f"the batch holds {len(items)} events; "
                               f"the limit is {opts.max_batch_events}",
                               limit=opts.max_batch_events)
        results = [validate(item, max_bytes=opts.max_body_bytes, repair=opts.repair)
                   for item in items]
        invalid = [(index, result) for index, result in enumerate(results) if not result.ok]
        if invalid:
            return self._invalid(invalid, len(results), batch)
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


def create_app(settings: GatewaySettings, publisher: Publisher | None = None) -> Starlette:
    """The gateway as an ASGI app (``publisher`` defaults to Kafka, from ``settings``)."""
    gateway = Gateway(settings, publisher)
    routes = [
        Route(EVENT_PATH, gateway.lineage, methods=["GET", "POST"]),
        Route(BATCH_PATH, gateway.post_batch, methods=["POST"]),
        Route("/healthz", gateway.healthz, methods=["GET"]),
        Route("/metrics", gateway.metrics, methods=["GET"]),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_Observe)], lifespan=gateway.lifespan)
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


def run_gateway(settings: GatewaySettings, *, loglevel: str = "warning",
                echo: Callable[[str], Any] = print) -> None:
    """Serve the gateway until SIGINT or SIGTERM (in-flight requests are answered first)."""
    import uvicorn

    opts = settings.gateway
    app = create_app(settings)  # token files are read here: a bad one stops us before binding
    sock = _listen(opts.host, opts.port)
    config = uvicorn.Config(app, host=opts.host, port=opts.port, log_level=loglevel.lower(),
                            access_log=loglevel.lower() in ("debug", "info"), lifespan="on",
                            server_header=False, timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    echo(f"gateway on http://{opts.host}:{opts.port}{EVENT_PATH} -> Kafka "
         f"{settings.kafka.bootstrap_servers} topic {settings.kafka.raw_topic}")
    server.run(sockets=[sock])
    if not server.started:  # the lifespan failed; uvicorn logged why
        raise ServiceUnavailable("the gateway did not start", hint="see the log above")
