"""Helpers for graph tests on the real Neo4j: one test's subgraph, as comparable data.

Tests share one Neo4j (Community has a single user database), so each writes its own namespace
and looks only at that namespace's subgraph: nodes whose namespace (or job namespace) is it, and
the runs of its jobs.
"""

from __future__ import annotations

from neo4j import Driver

from lineage.bench.graph_dump import node_line, relationship_line

NODES = """
MATCH (n) WHERE n.namespace = $ns OR n.jobNamespace = $ns
RETURN elementId(n) AS id
UNION
MATCH (:Job {namespace: $ns})-[:HAS_RUN]->(n:Run)
RETURN elementId(n) AS id
"""

Snapshot = tuple[frozenset[str], frozenset[str]]


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
    # The same canonical lines as `lineage bench dump`, so one format serves both.
    node_texts = frozenset(node_line(n["l"], n["p"]) for n in nodes)
    rel_texts = frozenset(relationship_line(r["la"], r["pa"], r["t"], r["p"], r["lb"], r["pb"])
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
