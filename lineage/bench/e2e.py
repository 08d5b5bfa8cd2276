"""``lineage bench e2e``: events/s from emit to committed in Neo4j, and freshness under load.

One run: fresh topics and consumer groups, the workload's namespaces emptied in Neo4j (so every
run starts from the same graph), one ``lineage process`` and one ``lineage sink`` started and
given time to join their groups, then the workload's exact bytes emitted with the transport's
keys, either as fast as the emitter goes (``rate=None``: the sustained ingest rate is then the
pipeline's) or paced at a fixed offered load. The clock runs from the first emit to the sink's
commit of the last change record, which the harness sees by polling the groups' commits every
0.2 s. Freshness is the sink's ``lineage_sink_arrival_freshness_seconds`` histogram over the
run: from an event's arrival on the raw topic (its producer timestamp, i.e. when it was
emitted) to the commit that made it queryable, interpolated within buckets. CPU seconds and
peak RSS are sampled for the processor, the sink, Kafka, Neo4j and the emitting harness.

Example::

    $ lineage bench generate --events 30000 --jobs 10000 bench/work/10k.ndjson
    $ lineage bench e2e bench/work/10k.ndjson --runs 3
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import msgspec

from core.errors import LineageError
from core.kafka_config import admin_client, consumer_config
from core.settings import CommonSettings, KafkaSettings
from core.topics import ensure_topics
from lineage.bench.measure import (
    ResourceMonitor,
    bucket_difference,
    commit_window,
    histogram_quantile,
    message_count,
    scrape_histogram,
    scrape_sums,
    wait_for_group,
)
from lineage.stack.processes import free_ports
from lineage.stack.settings import StackSettings
from producers.emitter import Emitter, message_key

Log = Callable[[str], None]
Message = tuple[bytes, "str | None"]
FRESHNESS = "lineage_sink_arrival_freshness_seconds"
STATEMENTS = "lineage_sink_statement_seconds"


def load_messages(path: Path) -> list[Message]:
    """The workload's lines as (value, key): the exact bytes, keyed like the Kafka transport.

    Held in memory so that reading and parsing are not timed: the generator's lines average
    about 7.7 KB, so 100k events take about 0.8 GB.
    """
    messages: list[Message] = []
    with path.open("rb") as lines:
        for line in lines:
            value = line.rstrip(b"\n")
            if value:
                messages.append((value, _key(value)))
    if not messages:
        raise LineageError(f"{path} holds no events", hint="generate one: lineage bench generate")
    return messages


def _key(value: bytes) -> str | None:
    try:
        event = msgspec.json.decode(value)
        return message_key(event) if isinstance(event, dict) else None
    except (msgspec.DecodeError, AttributeError, TypeError):
        return None  # the processor dead-letters it; Kafka takes it keyless


@dataclass
class RunResult:
    """What one end-to-end run measured."""

    mode: str  # "max" or "fixed"
    offered_rate: float | None
    events: int
    changes: int
    dead_letters: int
    seconds: float  # first emit to the sink's last commit
    emit_seconds: float
    freshness_p50: float
    freshness_p99: float
    resources: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Seconds Neo4j spent in each record kind's statement (the sink's metric), over the run.
    statement_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rate": round(self.rate, 1)}


class PipelineUnderTest:
    """A processor and a sink on topics and groups of their own, for one run.

    ``code``: run both services from that checkout instead of this one (on the same stack).
    """

    def __init__(self, settings: CommonSettings, workdir: Path, *,
                 code: Path | None = None) -> None:
        tag = uuid.uuid4().hex[:8]
        self.kafka = settings.kafka
        self.raw, self.changes = f"bench-e2e-raw-{tag}", f"bench-e2e-changes-{tag}"
        self.dlq, self.changes_dlq = f"bench-e2e-dlq-{tag}", f"bench-e2e-changes-dlq-{tag}"
        self.processor_group, self.sink_group = f"bench-e2e-{tag}", f"bench-e2e-sink-{tag}"
        self.sink_metrics = free_ports(1)[0]
        self.raw_partitions = settings.kafka.raw_partitions
        self.changes_partitions = settings.kafka.changes_partitions
        self.workdir = workdir
        self.env = {
            **os.environ,
            "LINEAGE_KAFKA__RAW_TOPIC": self.raw, "LINEAGE_KAFKA__DLQ_TOPIC": self.dlq,
            "LINEAGE_KAFKA__CHANGES_TOPIC": self.changes,
            "LINEAGE_KAFKA__CHANGES_DLQ_TOPIC": self.changes_dlq,
            "LINEAGE_PROCESSOR__APP_ID": self.processor_group,
            "LINEAGE_PROCESSOR__DATA_DIR": str(workdir / "processor"),
            "LINEAGE_PROCESSOR__METRICS_PORT": "0",
            "LINEAGE_SINK__GROUP_ID": self.sink_group,
            "LINEAGE_SINK__METRICS_PORT": str(self.sink_metrics),
        }
        if code is not None:  # its packages first; this stack's endpoints and password
            self.env |= {"PYTHONPATH": str(code.resolve()),
                         "LINEAGE_STATE_DIR": str(settings.state_dir)}
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.sink_metrics}/metrics"

    def start(self, timeout: float = 180) -> None:
        """Create the topics, start both services and wait until both hold their partitions."""
        ensure_topics(self.kafka, {self.raw: self.raw_partitions, self.dlq: 1,
                                       self.changes: self.changes_partitions,
                                       self.changes_dlq: 1})
        for name in ("process", "sink"):
            # Logs go to files: a pipe nobody reads could fill up and stall the service.
            log = (self.workdir / f"{name}.log").open("ab")
            self.children[name] = subprocess.Popen(
                [sys.executable, "-m", "lineage", name], env=self.env, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True)
        wait_for_group(self.kafka, self.processor_group, timeout=timeout)
        wait_for_group(self.kafka, self.sink_group, timeout=timeout)

    def check(self) -> None:
        """Raise when a service died (with the end of its log)."""
        for name, child in self.children.items():
            if child.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-2000:]
                raise LineageError(f"the benchmark's `lineage {name}` exited early:\n{tail}")

    def wait_committed(self, log: Log) -> tuple[float, int]:
        """Block until the processor, then the sink, committed everything; returns
        (``perf_counter`` at the sink's last commit, change records)."""
        from confluent_kafka import Consumer

        last = 0.0
        for topic, group in ((self.raw, self.processor_group), (self.changes, self.sink_group)):
            consumer = Consumer(consumer_config(self.kafka, group))
            try:
                last = commit_window(consumer, topic, self.check,
                                     partial(_report_progress, log, topic), interval=0.2).last
            finally:
                consumer.close()
        return last, message_count(self.kafka, self.changes)

    def stop(self) -> None:
        """Stop both services and delete the run's topics."""
        for child in self.children.values():
            child.terminate()
        for child in self.children.values():
            try:
                child.wait(60)
            except subprocess.TimeoutExpired:
                child.kill()
        admin_client(self.kafka, log_level=3).delete_topics(
            [self.raw, self.dlq, self.changes, self.changes_dlq])


def _report_progress(log: Log, topic: str, done: int) -> None:
    log(f"    {topic}: {done} committed")


def stack_pids(settings: CommonSettings) -> dict[str, int]:
    """Kafka's and Neo4j's pids when they are the local stack's (for CPU and memory)."""
    from lineage.stack import LocalStack

    pids = {}
    for process in LocalStack(StackSettings(state_dir=settings.state_dir)).processes():
        pid = process.pid()
        if pid is not None and process.name in ("kafka", "neo4j"):
            pids[process.name] = pid
    return pids


def emit(messages: Sequence[Message], kafka: KafkaSettings, topic: str,
         rate: float | None) -> float:
    """Send every message (paced at ``rate`` per second when given); returns the seconds
    until the last one was acknowledged."""
    started = time.perf_counter()
    with Emitter(kafka, topic) as emitter:
        for index, (value, key) in enumerate(messages):
            if rate:
                ahead = started + index / rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            emitter.emit_encoded(value, key)
    return time.perf_counter() - started


def run_once(messages: Sequence[Message], namespaces: Sequence[str], settings: CommonSettings,
             *, rate: float | None = None, log: Log = print) -> RunResult:
    """One end-to-end run (see the module docstring)."""
    from core.neo4j_driver import driver as neo4j_driver
    from lineage.bench.neo4j_io import delete_namespace
    from sinks.graph import migrate

    with neo4j_driver(settings.neo4j) as driver:
        migrate(driver, settings.neo4j.database)
        for namespace in namespaces:
            delete_namespace(driver, namespace, settings.neo4j.database)
    with tempfile.TemporaryDirectory(prefix="lineage-bench-e2e-") as workdir:
        pipeline = PipelineUnderTest(settings, Path(workdir))
        try:
            pipeline.start()
            before = scrape_histogram(pipeline.metrics_url, FRESHNESS)
            own = resource.getrusage(resource.RUSAGE_SELF)
            pids = {**stack_pids(settings), **{f"lineage {n}": c.pid
                                               for n, c in pipeline.children.items()}}
            with ResourceMonitor(pids) as monitor:
                started = time.perf_counter()
                emit_seconds = emit(messages, pipeline.kafka, pipeline.raw, rate)
                log(f"    emitted {len(messages)} events in {emit_seconds:.1f}s")
                finished, changes = pipeline.wait_committed(log)
            after = resource.getrusage(resource.RUSAGE_SELF)
            freshness = bucket_difference(scrape_histogram(pipeline.metrics_url, FRESHNESS),
                                          before)
            statements = scrape_sums(pipeline.metrics_url, STATEMENTS, "kind")
            dead = message_count(pipeline.kafka, pipeline.dlq)
        finally:
            pipeline.stop()
    usage = monitor.report()
    usage["emitter (harness)"] = {
        "cpu_seconds": round(after.ru_utime + after.ru_stime - own.ru_utime - own.ru_stime, 2),
        "peak_rss_mb": round(after.ru_maxrss / 1024, 1)}
    return RunResult("fixed" if rate else "max", rate, len(messages), changes, dead,
                     round(finished - started, 3), round(emit_seconds, 3),
                     histogram_quantile(freshness, 0.5), histogram_quantile(freshness, 0.99),
                     usage, statements)
