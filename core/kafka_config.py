"""The one Kafka client configuration: every producer, consumer and admin client is built here.

Each function turns :class:`core.settings.KafkaSettings` into the configuration of one kind of
client, so that a setting (brokers, and the security options of a real cluster) reaches every
client of every stage the same way. ``extra`` entries override or add librdkafka properties.

>>> from core.settings import KafkaSettings
>>> kafka = KafkaSettings(bootstrap_servers="broker:9092")
>>> client_config(kafka)["bootstrap.servers"]
'broker:9092'
>>> producer_config(kafka, **{"linger.ms": 5})["enable.idempotence"]
True
>>> consumer_config(kafka, "g")["enable.auto.commit"]
False
"""

from __future__ import annotations

from typing import Any

from core.settings import KafkaSettings

Config = dict[str, Any]


def client_config(kafka: KafkaSettings, **extra: Any) -> Config:
    """What every librdkafka client needs: the brokers (and how to reach them)."""
    return {"bootstrap.servers": kafka.bootstrap_servers, **extra}


def producer_config(kafka: KafkaSettings, **extra: Any) -> Config:
    """An idempotent producer: acks from every in-sync replica, no duplicates on its retries,
    per-key order kept across them."""
    return client_config(kafka, **{"acks": "all", "enable.idempotence": True, **extra})


def consumer_config(kafka: KafkaSettings, group_id: str, **extra: Any) -> Config:
    """A consumer of ``group_id`` that commits only when told to (at-least-once)."""
    return client_config(kafka, **{"group.id": group_id, "enable.auto.commit": False, **extra})


def admin_client(kafka: KafkaSettings, **extra: Any) -> Any:
    """An AdminClient on the configured cluster (keep it while its futures are pending)."""
    from confluent_kafka.admin import AdminClient

    return AdminClient(client_config(kafka, **extra))


def broker_urls(kafka: KafkaSettings) -> str:
    """The brokers as Faust's ``kafka://`` URLs."""
    return ";".join(f"kafka://{s.strip()}" for s in kafka.bootstrap_servers.split(","))
