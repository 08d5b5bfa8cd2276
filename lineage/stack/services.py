"""The services of the local stack: Apache Kafka (KRaft), Neo4j Community, optionally Prometheus.

Each service knows how to prepare its folder on first start (format Kafka's storage, generate the
Neo4j password), the command that runs it, and a health check that does real work: a produce and
consume round trip for Kafka, ``RETURN 1`` with authentication for Neo4j, ``/-/ready`` for
Prometheus.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import string
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
from core.settings import PASSWORD_FILE, project_root
from lineage.stack.processes import ManagedProcess
from lineage.stack.settings import LocalStackOptions

HEALTH_TOPIC = "__lineage_stack_health"


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
    ``kafka_metrics_port`` by the rules in ``deploy/prometheus/kafka-jmx.yml``.
    """

    name: str = "kafka"
    jmx_agent: Path | None = None

    @property
    def ports(self) -> dict[str, int]:
        ports = {"kafka": self.options.kafka_port, "controller": self.options.kafka_controller_port}
        if self.jmx_agent is not None:
            ports["metrics"] = self.options.kafka_metrics_port
        return ports

    @property
    def bootstrap(self) -> str:
        return f"{self.options.host}:{self.options.kafka_port}"

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
                    f"listeners=PLAINTEXT://{opts.host}:{opts.kafka_port},"
                    f"CONTROLLER://{opts.host}:{opts.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://{opts.host}:{opts.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
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
        kafka_round_trip(self.bootstrap, timeout)


def kafka_round_trip(bootstrap: str, timeout: float) -> None:
    """Produce one message and read it back; raises StackError when that fails in time."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    from confluent_kafka.cimpl import NewTopic

    try:
        admin = AdminClient(_quiet(bootstrap))  # must outlive its futures, or they fail
        futures = admin.create_topics([NewTopic(HEALTH_TOPIC, 1, 1)], request_timeout=timeout)
        futures[HEALTH_TOPIC].result(timeout=timeout)
    except KafkaException as exc:
        if "TOPIC_ALREADY_EXISTS" not in str(exc):
            raise StackError(f"Kafka at {bootstrap} failed a round trip: {exc}") from exc
    except TimeoutError as exc:  # concurrent.futures' own, not a KafkaException
        raise StackError(f"Kafka at {bootstrap} did not create a topic in time") from exc
    produce_and_read_back(bootstrap, HEALTH_TOPIC, uuid.uuid4().hex.encode(), partition=0,
                          timeout=timeout)


def _quiet(bootstrap: str) -> dict[str, str | int | float | bool]:
    # log_level 0: while the broker starts, librdkafka would print every refused connection.
    return {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 5000,
            "log_level": 0}


def produce_and_read_back(bootstrap: str, topic: str, value: bytes, *, key: bytes | None = None,
                          partition: int | None = None, timeout: float = 30) -> tuple[int, int]:
    """Publish ``value`` (acks=all), read the same bytes back from where Kafka put them.

    Returns (partition, offset); raises StackError when either step fails in time.
    """
    from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

    deadline = time.monotonic() + timeout
    base = _quiet(bootstrap)
    delivered: list[tuple[Any, Any]] = []
    try:
        producer = Producer({**base, "acks": "all"})
        # -1 lets the partitioner choose (by key), as when no partition is given.
        producer.produce(topic, value, key=key, partition=-1 if partition is None else partition,
                         on_delivery=lambda err, msg: delivered.append((err, msg)))
        producer.flush(max(0.1, deadline - time.monotonic()))
        if not delivered or delivered[0][0] is not None:
            cause = delivered[0][0] if delivered else "no acknowledgement in time"
            raise StackError(f"Kafka at {bootstrap} did not accept a write to {topic}: {cause}")
        where = (delivered[0][1].partition(), delivered[0][1].offset())
        consumer = Consumer({**base, "group.id": "lineage-read-back", "enable.auto.commit": False})
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
        raise StackError(f"Kafka at {bootstrap} failed a round trip: {exc}") from exc
    raise StackError(f"Kafka at {bootstrap} did not return the message it acknowledged")


PASSWORD_ALPHABET = string.ascii_letters + string.digits


def generate_password(length: int = 32) -> str:
    """A random password of letters and digits (about 190 bits at the default length).

    Letters and digits only: a token_urlsafe password starts with ``-`` once in 64 draws, and
    neo4j-admin then reads it as an option and refuses it.

    >>> len(generate_password()), generate_password(8).isalnum()
    (32, True)
    """
    return "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


@dataclass(frozen=True, kw_only=True)
class Neo4jService(JvmService):
    """Neo4j Community 5 LTS with authentication on and a generated password."""

    name: str = "neo4j"

    @property
    def ports(self) -> dict[str, int]:
        return {"bolt": self.options.bolt_port, "http": self.options.http_port}

    @property
    def uri(self) -> str:
        return f"bolt://{self.options.host}:{self.options.bolt_port}"

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
                    "",
                ]
            ),
            encoding="utf-8",
        )
        if self.password_file.is_file():
            return
        password = generate_password()
        proc = subprocess.run(
            [str(self.java), "-cp", self.classpath, "org.neo4j.cli.AdminTool",
             "dbms", "set-initial-password", "--", password],
            capture_output=True, text=True, check=False, timeout=120, env=self._env(),
        )
        if proc.returncode != 0:
            # The first line is the reason; a usage error follows it with the whole help text.
            first = (proc.stderr or proc.stdout).strip().splitlines()[:1] or ["no output"]
            raise StackError(
                f"setting the initial Neo4j password failed: {first[0][:300]}",
                hint=f"remove {self.folder} to start Neo4j from empty storage",
            )
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(password + "\n")

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

    def check(self, timeout: float) -> None:
        password = self.password_file.read_text(encoding="utf-8").strip()
        neo4j_ping(self.uri, ("neo4j", password), timeout)


def neo4j_ping(uri: str, auth: tuple[str, str], timeout: float) -> None:
    """Run ``RETURN 1`` with authentication; raises StackError when that fails in time."""
    from neo4j import GraphDatabase
    from neo4j.exceptions import AuthError, Neo4jError, ServiceUnavailable

    try:
        # A plain session, not execute_query: a health check must not retry on its own.
        with GraphDatabase.driver(uri, auth=auth, connection_timeout=timeout) as driver, \
                driver.session(database="neo4j") as session:
            one = session.run("RETURN 1 AS one").single(strict=True)["one"]
    except AuthError as exc:
        raise StackError(
            f"Neo4j at {uri} refused the password: {exc.message}",
            hint="set LINEAGE_NEO4J__PASSWORD, or for the local stack check .stack/neo4j/password",
        ) from exc
    except (ServiceUnavailable, Neo4jError, OSError) as exc:
        raise StackError(f"Neo4j at {uri} did not answer: {exc}") from exc
    if one != 1:
        raise StackError(f"Neo4j at {uri} answered RETURN 1 with {one!r}")


def service_metrics_ports() -> dict[str, int]:
    """Where the pipeline's services serve /metrics, by scrape job name, from their settings."""
    # Imported here: the stack must not need the services' packages unless Prometheus is on.
    from producers.gateway import GatewaySettings
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
