"""The services of the local stack: Apache Kafka (KRaft), Neo4j Community, optionally Prometheus.

Each service knows how to prepare its folder on first start (format Kafka's storage, generate the
Neo4j password), the command that runs it, and a health check that does real work: a produce and
consume round trip for Kafka, ``RETURN 1`` with authentication for Neo4j, ``/-/ready`` for
Prometheus. In secured mode (``tls`` set) Kafka adds a SASL_SSL listener with SCRAM-SHA-512 and
Neo4j's bolt requires TLS; the health checks then go through those too.

>>> options, java = LocalStackOptions(), Path("java")
>>> KafkaService(folder=Path("kafka"), options=options, java=java, classpath="").ports
{'kafka': 9092, 'controller': 9093}
>>> secured = TlsFiles(Path("tls"))
>>> Neo4jService(folder=Path("neo4j"), options=options, java=java, classpath="",
...              tls=secured).endpoint()
{'uri': 'bolt+s://127.0.0.1:7687', 'ca_file': 'tls/ca.pem'}
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import StackError
from core.kafka_config import admin_client, client_config, consumer_config
from core.neo4j_driver import driver
from core.settings import (
    PASSWORD_FILE,
    SCRAM_MECHANISM,
    SCRAM_PASSWORD_FILE,
    SCRAM_USER,
    KafkaSettings,
    Neo4jSettings,
    project_root,
)
from lineage.stack.processes import ManagedProcess
from lineage.stack.settings import LocalStackOptions
from lineage.stack.tls import (
    TlsFiles,
    ensure_certificates,
    ensure_secret,
    generate_password,
    write_private,
)

HEALTH_TOPIC = "__lineage_stack_health"
# librdkafka would otherwise print every refused connection while the broker starts.
QUIET = {"socket.connection.setup.timeout.ms": 5000, "log_level": 0}


def deploy_dir() -> Path:
    """The checkout's ``deploy`` folder (poms, Prometheus rules), or a StackError saying why."""
    root = project_root()
    if root is None:
        raise StackError(
            "the local stack runs from a checkout of the project (deploy/local is missing)",
            hint="clone the repository, or use deploy/docker-compose.yml",
        )
    return root / "deploy"


@dataclass(frozen=True, kw_only=True)
class Service(ABC):
    """A service of the local stack living in ``folder``."""

    folder: Path
    options: LocalStackOptions

    name: str = "service"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(self.name, self.folder)

    @property
    @abstractmethod
    def ports(self) -> dict[str, int]:
        """Named ports this service listens on."""

    @property
    @abstractmethod
    def log_file(self) -> Path:
        """The file whose tail explains a failure."""

    @abstractmethod
    def prepare(self) -> None:
        """Write configuration and initialise storage; a no-op when already done."""

    @abstractmethod
    def argv(self) -> list[str]:
        """The command line that runs the service in the foreground."""

    @abstractmethod
    def check(self, timeout: float) -> None:
        """Do real work against the service; raise on failure."""


@dataclass(frozen=True, kw_only=True)
class JvmService(Service, ABC):
    """A service that runs on the JVM from a classpath Maven resolved."""

    java: Path
    classpath: str

    def jvm_argv(self, heap: str, main: str) -> list[str]:
        return [
            str(self.java),
            self.process.marker,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Dfile.encoding=UTF-8",
            "-cp",
            self.classpath,
            main,
        ]


@dataclass(frozen=True, kw_only=True)
class KafkaService(JvmService):
    """Apache Kafka 4 in KRaft mode, one combined broker and controller.

    With ``jmx_agent`` (the Prometheus JMX exporter's jar), the broker serves its metrics on
    ``kafka_metrics_port`` by the rules in ``deploy/prometheus/kafka-jmx.yml``. With ``tls``,
    a SASL_SSL listener on ``kafka_secure_port`` takes SCRAM-SHA-512 logins over TLS, beside
    the plaintext one (which the controller and the stack's own tools keep using).
    """

    name: str = "kafka"
    jmx_agent: Path | None = None
    tls: TlsFiles | None = None

    @property
    def ports(self) -> dict[str, int]:
        ports = {"kafka": self.options.kafka_port, "controller": self.options.kafka_controller_port}
        if self.tls is not None:
            ports["sasl_ssl"] = self.options.kafka_secure_port
        if self.jmx_agent is not None:
            ports["metrics"] = self.options.kafka_metrics_port
        return ports

    @property
    def bootstrap(self) -> str:
        return f"{self.options.host}:{self.options.kafka_port}"

    @property
    def scram_password_file(self) -> Path:
        return self.folder.parent / SCRAM_PASSWORD_FILE

    def settings(self) -> KafkaSettings:
        """Client settings for the plaintext listener."""
        return KafkaSettings(bootstrap_servers=self.bootstrap)

    def secure_settings(self, password: str | None = None) -> KafkaSettings:
        """Client settings for the SASL_SSL listener (with the generated password by default)."""
        return KafkaSettings.model_validate({
            **self.secure_endpoint(),
            "sasl_password": password or self.scram_password_file.read_text("utf-8").strip()})

    def secure_endpoint(self) -> dict[str, str]:
        """What a client needs to find the SASL_SSL listener, without the password."""
        if self.tls is None:
            raise StackError("the stack runs without its SASL_SSL listener",
                             hint="start it with `lineage stack up --secure`")
        return {"bootstrap_servers": f"{self.options.host}:{self.options.kafka_secure_port}",
                "security_protocol": "SASL_SSL", "sasl_mechanism": SCRAM_MECHANISM,
                "sasl_username": SCRAM_USER, "ssl_ca_file": str(self.tls.ca)}

    def _listener_lines(self) -> list[str]:
        opts = self.options
        plain = f"{opts.host}:{opts.kafka_port}"
        controller = f"{opts.host}:{opts.kafka_controller_port}"
        if self.tls is None:
            return [f"listeners=PLAINTEXT://{plain},CONTROLLER://{controller}",
                    f"advertised.listeners=PLAINTEXT://{plain}",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"]
        secure = f"{opts.host}:{opts.kafka_secure_port}"
        prefix = "listener.name.sasl_ssl."
        return [
            f"listeners=PLAINTEXT://{plain},CONTROLLER://{controller},SASL_SSL://{secure}",
            f"advertised.listeners=PLAINTEXT://{plain},SASL_SSL://{secure}",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            "SASL_SSL:SASL_SSL",
            f"sasl.enabled.mechanisms={SCRAM_MECHANISM}",
            f"{prefix}{SCRAM_MECHANISM.lower()}.sasl.jaas.config="
            "org.apache.kafka.common.security.scram.ScramLoginModule required;",
            # Kafka 4 reads PEM keystores: the unencrypted key and the chain in one file.
            f"{prefix}ssl.keystore.type=PEM",
            f"{prefix}ssl.keystore.location={self.tls.keystore}",
            f"{prefix}ssl.client.auth=none",
        ]

    @property
    def log_file(self) -> Path:
        return self.process.console_log

    def prepare(self) -> None:
        data = self.folder / "data"
        opts = self.options
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "server.properties").write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={opts.host}:{opts.kafka_controller_port}",
                    *self._listener_lines(),
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={data}",
                    f"num.partitions={opts.kafka_partitions}",
                    # One node: every internal topic has exactly one replica.
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    # Room above the processor's 1 MiB event limit, so that an oversized event
                    # reaches the processor and gets a DLQ reason instead of a producer error.
                    "message.max.bytes=8388608",
                    "replica.fetch.max.bytes=8388608",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        (self.folder / "log4j2.properties").write_text(
            "\n".join(
                [
                    "rootLogger.level = INFO",
                    "rootLogger.appenderRef.stdout.ref = STDOUT",
                    "appender.stdout.type = Console",
                    "appender.stdout.name = STDOUT",
                    "appender.stdout.layout.type = PatternLayout",
                    "appender.stdout.layout.pattern = [%d] %p %m (%c)%n",
                    "logger.state.name = state.change.logger",
                    "logger.state.level = WARN",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        if self.tls is not None:
            ensure_certificates(self.tls.folder, opts.host)
            ensure_secret(self.scram_password_file)
        if not (data / "meta.properties").is_file():
            # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding.
            self.format_storage(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))

    def format_storage(self, cluster_id: str) -> None:
        """Format KRaft storage for a one-node cluster (the config must be written first)."""
        self._run_tool(
            "kafka.tools.StorageTool",
            # `=` because a cluster id may begin with "-", which would read as an option.
            "format", f"--cluster-id={cluster_id}", "-c", str(self.folder / "server.properties"),
            "--standalone",
        )

    def _run_tool(self, main: str, *args: str) -> None:
        proc = subprocess.run(
            [str(self.java), "-cp", self.classpath, main, *args],
            capture_output=True, text=True, check=False, timeout=120,
        )
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise StackError(
                f"{main} failed: {last[0][:300]}",
                hint=f"remove {self.folder} to start Kafka from empty storage",
            )

    def argv(self) -> list[str]:
        flags = [f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}"]
        if self.jmx_agent is not None:
            rules = deploy_dir() / "prometheus" / "kafka-jmx.yml"
            flags.append(f"-javaagent:{self.jmx_agent}={self.options.host}:"
                         f"{self.options.kafka_metrics_port}:{rules}")
        cmd = self.jvm_argv(self.options.kafka_heap, "kafka.Kafka")
        return [*cmd[:2], *flags, *cmd[2:], str(self.folder / "server.properties")]

    def check(self, timeout: float) -> None:
        """A round trip on the plaintext listener and, in secured mode, one over SASL_SSL (the
        SCRAM user is created through the plaintext listener first, when it is missing)."""
        kafka_round_trip(self.settings(), timeout)
        if self.tls is not None:
            secure = self.secure_settings()
            ensure_scram_user(self.settings(), *secure.sasl_credentials(), timeout=timeout)
            kafka_round_trip(secure, timeout)


def ensure_scram_user(kafka: KafkaSettings, user: str, password: str, *, timeout: float) -> None:
    """Create the SCRAM-SHA-512 credential of ``user`` through ``kafka`` unless it exists."""
    from confluent_kafka import KafkaException

    # The admin package does not re-export these by name (mypy strict refuses the implicit one).
    from confluent_kafka.admin._scram import (
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    admin = admin_client(kafka, **QUIET)  # must outlive its futures, or they fail
    try:
        admin.describe_user_scram_credentials([user], request_timeout=timeout)[user].result(
            timeout=timeout)
        return
    except KafkaException as exc:
        if "RESOURCE_NOT_FOUND" not in str(exc):
            raise StackError(f"Kafka at {kafka.bootstrap_servers} did not describe the SCRAM "
                             f"user {user}: {exc}") from exc
    except TimeoutError as exc:
        raise StackError(f"Kafka at {kafka.bootstrap_servers} did not answer in time") from exc
    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), password.encode())
    try:
        admin.alter_user_scram_credentials([upsert], request_timeout=timeout)[user].result(
            timeout=timeout)
    except (KafkaException, TimeoutError) as exc:
        raise StackError(f"Kafka at {kafka.bootstrap_servers} did not store the SCRAM user "
                         f"{user}: {exc}") from exc


class _ClientErrors:
    """librdkafka's error callback: keeps the last error, which says why nothing answered (a
    refused login or certificate reaches only this callback, not the request's future)."""

    def __init__(self) -> None:
        self.last: Any = None

    def __call__(self, error: Any) -> None:
        self.last = error

    def config(self) -> dict[str, Any]:
        """The client properties that route errors here (and keep librdkafka quiet)."""
        return {**QUIET, "error_cb": self}


def _failed(kafka: KafkaSettings, what: str, exc: object, errors: _ClientErrors) -> StackError:
    """A StackError for ``what`` that says where, and what to check when a login failed."""
    where = f"Kafka at {kafka.bootstrap_servers} ({kafka.security_protocol})"
    text = str(exc) if errors.last is None else f"{exc}; last client error: {errors.last.str()}"
    if any(word in text for word in ("uthentication", "SSL", "certificate", "SASL")):
        return StackError(
            f"{where} {what}: {text}",
            hint="check LINEAGE_KAFKA__SECURITY_PROTOCOL, LINEAGE_KAFKA__SASL_MECHANISM, "
            "LINEAGE_KAFKA__SASL_USERNAME, LINEAGE_KAFKA__SASL_PASSWORD and "
            "LINEAGE_KAFKA__SSL_CA_FILE")
    return StackError(f"{where} {what}: {text}")


def kafka_round_trip(kafka: KafkaSettings, timeout: float) -> None:
    """Produce one message and read it back; raises StackError when that fails in time."""
    from confluent_kafka import KafkaException
    from confluent_kafka.cimpl import NewTopic

    errors = _ClientErrors()
    try:
        admin = admin_client(kafka, **errors.config())  # must outlive its futures, or they fail
        futures = admin.create_topics([NewTopic(HEALTH_TOPIC, 1, 1)], request_timeout=timeout)
        futures[HEALTH_TOPIC].result(timeout=timeout)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise _failed(kafka, "failed a round trip", exc, errors) from exc
    except TimeoutError as exc:  # concurrent.futures' own, not a KafkaException
        admin.poll(0)  # serves the error callback, which tells why
        raise _failed(kafka, "did not create a topic in time", "no answer", errors) from exc
    produce_and_read_back(kafka, HEALTH_TOPIC, uuid.uuid4().hex.encode(), partition=0,
                          timeout=timeout)


def produce_and_read_back(kafka: KafkaSettings, topic: str, value: bytes, *,
                          key: bytes | None = None, partition: int | None = None,
                          timeout: float = 30) -> tuple[int, int]:
    """Publish ``value`` (acks=all), read the same bytes back from where Kafka put them.

    Returns (partition, offset); raises StackError when either step fails in time.
    """
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    deadline = time.monotonic() + timeout
    bootstrap = kafka.bootstrap_servers
    delivered: list[tuple[Any, Any]] = []
    errors = _ClientErrors()
    try:
        producer = Producer(client_config(kafka, acks="all", **errors.config()))
        # -1 lets the partitioner choose (by key), as when no partition is given.
        producer.produce(topic, value, key=key, partition=-1 if partition is None else partition,
                         on_delivery=lambda err, msg: delivered.append((err, msg)))
        producer.flush(max(0.1, deadline - time.monotonic()))
        if not delivered or delivered[0][0] is not None:
            cause = delivered[0][0] if delivered else "no acknowledgement in time"
            raise _failed(kafka, f"did not accept a write to {topic}", cause, errors)
        where = (delivered[0][1].partition(), delivered[0][1].offset())
        consumer = Consumer(consumer_config(kafka, "lineage-read-back", **errors.config()))
        try:
            consumer.assign([TopicPartition(topic, *where)])
            while time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is not None and msg.error() is None and msg.offset() == where[1]:
                    if msg.value() != value:
                        raise StackError(f"Kafka returned other bytes than were written to {topic}")
                    return where
        finally:
            consumer.close()
    except KafkaException as exc:
        raise _failed(kafka, "failed a round trip", exc, errors) from exc
    raise StackError(f"Kafka at {bootstrap} did not return the message it acknowledged")


@dataclass(frozen=True, kw_only=True)
class Neo4jService(JvmService):
    """Neo4j Community 5 LTS with authentication on and a generated password.

    With ``tls``, bolt requires TLS (``bolt+s://``) with the stack's server certificate.
    """

    name: str = "neo4j"
    tls: TlsFiles | None = None

    @property
    def ports(self) -> dict[str, int]:
        return {"bolt": self.options.bolt_port, "http": self.options.http_port}

    @property
    def uri(self) -> str:
        scheme = "bolt" if self.tls is None else "bolt+s"
        return f"{scheme}://{self.options.host}:{self.options.bolt_port}"

    def endpoint(self) -> dict[str, str]:
        """What a client needs to reach this Neo4j, without the password."""
        if self.tls is None:
            return {"uri": self.uri}
        return {"uri": self.uri, "ca_file": str(self.tls.ca)}

    def _tls_lines(self) -> list[str]:
        if self.tls is None:
            return []
        policy = "dbms.ssl.policy.bolt."
        return [f"{policy}enabled=true", f"{policy}base_directory={self.tls.folder}",
                f"{policy}private_key={self.tls.key.name}",
                f"{policy}public_certificate={self.tls.certificate.name}",
                f"{policy}client_auth=NONE", "server.bolt.tls_level=REQUIRED"]

    @property
    def log_file(self) -> Path:
        return self.folder / "logs" / "neo4j.log"

    @property
    def password_file(self) -> Path:
        return self.folder.parent / PASSWORD_FILE

    def prepare(self) -> None:
        opts = self.options
        conf = self.folder / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "neo4j.conf").write_text(
            "\n".join(
                [
                    f"server.default_listen_address={opts.host}",
                    f"server.bolt.listen_address={opts.host}:{opts.bolt_port}",
                    f"server.bolt.advertised_address={opts.host}:{opts.bolt_port}",
                    f"server.http.listen_address={opts.host}:{opts.http_port}",
                    f"server.http.advertised_address={opts.host}:{opts.http_port}",
                    "server.https.enabled=false",
                    "dbms.security.auth_enabled=true",
                    f"server.memory.heap.initial_size={opts.neo4j_heap}",
                    f"server.memory.heap.max_size={opts.neo4j_heap}",
                    f"server.memory.pagecache.size={opts.neo4j_pagecache}",
                    "dbms.usage_report.enabled=false",
                    "db.tx_log.rotation.retention_policy=1G size",
                    *self._tls_lines(),
                    "",
                ]
            ),
            encoding="utf-8",
        )
        if self.tls is not None:
            ensure_certificates(self.tls.folder, opts.host)
        if self.password_file.is_file():
            return
        password = generate_password()
        proc = subprocess.run(
            [str(self.java), "-cp", self.classpath, "org.neo4j.cli.AdminTool",
             "dbms", "set-initial-password", "--", password],
            capture_output=True, text=True, check=False, timeout=120, env=self._env(),
            umask=0o077,  # it writes data/dbms/auth.ini, the password's hash
        )
        if proc.returncode != 0:
            # The first line is the reason; a usage error follows it with the whole help text.
            first = (proc.stderr or proc.stdout).strip().splitlines()[:1] or ["no output"]
            raise StackError(
                f"setting the initial Neo4j password failed: {first[0][:300]}",
                hint=f"remove {self.folder} to start Neo4j from empty storage",
            )
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        write_private(self.password_file, password + "\n")

    def _env(self) -> dict[str, str]:
        conf = self.folder / "conf"
        return {**os.environ, "NEO4J_HOME": str(self.folder), "NEO4J_CONF": str(conf)}

    def argv(self) -> list[str]:
        cmd = self.jvm_argv(self.options.neo4j_heap, "org.neo4j.server.CommunityEntryPoint")
        # The flags Neo4j's own launcher adds: netty and the page cache use these JDK internals.
        opens = [f"--add-opens=java.base/{pkg}=ALL-UNNAMED"
                 for pkg in ("java.nio", "java.io", "sun.nio.ch", "java.lang")]
        return [*cmd[:-3], *opens, "-Dio.netty.tryReflectionSetAccessible=true", *cmd[-3:],
                f"--home-dir={self.folder}", f"--config-dir={self.folder / 'conf'}"]

    def settings(self) -> Neo4jSettings:
        """Client settings for this Neo4j, with the generated password."""
        return Neo4jSettings.model_validate({
            **self.endpoint(), "password": self.password_file.read_text(encoding="utf-8").strip()})

    def check(self, timeout: float) -> None:
        neo4j_ping(self.settings(), timeout)


def neo4j_ping(neo4j: Neo4jSettings, timeout: float) -> None:
    """Run ``RETURN 1`` with authentication; raises StackError when that fails in time."""
    from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable

    uri = neo4j.uri
    try:
        # A plain session, not execute_query: a health check must not retry on its own.
        with driver(neo4j, connection_timeout=timeout) as client, \
                client.session(database=neo4j.database) as session:
            one = session.run("RETURN 1 AS one").single(strict=True)["one"]
    except AuthError as exc:
        raise StackError(
            f"Neo4j at {uri} refused the password: {exc.message}",
            hint="set LINEAGE_NEO4J__PASSWORD, or for the local stack check .stack/neo4j/password",
        ) from exc
    except (ServiceUnavailable, Neo4jError, OSError) as exc:
        hint = ("if the server requires TLS, use a bolt+s:// or neo4j+s:// URI "
                "(LINEAGE_NEO4J__URI) and LINEAGE_NEO4J__CA_FILE for a private CA")
        if neo4j.encrypted:
            hint = ("if its certificate is signed by a private CA, set LINEAGE_NEO4J__CA_FILE "
                    "to that CA's certificate (PEM)")
        raise StackError(f"Neo4j at {uri} did not answer: {exc}", hint=hint) from exc
    if one != 1:
        raise StackError(f"Neo4j at {uri} answered RETURN 1 with {one!r}")


def service_metrics_ports() -> dict[str, int]:
    """Where the pipeline's services serve /metrics, by scrape job name, from their settings."""
    # Imported here: the stack must not need the services' packages unless Prometheus is on.
    from producers.gateway.settings import GatewaySettings
    from sinks.settings import SinkSettings
    from stream_processor.settings import ProcessorSettings

    ports = {"lineage-processor": ProcessorSettings().processor.metrics_port,
             "lineage-sink": SinkSettings().sink.metrics_port,
             "lineage-gateway": GatewaySettings().gateway.port}
    return {job: port for job, port in ports.items() if port}


@dataclass(frozen=True, kw_only=True)
class PrometheusService(Service):
    """Prometheus from Debian's package, scraping the stack's services on loopback."""

    name: str = "prometheus"

    @property
    def process(self) -> ManagedProcess:
        # Prometheus takes no -D flags: its config path, inside our folder, identifies it.
        return ManagedProcess(self.name, self.folder, f"--config.file={self.config}")

    @property
    def config(self) -> Path:
        return self.folder / "prometheus.yml"

    @property
    def ports(self) -> dict[str, int]:
        return {"http": self.options.prometheus_port}

    @property
    def log_file(self) -> Path:
        return self.process.console_log

    @property
    def url(self) -> str:
        return f"http://{self.options.host}:{self.options.prometheus_port}"

    def prepare(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(self.render_config(), encoding="utf-8")

    def render_config(self) -> str:
        """The scrape config: Prometheus, Kafka's JMX exporter and the pipeline's services.

        The services' ports come from their own settings (``LINEAGE_PROCESSOR__METRICS_PORT``,
        ``LINEAGE_SINK__METRICS_PORT``, ``LINEAGE_GATEWAY__PORT``), so the targets follow them;
        the alert rules are the repository's ``deploy/prometheus/alerts.yml``. Job names match
        deploy/prometheus/prometheus.yml, which the dashboard and the alerts rely on.
        """
        host = self.options.host
        targets = {
            "prometheus": self.options.prometheus_port,
            "kafka": self.options.kafka_metrics_port,
            **service_metrics_ports(),
        }
        lines = [
            "# Written by `lineage stack up --with-prometheus`; rewritten at every start.",
            "global:",
            "  scrape_interval: 5s",
            "  evaluation_interval: 5s",
            "rule_files:",
            f"  - '{deploy_dir() / 'prometheus' / 'alerts.yml'}'",
            "scrape_configs:",
        ]
        for job, port in targets.items():
            lines += [f"  - job_name: {job}", "    static_configs:",
                      f"      - targets: ['{host}:{port}']"]
        return "\n".join(lines) + "\n"

    def argv(self) -> list[str]:
        binary = shutil.which("prometheus")
        if binary is None:
            raise StackError(
                "Prometheus is not installed",
                hint="apt-get install prometheus, or run "
                "`LINEAGE_STACK__WITH_PROMETHEUS=true make setup`",
            )
        return [
            binary,
            self.process.marker,
            f"--storage.tsdb.path={self.folder / 'data'}",
            f"--web.listen-address={self.options.host}:{self.options.prometheus_port}",
            "--web.enable-lifecycle",
        ]

    def check(self, timeout: float) -> None:
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=timeout) as resp:  # noqa: S310
                if resp.status == 200:
                    return
                raise StackError(f"Prometheus at {self.url} is not ready (HTTP {resp.status})")
        except (urllib.error.URLError, OSError) as exc:
            raise StackError(f"Prometheus at {self.url} did not answer: {exc}") from exc
