"""The one Kafka client configuration: every producer, consumer and admin client is built here.

Each function turns :class:`core.settings.KafkaSettings` into the configuration of one kind of
client, so that a setting (brokers, and the security options of a real cluster) reaches every
client of every stage the same way. ``extra`` entries override or add librdkafka properties.
Faust's clients (aiokafka) get the same brokers and security from :func:`broker_urls` and
:func:`broker_credentials`.

>>> from core.settings import KafkaSettings
>>> kafka = KafkaSettings(bootstrap_servers="broker:9092")
>>> client_config(kafka)["bootstrap.servers"]
'broker:9092'
>>> producer_config(kafka, **{"linger.ms": 5})["enable.idempotence"]
True
>>> consumer_config(kafka, "g")["enable.auto.commit"]
False
>>> secured = KafkaSettings(bootstrap_servers="broker:9096", security_protocol="SASL_SSL",
...                         sasl_mechanism="SCRAM-SHA-512", sasl_username="svc",
...                         sasl_password="s3cret")
>>> sorted((k, v) for k, v in client_config(secured).items() if k != "logger")
... # doctest: +NORMALIZE_WHITESPACE
[('bootstrap.servers', 'broker:9096'), ('sasl.mechanism', 'SCRAM-SHA-512'),
 ('sasl.password', 's3cret'), ('sasl.username', 'svc'), ('security.protocol', 'SASL_SSL')]
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from core.settings import KafkaSettings

Config = dict[str, Any]

#: Where librdkafka's log lines go (not straight to stderr): through the handlers of the root
#: logger, so that they are formatted and rate-limited like the rest (core.quiet_logs).
LIBRDKAFKA_LOG = logging.getLogger("librdkafka")


def client_config(kafka: KafkaSettings, **extra: Any) -> Config:
    """What every librdkafka client needs: the brokers and how to reach them.

    The security properties appear only when the settings ask for them, so a plaintext client's
    configuration is exactly the brokers and the logger (and ``extra``).
    """
    return {"bootstrap.servers": kafka.bootstrap_servers, **security_config(kafka),
            "logger": LIBRDKAFKA_LOG, **extra}


def security_config(kafka: KafkaSettings) -> Config:
    """The librdkafka security properties of ``kafka``; empty for PLAINTEXT.

    Without a CA file librdkafka trusts the system's CAs, and it always checks that the broker's
    certificate names the host it connects to.
    """
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    config: Config = {"security.protocol": kafka.security_protocol}
    if kafka.uses_sasl:
        username, password = kafka.sasl_credentials()
        config |= {"sasl.mechanism": kafka.sasl_mechanism, "sasl.username": username,
                   "sasl.password": password}
    files = {"ssl.ca.location": kafka.ssl_ca_file, "ssl.certificate.location": kafka.ssl_cert_file,
             "ssl.key.location": kafka.ssl_key_file}
    config |= {name: str(path) for name, path in files.items() if path is not None}
    if kafka.ssl_key_password is not None:
        config["ssl.key.password"] = kafka.ssl_key_password.get_secret_value()
    return config


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


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of a Python client (aiokafka) for ``kafka``; None without TLS.

    It verifies the brokers' certificates and host names, against ``ssl_ca_file`` when set and
    the system's CAs otherwise, and presents the client certificate when one is configured.
    """
    if not kafka.uses_tls:
        return None
    context = ssl.create_default_context(
        cafile=str(kafka.ssl_ca_file) if kafka.ssl_ca_file is not None else None)
    if kafka.ssl_cert_file is not None and kafka.ssl_key_file is not None:
        password = kafka.ssl_key_password.get_secret_value() if kafka.ssl_key_password else None
        context.load_cert_chain(kafka.ssl_cert_file, kafka.ssl_key_file, password)
    return context


def broker_credentials(kafka: KafkaSettings) -> Any:
    """Faust's ``broker_credentials`` for ``kafka``: SASL (PLAIN, SCRAM) with or without TLS,
    TLS alone, or None for PLAINTEXT.

    Faust passes them to every aiokafka client it makes (consumer, producer, topic creation).
    """
    from faust.auth import SASLCredentials, SSLCredentials

    context = ssl_context(kafka)
    if kafka.uses_sasl:
        username, password = kafka.sasl_credentials()
        return SASLCredentials(username=username, password=password,
                               mechanism=kafka.sasl_mechanism, ssl_context=context)
    return SSLCredentials(context) if context is not None else None
