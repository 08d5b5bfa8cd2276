"""Every ``>>>`` example in the packages' docstrings runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ("core", "lineage", "stream_processor", "schemas", "producers", "sinks")
REPO = Path(__file__).resolve().parents[2]


def modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for info in pkgutil.walk_packages([str(REPO / package)], prefix=f"{package}."):
            path = REPO / (info.name.replace(".", "/") + ("/__init__.py" if info.ispkg else ".py"))
            if path.is_file() and ">>>" in path.read_text():
                names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", modules_with_examples())
def test_the_docstring_examples_of_each_module_run(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    for var in ("LINEAGE_NEO4J__PASSWORD", "LINEAGE_KAFKA__BOOTSTRAP_SERVERS",
                "LINEAGE_NEO4J__URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("LINEAGE_STATE_DIR", str(tmp_path / "state"))
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0
    assert result.failed == 0
