"""No single input can stop a stage (issue #14), on the real Kafka, processor, sink and Neo4j.

Each test sends one hostile input that used to stall a stage for good, amplify itself or split a
run, then a canary event on every partition of the raw topic: every canary must reach the graph
within :data:`CANARY_SECONDS`, and the hostile input must be where its reason says (a dead
letter, or the graph).
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer
from confluent_kafka.admin import NewTopic
from neo4j import Driver
from neo4j.exceptions import Neo4jError

from core.dead_letters import Letter
from core.kafka_config import admin_client
from core.neo4j_driver import driver
from core.settings import KafkaSettings
from lineage.stack.settings import StackSettings
from schemas.codec import ChangeRecord, encode
from schemas.limits import MAX_KEY_BYTES
from sinks.neo4j_sink import refused_for_good
from tests.conftest import free_port
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import Pipeline, publish, read_topic

CANARY_SECONDS = 90
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
PRODUCER = "https://example.com/hostile-input-test"


def run_event(namespace: str, job: str, *, run_id: str | None = None,
              event_type: str = "COMPLETE", event_time: str = "2024-05-01T12:00:00Z",
              **extra: Any) -> dict[str, Any]:
    return {"eventType": event_type, "eventTime": event_time, "producer": PRODUCER,
            "schemaURL": f"{SPEC}#/$defs/RunEvent",
            "run": {"runId": run_id or str(uuid.uuid4())},
            "job": {"namespace": namespace, "name": job},
            "inputs": [], "outputs": [{"namespace": namespace, "name": f"{job}.out"}], **extra}


class Hostile:
    """A running processor and sink on topics of their own, and a namespace per test."""

    def __init__(self, pipeline: Pipeline, neo4j: Driver) -> None:
        self.pipeline, self.neo4j = pipeline, neo4j
        self.namespace = f"hostile-{uuid.uuid4().hex[:8]}"

    def send(self, *events: dict[str, Any] | bytes) -> None:
        publish(self.pipeline.bootstrap, self.pipeline.topics.raw,
                [(None, e if isinstance(e, bytes) else json.dumps(e).encode()) for e in events],
                max_bytes=9_000_000)

    def canaries_reach_the_graph(self) -> None:
        """One canary on every raw partition, and all of them in the graph in time."""
        consumer = Consumer({"bootstrap.servers": self.pipeline.bootstrap,
                             "group.id": f"meta-{uuid.uuid4()}"})
        try:
            topic = self.pipeline.topics.raw
            partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        finally:
            consumer.close()
        for partition in partitions:
            publish(self.pipeline.bootstrap, self.pipeline.topics.raw,
                    [(None, json.dumps(run_event(self.namespace, f"canary-{partition}")).encode())],
                    partition=partition)
        deadline = time.monotonic() + CANARY_SECONDS
        found = -1
        while time.monotonic() < deadline:
            records, _, _ = self.neo4j.execute_query(
                "MATCH (j:Job {namespace: $ns}) WHERE j.name STARTS WITH 'canary-' "
                "AND EXISTS { (j)-[:HAS_RUN]->(:Run {state: 'COMPLETE'}) } RETURN count(j) AS n",
                ns=self.namespace)
            found = records[0]["n"]
            if found == len(partitions):
                return
            time.sleep(0.5)
        logs = "\n".join(f"--- {w.log.name}\n{w.log.read_text()[-2000:]}"
                         for w in self.pipeline.services)
        raise AssertionError(f"{found} of {len(partitions)} canaries reached the graph in "
                             f"{CANARY_SECONDS}s\n{logs}")

    def letters(self, topic: str) -> list[tuple[Any, Letter]]:
        """The dead letters on ``topic`` (the raw DLQ or the changes DLQ) of this namespace."""
        found = []
        for message in read_topic(self.pipeline.bootstrap, topic):
            if self.namespace.encode() in (message.value() or b"")[:200_000]:
                letter = Letter(dict(message.headers() or []))
                found.append((message, letter))
        return found


@pytest.fixture(scope="module")
def pipeline(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Pipeline]:
    running = Pipeline(stack, tmp_path_factory.mktemp("hostile"))
    running.start("process")
    running.start("sink")
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def hostile(pipeline: Pipeline, stack: StackSettings) -> Iterator[Hostile]:
    with driver(stack.neo4j) as neo4j:
        test = Hostile(pipeline, neo4j)
        try:
            yield test
        finally:
            delete_namespace(neo4j, test.namespace)


def test_a_name_too_long_for_neo4js_index_is_dead_lettered_and_the_stages_go_on(
        hostile: Hostile) -> None:
    """Item 1: a 9.3 KB job name passed validation, then the sink retried it forever."""
    hostile.send(run_event(hostile.namespace, "j" * 9_300))
    hostile.canaries_reach_the_graph()
    [(_, letter)] = hostile.letters(hostile.pipeline.topics.dlq)
    assert letter.codes == ["name_too_long"]
    assert letter.envelope["reasons"][0]["pointer"] == "/job"


def test_a_change_record_with_a_key_too_long_is_dead_lettered_by_the_sink(
        hostile: Hostile) -> None:
    """Item 1 at the sink: a record no processor of ours sends (an older one could)."""
    name = "d" * (MAX_KEY_BYTES + 100)
    record: ChangeRecord = {"eventTime": 1_714_564_800_000_000, "ingestedAt": 0,
                            "payload": ("Dataset", {"namespace": hostile.namespace, "name": name,
                                                    "facets": None})}
    publish(hostile.pipeline.bootstrap, hostile.pipeline.topics.changes,
            [(b"dataset:long", encode(record))])
    hostile.canaries_reach_the_graph()
    [(_, letter)] = hostile.letters(hostile.pipeline.topics.changes_dlq)
    assert letter.codes == ["contract"]
    assert "Neo4j's index limit" in letter.envelope["reasons"][0]["message"]


def test_neo4js_refusal_of_a_key_too_large_to_index_counts_as_the_records_fault(
        stack: StackSettings) -> None:
    """The sink dead-letters such a refusal instead of retrying it (Neo4j's own error)."""
    namespace = f"hostile-{uuid.uuid4().hex[:8]}"
    with driver(stack.neo4j) as neo4j:
        try:
            with pytest.raises(Neo4jError) as refused:
                neo4j.execute_query("MERGE (:Job {namespace: $ns, name: $name})",
                                    ns=namespace, name="n" * 9_000)
        finally:
            delete_namespace(neo4j, namespace)
    assert refused.value.code.startswith("Neo.DatabaseError")
    assert refused_for_good(refused.value), refused.value.code


def test_a_message_too_large_for_the_dlq_is_cut_to_fit_and_the_processor_goes_on(
        hostile: Hostile) -> None:
    """Item 2: an 8,388,317-byte message made a dead letter over the producer's limit."""
    event = run_event(hostile.namespace, "huge")
    event["job"]["facets"] = {"padding": {"_producer": PRODUCER, "_schemaURL": f"{SPEC}#/x",
                                          "text": ""}}
    size = len(json.dumps(event).encode())
    event["job"]["facets"]["padding"]["text"] = "x" * (8_388_317 - size)  # the size
    raw = json.dumps(event).encode()
    assert len(raw) == 8_388_317
    hostile.send(raw)
    hostile.canaries_reach_the_graph()
    [(message, letter)] = hostile.letters(hostile.pipeline.topics.dlq)
    assert letter.codes == ["too_large"]
    truncated = letter.truncated
    assert truncated is not None and truncated["bytes"] == len(raw)
    assert len(message.value()) == truncated["kept"] < len(raw)
    assert raw.startswith(message.value())


def test_a_dead_letter_a_small_dlq_topic_refuses_is_cut_again_until_it_fits(
        stack: StackSettings, tmp_path: Path) -> None:
    """Item 2 with a DLQ topic that takes less than the dead-letter limit (a broker's default
    1 MiB, say): Kafka's refusal makes the letter smaller instead of a retry forever."""
    small = Pipeline(stack, tmp_path)
    admin = admin_client(KafkaSettings(bootstrap_servers=small.bootstrap))
    admin.create_topics([NewTopic(small.topics.dlq, 1, 1,
                                  config={"max.message.bytes": "200000"})])[
        small.topics.dlq].result(timeout=30)
    small.start("process")
    small.start("sink")
    with driver(stack.neo4j) as neo4j:
        test = Hostile(small, neo4j)
        try:
            event = run_event(test.namespace, "too-large")
            event["job"]["name"] += os.urandom(550_000).hex()  # lz4 cannot shrink it
            raw = json.dumps(event).encode()
            test.send(raw)
            test.canaries_reach_the_graph()
            [(message, letter)] = test.letters(small.topics.dlq)
            assert letter.codes == ["too_large"]
            assert letter.truncated is not None and letter.truncated["bytes"] == len(raw)
            assert len(message.value()) < 200_000 and raw.startswith(message.value())
        finally:
            small.stop()
            delete_namespace(neo4j, test.namespace)


def test_an_event_with_300_bad_facets_makes_one_dead_letter(hostile: Hostile) -> None:
    """Item 3: 300 bad facets made 300 copies of the event on the DLQ."""
    bad_schema = {"_producer": PRODUCER,
                  "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
                  "fields": "not a list"}
    event = run_event(hostile.namespace, "many-bad-facets")
    event["inputs"] = [{"namespace": hostile.namespace, "name": f"in{i}",
                        "facets": {"schema": bad_schema}} for i in range(300)]
    hostile.send(event)
    hostile.canaries_reach_the_graph()
    [(_, letter)] = hostile.letters(hostile.pipeline.topics.dlq)
    assert letter.kind == "facet"
    assert len(letter.envelope["reasons"]) == 300


@pytest.mark.parametrize("event_time", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"])
def test_an_event_time_the_graph_cannot_store_is_dead_lettered_with_its_reason(
        hostile: Hostile, event_time: str) -> None:
    """Item 6: these were accepted, then dead-lettered by the sink as 'date value out of range'."""
    hostile.send(run_event(hostile.namespace, "extreme-time", event_time=event_time))
    hostile.canaries_reach_the_graph()
    [(_, letter)] = hostile.letters(hostile.pipeline.topics.dlq)
    assert letter.codes == ["time_out_of_range"]


def test_a_run_id_spelt_in_upper_case_and_lower_case_is_one_run(hostile: Hostile) -> None:
    """Item 9: a START with the lower-case runId and a COMPLETE with the upper-case one made two
    Run nodes, one stuck at START."""
    run_id = str(uuid.uuid4())
    hostile.send(run_event(hostile.namespace, "cased", run_id=run_id, event_type="START",
                           event_time="2024-05-01T11:00:00Z"),
                 run_event(hostile.namespace, "cased", run_id=run_id.upper()))
    hostile.canaries_reach_the_graph()
    records, _, _ = hostile.neo4j.execute_query(
        "MATCH (:Job {namespace: $ns, name: 'cased'})-[:HAS_RUN]->(r:Run) "
        "RETURN r.runId AS runId, r.state AS state", ns=hostile.namespace)
    assert [(r["runId"], r["state"]) for r in records] == [(run_id, "COMPLETE")]


@pytest.mark.parametrize("order", ["time order", "reverse order"])
def test_a_node_shows_the_facets_of_its_latest_event_in_any_arrival_order(
        hostile: Hostile, order: str) -> None:
    """Item 4: documentation "doc A" (later) and "doc B" (earlier) ended with "doc B" in time
    order and "doc A" in reverse order; "doc B" seen again in between must not win either."""
    def reading(job: str, time: str, doc: str) -> dict[str, Any]:
        documentation = {"_producer": PRODUCER, "description": doc, "_schemaURL":
                         "https://openlineage.io/spec/facets/1-1-0/"
                         "DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet"}
        return run_event(hostile.namespace, job, event_time=time, inputs=[
            {"namespace": hostile.namespace, "name": "documented",
             "facets": {"documentation": documentation}}])

    events = [reading("first", "2024-05-01T10:00:00Z", "doc B"),
              reading("second", "2024-05-01T12:00:00Z", "doc A"),
              reading("third", "2024-05-01T11:00:00Z", "doc B")]
    hostile.send(*(events if order == "time order" else events[::-1]))
    hostile.canaries_reach_the_graph()
    records, _, _ = hostile.neo4j.execute_query(
        "MATCH (d:Dataset {namespace: $ns, name: 'documented'}) RETURN d.description AS doc",
        ns=hostile.namespace)
    assert [r["doc"] for r in records] == ["doc A"]


def test_sigterm_stops_a_sink_that_waits_to_retry_neo4j_within_seconds(
        stack: StackSettings, tmp_path: Path) -> None:
    """Item 1: the sink ignored SIGTERM while it retried (SIGKILL was needed after 40 s)."""
    away = Pipeline(stack, tmp_path)
    sink = away.start("sink", LINEAGE_NEO4J__URI=f"bolt://127.0.0.1:{free_port()}",
                      LINEAGE_SINK__RETRY_INITIAL_SECONDS="30")
    deadline = time.monotonic() + 60
    while "retrying in" not in sink.log.read_text() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "retrying in" in sink.log.read_text(), sink.log.read_text()
    sink.proc.send_signal(signal.SIGTERM)
    started = time.monotonic()
    code = sink.proc.wait(30)
    assert time.monotonic() - started < 5, sink.log.read_text()
    assert code == 0, sink.log.read_text()
    assert "stopped while waiting to retry Neo4j" in sink.log.read_text()
