"""The worker's output: change records and dead letters, sent with librdkafka until acknowledged.

Contract: :meth:`Output.send_all` returns only once Kafka has acknowledged *every* message given
(``acks=all``, idempotent producer), retrying failed ones every ``retry_seconds``; it never skips
one. The worker writes its state only after that, which is what makes a crash repeat records but
never lose one (see :mod:`stream_processor.worker`).

Why not Faust's ``topic.send``: the records of a batch are the bulk of the worker's Kafka traffic,
and aiokafka builds every message in Python on the event loop's core. confluent-kafka hands them to
librdkafka, whose threads batch, compress and send them off that core (the flush waits in a
thread, so the event loop keeps heartbeating meanwhile).

>>> Output(KafkaSettings(bootstrap_servers="127.0.0.1:9"), retry_seconds=1).config["acks"]
'all'
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Producer

from core.kafka_config import producer_config
from core.settings import KafkaSettings

log = logging.getLogger("lineage.processor")


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to send."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]] | None = None


class Output:
    """An idempotent librdkafka producer for the changes and DLQ topics."""

    def __init__(self, kafka: KafkaSettings, *, retry_seconds: float = 2.0,
                 max_message_bytes: int = 8_388_608) -> None:
        self.retry_seconds = retry_seconds
        self.config: dict[str, Any] = producer_config(kafka, **{
            "linger.ms": 5,
            "compression.type": "lz4",  # change records are repetitive JSON-ish Avro
            "message.max.bytes": max_message_bytes,
            "delivery.timeout.ms": 60_000,
        })
        self._producer: Producer | None = None

    @property
    def producer(self) -> Producer:
        if self._producer is None:  # connect lazily: the doctest above needs no broker
            self._producer = Producer(self.config)
        return self._producer

    async def send_all(self, messages: Sequence[OutMessage]) -> None:
        """Send ``messages`` and wait until Kafka acknowledged each one (see the module doc)."""
        loop = asyncio.get_running_loop()
        pending = list(messages)
        while pending:
            failed: list[tuple[OutMessage, KafkaError]] = []
            for message in pending:
                await self._produce(message, failed, loop)
            # flush() blocks until every delivery report has come in; in a thread, so that the
            # Faust worker keeps heartbeating.
            while await loop.run_in_executor(None, self.producer.flush, 10.0):
                log.warning("still waiting for Kafka to acknowledge the batch's records")
            if failed:
                log.warning("%d of %d sends failed (%s); retrying in %.0fs", len(failed),
                            len(pending), failed[0][1], self.retry_seconds)
                await asyncio.sleep(self.retry_seconds)
            pending = [message for message, _ in failed]

    async def _produce(self, message: OutMessage, failed: list[tuple[OutMessage, KafkaError]],
                       loop: asyncio.AbstractEventLoop) -> None:
        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failed.append((message, err))

        while True:
            try:
                self.producer.produce(message.topic, message.value, message.key,
                                      headers=message.headers, on_delivery=delivered)
                return
            except BufferError:  # librdkafka's local queue is full: let it drain
                await loop.run_in_executor(None, self.producer.poll, 0.5)
            except Exception as exc:  # e.g. a record over message.max.bytes
                failed.append((message, KafkaError(KafkaError._INVALID_ARG, str(exc))))
                return
