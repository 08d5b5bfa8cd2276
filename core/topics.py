"""The pipeline's Kafka conventions: creating its topics, and the ingest-path header.

Every service creates the topics it needs when they are missing, at start; the raw topic with
the retention of ``LINEAGE_KAFKA__RAW_RETENTION_MS`` (forever by default, see
:func:`topic_config`), the others with the broker's defaults.

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
from collections.abc import Mapping
from typing import Any

from confluent_kafka.cimpl import KafkaException, NewTopic

from core.errors import ServiceUnavailable
from core.kafka_config import admin_client
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


def topic_config(kafka: KafkaSettings, name: str) -> dict[str, str]:
    """The configuration a topic named ``name`` is created with.

    The raw topic gets ``retention.ms`` from ``raw_retention_ms`` (forever by default): it is
    the log ``lineage rebuild`` makes the graph from. Every other topic takes the broker's
    defaults.

    >>> from core.settings import KafkaSettings
    >>> kafka = KafkaSettings()
    >>> topic_config(kafka, kafka.raw_topic), topic_config(kafka, kafka.changes_topic)
    ({'retention.ms': '-1'}, {})
    """
    return {"retention.ms": str(kafka.raw_retention_ms)} if name == kafka.raw_topic else {}


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
    missing = [NewTopic(name, count, 1, config=topic_config(kafka, name))
               for name, count in wanted.items() if name not in existing]
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
