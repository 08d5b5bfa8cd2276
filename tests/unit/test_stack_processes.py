"""Process supervision of the local stack: pid files, identity, ports, Java, passwords."""

from __future__ import annotations

import os
import socket
import stat
import sys
from pathlib import Path

import pytest

from core.errors import StackError
from lineage.stack.jvm import find_java
from lineage.stack.processes import ManagedProcess, port_in_use
from lineage.stack.services import generate_password


def test_a_port_with_a_listener_is_reported_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        assert port_in_use("127.0.0.1", sock.getsockname()[1])


def test_a_free_port_is_not_reported_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert not port_in_use("127.0.0.1", port)


def sleeper(process: ManagedProcess) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)", process.marker]


def test_a_started_process_is_tracked_by_pid_file_and_stopped(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    pid = process.start(sleeper(process))
    assert process.pid() == pid
    assert process.stop(timeout=5)
    assert process.pid() is None
    assert not process.pid_file.exists()
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_a_pid_file_naming_someone_elses_process_is_never_signalled(tmp_path: Path) -> None:
    process = ManagedProcess("impostor", tmp_path)
    process.pid_file.write_text(f"{os.getpid()}\n")  # this test's own pid: no marker
    assert process.pid() is None
    assert not process.stop()
    assert not process.pid_file.exists()  # the stale file is cleaned up


def test_a_process_must_carry_its_marker(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must carry"):
        ManagedProcess("plain", tmp_path).start([sys.executable, "-c", "pass"])


def test_a_missing_java_home_is_a_stack_error_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(StackError) as err:
        find_java(tmp_path / "no-such-jdk")
    assert "Java was not found" in err.value.cause
    assert "openjdk-17" in (err.value.hint or "")


def test_a_java_older_than_17_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "java"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(StackError, match="Java 11"):
        find_java(tmp_path)


def test_generated_neo4j_passwords_never_look_like_an_option_to_neo4j_admin() -> None:
    # token_urlsafe started one password in 64 with "-", which neo4j-admin refused (seen in CI).
    passwords = [generate_password() for _ in range(2000)]
    assert all(len(p) == 32 and p.isascii() and p.isalnum() for p in passwords)
    assert len(set(passwords)) == len(passwords)
