"""`lineage bench report` turns result documents into the comparison table and the plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lineage.bench.report import plot, resources, table


def result(jobs: int, rate: float, peer: bool = True) -> dict[str, Any]:
    """A result document of the shape `lineage bench e2e` writes (figures made up)."""
    run = {"resources": {"lineage sink": {"cpu_seconds": 4.0, "peak_rss_mb": 120.0}}}
    doc: dict[str, Any] = {
        "workload": {"jobs": jobs, "events": jobs * 3},
        "e2e": {"max": [run, run], "max_rate": {"median": rate, "min": rate - 10,
                                                 "max": rate + 10, "runs": 2},
                "fixed_rate": rate / 2, "freshness_p50": {"median": 0.4},
                "freshness_p99": {"median": 1.9}},
        "ceilings": {"kafka": {"rate": 8000.0}, "neo4j_events_per_second": 400.0},
        "queries": {"ours_cypher": {"p50_ms": 3.0, "p99_ms": 9.0}},
    }
    if peer:
        doc["peer"] = {"name": "Marquez", "ingest": {"rate": 50.0},
                       "lineage_depth5": {"p50_ms": 30.0, "p99_ms": 90.0}}
    return doc


def test_the_table_has_one_row_per_workload_with_the_ratio_to_the_lower_ceiling() -> None:
    text = table([result(1000, 200.0), result(10_000, 100.0)])
    rows = [line for line in text.splitlines() if line.startswith("| 1")]
    assert len(rows) == 2
    assert "| 1,000 | 3,000 | 200 (190-210, 2 runs) | 8,000 | 400 | 0.50x |" in rows[0]
    assert "50 (Marquez)" in rows[0] and "30.0 / 90.0 ms" in rows[0]


def test_a_workload_without_a_peer_says_so() -> None:
    assert "not run" in table([result(1000, 200.0, peer=False)])


def test_resources_are_listed_per_component() -> None:
    assert "| 1,000 | lineage sink | 4.0 | 120 |" in resources([result(1000, 200.0)])


def test_the_plots_are_written_as_png_files(tmp_path: Path) -> None:
    written = plot([result(1000, 200.0), result(10_000, 100.0)], tmp_path / "img")
    assert [p.name for p in written] == ["bench-throughput.png", "bench-latency.png"]
    for path in written:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
