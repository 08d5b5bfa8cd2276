"""sinks.graph on the real Neo4j: the graph depends on the set of records, not on their order."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from neo4j import Driver

from lineage.bench.workload import encode_events, synthetic_events
from schemas.codec import decode, encode
from sinks import graph
from stream_processor.pipeline import process
from stream_processor.state import Plan
from tests.integration.graph_io import delete_namespace, describe, snapshot


@pytest.fixture
def namespace(neo4j_driver: Driver) -> Iterator[str]:
    name = f"test://{uuid.uuid4().hex[:10]}"
    yield name
    delete_namespace(neo4j_driver, name)


def change_records(namespace: str) -> list[dict[str, Any]]:
    """What the processor sends for a small workload, decoded as the sink sees it."""
    state: dict[str, list[int]] = {}
    records = []
    events = synthetic_events(jobs=6, runs_per_job=3, seed=9, namespace=namespace)
    for _key, value in encode_events(events):
        outcome = process(value, Plan(state), ingested_at=0)
        outcome.plan.commit()
        records += [decode(encode(change.record(0))) for change in outcome.changes]
    return records


def write(driver: Driver, records: list[dict[str, Any]], batch_size: int) -> None:
    graph.migrate(driver)
    for start in range(0, len(records), batch_size):
        batch: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for record in records[start:start + batch_size]:
            kind = record["payload"][0]
            batch[kind].append(graph.row(kind, record))
        with driver.session() as session:
            session.execute_write(graph.write_batch, batch)


def test_one_batch_in_any_order_and_many_small_batches_give_the_same_graph(
    neo4j_driver: Driver, namespace: str,
) -> None:
    records = change_records(namespace)
    write(neo4j_driver, records, batch_size=len(records))
    expected = snapshot(neo4j_driver, namespace)
    assert len(expected[0]) > 100
    for order, batch_size in (("reversed", len(records)), ("shuffled", len(records)),
                              ("shuffled", 7), ("doubled", 50)):
        delete_namespace(neo4j_driver, namespace)
        again = list(reversed(records)) if order == "reversed" else list(records)
        if order == "shuffled":
            random.Random(batch_size).shuffle(again)
        if order == "doubled":
            again = again + records[::-1]
        write(neo4j_driver, again, batch_size)
        actual = snapshot(neo4j_driver, namespace)
        assert actual == expected, f"{order} in batches of {batch_size}:\n" + describe(
            expected, actual)
