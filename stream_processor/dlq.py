"""Inspecting and re-driving dead letters (``lineage dlq list|show|replay``).

A dead letter on ``openlineage.dlq`` holds the original message bytes unchanged as its value, the
original key, and three headers: ``lineage.dlq.kind`` (``event`` or ``facet``),
``lineage.dlq.reasons`` (comma-separated reason codes) and ``lineage.dlq.envelope`` (JSON: the
reasons with JSON pointers and messages, the source topic/partition/offset/timestamp, the time it
was dead-lettered and by which processor).

Replaying publishes the original bytes and key back to the raw topic, so the processor sees them
again; with ``--repair`` the processor's repair rules are applied first, here, and a message that
still does not validate is not published (it is reported instead, and stays in the DLQ). Nor is a
dead letter whose original was cut to fit the DLQ (``truncated``): its source topic still holds
the whole message, at the coordinates ``lineage dlq show`` gives.

>>> letter = DeadLetterRecord(partition=0, offset=5, key=b"k", value=b"{}", headers={
...     "lineage.dlq.kind": b"event", "lineage.dlq.reasons": b"missing_field",
...     "lineage.dlq.envelope": b'{"reasons": [{"code": "missing_field", "pointer": "/run"}]}'})
>>> letter.kind, letter.codes, letter.envelope["reasons"][0]["pointer"]
('event', ['missing_field'], '/run')
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from core.dead_letters import Letter
from core.delivery import Delivery, OutMessage
from core.kafka_config import consumer_config
from core.settings import CommonSettings
from schemas.validation import validate


class DeadLetterRecord(Letter):
    """One message of the DLQ topic: where it is, its key and bytes, and its headers read back."""

    def __init__(self, partition: int, offset: int, key: bytes | None, value: bytes,
                 headers: dict[str, bytes]) -> None:
        super().__init__(headers)
        self.partition, self.offset, self.key, self.value = partition, offset, key, value

    @property
    def ref(self) -> str:
        """How to name this dead letter on the command line: ``partition:offset``."""
        return f"{self.partition}:{self.offset}"


def read_dead_letters(settings: CommonSettings,
                      idle_seconds: float = 3.0) -> Iterator[DeadLetterRecord]:
    """Every dead letter currently on the DLQ topic, partition by partition."""
    topic = settings.kafka.dlq_topic
    consumer = Consumer(consumer_config(settings.kafka, "lineage-dlq-reader"))
    try:
        metadata = consumer.list_topics(topic, timeout=15).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return
        ends = {}
        for p in metadata.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=15)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + idle_seconds
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            deadline = time.monotonic() + idle_seconds
            p, offset = msg.partition() or 0, msg.offset() or 0
            if offset + 1 >= ends.get(p, 0):
                ends.pop(p, None)
            headers = {h[0]: h[1] if isinstance(h[1], bytes) else str(h[1] or "").encode()
                       for h in msg.headers() or []}
            key = msg.key()
            yield DeadLetterRecord(p, offset, key if isinstance(key, bytes) else None,
                                   msg.value() or b"", headers)
    finally:
        consumer.close()


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did."""

    published: list[str]
    still_invalid: list[tuple[str, list[str]]]


def replay(settings: CommonSettings, letters: list[DeadLetterRecord], *,
           repair: bool) -> ReplayResult:
    """Publish ``letters`` back to the raw topic (see the module docstring)."""
    published: list[str] = []
    messages: list[OutMessage] = []
    invalid: list[tuple[str, list[str]]] = []
    for letter in letters:
        value = letter.value
        if letter.truncated is not None:  # only a part of the original: nothing to replay
            invalid.append((letter.ref, ["truncated"]))
            continue
        if repair:
            result = validate(value, repair=True)
            if not result.ok or result.event is None:
                invalid.append((letter.ref, [str(r.code) for r in result.reasons]))
                continue
            value = json.dumps(result.event).encode()
        messages.append(OutMessage(settings.kafka.raw_topic, letter.key, value))
        published.append(letter.ref)
    # A person waits for this: three rounds, then a clear error instead of waiting forever.
    Delivery(settings.kafka, retry_seconds=1.0, what="replayed dead letters").send_all(
        messages, rounds=3)
    return ReplayResult(published, invalid)
