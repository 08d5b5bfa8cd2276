"""One same-run comparison for one workload, in this order: the pipeline end to end at maximum
rate (several runs); lineage query latency on the graph the last of them built (ours in Cypher,
and the peer's through Marquez's ``GET /api/v1/lineage`` when a peer is given); the pipeline at a
fixed offered load (several runs on a prefix of the workload, for freshness); the raw ceilings of
Kafka and Neo4j; the peer's ingest through ``POST /api/v1/lineage``.

The result is one JSON document (``bench/results/*.json``), which ``lineage bench report``
turns into the tables and plots of docs/benchmarks.md.

Example::

    $ lineage bench e2e bench/work/1k.ndjson --runs 3 --out bench/results/1k.json
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.settings import CommonSettings
from lineage.bench import ceilings, e2e, peer
from lineage.bench.measure import machine, summary

Log = Callable[[str], None]
#: Our side of the lineage comparison: upstream datasets within 5 dataset hops, visit-once.
OUR_QUERY = "upstream_bfs"
QUERY_SAMPLES = 100


def manifest(workload: Path) -> dict[str, Any]:
    """The generator's manifest beside the workload file."""
    path = workload.with_suffix(workload.suffix + ".manifest.json")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: generate the workload with "
                                "`lineage bench generate`, which writes it")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def deep_datasets(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """(namespace, name) of the deep datasets the manifest names (``namespace/name`` ids
    whose namespace may itself contain slashes, e.g. ``bench://ns-001/mart.x``)."""
    found = []
    for ident in stats["deep_datasets"]:
        namespace, _, name = ident.rpartition("/")
        found.append((namespace, name))
    if not found:
        raise ValueError("the manifest names no deep dataset to query")
    return found


def run_suite(workload: Path, settings: CommonSettings, *, runs: int = 3,
              fixed_rate: float | None = None, fixed_events: int = 20_000,
              peer_url: str | None = None, peer_name: str = "peer",
              log: Log = print) -> dict[str, Any]:
    """Everything of one workload (see the module docstring); returns the JSON document."""
    stats = manifest(workload)["stats"]
    messages = e2e.load_messages(workload)
    namespaces = stats["namespace_names"]
    log(f"{workload}: {len(messages)} events, {stats['jobs']} jobs, {len(namespaces)} namespaces")
    result: dict[str, Any] = {"workload": {"file": workload.name, **stats},
                              "machine": machine()}

    maximum = []
    for run in range(runs):
        log(f"  e2e at maximum rate, run {run + 1}/{runs}")
        maximum.append(e2e.run_once(messages, namespaces, settings, log=log))
        log(f"    {maximum[-1].rate:.0f} events/s")
    # Queries run on the whole workload's graph, which the last maximum-rate run left.
    targets = deep_datasets(stats)
    samples = [targets[i % len(targets)] for i in range(QUERY_SAMPLES)]
    log(f"  lineage queries: {len(samples)} upstream questions about deep datasets")
    result["queries"] = {"ours_cypher": _our_latency(settings, samples)}
    peer_latency = _peer_latency(peer_url, samples) if peer_url else None

    rate = fixed_rate or round(0.5 * statistics.median(r.rate for r in maximum), 1)
    fixed = []
    # Freshness needs a steady state, not the whole workload: a prefix keeps big sizes short.
    prefix = messages[:fixed_events]
    for run in range(runs):
        log(f"  e2e at a fixed offered load of {rate} events/s ({len(prefix)} events), "
            f"run {run + 1}/{runs}")
        fixed.append(e2e.run_once(prefix, namespaces, settings, rate=rate, log=log))
        log(f"    freshness p50 {fixed[-1].freshness_p50}s p99 {fixed[-1].freshness_p99}s")
    result["e2e"] = {
        "max": [r.to_json() for r in maximum], "fixed": [r.to_json() for r in fixed],
        "max_rate": summary([r.rate for r in maximum]),
        "fixed_rate": rate,
        "freshness_p50": summary([r.freshness_p50 for r in fixed]),
        "freshness_p99": summary([r.freshness_p99 for r in fixed]),
    }

    changes = int(statistics.median(r.changes for r in maximum))
    log("  ceilings: Kafka produce+consume of the same bytes")
    kafka = ceilings.kafka_ceiling(messages, settings)
    log(f"    {kafka.rate:.0f} messages/s; Neo4j UNWIND merge of {changes} rows")
    neo4j = ceilings.neo4j_ceiling(changes, settings)
    per_event = changes / len(messages)
    result["ceilings"] = {"kafka": kafka.to_json(), "neo4j": neo4j.to_json(),
                          "changes_per_event": round(per_event, 3),
                          "neo4j_events_per_second": round(neo4j.rate / per_event, 1)}

    if peer_url:
        result["peer"] = {**_peer_ingest(peer_url, peer_name, messages, log),
                          "lineage_depth5": peer_latency}
    return result


def _our_latency(settings: CommonSettings, samples: list[tuple[str, str]]) -> dict[str, Any]:
    from core.neo4j_driver import driver as neo4j_driver
    from lineage.bench.query import QUERIES, time_query

    params = [{"ns": ns, "name": name} for ns, name in samples]
    with neo4j_driver(settings.neo4j) as driver:
        latency = time_query(driver, OUR_QUERY, params, warmup=params[:10],
                             database=settings.neo4j.database, query=QUERIES[OUR_QUERY])
    return {"query": OUR_QUERY, "samples": len(params),
            "p50_ms": round(latency.p50, 2), "p99_ms": round(latency.p99, 2),
            "mean_rows": round(latency.mean_rows, 1)}


def _peer_latency(url: str, samples: list[tuple[str, str]]) -> dict[str, Any]:
    from lineage.bench.measure import percentile

    peer.lineage_latency(url, samples[:10], depth=5)  # warm-up
    millis, nodes = peer.lineage_latency(url, samples, depth=5)
    return {"samples": len(millis), "p50_ms": round(percentile(millis, 50), 2),
            "p99_ms": round(percentile(millis, 99), 2),
            "mean_nodes": round(sum(nodes) / len(nodes), 1)}


def _peer_ingest(url: str, name: str, messages: list[e2e.Message], log: Log) -> dict[str, Any]:
    events = [value for value, _ in messages]
    probe, rest = events[: len(events) // 5], events[len(events) // 5:]
    log(f"  {name}: finding the best concurrency on {len(probe)} events")
    level, tried = peer.best_concurrency(url, probe)
    log(f"    best: {level}; ingesting the other {len(rest)} events")
    ingest = peer.ingest(url, rest, level)
    log(f"    {ingest.rate:.0f} events/s {ingest.statuses}")
    return {"name": name, "url": url, "concurrency_tried": [r.to_json() for r in tried],
            "ingest": ingest.to_json()}
