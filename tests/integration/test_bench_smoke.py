"""Every `lineage bench` command at a tiny size, on the real stack, so the harness cannot rot.

These check that each benchmark runs to the end and reports figures of the right shape; the
figures themselves are measured by hand and written in docs/benchmarks.md (a timed test on a
shared machine would be noise).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lineage.bench.neo4j_io import connect, delete_namespace
from lineage.stack.settings import StackSettings
from sinks.settings import SinkSettings
from tests.conftest import run_cli
from tests.integration.kafka_io import Gateway, start_gateway


def ok(*args: str) -> str:
    """Run ``lineage ARGS`` and return its output; fail with it when the command fails."""
    result = run_cli(*args, timeout=900)
    assert result.returncode == 0, f"lineage {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def rate(output: str, unit: str) -> float:
    """The figure before ``unit`` (e.g. "events/s") in a benchmark's output."""
    found = re.findall(rf"([\d,.]+) {re.escape(unit)}", output)
    assert found, f"no '{unit}' figure in:\n{output}"
    return float(found[-1].replace(",", ""))


def test_the_processor_benchmark_runs_in_process_and_through_kafka(stack: StackSettings) -> None:
    assert rate(ok("bench", "processor", "--events", "300"), "events/s") > 0
    assert rate(ok("bench", "processor", "--events", "300", "--kafka"), "events/s") > 0


def test_the_sink_benchmark_runs_in_process_and_through_kafka(stack: StackSettings) -> None:
    assert rate(ok("bench", "sink", "--events", "200"), "change records/s") > 0
    assert rate(ok("bench", "sink", "--events", "200", "--kafka"), "change records/s") > 0


def test_the_emitter_benchmark_runs(stack: StackSettings) -> None:
    assert rate(ok("bench", "emitter", "--events", "300"), "events/s") > 0


def test_the_query_benchmark_runs_on_a_small_graph_of_its_own(stack: StackSettings) -> None:
    namespace = f"bench://smoke-{uuid.uuid4().hex[:8]}"
    try:
        out = ok("bench", "query", "--datasets", "60", "--jobs", "30", "--runs", "60",
                 "--layers", "4", "--samples", "5", "--warmup", "1", "--namespace", namespace)
    finally:
        with connect(SinkSettings()) as driver:
            delete_namespace(driver, namespace)
    assert "upstream" in out and "p50 ms" in out


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bench") / "tiny.ndjson"
    out = ok("bench", "generate", "--events", "400", "--jobs", "40", "--namespaces", "2",
             "--max-depth", "6", "--seed", "3", str(path))
    assert "wrote 400 lines" in out
    return path


@pytest.fixture(scope="module")
def gateway(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """Our gateway as the peer: it speaks Marquez's POST and GET /api/v1/lineage."""
    gateway = start_gateway(stack.kafka.bootstrap_servers,
                            tmp_path_factory.mktemp("peer") / "gateway.log")
    yield gateway
    gateway.stop()


def test_the_end_to_end_benchmark_and_its_report_run_on_a_tiny_workload(
    stack: StackSettings, workload: Path, gateway: Gateway, tmp_path: Path,
) -> None:
    results = tmp_path / "results.json"
    try:
        out = ok("bench", "e2e", str(workload), "--runs", "1", "--peer-url", gateway.url,
                 "--peer-name", "gateway", "--out", str(results))
    finally:
        manifest = json.loads(Path(f"{workload}.manifest.json").read_text())
        with connect(SinkSettings()) as driver:
            for namespace in manifest["stats"]["namespace_names"]:
                delete_namespace(driver, namespace)
    assert "pipeline:" in out
    doc: dict[str, Any] = json.loads(results.read_text())
    (run,) = doc["e2e"]["max"]
    assert run["events"] == 400 and run["changes"] > 0 and run["rate"] > 0
    assert run["dead_letters"] >= 1  # the workload's invalid lines
    assert set(run["resources"]) >= {"lineage process", "lineage sink", "emitter (harness)"}
    assert run["statement_seconds"]["ColumnLineage"] > 0  # where Neo4j's time went
    assert doc["e2e"]["fixed"][0]["freshness_p99"] > 0
    assert doc["ceilings"]["kafka"]["rate"] > 0 and doc["ceilings"]["neo4j"]["rate"] > 0
    assert doc["queries"]["ours_cypher"]["mean_rows"] > 0
    assert doc["peer"]["ingest"]["statuses"].get("201", 0) > 0
    assert doc["peer"]["lineage_depth5"]["mean_nodes"] > 0

    plots = tmp_path / "plots"
    report = ok("bench", "report", str(results), "--plots", str(plots))
    assert "| 40 | 400 |" in report
    for png in ("bench-throughput.png", "bench-latency.png"):
        assert (plots / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_graph_dump_of_a_workload_is_the_same_on_every_replay(
    stack: StackSettings, workload: Path, tmp_path: Path,
) -> None:
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    ok("bench", "dump", str(workload), str(first))
    out = ok("bench", "dump", str(workload), str(second), "--code", ".")
    lines = first.read_text().splitlines()
    invalid = json.loads(workload.with_suffix(".ndjson.manifest.json").read_text())["stats"][
        "invalid"]
    assert sum(line.startswith("N ") for line in lines) > 40
    assert sum(line.startswith("D ") for line in lines) == invalid
    assert f"{invalid} dead letters" in out
    assert second.read_text() == first.read_text()


def test_a_shuffled_replay_of_the_workload_makes_the_same_graph_dump(
    stack: StackSettings, workload: Path, tmp_path: Path,
) -> None:
    """DESIGN.md guarantee 3 (issue #14, item 4): the graph depends on the set of events, not on
    their arrival order; a shuffled replay gave 1,002 different nodes."""
    lines = workload.read_text().splitlines(keepends=True)
    random.Random(14).shuffle(lines)
    shuffled = tmp_path / "shuffled.ndjson"
    shuffled.write_text("".join(lines))
    manifest = workload.with_suffix(".ndjson.manifest.json")
    shutil.copy(manifest, shuffled.with_suffix(".ndjson.manifest.json"))
    in_order, any_order = tmp_path / "in-order.txt", tmp_path / "shuffled.txt"
    ok("bench", "dump", str(workload), str(in_order))
    ok("bench", "dump", str(shuffled), str(any_order))
    before, after = in_order.read_text().splitlines(), any_order.read_text().splitlines()
    differ = sorted(set(before) ^ set(after))
    assert not differ, f"{len(differ)} lines differ, e.g.:\n" + "\n".join(differ[:6])


def test_the_gateway_benchmark_times_normal_posts_beside_hostile_clients(gateway: Gateway) -> None:
    out = ok("bench", "gateway", "--url", gateway.url, "--seconds", "3", "--slow-connections",
             "5", "--pid", str(gateway.proc.pid))
    assert re.search(r"normal POSTs: \d+, statuses \{201: \d+\}, p50 [\d.]+ ms, p99 [\d.]+ ms",
                     out), out
    assert re.search(r"meanwhile [1-9]\d* 16 MB batches", out), out
    assert "gateway peak RSS" in out
