"""The one Kafka client configuration: librdkafka properties, Faust's credentials, Neo4j's TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from faust.auth import SASLCredentials, SSLCredentials
from neo4j import TrustCustomCAs

from core.kafka_config import (
    LIBRDKAFKA_LOG,
    broker_credentials,
    client_config,
    consumer_config,
    producer_config,
    ssl_context,
)
from core.neo4j_driver import tls_options
from core.settings import KafkaSettings, Neo4jSettings
from lineage.stack.tls import ensure_certificates


@pytest.fixture(scope="module")
def tls_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real CA and certificate (the local stack's generator), for the TLS contexts."""
    folder = tmp_path_factory.mktemp("tls")
    ensure_certificates(folder, "127.0.0.1")
    return folder


def sasl_ssl(**extra: object) -> KafkaSettings:
    return KafkaSettings.model_validate({
        "bootstrap_servers": "broker:9096", "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "svc", "sasl_password": "s3cret",
        **extra})


def test_a_plaintext_client_gets_exactly_the_brokers_as_before() -> None:
    kafka = KafkaSettings(bootstrap_servers="a:9092,b:9092")
    assert client_config(kafka) == {"bootstrap.servers": "a:9092,b:9092",
                                    "logger": LIBRDKAFKA_LOG}
    assert broker_credentials(kafka) is None
    assert ssl_context(kafka) is None


def test_sasl_ssl_reaches_every_kind_of_librdkafka_client() -> None:
    kafka = sasl_ssl()
    expected = {"security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "svc", "sasl.password": "s3cret"}
    for config in (client_config(kafka), producer_config(kafka), consumer_config(kafka, "g")):
        assert expected.items() <= config.items()


def test_extra_properties_override_the_shared_ones() -> None:
    assert client_config(sasl_ssl(), **{"sasl.mechanism": "PLAIN"})["sasl.mechanism"] == "PLAIN"


def test_tls_files_become_librdkafka_locations(tls_folder: Path) -> None:
    kafka = KafkaSettings(security_protocol="SSL", ssl_ca_file=tls_folder / "ca.pem",
                          ssl_cert_file=tls_folder / "server.crt",
                          ssl_key_file=tls_folder / "server.key", ssl_key_password="kp")
    assert client_config(kafka) == {
        "bootstrap.servers": "127.0.0.1:9092", "security.protocol": "SSL",
        "ssl.ca.location": str(tls_folder / "ca.pem"),
        "ssl.certificate.location": str(tls_folder / "server.crt"),
        "ssl.key.location": str(tls_folder / "server.key"), "ssl.key.password": "kp",
        "logger": LIBRDKAFKA_LOG}


def test_faust_gets_scram_over_tls_with_the_configured_ca(tls_folder: Path) -> None:
    credentials = broker_credentials(sasl_ssl(ssl_ca_file=tls_folder / "ca.pem"))
    assert isinstance(credentials, SASLCredentials)
    assert (credentials.protocol.value, credentials.mechanism.value) == ("SASL_SSL",
                                                                          "SCRAM-SHA-512")
    assert (credentials.username, credentials.password) == ("svc", "s3cret")
    assert credentials.ssl_context is not None
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert credentials.ssl_context.check_hostname
    assert "s3cret" not in repr(credentials)


def test_faust_gets_a_client_certificate_over_plain_tls(tls_folder: Path) -> None:
    kafka = KafkaSettings(security_protocol="SSL", ssl_cert_file=tls_folder / "server.crt",
                          ssl_key_file=tls_folder / "server.key")
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, SSLCredentials)
    assert credentials.protocol.value == "SSL"


def test_sasl_over_plaintext_has_no_tls_context() -> None:
    kafka = KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="u",
                          sasl_password="p")
    credentials = broker_credentials(kafka)
    assert isinstance(credentials, SASLCredentials)
    assert credentials.protocol.value == "SASL_PLAINTEXT"
    assert credentials.ssl_context is None


@pytest.mark.parametrize("uri", ["bolt://h:7687", "neo4j://h:7687", "bolt+s://h:7687",
                                 "neo4j+s://abc.databases.neo4j.io", "bolt+ssc://h:7687"])
def test_a_uri_without_a_ca_file_goes_to_the_driver_as_it_is(uri: str) -> None:
    assert tls_options(Neo4jSettings(uri=uri)) == (uri, {})


@pytest.mark.parametrize(("uri", "base"), [("bolt+s://h:7687", "bolt://h:7687"),
                                           ("neo4j+s://h:7687/x", "neo4j://h:7687/x")])
def test_a_ca_file_turns_a_secure_scheme_into_encryption_with_that_ca(
    uri: str, base: str, tls_folder: Path,
) -> None:
    # The driver refuses trusted_certificates together with a +s scheme.
    spelled, options = tls_options(Neo4jSettings(uri=uri, ca_file=tls_folder / "ca.pem"))
    assert spelled == base
    assert options["encrypted"] is True
    assert isinstance(options["trusted_certificates"], TrustCustomCAs)
