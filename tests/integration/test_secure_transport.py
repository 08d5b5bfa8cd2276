"""Kafka over SASL_SSL (SCRAM-SHA-512) and Neo4j over bolt+s, for real.

A private second stack in secured mode (its own state folder and ports): Kafka's SASL_SSL
listener and Neo4j's TLS-only bolt present a certificate from the CA the stack generated. The
real processor and sink run as child processes configured the way a real deployment is, with
``LINEAGE_KAFKA__SECURITY_PROTOCOL=SASL_SSL`` and friends and a ``bolt+s://`` URI with the CA
file, and an empty state folder, so nothing comes from the local stack's files. Events go in
over SASL_SSL and the graph is read back over bolt+s; a wrong SCRAM password and a plaintext
bolt client are refused with errors that say why.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core.neo4j_driver import driver
from core.settings import SCRAM_PASSWORD_FILE, Neo4jSettings
from lineage.stack.processes import free_ports
from tests.conftest import private_ports_env, run_cli
from tests.integration.kafka_io import PipelineTopics, Worker

NAMESPACE = "secured"
JOBS = 5


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A private secured stack; yields the client settings of a real deployment for it."""
    folder = tmp_path_factory.mktemp("secured")
    env = private_ports_env(folder / "state")
    taken = {int(v) for k, v in env.items() if k.endswith("_PORT")}
    secure_port = next(p for p in free_ports(len(taken) + 1) if p not in taken)
    env |= {
        "LINEAGE_STACK__SECURE": "true",
        "LINEAGE_STACK__KAFKA_SECURE_PORT": str(secure_port),
        "LINEAGE_STACK__KAFKA_HEAP": "512m",
        "LINEAGE_STACK__NEO4J_HEAP": "512m",
        "LINEAGE_STACK__NEO4J_PAGECACHE": "128m",
    }
    up = run_cli("stack", "up", env=env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = Path(env["LINEAGE_STATE_DIR"])
        ca = state / "tls" / "ca.pem"
        client = {
            # An empty state folder: every setting below is given as a deployment gives it.
            "LINEAGE_STATE_DIR": str(folder / "client-state"),
            "LINEAGE_KAFKA__BOOTSTRAP_SERVERS": f"127.0.0.1:{secure_port}",
            "LINEAGE_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
            "LINEAGE_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
            "LINEAGE_KAFKA__SASL_USERNAME": "lineage",
            "LINEAGE_KAFKA__SASL_PASSWORD": (state / SCRAM_PASSWORD_FILE).read_text().strip(),
            "LINEAGE_KAFKA__SSL_CA_FILE": str(ca),
            "LINEAGE_NEO4J__URI": f"bolt+s://127.0.0.1:{env['LINEAGE_STACK__BOLT_PORT']}",
            "LINEAGE_NEO4J__CA_FILE": str(ca),
            "LINEAGE_NEO4J__PASSWORD": (state / "neo4j" / "password").read_text().strip(),
        }
        yield {"env": env, "client": client, "folder": folder, "state": state}
    finally:
        run_cli("stack", "down", env=env)


def event(i: int) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": NAMESPACE, "name": f"job-{i}"},
        "inputs": [{"namespace": NAMESPACE, "name": f"table-{i}"}],
        "outputs": [{"namespace": NAMESPACE, "name": f"table-{i + 1}"}],
        "producer": "https://example.com/test_secure_transport",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def jobs_in_graph(neo4j: Neo4jSettings) -> int:
    with driver(neo4j) as client:
        records, _, _ = client.execute_query(
            "MATCH (j:Job {namespace: $ns}) RETURN count(j) AS jobs", ns=NAMESPACE,
            database_=neo4j.database)
    return int(records[0]["jobs"])


def test_the_secured_stack_keeps_its_secrets_to_its_owner(secured: dict[str, Any]) -> None:
    state = secured["state"]
    secrets = [state / SCRAM_PASSWORD_FILE, state / "neo4j" / "password",
               *(state / "tls").glob("*.key"), state / "tls" / "server.pem"]
    assert {oct(p.stat().st_mode & 0o777) for p in secrets} == {"0o600"}
    # Issue #14, item 10: Neo4j's auth.ini was 0644 and the data folders 0755.
    assert oct((state / "neo4j" / "data" / "dbms" / "auth.ini").stat().st_mode & 0o777) == "0o600"
    services = [state / name for name in ("kafka", "neo4j")]
    assert {oct(p.stat().st_mode & 0o777) for p in services} == {"0o700"}
    written = [p for p in (state / "neo4j" / "data").rglob("*") if p.is_file()]
    assert written and not [p for p in written if p.stat().st_mode & 0o077], "private files"
    connection = (state / "connection.json").read_text()
    assert secured["client"]["LINEAGE_KAFKA__SASL_PASSWORD"] not in connection
    assert json.loads(connection)["secure"]["kafka"]["security_protocol"] == "SASL_SSL"


def test_the_processor_and_the_sink_run_over_sasl_ssl_and_bolt_s(
    secured: dict[str, Any], tmp_path: Path,
) -> None:
    client = secured["client"]
    topics = PipelineTopics(client["LINEAGE_KAFKA__BOOTSTRAP_SERVERS"])
    env = {**topics.env(tmp_path), **client}
    checked = run_cli("check", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "(SASL_SSL): ok" in checked.stdout

    services = [Worker(env, tmp_path / f"{name}.log", name) for name in ("process", "sink")]
    try:
        events = tmp_path / "events.ndjson"
        events.write_text("".join(json.dumps(event(i)) + "\n" for i in range(JOBS)))
        sent = run_cli("emit", str(events), env=env)
        assert sent.returncode == 0, sent.stdout + sent.stderr

        neo4j = Neo4jSettings(uri=client["LINEAGE_NEO4J__URI"],
                              ca_file=client["LINEAGE_NEO4J__CA_FILE"],
                              password=client["LINEAGE_NEO4J__PASSWORD"])
        deadline = time.monotonic() + 180
        while (jobs := jobs_in_graph(neo4j)) < JOBS and time.monotonic() < deadline:
            for service in services:
                assert service.proc.poll() is None, service.log.read_text()[-3000:]
            time.sleep(1)
        assert jobs == JOBS, "\n".join(s.log.read_text()[-2000:] for s in services)
    finally:
        for service in services:
            service.stop()


def test_a_wrong_scram_password_is_refused_with_a_clear_error(secured: dict[str, Any]) -> None:
    env = {**secured["client"], "LINEAGE_KAFKA__SASL_PASSWORD": "not-the-password"}
    checked = run_cli("check", env=env)
    assert checked.returncode != 0
    assert "SASL authentication error" in checked.stderr, checked.stderr
    assert "LINEAGE_KAFKA__SASL_PASSWORD" in checked.stderr


def test_a_plaintext_bolt_client_is_refused_with_a_clear_error(secured: dict[str, Any]) -> None:
    env = {**secured["client"], "LINEAGE_NEO4J__URI": secured["client"]["LINEAGE_NEO4J__URI"]
           .replace("bolt+s://", "bolt://")}
    del env["LINEAGE_NEO4J__CA_FILE"]
    checked = run_cli("check", env=env)
    assert checked.returncode != 0
    assert "did not answer" in checked.stderr, checked.stderr
    assert "bolt+s://" in checked.stderr  # the hint names the URI that works
