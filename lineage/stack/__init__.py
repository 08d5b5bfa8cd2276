"""The local stack: Kafka and Neo4j as processes on loopback, for tests, the demo and laptops.

``up`` is idempotent: services already running and healthy are left alone; it returns only when
Kafka has completed a produce/consume round trip and Neo4j has answered ``RETURN 1`` with the
generated password. ``down`` stops only the processes whose pid files it wrote. All state (data,
logs, pid files, the password) lives in one git-ignored folder, ``.stack/`` by default.

Secured mode (``LINEAGE_STACK__SECURE=true`` or ``lineage stack up --secure``) adds a SASL_SSL
listener to Kafka and requires TLS on Neo4j's bolt, with a CA, certificate and SCRAM password
generated at the first secured start (``tls/``, ``kafka/scram-password``). A stack that runs
secured stays so for ``status`` and a later ``up`` without the flag.

>>> from lineage.stack.settings import StackSettings
>>> stack = LocalStack(StackSettings())
>>> [s.name for s in stack.status()]   # doctest: +SKIP
['kafka', 'neo4j']
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import StackError
from core.settings import CONNECTION_FILE, SECURE_SECTION
from lineage.stack.jvm import find_java, resolve_classpath
from lineage.stack.processes import ManagedProcess, port_in_use
from lineage.stack.services import (
    JvmService,
    KafkaService,
    Neo4jService,
    PrometheusService,
    Service,
    deploy_dir,
)
from lineage.stack.settings import StackSettings
from lineage.stack.tls import TlsFiles

__all__ = ["LocalStack", "ServiceStatus"]


@dataclass(frozen=True)
class ServiceStatus:
    """What ``lineage stack status`` shows for one service."""

    name: str
    ports: dict[str, int]
    pid: int | None
    healthy: bool
    detail: str


def jvm_dir() -> Path:
    return deploy_dir() / "local" / "jvm"


class LocalStack:
    """Controls the local Kafka and Neo4j processes described by ``settings``."""

    def __init__(self, settings: StackSettings, log: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.options = settings.stack
        self.state_dir = settings.state_dir
        self.log = log

    def processes(self) -> list[ManagedProcess]:
        """Every process the stack may have started, without resolving anything (for ``down``)."""
        prometheus = PrometheusService(folder=self.state_dir / "prometheus", options=self.options)
        return [ManagedProcess(name, self.state_dir / name) for name in ("kafka", "neo4j")] + [
            prometheus.process
        ]

    def is_running(self) -> bool:
        """Whether Kafka and Neo4j both run (Prometheus is optional)."""
        kafka, neo4j, _prometheus = self.processes()
        return kafka.pid() is not None and neo4j.pid() is not None

    def is_secure(self) -> bool:
        """Whether the stack is (to be) secured: asked for, or already running with SASL_SSL."""
        if self.options.secure:
            return True
        kafka = ManagedProcess("kafka", self.state_dir / "kafka")
        config = kafka.folder / "server.properties"
        return (kafka.pid() is not None and config.is_file()
                and "SASL_SSL://" in config.read_text(encoding="utf-8"))

    def services(self) -> list[Service]:
        """The services, with Java found and the jars resolved (may run Maven once).

        Prometheus is included when it is asked for or already running.
        """
        java = find_java(self.options.java_home)
        cache = self.state_dir / "jvm"
        prometheus = PrometheusService(folder=self.state_dir / "prometheus", options=self.options)
        with_prometheus = self.options.with_prometheus or prometheus.process.pid() is not None
        # With Prometheus on, Kafka carries the JMX exporter so the broker is scraped too.
        agent = (Path(resolve_classpath(jvm_dir() / "jmx-exporter", cache))
                 if with_prometheus else None)
        tls = TlsFiles(self.state_dir / "tls") if self.is_secure() else None
        services: list[Service] = [
            KafkaService(folder=self.state_dir / "kafka", options=self.options, java=java,
                         classpath=resolve_classpath(jvm_dir() / "kafka", cache),
                         jmx_agent=agent, tls=tls),
            Neo4jService(folder=self.state_dir / "neo4j", options=self.options, java=java,
                         classpath=resolve_classpath(jvm_dir() / "neo4j", cache), tls=tls),
        ]
        if with_prometheus:
            services.append(prometheus)
        return services

    def fetch(self) -> None:
        """Find Java and resolve every JVM artifact, without starting anything."""
        for service in self.services():
            if isinstance(service, JvmService):
                self.log(f"{service.name}: {len(service.classpath.split(':'))} jars resolved")

    def up(self) -> float:
        """Start what is not running and wait until all is healthy; returns the seconds taken."""
        started_at = time.monotonic()
        services = self.services()
        to_start = [s for s in services if s.process.pid() is None]
        for service in services:
            if service not in to_start:
                self.log(f"{service.name}: already running (pid {service.process.pid()})")
        # Every port is checked before anything starts, so a refusal leaves nothing behind.
        for service in to_start:
            self._check_ports_free(service)
        for service in to_start:
            service.prepare()
            pid = service.process.start(service.argv())
            self.log(f"{service.name}: started (pid {pid}), waiting for it to answer")
        try:
            for service in services:
                self._wait_healthy(service, started_at + self.options.start_timeout_seconds)
                self.log(f"{service.name}: healthy on {self._describe_ports(service.ports)}")
        except StackError:
            # Stop what this call started, so the next `up` begins clean; the logs stay.
            for service in to_start:
                service.process.stop()
            raise
        self._write_connection_file(services)
        return time.monotonic() - started_at

    def down(self) -> list[str]:
        """Stop the processes this stack started; returns the names of those it stopped."""
        stopped = []
        for process in reversed(self.processes()):
            if process.stop():
                stopped.append(process.name)
                self.log(f"{process.name}: stopped")
            elif process.name != "prometheus":  # optional: silent when it was never started
                self.log(f"{process.name}: not running")
        return stopped

    def status(self) -> list[ServiceStatus]:
        """Each service's pid, ports and a live health check."""
        result = []
        for service in self.services():
            pid = service.process.pid()
            if pid is None:
                result.append(ServiceStatus(service.name, service.ports, None, False, "stopped"))
                continue
            try:
                service.check(timeout=10)
            except StackError as exc:
                result.append(ServiceStatus(service.name, service.ports, pid, False, exc.cause))
            else:
                result.append(ServiceStatus(service.name, service.ports, pid, True, "healthy"))
        return result

    def log_path(self, name: str) -> Path:
        """The main log file of service ``name``."""
        for service in self.services():
            if service.name == name:
                return service.log_file
        raise StackError(f"no service named {name!r}", hint="use kafka, neo4j or prometheus")

    def _check_ports_free(self, service: Service) -> None:
        for label, port in service.ports.items():
            if port_in_use(self.options.host, port):
                raise StackError(
                    f"{service.name} cannot start: port {port} ({label}) on {self.options.host} "
                    "is already in use by another process",
                    hint=f"stop that process or choose another port with "
                    f"LINEAGE_STACK__{_port_setting(service.name, label).upper()}",
                )

    def _wait_healthy(self, service: Service, deadline: float) -> None:
        last_error = "no answer yet"
        while time.monotonic() < deadline:
            if service.process.pid() is None:
                raise StackError(
                    f"{service.name} exited during start-up; last lines of {service.log_file}:\n"
                    + service.process.tail(service.log_file),
                    hint=f"see {service.log_file}",
                )
            try:
                service.check(timeout=min(10.0, max(1.0, deadline - time.monotonic())))
            except StackError as exc:
                last_error = exc.cause
                time.sleep(1.0)
            else:
                return
        raise StackError(
            f"{service.name} did not become healthy within "
            f"{self.options.start_timeout_seconds:.0f}s ({last_error}); "
            f"last lines of {service.log_file}:\n"
            + service.process.tail(service.log_file),
            hint="raise LINEAGE_STACK__START_TIMEOUT_SECONDS on a slow machine",
        )

    def _write_connection_file(self, services: list[Service]) -> None:
        # Secrets stay in their own files (mode 600); this file names endpoints and CA files.
        endpoints: dict[str, dict[str, Any]] = {}
        for service in services:
            if isinstance(service, KafkaService):
                endpoints["kafka"] = {"bootstrap_servers": service.bootstrap}
                if service.tls is not None:
                    endpoints[SECURE_SECTION] = {"kafka": service.secure_endpoint()}
            elif isinstance(service, Neo4jService):
                # With TLS on, bolt takes nothing else: the secured URI is the only one.
                endpoints["neo4j"] = service.endpoint()
            elif isinstance(service, PrometheusService):
                endpoints["prometheus"] = {"url": service.url}
        (self.state_dir / CONNECTION_FILE).write_text(
            json.dumps(endpoints, indent=2) + "\n", encoding="utf-8"
        )

    @staticmethod
    def _describe_ports(ports: dict[str, int]) -> str:
        return ", ".join(f"{label} {port}" for label, port in ports.items())


def _port_setting(service: str, label: str) -> str:
    return {
        ("kafka", "kafka"): "kafka_port",
        ("kafka", "controller"): "kafka_controller_port",
        ("kafka", "metrics"): "kafka_metrics_port",
        ("kafka", "sasl_ssl"): "kafka_secure_port",
        ("neo4j", "bolt"): "bolt_port",
        ("neo4j", "http"): "http_port",
        ("prometheus", "http"): "prometheus_port",
    }[(service, label)]
