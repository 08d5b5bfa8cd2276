"""Benchmark graphs in Neo4j: a driver, writing change records as the sink does
(:func:`lineage.rebuild.write_records`), and wiping a benchmark's namespace afterwards.

Every benchmark writes under a namespace of its own (``bench://...``), so that deleting it
touches nobody else's nodes.

>>> DELETE_NAMESPACE[-1]
'MATCH (n:LineageBenchmark {namespace: $ns}) DELETE n'
"""

from __future__ import annotations

from neo4j import Driver

from core.neo4j_driver import driver
from core.settings import CommonSettings

# Written as the sink does by the product's rebuild; the benchmarks import it from here too.
from lineage.rebuild import write_records as write_records

#: The label of the node that records the shape of a loaded query benchmark graph.
MARKER_LABEL = "LineageBenchmark"


def connect(settings: CommonSettings) -> Driver:
    """A driver for the benchmark (server notifications off)."""
    # Server notifications (e.g. "label does not exist" before the first load) are noise here.
    return driver(settings.neo4j, notifications_min_severity="OFF")


#: Deletes everything a benchmark namespace wrote, in batches (runs and versions hang off jobs
#: and datasets of the namespace; parent runs belong to the namespace's scheduler jobs).
DELETE_NAMESPACE = (
    "MATCH (:Job {namespace: $ns})-[:HAS_RUN]->(n:Run) "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS",
    "MATCH (:Job {namespace: $ns})-[:HAS_VERSION]->(n:JobVersion) "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS",
    "MATCH (:Dataset {namespace: $ns})-[:HAS_VERSION]->(n:DatasetVersion) "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS",
    "MATCH (n:Field {namespace: $ns}) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 5000 ROWS",
    "MATCH (n:Dataset {namespace: $ns}) "
    "CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 2000 ROWS",
    "MATCH (n:Job {namespace: $ns}) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 2000 ROWS",
    f"MATCH (n:{MARKER_LABEL} {{namespace: $ns}}) DELETE n",
)


def delete_namespace(driver: Driver, namespace: str, database: str | None = None) -> None:
    """Remove every node a benchmark wrote under ``namespace`` (batched, auto-commit)."""
    with driver.session(database=database) as session:
        for statement in DELETE_NAMESPACE:
            session.run(statement, ns=namespace).consume()
