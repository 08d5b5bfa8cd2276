"""ruff and mypy --strict, as configured in pyproject.toml, pass on the whole project."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *argv], cwd=REPO, capture_output=True,
                          text=True, check=False, timeout=600)


def test_ruff_finds_nothing() -> None:
    proc = run("ruff", "check", "--output-format", "concise", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_mypy_strict_finds_nothing_in_the_packages() -> None:
    proc = run("mypy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
