"""The pipeline's Kafka conventions: creating its topics, and the ingest-path header.

Every service creates the topics it needs when they are missing, at start.

The raw topic's messages may carry a ``lineage.path`` header naming the way they came in:
``gateway`` (the HTTP gateway) or ``harvest`` (``lineage harvest``). A message without it came
straight from a Kafka client (``lineage emit``, the Emitter, any OpenLineage Kafka transport):
``kafka``. The processor counts events by path; any other value counts as ``other``, so the
label stays bounded whatever producers send.

>>> from core.settings import KafkaSettings
>>> ensure_topics(KafkaSettings(bootstrap_servers="127.0.0.1:1"), {}, timeout=0.1)
{}
>>> ingest_path([("lineage.path", b"gateway")]), ingest_path(None), ingest_path({"x": b"1"})
('gateway', 'kafka', 'kafka')
>>> ingest_path([("lineage.path", b"somebody-else")])
'other'
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka.cimpl import KafkaException, NewTopic

from core.errors import ServiceUnavailable
from core.kafka_config import admin_client, consumer_config
from core.settings import KafkaSettings

PATH_HEADER = "lineage.path"
INGEST_PATHS = ("kafka", "gateway", "harvest", "other")


def path_header(path: str) -> list[tuple[str, str | bytes | None]]:
    """The Kafka headers that mark a raw message as having come in by ``path``."""
    if path not in INGEST_PATHS:
        raise ValueError(f"unknown ingest path {path!r}; one of {', '.join(INGEST_PATHS)}")
    return [] if path == "kafka" else [(PATH_HEADER, path.encode())]


def ingest_path(headers: Any) -> str:
    """The ingest path of a raw message from its headers (a list of pairs, a mapping or None)."""
    if not headers:
        return "kafka"
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    for name, value in pairs:
        if name == PATH_HEADER:
            path = bytes(value or b"").decode("ascii", "replace")
            return path if path in INGEST_PATHS else "other"
    return "kafka"


def ensure_topics(kafka: KafkaSettings, wanted: Mapping[str, int],
                  timeout: float = 30) -> dict[str, int]:
    """Create each topic of ``wanted`` (name -> partitions) that does not exist yet.

    Returns the partition count of each wanted topic as it is now (an existing topic keeps its
    own count).
    """
    if not wanted:
        return {}
    admin = admin_client(kafka)
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka at {kafka.bootstrap_servers} did not answer: {exc}",
                                 hint="is the stack up? `lineage stack status`") from exc
    missing = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
    for name, future in (admin.create_topics(missing) if missing else {}).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceUnavailable(f"cannot create topic {name}: {exc}") from exc
    # A topic just created (here or by another service at the same moment) can take a moment
    # to show in the metadata; a caller must not see it missing.
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        if all(name in topics for name in wanted) or time.monotonic() > deadline:
            return {name: len(topics[name].partitions) for name in wanted if name in topics}
        time.sleep(0.2)


@dataclass(frozen=True)
class CommitWindow:
    """When a consumer group first and last committed on a topic (``perf_counter`` values)."""

    first: float
    covered_by_first: int  # messages the first commit covered
    last: float

    def timed(self, total: int, launched: float) -> tuple[int, float, bool]:
        """(messages, seconds, from_start) to compute a benchmark's rate from.

        From the first commit to the last, so the service's start-up is not counted; from
        ``launched`` (True) when the first commit already covered all ``total`` messages (one
        batch held a tiny workload), since only the wall time says anything then.
        """
        if self.covered_by_first >= total:
            return total, self.last - launched, True
        return total - self.covered_by_first, self.last - self.first, False


def commit_window(consumer: Any, topic: str, check: Callable[[], None],
                  progress: Callable[[int], None] | None = None,
                  interval: float = 0.1, progress_seconds: float = 10) -> CommitWindow:
    """Poll the committed offsets of ``consumer``'s group on ``topic`` until they reach its end.

    For benchmarks (see :class:`CommitWindow`). ``check`` runs on every poll and raises when
    the service under test died; ``progress`` gets the messages committed so far, at most once
    every ``progress_seconds``.
    """
    from confluent_kafka import TopicPartition

    parts = [TopicPartition(topic, p) for p in
             consumer.list_topics(topic, timeout=30).topics[topic].partitions]
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in parts}
    first_commit: tuple[float, int] | None = None
    next_progress = time.monotonic() + progress_seconds
    while True:
        committed = {tp.partition: max(tp.offset, 0)
                     for tp in consumer.committed(parts, timeout=30)}
        done = sum(committed.values())
        if done and first_commit is None:
            first_commit = (time.perf_counter(), done)
        if first_commit and all(committed[p] >= end for p, end in ends.items()):
            return CommitWindow(*first_commit, time.perf_counter())
        check()
        if progress is not None and time.monotonic() >= next_progress:
            next_progress = time.monotonic() + progress_seconds
            progress(done)
        time.sleep(interval)


def message_count(kafka: KafkaSettings, topic: str) -> int:
    """How many messages ``topic`` holds now; 0 while it is being created."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer(consumer_config(kafka, f"counter-{uuid.uuid4().hex[:8]}"))
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return 0
        return sum(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                   for p in meta.partitions)
    except KafkaException:
        return 0
    finally:
        consumer.close()


def wait_for_group(kafka: KafkaSettings, group: str, members: int = 1,
                   timeout: float = 120) -> None:
    """Block until consumer ``group`` is stable with ``members`` members, each holding
    partitions; raises :class:`ServiceUnavailable` after ``timeout`` seconds."""
    from confluent_kafka import ConsumerGroupState

    admin = admin_client(kafka)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            description = admin.describe_consumer_groups([group])[group].result(timeout=10)
        except KafkaException:
            description = None
        if (description is not None and description.state == ConsumerGroupState.STABLE
                and len(description.members) == members
                and all(m.assignment.topic_partitions for m in description.members)):
            return
        time.sleep(0.5)
    raise ServiceUnavailable(f"consumer group {group} did not settle with {members} members "
                             f"in {timeout:.0f}s")
