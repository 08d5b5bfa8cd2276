"""Helpers for pipeline tests on the real Kafka: publish, run workers and gateways, read topics,
fold changes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from core.kafka_config import admin_client
from core.settings import KafkaSettings
from lineage.bench.workload import encode_events
from lineage.stack.settings import StackSettings
from schemas.codec import decode, encode
from stream_processor.pipeline import process
from stream_processor.state import Plan
from stream_processor.versioning import canonical_json
from tests.conftest import REPO, free_port


@dataclass
class PipelineTopics:
    """Unique topic names and a consumer group for one test, as LINEAGE_ settings."""

    bootstrap: str
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def raw(self) -> str:
        return f"raw-{self.tag}"

    @property
    def dlq(self) -> str:
        return f"dlq-{self.tag}"

    @property
    def changes(self) -> str:
        return f"changes-{self.tag}"

    @property
    def group(self) -> str:
        return f"processor-{self.tag}"

    @property
    def changes_dlq(self) -> str:
        return f"changes-dlq-{self.tag}"

    @property
    def sink_group(self) -> str:
        return f"sink-{self.tag}"

    def env(self, data_dir: Path, worker_id: str = "0") -> dict[str, str]:
        return {
            "LINEAGE_KAFKA__BOOTSTRAP_SERVERS": self.bootstrap,
            "LINEAGE_KAFKA__RAW_TOPIC": self.raw,
            "LINEAGE_KAFKA__DLQ_TOPIC": self.dlq,
            "LINEAGE_KAFKA__CHANGES_TOPIC": self.changes,
            "LINEAGE_KAFKA__CHANGES_DLQ_TOPIC": self.changes_dlq,
            "LINEAGE_SINK__GROUP_ID": self.sink_group,
            "LINEAGE_SINK__METRICS_PORT": "0",
            "LINEAGE_PROCESSOR__APP_ID": self.group,
            "LINEAGE_PROCESSOR__WORKER_ID": worker_id,
            "LINEAGE_PROCESSOR__DATA_DIR": str(data_dir / f"worker-{worker_id}"),
            "LINEAGE_PROCESSOR__METRICS_PORT": "0",
            "LINEAGE_PROCESSOR__BATCH_SIZE": "50",
            "LINEAGE_PROCESSOR__STORE": os.environ.get("TEST_STORE", "rocksdb"),
        }


class Worker:
    """A ``lineage process`` (or, with ``command="sink"``, ``lineage sink``) child process."""

    def __init__(self, env: dict[str, str], log: Path, command: str = "process") -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lineage", command, "--loglevel", "info"],
            cwd=REPO, env={**os.environ, **env}, stdout=log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.kill()


class Gateway(Worker):
    """A ``lineage gateway`` child process on a free port, writing to a topic of its own."""

    def __init__(self, bootstrap: str, log: Path, env: dict[str, str]) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.topic = f"gateway-{uuid.uuid4().hex[:10]}"
        self.bootstrap = bootstrap
        super().__init__({"LINEAGE_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
                          "LINEAGE_KAFKA__RAW_TOPIC": self.topic,
                          "LINEAGE_KAFKA__RAW_PARTITIONS": "3",
                          "LINEAGE_GATEWAY__PORT": str(port), **env}, log, "gateway")

    def remove(self) -> None:
        """Stop the gateway and delete its topic."""
        self.stop()
        admin = admin_client(KafkaSettings(bootstrap_servers=self.bootstrap))
        admin.delete_topics([self.topic])[self.topic].result(timeout=30)

    def messages(self) -> list[Any]:
        """Every message on the gateway's raw topic."""
        return read_topic(self.bootstrap, self.topic)

    def on_topic(self, run_ids: set[str]) -> dict[str, list[bytes]]:
        """The keys of the messages on the topic whose run id is one of ``run_ids``."""
        found: dict[str, list[bytes]] = {}
        for message in self.messages():
            run_id = json.loads(message.value()).get("run", {}).get("runId")
            if run_id in run_ids:
                found.setdefault(run_id, []).append(message.key())
        return found


def start_gateway(bootstrap: str, log: Path, *, healthy: bool = True, **env: str) -> Gateway:
    """A ``lineage gateway`` on ``bootstrap`` once it answers /healthz (200, or anything when
    ``healthy`` is False); ``env`` adds settings (``LINEAGE_GATEWAY__TOKENS=...``)."""
    gateway = Gateway(bootstrap, log, env)
    proc = gateway.proc
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            status = httpx.get(f"{gateway.url}/healthz", timeout=5).status_code
            if status == 200 or not healthy:
                return gateway
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    gateway.stop()
    raise AssertionError(f"the gateway did not come up:\n{log.read_text()}")


class Pipeline:
    """Processor workers and sinks on one test's own topics, started and stopped by the test."""

    def __init__(self, stack: StackSettings, tmp_path: Path) -> None:
        self.bootstrap = stack.kafka.bootstrap_servers
        self.topics = PipelineTopics(self.bootstrap)
        self.tmp_path = tmp_path
        self.services: list[Worker] = []

    def start(self, command: str = "process", worker_id: str = "0", **env: str) -> Worker:
        """Start ``lineage <command>``; ``env`` adds settings (``LINEAGE_SINK__BATCH_SIZE=...``)."""
        name = f"worker-{worker_id}" if command == "process" else command
        worker = Worker({**self.topics.env(self.tmp_path, worker_id), **env},
                        self.tmp_path / f"{name}.log", command)
        self.services.append(worker)
        return worker

    def publish(self, messages: list[tuple[bytes | None, bytes]]) -> None:
        publish(self.bootstrap, self.topics.raw, messages)

    def changes(self) -> Folded:
        """Once the processor committed every raw message: the change set it sent, folded."""
        wait_until_processed(self.bootstrap, self.topics)
        return fold(read_topic(self.bootstrap, self.topics.changes))

    def sink_progress(self) -> tuple[int, int]:
        return group_progress(self.bootstrap, self.topics.changes, self.topics.sink_group)

    def wait_in_graph(self, timeout: float = 240) -> None:
        """Block until the processor committed every raw message and the sink every change."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed, ends = progress(self.bootstrap, self.topics)
            written, changes = self.sink_progress()
            if committed >= ends and written >= changes:
                return
            time.sleep(1)
        logs = "\n".join(f"--- {w.log.name}\n{w.log.read_text()[-3000:]}" for w in self.services)
        raise AssertionError(f"the pipeline did not finish in {timeout}s: processor "
                             f"{progress(self.bootstrap, self.topics)}, sink "
                             f"{self.sink_progress()}\n{logs}")

    def stop(self) -> None:
        for worker in self.services:
            worker.stop()


def publish(bootstrap: str, topic: str, messages: Iterable[tuple[bytes | None, bytes]], *,
            partition: int = -1, max_bytes: int = 4_000_000) -> int:
    """Publish (key, value) pairs, acks=all (to ``partition``, or by key when -1); returns how
    many were acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True, "linger.ms": 5,
                         "message.max.bytes": max_bytes})
    acked: list[int] = []
    count = 0
    for key, value in messages:
        producer.produce(topic, value, key=key, partition=partition,
                         on_delivery=lambda err, _m: acked.append(0 if err else 1))
        producer.poll(0)
        count += 1
    producer.flush(60)
    assert sum(acked) == count, "Kafka did not acknowledge every test message"
    return count


def progress(bootstrap: str, topics: PipelineTopics) -> tuple[int, int]:
    """(messages the processor's group has committed, messages on the raw topic)."""
    return group_progress(bootstrap, topics.raw, topics.group)


def group_progress(bootstrap: str, topic: str, group: str) -> tuple[int, int]:
    """(messages ``group`` has committed on ``topic``, messages on ``topic``).

    A topic created moments ago may have no partition leader yet: that is retried for 30 s.
    """
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False})
    deadline = time.monotonic() + 30
    try:
        while True:
            try:
                meta = consumer.list_topics(topic, timeout=10).topics[topic]
                parts = [TopicPartition(topic, p) for p in meta.partitions]
                # An empty or untouched partition has a negative committed offset: count it 0.
                committed = sum(max(c.offset, 0) for c in consumer.committed(parts, timeout=10))
                ends = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in parts)
                return committed, ends
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
    finally:
        consumer.close()


def wait_until_processed(bootstrap: str, topics: PipelineTopics, timeout: float = 180) -> None:
    """Block until the processor's group has committed every raw message."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        committed, ends = progress(bootstrap, topics)
        if committed >= ends:
            return
        time.sleep(1)
    committed, ends = progress(bootstrap, topics)
    raise AssertionError(f"the processor committed {committed} of {ends} messages of "
                         f"{topics.raw} in {timeout}s\n{_stacks_of_workers(topics.group)}")


def _stacks_of_workers(group: str) -> str:
    """Python stacks of the group's live workers (py-spy, when installed) to explain a stall."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).is_file():
        return "(install py-spy to see the workers' stacks)"
    stacks = []
    for proc in Path("/proc").iterdir():
        try:
            environ = (proc / "environ").read_bytes() if proc.name.isdigit() else b""
            if f"APP_ID={group}".encode() in environ:
                out = subprocess.run([spy, "dump", "--pid", proc.name], capture_output=True,
                                     text=True, timeout=60, check=False)
                stacks.append(out.stdout + out.stderr)
        except OSError:
            continue
    return "\n".join(stacks)


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every message currently on ``topic`` (reads up to the end offsets taken at the start)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{uuid.uuid4()}",
                         "enable.auto.commit": False})
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
                for p in meta.partitions}
        remaining = {p: end for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, 0) for p in remaining])
        out = []
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error() is not None:
                continue
            out.append(msg)
            if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                remaining.pop(msg.partition(), None)
        assert not remaining, f"could not read {topic} to its end"
        return out
    finally:
        consumer.close()


Folded = dict[tuple[str, str], tuple[int, int] | None]


def fold(messages: Iterable[Any]) -> Folded:
    """The graph the change records on a topic describe (see :func:`fold_records`)."""
    return fold_records((m.key().decode(), decode(m.value())) for m in messages)


def in_process_fold(messages: Iterable[tuple[bytes | None, bytes]]) -> Folded:
    """What one worker processing ``messages`` in order sends, computed without Kafka."""
    state: dict[str, list[int]] = {}
    records = []
    for _key, value in messages:
        outcome = process(value, Plan(state), ingested_at=0)
        outcome.plan.commit()
        records += [(c.key, decode(encode(c.record(0)))) for c in outcome.changes]
    return fold_records(records)


def fold_records(records: Iterable[tuple[str, dict[str, Any]]]) -> Folded:
    """The graph change records describe, independent of how many and in which order.

    Mirrors the sink's merge rules: a Job or Dataset node its earliest time and the facets of
    its latest record with facets (ties by the facets' hash, as ``sinks.graph``), a job version
    its earliest time, a dataset version each time it was seen, job lineage and run
    observations their first and last, the rest is a set.
    """
    graph: Folded = {}
    nodes: dict[tuple[str, str], tuple[int, tuple[int, str, str]]] = {}
    for key, record in records:
        kind, body = record["payload"]
        time_ = record["eventTime"]
        if kind in ("Job", "Dataset"):
            bare = (-1, "", canonical_json({**body, "facets": None}))  # below any with facets
            first, latest = nodes.get((kind, key)) or (time_, bare)
            facets = body["facets"]
            if facets is not None:
                order = (time_, hashlib.sha256(facets.encode()).hexdigest()[:16],
                         canonical_json(body))
                latest = max(order, latest)
            nodes[(kind, key)] = (min(first, time_), latest)
            continue
        identity = (kind, f"{key}|{canonical_json(body)}")
        if kind in ("RunIO", "ColumnLineage", "Symlink"):
            graph[identity] = None
            continue
        if kind == "DatasetVersion":
            graph[(kind, f"{identity[1]}|{time_}")] = None
            continue
        first, last = graph.get(identity) or (time_, time_)
        if kind == "JobVersion":
            graph[identity] = (min(first, time_), min(first, time_))
        else:
            graph[identity] = (min(first, time_), max(last, time_))
    for (kind, key), (first, (_, _, body_json)) in nodes.items():
        graph[(kind, f"{key}|{body_json}")] = (first, first)
    return graph


def load_graph(stack: StackSettings, tmp_path: Path,
               events: Iterable[dict[str, Any]]) -> None:
    """Run ``events`` through a fresh processor and sink into Neo4j, then stop both."""
    pipeline = Pipeline(stack, tmp_path)
    try:
        pipeline.start("process")
        pipeline.start("sink")
        pipeline.publish(list(encode_events(iter(events))))
        pipeline.wait_in_graph()
    finally:
        pipeline.stop()
