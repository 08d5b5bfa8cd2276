"""Publishing to Kafka: an idempotent producer whose acknowledgements resolve asyncio futures.

The app needs a :class:`Publisher`; :class:`KafkaPublisher` is the real one (built from
:func:`core.kafka_config.producer_config`), and tests pass an in-memory one.

>>> KafkaPublisher(KafkaSettings(bootstrap_servers="127.0.0.1:9"), "raw",
...                ack_timeout=4).config["message.timeout.ms"]
4000
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from core.errors import RefusedByKafka, ServiceUnavailable
from core.kafka_config import producer_config
from core.settings import KafkaSettings
from core.topics import ensure_topics, path_header
from producers.gateway.metrics import KAFKA_ACK_LATENCY

__all__ = ["Delivery", "KafkaPublisher", "Publisher"]

log = logging.getLogger("lineage.gateway")

_PATH_HEADERS: Final = path_header("gateway")


@dataclass(frozen=True, slots=True)
class Delivery:
    """Where Kafka put one message."""

    partition: int
    offset: int


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
