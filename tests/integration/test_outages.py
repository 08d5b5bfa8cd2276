"""Kafka away (issue #14): an outage costs the log a few lines (item 8), and SIGTERM stops a
processor that waits for Kafka (graceful shutdown).

A private stack, a processor on it, Kafka killed for :data:`OUTAGE_SECONDS` and started again:
the processor's log must grow by a bounded number of lines (a 28 s outage wrote about 52,000
ERROR lines, 5.4 MB, before repeated errors were rate-limited), and the processor must carry
on by itself afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import NewTopic

from core.kafka_config import admin_client
from lineage.stack.settings import StackSettings
from tests.conftest import private_ports_env, run_cli
from tests.integration.kafka_io import PipelineTopics, Worker, progress, publish

OUTAGE_SECONDS = 25
MAX_LINES = 200


@pytest.fixture
def private_stack(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = private_ports_env(tmp_path / "state")
    started = run_cli("stack", "up", env=env, timeout=600)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield env
    finally:
        run_cli("stack", "down", env=env, timeout=300)


def event(i: int) -> bytes:
    return json.dumps({
        "eventType": "COMPLETE", "eventTime": "2024-05-01T12:00:00Z",
        "producer": "https://example.com/outage-test",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": str(uuid.uuid4())}, "job": {"namespace": "outage", "name": f"j{i}"},
        "inputs": [], "outputs": []}).encode()


def processed(bootstrap: str, topics: PipelineTopics, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        committed, ends = progress(bootstrap, topics)
        if ends and committed >= ends:
            return True
        time.sleep(1)
    return False


def test_a_kafka_outage_costs_the_processors_log_a_few_lines_and_it_carries_on(
        private_stack: dict[str, str], tmp_path: Path) -> None:
    bootstrap = f"127.0.0.1:{private_stack['LINEAGE_STACK__KAFKA_PORT']}"
    topics = PipelineTopics(bootstrap)
    log = tmp_path / "processor.log"
    worker = Worker(topics.env(tmp_path), log, "process")
    try:
        publish(bootstrap, topics.raw, [(None, event(0))])
        assert processed(bootstrap, topics, 120), log.read_text()[-3000:]
        before = len(log.read_text().splitlines())
        kafka = Path(private_stack["LINEAGE_STATE_DIR"]) / "kafka"
        os.kill(int((kafka / "kafka.pid").read_text()), signal.SIGKILL)
        time.sleep(OUTAGE_SECONDS)
        during = log.read_text().splitlines()[before:]
        restarted = run_cli("stack", "up", env=private_stack, timeout=600)
        assert restarted.returncode == 0, restarted.stdout + restarted.stderr
        publish(bootstrap, topics.raw, [(None, event(1))])
        assert processed(bootstrap, topics, 180), log.read_text()[-3000:]
        assert worker.proc.poll() is None, "the processor is still running"
        assert 0 < len(during) <= MAX_LINES, "\n".join(during[:40])
    finally:
        worker.stop()


def test_sigterm_stops_a_processor_that_waits_for_kafka_to_take_its_records(
        stack: StackSettings, tmp_path: Path) -> None:
    """Graceful shutdown (issue #14): a processor whose records Kafka does not take (here a
    changes topic that takes 100 bytes at most) kept retrying through SIGTERM."""
    topics = PipelineTopics(stack.kafka.bootstrap_servers)
    admin = admin_client(stack.kafka)
    admin.create_topics([NewTopic(topics.changes, 1, 1, config={"max.message.bytes": "100"})])[
        topics.changes].result(timeout=30)
    log = tmp_path / "processor.log"
    worker = Worker(topics.env(tmp_path), log, "process")
    try:
        publish(topics.bootstrap, topics.raw, [(None, event(0))])
        deadline = time.monotonic() + 90
        while "not acknowledged" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "not acknowledged" in log.read_text(), log.read_text()[-3000:]
        worker.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        worker.proc.wait(60)
        assert time.monotonic() - started < 15, log.read_text()[-3000:]
        assert "stopping with a batch not acknowledged" in log.read_text()
        assert progress(topics.bootstrap, topics)[0] == 0, "nothing committed"
    finally:
        worker.stop()
        admin.delete_topics([topics.changes])
