"""`lineage stack up|status|down` as a user runs them, on a second stack with its own ports."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import AuthError

from lineage.stack import jvm_dir
from lineage.stack.jvm import find_java, resolve_classpath
from lineage.stack.services import KafkaService
from lineage.stack.settings import StackSettings
from tests.conftest import our_processes, private_ports_env, run_cli


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = {
        **private_ports_env(tmp_path / "state"),
        "LINEAGE_STACK__KAFKA_HEAP": "512m",
        "LINEAGE_STACK__NEO4J_HEAP": "512m",
        "LINEAGE_STACK__NEO4J_PAGECACHE": "128m",
    }
    yield env
    run_cli("stack", "down", env=env)


def test_up_twice_status_and_down_leave_no_process_behind(
    private_stack: dict[str, str],
) -> None:
    env = private_stack
    state_dir = Path(env["LINEAGE_STATE_DIR"])

    first = run_cli("stack", "up", "--with-prometheus", env=env)
    assert first.returncode == 0, first.stderr
    for name in ("kafka", "neo4j", "prometheus"):
        assert f"{name}: started" in first.stdout

    second = run_cli("stack", "up", env=env)
    assert second.returncode == 0, second.stderr
    assert "already running" in second.stdout and "started" not in second.stdout

    status = run_cli("stack", "status", env=env)
    assert status.returncode == 0, status.stdout + status.stderr
    rows = {line.split()[0]: line for line in status.stdout.splitlines()[1:]}
    assert set(rows) == {"kafka", "neo4j", "prometheus"}
    assert all(row.endswith("healthy") for row in rows.values())
    assert env["LINEAGE_STACK__BOLT_PORT"] in rows["neo4j"]

    password = (state_dir / "neo4j" / "password").read_text().strip()
    assert len(password) >= 24 and password != "neo4j"
    assert oct((state_dir / "neo4j" / "password").stat().st_mode & 0o777) == "0o600"
    uri = json.loads((state_dir / "connection.json").read_text())["neo4j"]["uri"]
    with GraphDatabase.driver(uri, auth=None) as driver, pytest.raises(AuthError), \
            driver.session() as session:
        session.run("RETURN 1").consume()

    prometheus_url = json.loads((state_dir / "connection.json").read_text())["prometheus"]["url"]
    targets = f"{prometheus_url}/api/v1/targets"
    with urllib.request.urlopen(targets, timeout=10) as resp:  # noqa: S310 - http URL we wrote
        assert json.load(resp)["status"] == "success"

    assert len(our_processes(state_dir)) == 3
    down = run_cli("stack", "down", env=env)
    assert down.returncode == 0, down.stderr
    assert our_processes(state_dir) == []
    assert not list(state_dir.glob("*/*.pid"))

    after = run_cli("stack", "status", env=env)
    assert after.returncode == 1
    assert after.stdout.count("stopped") == 2  # prometheus is listed only when asked for
    assert os.environ.get("LINEAGE_STATE_DIR") != env["LINEAGE_STATE_DIR"]


def test_kafka_storage_formats_with_a_cluster_id_that_begins_with_a_dash(tmp_path: Path) -> None:
    settings = StackSettings()
    kafka = KafkaService(
        folder=tmp_path / "kafka",
        options=settings.stack,
        java=find_java(settings.stack.java_home),
        classpath=resolve_classpath(jvm_dir() / "kafka", settings.state_dir / "jvm"),
    )
    (tmp_path / "kafka" / "data").mkdir(parents=True)
    (tmp_path / "kafka" / "data" / "meta.properties").touch()  # prepare() writes config only
    kafka.prepare()
    (tmp_path / "kafka" / "data" / "meta.properties").unlink()
    kafka.format_storage("-AX-iryXSEmjapT_s4UBCw")
    meta = (tmp_path / "kafka" / "data" / "meta.properties").read_text()
    assert "cluster.id=-AX-iryXSEmjapT_s4UBCw" in meta
