"""``lineage bench report``: the tables and the plots of docs/benchmarks.md, from the results.

Reads ``bench/results/*.json`` (one document per workload, written by ``lineage bench e2e``),
writes two PNG plots (throughput and query latency against graph size, in jobs) and prints the
markdown table of the same-run comparison. Everything in the report comes from the JSON, so
the plots can be regenerated at any time.

Example::

    $ lineage bench report bench/results/*.json --plots docs/img
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The result documents, smallest graph first."""
    docs = [json.loads(p.read_text()) for p in paths]
    return sorted(docs, key=lambda d: int(d["workload"]["jobs"]))


def _ratio(ours: float, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "n/a"


def _runs(count: int) -> str:
    return "1 run" if count == 1 else f"{count} runs"


def table(docs: Sequence[dict[str, Any]]) -> str:
    """The markdown comparison table: one row per workload."""
    lines = [
        "| jobs | events | pipeline events/s (median, min-max) | Kafka ceiling | Neo4j ceiling "
        "(events/s) | pipeline / lower ceiling | freshness p50 / p99 at offered load | "
        "upstream p50 / p99 (ours, Cypher) | peer ingest events/s | peer lineage p50 / p99 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for doc in docs:
        work, e2e, ceil = doc["workload"], doc["e2e"], doc["ceilings"]
        rate = e2e["max_rate"]
        kafka, neo4j = ceil["kafka"]["rate"], ceil["neo4j_events_per_second"]
        ours = doc["queries"]["ours_cypher"]
        peer = doc.get("peer")
        peer_ingest = f"{peer['ingest']['rate']:.0f} ({peer['name']})" if peer else "not run"
        peer_query = (f"{peer['lineage_depth5']['p50_ms']} / {peer['lineage_depth5']['p99_ms']} ms"
                      if peer else "not run")
        lines.append(
            f"| {work['jobs']:,} | {work['events']:,} | {rate['median']:,.0f} "
            f"({rate['min']:,.0f}-{rate['max']:,.0f}, {_runs(rate['runs'])}) | {kafka:,.0f} | "
            f"{neo4j:,.0f} | {_ratio(rate['median'], min(kafka, neo4j))} | "
            f"{e2e['freshness_p50']['median']} s / {e2e['freshness_p99']['median']} s at "
            f"{e2e['fixed_rate']:,.0f}/s | {ours['p50_ms']} / {ours['p99_ms']} ms | "
            f"{peer_ingest} | {peer_query} |")
    return "\n".join(lines)


def resources(docs: Sequence[dict[str, Any]]) -> str:
    """CPU seconds and peak RSS per component, median over the maximum-rate runs."""
    import statistics

    lines = ["| jobs | component | CPU seconds (median) | peak RSS MB (median) |",
             "|---|---|---|---|"]
    for doc in docs:
        runs = doc["e2e"]["max"]
        for name in runs[0]["resources"]:
            cpu = statistics.median(r["resources"][name]["cpu_seconds"] for r in runs)
            rss = statistics.median(r["resources"][name]["peak_rss_mb"] for r in runs)
            lines.append(f"| {doc['workload']['jobs']:,} | {name} | {cpu:.1f} | {rss:.0f} |")
    return "\n".join(lines)


def plot(docs: Sequence[dict[str, Any]], folder: Path) -> list[Path]:
    """Throughput and latency against graph size, as PNG files in ``folder``."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    jobs = [d["workload"]["jobs"] for d in docs]
    written = []

    fig, ax = plt.subplots(figsize=(7, 4.5))
    rates = [d["e2e"]["max_rate"] for d in docs]
    ax.errorbar(jobs, [r["median"] for r in rates],
                yerr=[[r["median"] - r["min"] for r in rates],
                      [r["max"] - r["median"] for r in rates]],
                marker="o", capsize=4, label="pipeline, emit to Neo4j (median, min-max)")
    ax.plot(jobs, [d["ceilings"]["kafka"]["rate"] for d in docs], "s--",
            label="Kafka produce+consume ceiling")
    ax.plot(jobs, [d["ceilings"]["neo4j_events_per_second"] for d in docs], "^--",
            label="Neo4j UNWIND ceiling (as events/s)")
    if all("peer" in d for d in docs):
        ax.plot(jobs, [d["peer"]["ingest"]["rate"] for d in docs], "D-",
                label=f"{docs[0]['peer']['name']} POST /api/v1/lineage")
    written.append(_save(fig, ax, "events/s", "Ingest throughput against graph size",
                         folder / "bench-throughput.png"))

    fig, ax = plt.subplots(figsize=(7, 4.5))
    ours = [d["queries"]["ours_cypher"] for d in docs]
    ax.plot(jobs, [q["p50_ms"] for q in ours], "o-", label="ours upstream, Cypher p50")
    ax.plot(jobs, [q["p99_ms"] for q in ours], "o--", label="ours upstream, Cypher p99")
    if all("peer" in d for d in docs):
        name = docs[0]["peer"]["name"]
        ax.plot(jobs, [d["peer"]["lineage_depth5"]["p50_ms"] for d in docs], "D-",
                label=f"{name} GET lineage depth 5, p50")
        ax.plot(jobs, [d["peer"]["lineage_depth5"]["p99_ms"] for d in docs], "D--",
                label=f"{name} GET lineage depth 5, p99")
    written.append(_save(fig, ax, "milliseconds", "Upstream lineage latency against graph size",
                         folder / "bench-latency.png"))
    return written


def _save(fig: Any, ax: Any, unit: str, title: str, path: Path) -> Path:
    """Log-log axes against graph size, a grid and a legend, written to ``path``."""
    import matplotlib.pyplot as plt

    ax.set(xscale="log", yscale="log", xlabel="graph size (jobs)", ylabel=unit, title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
