"""Shared test helpers: where the shared OpenLineage corpus is, and running the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lineage.stack.processes import free_ports

REPO = Path(__file__).resolve().parents[1]
SHARED_OPENLINEAGE = REPO.parent / "shared" / "openlineage"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test by its folder, so `-m unit` / `-m integration` select exactly those."""
    for item in items:
        folder = Path(item.path).relative_to(REPO / "tests").parts[0]
        if folder in ("unit", "integration"):
            item.add_marker(getattr(pytest.mark, folder))


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``lineage ARGS`` as a user would, in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "lineage", *args],
        capture_output=True, text=True, timeout=timeout, check=False, cwd=REPO,
        env={**os.environ, **(env or {})},
    )


def free_port() -> int:
    """One free port (see :func:`free_ports`)."""
    return free_ports(1)[0]


def private_ports_env(state_dir: Path) -> dict[str, str]:
    """Settings for a second local stack: its own state folder and free ports."""
    kafka, controller, bolt, http, prometheus, jmx = free_ports(6)
    return {
        "LINEAGE_STATE_DIR": str(state_dir),
        "LINEAGE_STACK__KAFKA_PORT": str(kafka),
        "LINEAGE_STACK__KAFKA_CONTROLLER_PORT": str(controller),
        "LINEAGE_STACK__BOLT_PORT": str(bolt),
        "LINEAGE_STACK__HTTP_PORT": str(http),
        "LINEAGE_STACK__PROMETHEUS_PORT": str(prometheus),
        "LINEAGE_STACK__KAFKA_METRICS_PORT": str(jmx),
    }


def our_processes(state_dir: Path) -> list[int]:
    """Pids of live processes whose command line names this state folder."""
    needle = str(state_dir).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if needle in (proc / "cmdline").read_bytes():
                    pids.append(int(proc.name))
            except OSError:
                continue
    return pids


@pytest.fixture
def shared_openlineage() -> Path:
    """The official spec and event corpus beside the checkout; skips when it is absent."""
    if not SHARED_OPENLINEAGE.is_dir():
        pytest.skip(f"{SHARED_OPENLINEAGE} is absent: the OpenLineage corpus ships beside the repo")
    return SHARED_OPENLINEAGE
