"""``lineage rebuild`` on the real Kafka and Neo4j: a lost subgraph comes back exactly (issue #13,
case 8), where replaying the raw topic through the live processor brings back only part of it.

The test has a raw topic and a namespace of its own, and deletes only that namespace's subgraph:
other tests share the Neo4j.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition
from neo4j import Driver

from core.settings import KafkaSettings
from core.topics import ensure_topics
from lineage.bench.graph_dump import NODES, graph_lines
from lineage.bench.workload import encode_events, synthetic_events
from lineage.bench.workload.events import START, dataset, parent_facet, run_pair
from lineage.stack.settings import StackSettings
from tests.conftest import run_cli
from tests.integration.kafka_io import Pipeline, read_topic

INVALID = b'{"eventType": "START", "producer": "https://example.com/broken"}'


def evolving_job(namespace: str) -> list[dict[str, object]]:
    """One job over four runs: its inputs grow, shrink back (a rollback) and its output's schema
    changes, so that it has several job versions and its output several dataset versions."""
    columns = [[{"name": "id", "type": "int"}],
               [{"name": "id", "type": "int"}, {"name": "total", "type": "decimal"}]]
    inputs = [["raw.orders"], ["raw.orders", "raw.customers"], ["raw.orders"],
              ["raw.orders", "raw.customers"]]
    events: list[dict[str, object]] = []
    clock = START
    for index, names in enumerate(inputs):
        run, parent = (str(uuid.UUID(int=n, version=4)) for n in (index + 1, index + 101))
        started, clock = clock, clock + timedelta(hours=1)
        events += run_pair(
            namespace, "mart.evolving", run, parent_facet(namespace, parent, "scheduler.evolving"),
            names, ["mart.totals"], started, clock,
            end_inputs=[dataset(namespace, n, columns[0]) for n in names],
            end_outputs=[dataset(namespace, "mart.totals", columns[index % 2])])
        clock += timedelta(days=1)
    return events


def workload(namespace: str) -> list[tuple[bytes | None, bytes]]:
    """Runs of several jobs with duplicates, failures, parents, column lineage and versions, partly
    out of order, and one event the processor refuses."""
    events = list(synthetic_events(jobs=6, runs_per_job=3, duplicate_rate=0.2, fail_rate=0.2,
                                   namespace=namespace)) + evolving_job(namespace)
    messages: list[tuple[bytes | None, bytes]] = list(encode_events(iter(events)))
    rng = random.Random(13)  # a fixed shuffle: the same test every time
    middle = messages[20:80]
    rng.shuffle(middle)
    return [*messages[:20], *middle, (None, INVALID), *messages[80:][::-1]]


def subgraph(driver: Driver, namespace: str, database: str) -> list[str]:
    """The canonical dump of the namespace's subgraph: every node and relationship, sorted."""
    return sorted(graph_lines(driver, [namespace], database))


def delete_subgraph(driver: Driver, namespace: str, database: str) -> None:
    """Delete every node the dump of ``namespace`` covers (nothing of any other namespace)."""
    ids = [r["id"] for r in driver.execute_query(NODES, namespaces=[namespace],
                                                 database_=database)[0]]
    driver.execute_query("MATCH (n) WHERE elementId(n) IN $ids DETACH DELETE n", ids=ids,
                         database_=database)


def rewind(bootstrap: str, topic: str, group: str, timeout: float = 60) -> None:
    """Move ``group``'s committed offsets on ``topic`` back to the start (the group is idle)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    deadline = time.monotonic() + timeout
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        while True:
            try:
                consumer.commit(offsets=[TopicPartition(topic, p, 0) for p in partitions],
                                asynchronous=False)
                return
            except KafkaException:  # the stopped worker may not have left the group yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    finally:
        consumer.close()


@pytest.fixture
def namespace(stack: StackSettings, neo4j_driver: Driver) -> Iterator[str]:
    """A namespace of the test's own, whose subgraph is deleted afterwards."""
    name = f"rebuild-{uuid.uuid4().hex[:10]}"
    yield name
    delete_subgraph(neo4j_driver, name, stack.neo4j.database)


def test_a_rebuild_after_a_wipe_restores_the_graph_that_a_replay_through_the_processor_cannot(
    stack: StackSettings, tmp_path: Path, neo4j_driver: Driver, namespace: str,
) -> None:
    database = stack.neo4j.database
    pipeline = Pipeline(stack, tmp_path)
    messages = workload(namespace)
    # Created as every service creates it (a producer's first message would otherwise auto-create
    # it with the broker's defaults before the processor is up).
    raw = pipeline.topics.raw
    ensure_topics(KafkaSettings(bootstrap_servers=pipeline.bootstrap, raw_topic=raw), {raw: 6})
    try:
        processor = pipeline.start("process")
        pipeline.start("sink")
        pipeline.publish(messages)
        pipeline.wait_in_graph()
        before = subgraph(neo4j_driver, namespace, database)
        assert len(read_topic(pipeline.bootstrap, pipeline.topics.dlq)) == 1
        kinds = {json.loads(line[2:])[0][0] for line in before if line.startswith("N ")}
        assert {"Job", "Run", "JobVersion", "DatasetVersion", "Field"} <= kinds
        versions = sum(1 for line in before if '"mart.evolving"' in line and "JobVersion" in line
                       and line.startswith("N "))
        assert versions >= 2, "the evolving job should have several versions"

        delete_subgraph(neo4j_driver, namespace, database)
        assert subgraph(neo4j_driver, namespace, database) == []

        # Case 8 as it is: the raw topic replayed through the live processor, whose state
        # remembers every event, gives back only part of the graph (here: nothing).
        processor.stop()
        rewind(pipeline.bootstrap, raw, pipeline.topics.group)
        pipeline.start("process")
        pipeline.wait_in_graph()
        replayed = subgraph(neo4j_driver, namespace, database)
        assert set(replayed) < set(before)

        # The rebuild, as a user runs it, while the processor and the sink keep running.
        env = pipeline.topics.env(tmp_path)
        first = run_cli("rebuild", "--batch-size", "50", env=env)  # several transactions
        assert first.returncode == 0, first.stderr
        lines = first.stdout.splitlines()
        assert lines[0] == (f"raw topic {raw}: {len(messages)} events in 6 "
                            "partitions, retention forever")
        assert lines[-1].startswith(f"rebuilt from {len(messages)} events (")
        assert " 1 refused): " in lines[-1]
        assert subgraph(neo4j_driver, namespace, database) == before

        second = run_cli("rebuild", env=env)
        assert second.returncode == 0, second.stderr
        assert subgraph(neo4j_driver, namespace, database) == before
        summary = second.stdout.splitlines()[-1]
        # The same events and the same records (in fewer transactions).
        assert summary.split(" change records")[0] == lines[-1].split(" change records")[0]
    finally:
        pipeline.stop()


def test_a_rebuild_of_a_raw_topic_that_does_not_exist_says_so_with_a_hint(
    stack: StackSettings,
) -> None:
    missing = f"no-such-raw-{uuid.uuid4().hex[:8]}"
    result = run_cli("rebuild", env={"LINEAGE_KAFKA__RAW_TOPIC": missing})
    assert result.returncode == 1
    assert f"error: the raw topic {missing} does not exist" in result.stderr
    assert "hint: set LINEAGE_KAFKA__RAW_TOPIC" in result.stderr


def test_a_rebuild_without_neo4j_fails_with_a_hint_to_run_it_again(topic: str) -> None:
    result = run_cli("rebuild", env={"LINEAGE_KAFKA__RAW_TOPIC": topic,
                                     "LINEAGE_NEO4J__URI": "bolt://127.0.0.1:1"}, timeout=120)
    assert result.returncode == 1
    assert result.stdout.startswith(f"raw topic {topic}: 0 events in 3 partitions")
    assert "error: Neo4j at bolt://127.0.0.1:1 failed during the rebuild" in result.stderr
    assert "hint: run `lineage rebuild` again once Neo4j answers" in result.stderr
