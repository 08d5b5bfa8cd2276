"""The whole pipeline on the real Kafka and Neo4j: events -> processor -> sink -> graph."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from neo4j import Driver

from lineage.bench.workload import encode_events, synthetic_events
from lineage.stack import LocalStack
from lineage.stack.processes import ManagedProcess
from lineage.stack.settings import StackSettings
from schemas.codec import encode
from sinks.graph import EPOCH
from tests.integration.graph_io import delete_namespace, describe, snapshot
from tests.integration.kafka_io import Pipeline, read_topic


@pytest.fixture
def pipeline(stack: StackSettings, tmp_path: Path) -> Iterator[Pipeline]:
    deployment = Pipeline(stack, tmp_path)
    yield deployment
    deployment.stop()


@pytest.fixture
def namespace(neo4j_driver: Driver) -> Iterator[str]:
    name = f"test://{uuid.uuid4().hex[:10]}"
    yield name
    delete_namespace(neo4j_driver, name)


def workload(namespace: str, jobs: int = 8, runs_per_job: int = 3) -> list[dict[str, Any]]:
    return list(synthetic_events(jobs=jobs, runs_per_job=runs_per_job, seed=5,
                                 namespace=namespace))


def load(pipeline: Pipeline, events: list[dict[str, Any]]) -> None:
    pipeline.start("process")
    pipeline.start("sink")
    pipeline.publish(encode_events(iter(events)))
    pipeline.wait_in_graph()


def micros_of(value: Any) -> int:
    """A Neo4j DateTime as microseconds since the epoch, exactly."""
    return (value.to_native() - EPOCH) // timedelta(microseconds=1)


def event_micros(event: dict[str, Any]) -> int:
    return (datetime.fromisoformat(event["eventTime"]) - EPOCH) // timedelta(microseconds=1)


def test_events_become_the_graph_of_the_contract_node_by_node(
    pipeline: Pipeline, namespace: str, neo4j_driver: Driver,
) -> None:
    events = workload(namespace)
    load(pipeline, events)

    def query(cypher: str, **params: Any) -> list[Any]:
        return neo4j_driver.execute_query(cypher, params, routing_="r")[0]

    runs: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        runs.setdefault(event["run"]["runId"], []).append(event)
    for run_id, run_events in runs.items():
        last = max(run_events, key=event_micros)
        job = last["job"]
        [record] = query("MATCH (j:Job)-[:HAS_RUN]->(r:Run {runId: $id}) RETURN j, r", id=run_id)
        assert (record["j"]["namespace"], record["j"]["name"]) == (job["namespace"], job["name"])
        run = record["r"]
        assert run["state"] == last["eventType"]
        assert micros_of(run["eventTime"]) == event_micros(last)
        start = [e for e in run_events if e["eventType"] == "START"]
        assert micros_of(run["startedAt"]) == event_micros(start[0])
        assert micros_of(run["endedAt"]) == event_micros(last)
        parent = last["run"]["facets"]["parent"]
        assert query("MATCH (:Run {runId: $id})-[:CHILD_OF]->(p:Run {runId: $parent}) "
                     "MATCH (:Job {namespace: $ns, name: $job})-[:CHILD_OF]->"
                     "(:Job {namespace: $ns, name: $pjob})-[:HAS_RUN]->(p) RETURN p",
                     id=run_id, parent=parent["run"]["runId"], ns=namespace,
                     job=job["name"], pjob=parent["job"]["name"])

        # The job version the run ran as reads and writes exactly the event's datasets.
        [version] = query("MATCH (:Job {namespace: $ns, name: $job})-[:HAS_VERSION]->"
                          "(v:JobVersion)<-[:RAN_AS]-(:Run {runId: $id}) "
                          "RETURN v, [(v)-[:READS]->(d) | d.name] AS reads, "
                          "[(v)-[:WRITES]->(d) | d.name] AS writes",
                          ns=namespace, job=job["name"], id=run_id)
        assert sorted(version["reads"]) == sorted(d["name"] for d in last["inputs"])
        assert sorted(version["writes"]) == sorted(d["name"] for d in last["outputs"])
        assert version["v"]["sql"] == job["facets"]["sql"]["query"]

        for output in last["outputs"]:
            # The version this run wrote has the schema's fields, in order, with their types.
            fields = query("MATCH (:Run {runId: $id})-[:WROTE]->(v:DatasetVersion)"
                           "<-[:HAS_VERSION]-(:Dataset {namespace: $ns, name: $name}) "
                           "MATCH (v)-[h:HAS_FIELD]->(f:Field) "
                           "RETURN f.name AS name, h.type AS type ORDER BY h.ordinal",
                           id=run_id, ns=namespace, name=output["name"])
            schema = output["facets"]["schema"]["fields"]
            assert [(f["name"], f["type"]) for f in fields] == [
                (c["name"], c["type"]) for c in schema]
            # Column lineage: every input field of every column FEEDS that column.
            for column, spec in output["facets"]["columnLineage"]["fields"].items():
                for source in spec["inputFields"]:
                    kind = "/".join((source["transformations"][0]["type"],
                                     source["transformations"][0]["subtype"]))
                    assert query(
                        "MATCH (:Field {namespace: $ns, dataset: $sd, name: $sf})"
                        "-[e:FEEDS {transformation: $kind}]->"
                        "(:Field {namespace: $ns, dataset: $td, name: $tf}) RETURN e",
                        ns=namespace, sd=source["name"], sf=source["field"],
                        td=output["name"], tf=column, kind=kind), (column, source)

    # Job lineage: every observed (dataset, job) pair, first and last seen at event times.
    for event in events:
        for direction, pattern in (("inputs", "(d)-[e:INPUT_TO]->(j)"),
                                   ("outputs", "(j)-[e:OUTPUT_TO]->(d)")):
            for dataset in event[direction]:
                [edge] = query(f"MATCH (j:Job {{namespace: $ns, name: $job}}) "
                               f"MATCH (d:Dataset {{namespace: $ns, name: $name}}) "
                               f"MATCH {pattern} RETURN e", ns=namespace,
                               job=event["job"]["name"], name=dataset["name"])
                times = [event_micros(e) for e in events
                         if e["job"]["name"] == event["job"]["name"]
                         and dataset["name"] in {d["name"] for d in e[direction]}]
                assert micros_of(edge["e"]["firstSeen"]) == min(times)
                assert micros_of(edge["e"]["lastSeen"]) == max(times)

    # The validity intervals of each dataset form a chain: each one's validTo is the next one's
    # validFrom, and the last is open (a reader's sighting of the schema valid then is none).
    for record in query("MATCH (d:Dataset {namespace: $ns})-[i:VALID_AS]->(:DatasetVersion) "
                        "WITH d, i ORDER BY i.validFrom "
                        "RETURN d.name AS name, collect(i) AS intervals", ns=namespace):
        intervals = record["intervals"]
        for older, newer in itertools.pairwise(intervals):
            assert older["validTo"] == newer["validFrom"]
        assert "validTo" not in intervals[-1]


def test_replaying_the_raw_topic_twice_changes_nothing(
    pipeline: Pipeline, namespace: str, neo4j_driver: Driver,
) -> None:
    events = workload(namespace, jobs=5, runs_per_job=2)
    load(pipeline, events)
    before = snapshot(neo4j_driver, namespace)
    for _ in range(2):
        pipeline.publish(encode_events(iter(events)))
        pipeline.wait_in_graph()
    assert snapshot(neo4j_driver, namespace) == before


@pytest.fixture
def reference(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory,
              neo4j_driver: Driver) -> Iterator[tuple[str, list[dict[str, Any]], Any]]:
    """A namespace's graph after one uninterrupted run, then that namespace emptied again."""
    namespace = f"test://{uuid.uuid4().hex[:10]}"
    events = workload(namespace, jobs=30, runs_per_job=4)
    deployment = Pipeline(stack, tmp_path_factory.mktemp("reference"))
    try:
        load(deployment, events)
    finally:
        deployment.stop()
    expected = snapshot(neo4j_driver, namespace)
    delete_namespace(neo4j_driver, namespace)
    yield namespace, events, expected
    delete_namespace(neo4j_driver, namespace)


# Small batches, so that the sink is surely mid-stream when the test interrupts it.
SMALL_BATCHES = {"LINEAGE_SINK__BATCH_SIZE": "20"}


def wait_for_sink_progress(pipeline: Pipeline, records: int) -> None:
    deadline = time.monotonic() + 120
    while pipeline.sink_progress()[0] < records:
        assert time.monotonic() < deadline, "the sink wrote nothing in 120 s"
        time.sleep(0.05)


def test_a_sink_killed_mid_stream_and_restarted_writes_the_same_graph(
    pipeline: Pipeline, neo4j_driver: Driver,
    reference: tuple[str, list[dict[str, Any]], Any],
) -> None:
    namespace, events, expected = reference
    pipeline.start("process")
    sink = pipeline.start("sink", **SMALL_BATCHES)
    pipeline.publish(encode_events(iter(events)))
    wait_for_sink_progress(pipeline, 100)
    sink.kill()
    written_before_the_kill = pipeline.sink_progress()[0]
    pipeline.start("sink", **SMALL_BATCHES)
    pipeline.wait_in_graph()
    assert written_before_the_kill < pipeline.sink_progress()[1], "killed mid-stream"
    actual = snapshot(neo4j_driver, namespace)
    assert actual == expected, describe(expected, actual)


def test_a_neo4j_restart_mid_stream_ends_in_the_same_graph(
    pipeline: Pipeline, neo4j_driver: Driver, stack: StackSettings,
    reference: tuple[str, list[dict[str, Any]], Any],
) -> None:
    namespace, events, expected = reference
    pipeline.start("process")
    pipeline.start("sink", **SMALL_BATCHES)
    pipeline.publish(encode_events(iter(events)))
    wait_for_sink_progress(pipeline, 100)
    assert ManagedProcess("neo4j", stack.state_dir / "neo4j").stop()
    written_before_the_restart = pipeline.sink_progress()[0]
    time.sleep(3)  # the sink meets a dead Neo4j and retries
    LocalStack(stack).up()
    pipeline.wait_in_graph()
    assert written_before_the_restart < pipeline.sink_progress()[1], "restarted mid-stream"
    actual = snapshot(neo4j_driver, namespace)
    assert actual == expected, describe(expected, actual)
    log = (pipeline.tmp_path / "sink.log").read_text()
    assert "will be retried" in log or "retrying in" in log, "the sink met the outage"


def test_undecodable_and_contract_breaking_records_go_to_the_changes_dlq(
    pipeline: Pipeline,
) -> None:
    good_but_empty_name = encode({"eventTime": 0, "ingestedAt": 0, "payload": (
        "Job", {"namespace": "test://dlq", "name": "", "facets": None})})
    messages = [(b"garbage", b"\x00not avro"), (b"empty-name", good_but_empty_name)]
    pipeline.start("sink")
    producer = Producer({"bootstrap.servers": pipeline.bootstrap})
    for key, value in messages:
        producer.produce(pipeline.topics.changes, value, key)
    producer.flush(30)
    deadline = time.monotonic() + 120
    while pipeline.sink_progress()[0] < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    letters = {m.key(): m for m in read_topic(pipeline.bootstrap, pipeline.topics.changes_dlq)}
    assert set(letters) == {b"garbage", b"empty-name"}
    for key, code, words in ((b"garbage", "undecodable", "C3 01"),
                             (b"empty-name", "contract", "name must be a non-empty string")):
        envelope = json.loads(dict(letters[key].headers())["lineage.dlq.envelope"])
        assert envelope["reasons"][0]["code"] == code
        assert words in envelope["reasons"][0]["message"]
        assert envelope["source"]["topic"] == pipeline.topics.changes
    assert letters[b"garbage"].value() == b"\x00not avro", "the original bytes, unchanged"
    assert pipeline.services[0].proc.poll() is None, "the sink is still running"
