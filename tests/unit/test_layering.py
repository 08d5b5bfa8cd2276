"""The import direction of the layout: the ground floor, the schemas, the stages, the top floor.

``core`` (the ground floor) imports no other package of the project; ``schemas`` stands on it;
each stage (``producers``, ``stream_processor``, ``sinks``) imports only ``core``, ``schemas`` and
itself; ``lineage`` (the command line, the local stack, the queries, the demo, the benchmarks)
sits on top and may import them all. Imports inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

STAGES = ("producers", "stream_processor", "sinks")
PACKAGES = ("core", "schemas", *STAGES, "lineage")
ALLOWED = {
    "core": {"core"},
    "schemas": {"core", "schemas"},
    **{stage: {"core", "schemas", stage} for stage in STAGES},
    "lineage": set(PACKAGES),
}


def project_imports(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import of a project package in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        found += [(node.lineno, name.split(".")[0]) for name in names
                  if name.split(".")[0] in PACKAGES]
    return found


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def test_the_import_check_sees_lazy_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from lineage.cli import app\n    import sinks.graph\n")
    assert project_imports(source) == [(2, "lineage"), (3, "sinks")]


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_the_floors_below_it(package: str) -> None:
    wrong = [f"{path.relative_to(REPO)}:{line} imports {target}"
             for path in modules(package)
             for line, target in project_imports(path)
             if target not in ALLOWED[package]]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


@pytest.mark.parametrize("stage", STAGES)
def test_the_stages_keep_no_benchmark_code(stage: str) -> None:
    benchmarks = [str(path.relative_to(REPO)) for path in modules(stage)
                  if "bench" in path.stem or "synthetic" in path.stem]
    assert not benchmarks, f"benchmarks live in lineage/bench/, not in {stage}: {benchmarks}"
