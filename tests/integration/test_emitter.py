"""Producers on the real Kafka: the emitter, `lineage emit`, and the standard OpenLineage client."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from neo4j import Driver
from openlineage.client import OpenLineageClient, event_v2
from openlineage.client.facet_v2 import parent_run
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

from core.errors import BufferFull, EmitFailed
from lineage.bench.workload import synthetic_events
from lineage.stack.settings import StackSettings
from producers.emitter import Emitter
from tests.conftest import run_cli
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import read_topic
from tests.integration.test_sink import Pipeline

PRODUCER = "https://github.com/openlineage-stream/tests"


def client_event(namespace: str, job: str, parent_job: str | None = None) -> event_v2.RunEvent:
    facets = {}
    if parent_job is not None:
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=str(uuid.uuid4())),
            job=parent_run.Job(namespace=namespace, name=parent_job))
    return event_v2.RunEvent(
        eventType=event_v2.RunState.COMPLETE, eventTime="2024-05-01T12:00:00.000Z",
        run=event_v2.Run(runId=str(uuid.uuid4()), facets=facets),
        job=event_v2.Job(namespace=namespace, name=job), producer=PRODUCER,
        inputs=[event_v2.InputDataset(namespace=namespace, name="in")],
        outputs=[event_v2.OutputDataset(namespace=namespace, name="out")])


def test_the_emitter_sends_dicts_and_client_objects_keyed_like_the_standard_transport(
    stack: StackSettings, topic: str,
) -> None:
    events = list(synthetic_events(jobs=3, runs_per_job=1, seed=3, duplicate_rate=0.0))
    with Emitter(stack.kafka.bootstrap_servers, topic) as emitter:
        emitter.emit_all(events)
        emitter.emit(client_event("test://emitter", "child", parent_job="dag"))
        emitter.emit({"dataset": {"namespace": "pg", "name": "public.t"}, "eventTime":
                      "2024-05-01T12:00:00Z", "producer": PRODUCER, "schemaURL": "x"})
    messages = read_topic(stack.kafka.bootstrap_servers, topic)
    keys = {m.key() for m in messages}
    assert len(messages) == len(events) + 2
    assert b"run:synthetic://warehouse/scheduler.dag_0" in keys, "the parent job keys a child"
    assert b"run:test://emitter/dag" in keys
    assert b"dataset:pg/public.t" in keys
    bodies = [json.loads(m.value()) for m in messages]
    assert sorted(e["run"]["runId"] for e in events) == sorted(
        b["run"]["runId"] for b in bodies if b.get("job", {}).get("namespace") != "test://emitter"
        and "run" in b)


def test_events_kafka_does_not_acknowledge_are_reported_to_the_caller() -> None:
    emitter = Emitter("127.0.0.1:1", "nowhere", config={"message.timeout.ms": 1500})
    emitter.emit({"job": {"namespace": "n", "name": "j"}, "run": {"runId": "r"}})
    with pytest.raises(EmitFailed) as failed:
        emitter.flush(timeout=20)
    assert [f.key for f in failed.value.failures] == ["run:n/j"]
    assert "timed out" in failed.value.failures[0].reason.lower()
    forget(emitter)


def test_a_full_buffer_pushes_back_instead_of_growing() -> None:
    emitter = Emitter("127.0.0.1:1", "nowhere", max_buffered_events=3, block_seconds=1,
                      config={"message.timeout.ms": 60_000})
    for _ in range(3):
        emitter.emit({"job": {"namespace": "n", "name": "j"}, "run": {"runId": "r"}})
    started = time.monotonic()
    with pytest.raises(BufferFull):
        emitter.emit({"job": {"namespace": "n", "name": "j"}, "run": {"runId": "r"}})
    assert time.monotonic() - started >= 1.0, "it waited for room first"
    forget(emitter)


def forget(emitter: Emitter) -> None:
    """Drop what a producer aimed at a closed port still holds, so it stops reconnecting."""
    emitter.producer.purge()
    emitter.producer.flush(0)
    del emitter.producer


def test_lineage_emit_sends_an_ndjson_file(stack: StackSettings, topic: str,
                                           tmp_path: Path) -> None:
    events = list(synthetic_events(jobs=2, runs_per_job=1, seed=4, duplicate_rate=0.0))
    source = tmp_path / "events.ndjson"
    source.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    proc = run_cli("emit", str(source), "--topic", topic)
    assert proc.returncode == 0, proc.stderr
    assert f"sent {len(events)} events to {topic}" in proc.stdout
    assert len(read_topic(stack.kafka.bootstrap_servers, topic)) == len(events)


def test_lineage_emit_refuses_a_file_that_is_not_json(tmp_path: Path) -> None:
    source = tmp_path / "bad.ndjson"
    source.write_text('{"ok": 1}\nnot json\n')
    proc = run_cli("emit", str(source))
    assert proc.returncode == 1
    assert "error: line 2 is not JSON" in proc.stderr


def test_the_standard_openlineage_kafka_transport_reaches_neo4j_unchanged(
    stack: StackSettings, tmp_path: Path, neo4j_driver: Driver,
) -> None:
    namespace = f"test://{uuid.uuid4().hex[:10]}"
    pipeline = Pipeline(stack, tmp_path)
    try:
        pipeline.start("process")
        pipeline.start("sink")
        transport = KafkaTransport(KafkaConfig(
            config={"bootstrap.servers": stack.kafka.bootstrap_servers, "acks": "all"},
            topic=pipeline.topics.raw, flush=True))
        OpenLineageClient(transport=transport).emit(client_event(namespace, "orders_daily"))
        pipeline.wait_in_graph()
        records, _, _ = neo4j_driver.execute_query(
            "MATCH (i:Dataset)-[:INPUT_TO]->(j:Job {namespace: $ns})-[:OUTPUT_TO]->(o) "
            "MATCH (j)-[:HAS_RUN]->(r:Run) RETURN i.name AS i, j.name AS j, o.name AS o, "
            "r.state AS state", ns=namespace)
        assert [(r["i"], r["j"], r["o"], r["state"]) for r in records] == [
            ("in", "orders_daily", "out", "COMPLETE")]
    finally:
        pipeline.stop()
        delete_namespace(neo4j_driver, namespace)
