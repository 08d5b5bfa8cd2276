"""The README's commands and example still do what the README says."""

from __future__ import annotations

import contextlib
import io
import re

from lineage.stack.settings import StackSettings
from tests.conftest import REPO, run_cli

README = (REPO / "README.md").read_text(encoding="utf-8")


def code_block_after(heading: str, lang: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(rf"```{lang}\n(.*?)```", section, re.DOTALL)
    assert match, f"no ```{lang} block after {heading!r}"
    return match.group(1)


def test_the_readme_names_make_demo_and_make_test_and_ci_runs_the_test_command() -> None:
    commands = code_block_after("## The two commands", "bash")
    assert "make demo" in commands
    assert "make test" in commands
    assert "\nmake test\n" in (REPO / ".ci" / "run").read_text()


def test_the_demo_plays_the_story_through_the_processor_and_the_sink(
    stack: StackSettings,
) -> None:
    proc = run_cli("demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "airflow: the DAG run and its two task runs, 6 OpenLineage events" in out
    assert "<- load_sales <- retail.market.retail_sales" in out
    assert "channel_id <- retail.market.retail_sales.store_id" in out
    assert "<- inventory_insights <- raw/inventory (also retail.inventory)" in out
    assert "total_quantity <- raw/inventory.quantity (DIRECT/AGGREGATION)" in out
    assert "where to look next:" in out
    assert "Traceback" not in proc.stderr


def test_the_readme_example_prints_what_the_readme_shows(stack: StackSettings) -> None:
    assert run_cli("demo").returncode == 0
    example = code_block_after("## Example", "python")
    expected = code_block_after("\nprints\n", "")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example, "README.md", "exec"), {})  # noqa: S102 - the README's own example
    assert out.getvalue() == expected
