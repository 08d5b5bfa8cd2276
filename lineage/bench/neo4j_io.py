"""Benchmark graphs in Neo4j: a driver, writing change records as the sink does, and wiping a
benchmark's namespace afterwards.

Every benchmark writes under a namespace of its own (``bench://...``), so that deleting it
touches nobody else's nodes.

>>> DELETE_NAMESPACE[-1]
'MATCH (n:LineageBenchmark {namespace: $ns}) DELETE n'
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from neo4j import Driver

from core.neo4j_driver import driver
from core.settings import CommonSettings
from schemas.codec import ChangeRecord
from sinks import graph

#: The label of the node that records the shape of a loaded query benchmark graph.
MARKER_LABEL = "LineageBenchmark"


def connect(settings: CommonSettings) -> Driver:
    """A driver for the benchmark (server notifications off)."""
    # Server notifications (e.g. "label does not exist" before the first load) are noise here.
    return driver(settings.neo4j, notifications_min_severity="OFF")


def write_records(driver: Driver, records: Iterable[ChangeRecord], *, batch_size: int,
                  database: str | None = None) -> tuple[int, int, float]:
    """Write decoded records as the sink does; returns (records, batches, seconds in rows()).

    One transaction per ``batch_size`` consecutive records, rows grouped by kind in arrival
    order, exactly like ``Neo4jSink._transaction``.
    """
    count = batches = 0
    row_seconds = 0.0
    batch: list[ChangeRecord] = []

    def flush() -> None:
        nonlocal batches, row_seconds
        started = time.perf_counter()
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in batch:
            kind = record["payload"][0]
            grouped[kind].append(graph.row(kind, record))
        row_seconds += time.perf_counter() - started
        with driver.session(database=database) as session:
            session.execute_write(graph.write_batch, grouped)
        batches += 1
        batch.clear()

    for record in records:
        batch.append(record)
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return count, batches, row_seconds



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
