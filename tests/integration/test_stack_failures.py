"""Start-up failures a user can fix get one line of cause and one of hint, never a traceback."""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from core.errors import StackError
from lineage.stack.jvm import resolve_classpath
from tests.conftest import REPO, our_processes, private_ports_env, run_cli


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2, proc.stderr
    assert lines[0].startswith("error: ") and lines[1].startswith("hint: ")
    for text in expected:
        assert text in proc.stderr


def test_an_occupied_port_names_the_port_and_the_setting(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = {**private_ports_env(tmp_path), "LINEAGE_STACK__BOLT_PORT": str(port)}
        proc = run_cli("stack", "up", env=env)
    assert_one_line_error(proc, f"port {port} (bolt)", "already in use",
                          "LINEAGE_STACK__BOLT_PORT")
    assert our_processes(tmp_path) == [], "a refused start must leave nothing running"


@pytest.mark.parametrize("value", ["abc", "99999"])
def test_a_corrupted_port_setting_names_the_variable(tmp_path: Path, value: str) -> None:
    proc = run_cli("stack", "up", env={"LINEAGE_STATE_DIR": str(tmp_path),
                                       "LINEAGE_STACK__KAFKA_PORT": value})
    assert_one_line_error(proc, "LINEAGE_STACK__KAFKA_PORT", repr(value))


def test_a_missing_java_says_how_to_install_one(tmp_path: Path) -> None:
    proc = run_cli("stack", "up", env={"LINEAGE_STATE_DIR": str(tmp_path),
                                       "LINEAGE_STACK__JAVA_HOME": str(tmp_path / "no-jdk")})
    assert_one_line_error(proc, "Java was not found", "openjdk-17")


def test_a_failed_maven_resolution_names_the_artifact(tmp_path: Path) -> None:
    pom_dir = tmp_path / "kafka"
    pom_dir.mkdir()
    pom = (REPO / "deploy/local/jvm/kafka/pom.xml").read_text()
    (pom_dir / "pom.xml").write_text(pom.replace("<kafka.version>", "<kafka.version>0.0.0-nope"))
    with pytest.raises(StackError) as err:
        resolve_classpath(pom_dir, tmp_path / "cache")
    assert "Maven could not resolve the kafka artifacts" in err.value.cause
    assert "0.0.0-nope" in err.value.cause
    assert "\n" not in err.value.cause
    assert "Maven Central" in (err.value.hint or "")


def test_a_missing_maven_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn anywhere
    assert shutil.which("mvn") is None
    with pytest.raises(StackError) as err:
        resolve_classpath(REPO / "deploy/local/jvm/kafka", tmp_path / "cache")
    assert "Maven (mvn) is not installed" in err.value.cause
