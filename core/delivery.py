"""Send until acknowledged: the one send-flush-collect-resend loop of the pipeline's producers.

Contract: :meth:`Delivery.send_all` returns only once Kafka has acknowledged *every* message given
(``acks=all``, idempotent producer); a message whose delivery failed is sent again every
``retry_seconds``; none is ever skipped, unless the service stops (:attr:`Delivery.stopping`),
which raises :class:`~core.errors.Interrupted` with the messages still unacknowledged. A caller
that must not wait forever (a command a person runs) gives ``rounds``: after that many,
:class:`~core.errors.ServiceUnavailable` says how many messages are still unacknowledged. A
caller writes its own progress (the processor's state, the sink's offsets) only after it
returns, which is what makes a crash repeat messages but never lose one. It blocks: the
processor calls it in a worker thread so that its event loop keeps heartbeating meanwhile.

>>> from core.settings import KafkaSettings
>>> delivery = Delivery(KafkaSettings(bootstrap_servers="127.0.0.1:9"), retry_seconds=1,
...                     what="dead letters")
>>> delivery.config["acks"], delivery.config["enable.idempotence"]
('all', True)
>>> delivery.send_all([])  # nothing to send: returns at once
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from core.errors import Interrupted, ServiceUnavailable
from core.kafka_config import producer_config
from core.settings import KafkaSettings

log = logging.getLogger("lineage.delivery")

Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to send."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers | None = None


class Delivery:
    """An idempotent librdkafka producer whose :meth:`send_all` waits for every ack.

    ``extra`` adds librdkafka properties to :func:`core.kafka_config.producer_config`; ``what``
    names the messages in log lines ("change records", "dead letters").
    """

    def __init__(self, kafka: KafkaSettings, *, retry_seconds: float, what: str = "messages",
                 **extra: Any) -> None:
        self.retry_seconds = retry_seconds
        self.what = what
        self.config: dict[str, Any] = producer_config(kafka, **extra)
        self._producer: Producer | None = None
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        """Set when the service stops: :meth:`send_all` then raises :class:`Interrupted` instead
        of waiting on (a SIGTERM must not wait for Kafka to come back)."""

    @property
    def producer(self) -> Producer:
        """The librdkafka producer, connected on first use (the doctest needs no broker)."""
        if self._producer is None:
            self._producer = Producer(self.config)
        return self._producer

    def send_all(self, messages: Sequence[OutMessage], *, rounds: int | None = None,
                 shrink: Callable[[OutMessage], OutMessage | None] | None = None) -> None:
        """Send ``messages`` and block until Kafka acknowledged each one (see the module doc).

        ``shrink`` gives a smaller stand-in for a message Kafka refused as too large (a dead
        letter, :func:`core.dead_letters.shrink`), sent at once; without one (or when it gives
        None) such a message is retried like any other failure.
        """
        with self._lock:  # one round at a time: a round's failures are its own
            pending = list(messages)
            done = 0
            while pending:
                failed = self._round(pending)
                smaller, failed = self._shrunk(failed, shrink) if shrink else ([], failed)
                done += 1
                if failed and rounds is not None and done >= rounds:
                    raise ServiceUnavailable(
                        f"Kafka did not acknowledge {len(failed)} of {len(messages)} {self.what}: "
                        f"{failed[0][1]}", hint="nothing was lost; run the same command again")
                if failed:
                    log.warning("%d of %d %s not acknowledged (%s); retrying in %.1fs",
                                len(failed), len(pending), self.what, failed[0][1],
                                self.retry_seconds)
                    if self.stopping.wait(self.retry_seconds):
                        raise Interrupted(f"stopping with {len(failed)} {self.what} "
                                          "unacknowledged")
                pending = smaller + [message for message, _ in failed]

    def _shrunk(self, failed: list[tuple[OutMessage, KafkaError]],
                shrink: Callable[[OutMessage], OutMessage | None]
                ) -> tuple[list[OutMessage], list[tuple[OutMessage, KafkaError]]]:
        """The smaller stand-ins of the messages refused as too large, and the other failures."""
        smaller: list[OutMessage] = []
        still: list[tuple[OutMessage, KafkaError]] = []
        for message, error in failed:
            stand_in = shrink(message) if error.code() == KafkaError.MSG_SIZE_TOO_LARGE else None
            if stand_in is None:
                still.append((message, error))
            else:
                log.warning("Kafka refused a message of %d bytes as too large; sending %d bytes "
                            "of it instead", len(message.value or b""), len(stand_in.value or b""))
                smaller.append(stand_in)
        return smaller, still

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for outstanding acks; returns how many are left."""
        return 0 if self._producer is None else int(self._producer.flush(timeout))

    def _round(self, pending: Sequence[OutMessage]) -> list[tuple[OutMessage, KafkaError]]:
        failed: list[tuple[OutMessage, KafkaError]] = []
        for message in pending:
            self._produce(message, failed)
        waited = 0
        while self.producer.flush(1.0):
            if self.stopping.is_set():
                raise Interrupted(f"stopping with {self.what} unacknowledged")
            waited += 1
            if waited % 10 == 0:
                log.warning("still waiting for Kafka to acknowledge %d %s", len(pending),
                            self.what)
        return failed

    def _produce(self, message: OutMessage, failed: list[tuple[OutMessage, KafkaError]]) -> None:
        def delivered(err: KafkaError | None, _msg: Any) -> None:
            if err is not None:
                failed.append((message, err))

        while True:
            try:
                self.producer.produce(message.topic, message.value, message.key,
                                      headers=message.headers, on_delivery=delivered)
                return
            except BufferError:  # librdkafka's local queue is full: let it drain
                self.producer.poll(0.5)
            except KafkaException as exc:  # e.g. a record over message.max.bytes
                failed.append((message, exc.args[0]))
                return
            except Exception as exc:
                failed.append((message, KafkaError(KafkaError._INVALID_ARG, str(exc))))
                return
