"""Helpers for graph tests on the real Neo4j: one test's subgraph, as comparable data.

Tests share one Neo4j (Community has a single user database), so each writes its own namespace
and looks only at that namespace's subgraph: nodes whose namespace (or job namespace) is it, and
the runs of its jobs.
"""

from __future__ import annotations

import json
from typing import Any

from neo4j import Driver

NODES = """
MATCH (n) WHERE n.namespace = $ns OR n.jobNamespace = $ns
RETURN elementId(n) AS id
UNION
MATCH (:Job {namespace: $ns})-[:HAS_RUN]->(n:Run)
RETURN elementId(n) AS id
"""

KEYS = {"Job": ("namespace", "name"), "Dataset": ("namespace", "name"), "Run": ("runId",),
        "JobVersion": ("id",), "DatasetVersion": ("id",), "Field": ("namespace", "dataset", "name")}

Snapshot = tuple[frozenset[str], frozenset[str]]


def _plain(value: Any) -> Any:
    if hasattr(value, "iso_format"):
        return value.iso_format()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _identity(labels: list[str], props: dict[str, Any]) -> str:
    label = labels[0]
    return label + ":" + "|".join(str(props.get(k)) for k in KEYS[label])


def node_ids(driver: Driver, namespace: str) -> list[str]:
    """The element ids of ``namespace``'s subgraph."""
    records, _, _ = driver.execute_query(NODES, ns=namespace, routing_="r")
    return [r["id"] for r in records]


def snapshot(driver: Driver, namespace: str) -> Snapshot:
    """Every node and relationship of ``namespace``'s subgraph with all properties, as text."""
    ids = node_ids(driver, namespace)
    nodes, _, _ = driver.execute_query(
        "MATCH (n) WHERE elementId(n) IN $ids RETURN labels(n) AS l, properties(n) AS p",
        ids=ids, routing_="r")
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) WHERE elementId(a) IN $ids AND elementId(b) IN $ids "
        "RETURN labels(a) AS la, properties(a) AS pa, type(r) AS t, properties(r) AS p, "
        "labels(b) AS lb, properties(b) AS pb", ids=ids, routing_="r")
    node_texts = frozenset(
        json.dumps([n["l"], {k: _plain(v) for k, v in n["p"].items()}], sort_keys=True)
        for n in nodes)
    rel_texts = frozenset(
        json.dumps([_identity(r["la"], r["pa"]), r["t"], _identity(r["lb"], r["pb"]),
                    {k: _plain(v) for k, v in r["p"].items()}], sort_keys=True)
        for r in rels)
    return node_texts, rel_texts


def delete_namespace(driver: Driver, namespace: str) -> None:
    """Remove ``namespace``'s subgraph (so a test can load the same events again)."""
    driver.execute_query("MATCH (n) WHERE elementId(n) IN $ids DETACH DELETE n",
                         ids=node_ids(driver, namespace))


def describe(expected: Snapshot, actual: Snapshot) -> str:
    """What differs between two snapshots, briefly."""
    lines = []
    for what, e, a in (("nodes", expected[0], actual[0]), ("relationships", expected[1],
                                                            actual[1])):
        missing, extra = sorted(e - a), sorted(a - e)
        lines.append(f"{what}: {len(missing)} missing, {len(extra)} unexpected")
        lines += [f"  - {m[:200]}" for m in missing[:5]] + [f"  + {x[:200]}" for x in extra[:5]]
    return "\n".join(lines)
