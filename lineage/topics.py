"""Creating the pipeline's Kafka topics when they are missing (every service does it at start).

>>> ensure_topics("127.0.0.1:1", {}, timeout=0.1)
{}
"""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import KafkaException, NewTopic

from lineage.errors import ServiceUnavailable


def ensure_topics(bootstrap_servers: str, wanted: Mapping[str, int],
                  timeout: float = 30) -> dict[str, int]:
    """Create each topic of ``wanted`` (name -> partitions) that does not exist yet.

    Returns the partition count of each wanted topic as it is now (an existing topic keeps its
    own count).
    """
    if not wanted:
        return {}
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka at {bootstrap_servers} did not answer: {exc}",
                                 hint="is the stack up? `lineage stack status`") from exc
    missing = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
    for name, future in (admin.create_topics(missing) if missing else {}).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceUnavailable(f"cannot create topic {name}: {exc}") from exc
    topics = admin.list_topics(timeout=timeout).topics
    return {name: len(topics[name].partitions) for name in wanted if name in topics}
