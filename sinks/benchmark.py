"""``lineage bench sink`` and ``lineage bench query``: the Neo4j side of the pipeline, measured.

**Sink throughput.** Change records made by the real processor pipeline
(:func:`stream_processor.pipeline.process` over a :func:`producers.synthetic.synthetic_events`
workload in a namespace of its own) are written to Neo4j by the sink's own code path:
:func:`sinks.graph.row` for each record, records grouped by kind in batches of the sink's batch
size, each batch one ``execute_write`` transaction of :func:`sinks.graph.write_batch`. In-process
the records are already decoded; ``--kafka`` publishes them (Avro, as the processor does) to a
fresh changes topic and times a real ``lineage sink`` subprocess until it has committed every
offset.

**Query latency.** A synthetic graph of (by default) 100k datasets, 50k jobs and 1M runs is
loaded once through the pipeline's own change records (events -> ``process()`` ->
``sinks.graph.write_batch``) and reused by later runs (a ``:LineageBenchmark`` marker node records
the shape; ``--reload`` wipes and loads it again). Then p50/p99 latency of three analyst
questions, each asked about many sampled datasets or fields:

- ``upstream`` (and the equivalent forms ``upstream_bfs``, ``upstream_shortest``): the datasets
  up to 5 dataset hops upstream of a dataset;
- ``impact``: every dataset and job downstream of a dataset, with its distance;
- ``columns``: every column upstream of a column (column lineage), with its distance.

The query texts live in :data:`QUERIES`; they should be unified with the analysts' cookbook
(``lineage/queries.py``) once both exist.

Run them against a stack of their own, never one that tests or users share (they write
thousands of nodes and time everything)::

    $ export LINEAGE_STATE_DIR=/tmp/bench-stack LINEAGE_STACK__KAFKA_PORT=29092 \\
        LINEAGE_STACK__KAFKA_CONTROLLER_PORT=29093 LINEAGE_STACK__BOLT_PORT=27687 \\
        LINEAGE_STACK__HTTP_PORT=27474 LINEAGE_STACK__NEO4J_HEAP=4g \\
        LINEAGE_STACK__NEO4J_PAGECACHE=4g
    $ lineage stack up
    $ lineage bench sink --events 10000              # in-process write path
    $ lineage bench sink --events 10000 --kafka      # changes topic -> `lineage sink`
    $ lineage bench query                            # loads the graph the first time (long)
    $ lineage bench query --query upstream --samples 500
    $ lineage bench query --reload --load-only       # wipe and load it again
    $ lineage stack down

The pure parts work without any service:

>>> percentile([1.0, 2.0, 3.0, 4.0], 50)
2.5
>>> plan = plan_graph(GraphShape(datasets=40, jobs=12, runs=30, layers=3))
>>> len(plan.datasets), len(plan.jobs), sum(job.runs for job in plan.jobs)
(40, 12, 30)
"""

from __future__ import annotations

import json
import math
import os
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from neo4j import Driver, GraphDatabase

from core.topics import CommitWindow, commit_window
from producers.synthetic import PRODUCER, RUN_SCHEMA_URL, encode_events, synthetic_events
from schemas.codec import ChangeRecord, decode, encode
from sinks import graph
from sinks.settings import SinkSettings
from stream_processor.pipeline import process
from stream_processor.state import Plan, stale_keys

Log = Callable[[str], None]

#: The analysts' questions, as timed by ``lineage bench query`` (see the module docstring).
#: ``upstream`` is the issue's shape (5 dataset hops = 10 relationships; the pattern can only
#: alternate Dataset -> Job -> Dataset). It binds the path, so Neo4j enumerates every path.
#: ``upstream_bfs`` is the same question without the path: with only the end nodes used and
#: DISTINCT, Neo4j plans a pruning, breadth-first, visit-once var-length expand, which bounds
#: the work by the nodes reached rather than by the paths (a lineage with many diamonds has
#: exponentially many paths to the same ancestors). ``upstream_shortest`` answers it with the
#: distance in dataset hops. ``impact`` and ``columns`` use ``ANY SHORTEST``: one breadth-first
#: search that yields each reachable node once with its shortest distance (Neo4j 5.21+), where
#: enumerating the paths of an unbounded ``*`` would grow exponentially with the DAG's depth.
QUERIES: dict[str, str] = {
    "upstream": (
        "MATCH p=(up:Dataset)-[:INPUT_TO|OUTPUT_TO*1..10]->(d:Dataset {namespace: $ns, "
        "name: $name}) WHERE length(p) <= 10 RETURN DISTINCT up.namespace, up.name"),
    "upstream_bfs": (
        "MATCH (up:Dataset)-[:INPUT_TO|OUTPUT_TO*1..10]->(d:Dataset {namespace: $ns, name: $name})"
        " RETURN DISTINCT up.namespace AS namespace, up.name AS name"),
    "upstream_shortest": (
        "MATCH p = ANY SHORTEST (up:Dataset)-[:INPUT_TO|OUTPUT_TO]->{1,10}"
        "(d:Dataset {namespace: $ns, name: $name}) "
        "RETURN up.namespace AS namespace, up.name AS name, length(p) / 2 AS hops"),
    "impact": (
        "MATCH p = ANY SHORTEST (d:Dataset {namespace: $ns, name: $name})"
        "-[:INPUT_TO|OUTPUT_TO]->+(x) "
        "RETURN labels(x)[0] AS kind, x.namespace AS namespace, x.name AS name, "
        "length(p) AS distance"),
    "columns": (
        "MATCH p = ANY SHORTEST (src:Field)-[:FEEDS]->+(f:Field {namespace: $ns, "
        "dataset: $dataset, name: $name}) "
        "RETURN src.namespace AS namespace, src.dataset AS dataset, src.name AS name, "
        "length(p) AS distance"),
}
DEFAULT_QUERIES = ("upstream", "upstream_bfs", "upstream_shortest", "impact", "columns")
QUERY_NAMESPACE = "bench://query-graph"
MARKER_LABEL = "LineageBenchmark"


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, interpolated linearly between ranks.

    The same definition as numpy's default:

    >>> percentile([10.0, 20.0, 30.0], 99), percentile([5.0], 50)
    (29.8, 5.0)
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def connect(settings: SinkSettings) -> Driver:
    """A driver for the benchmark (server notifications off)."""
    # Server notifications (e.g. "label does not exist" before the first load) are noise here.
    return GraphDatabase.driver(settings.neo4j.uri, auth=settings.neo4j.auth(),
                                notifications_min_severity="OFF")


def _every(seconds: float) -> Callable[[], bool]:
    """A clock that says yes at most once every ``seconds`` (for progress lines)."""
    last = [time.monotonic()]

    def due() -> bool:
        now = time.monotonic()
        if now - last[0] >= seconds:
            last[0] = now
            return True
        return False

    return due


# ---------------------------------------------------------------------------------------------
# Sink throughput


@dataclass(frozen=True)
class SinkWorkload:
    """Change records from the processor pipeline, Avro-encoded as they travel on Kafka."""

    namespace: str
    events: int
    messages: list[tuple[bytes, bytes]]

    @property
    def records(self) -> int:
        return len(self.messages)

    def kinds(self) -> Counter[str]:
        return Counter(decode(value)["payload"][0] for _key, value in self.messages)


@dataclass(frozen=True)
class SinkResult:
    """What one sink benchmark run measured."""

    records: int
    events: int
    seconds: float
    row_seconds: float = 0.0
    batches: int = 0
    wall_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Change records per second."""
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def event_rate(self) -> float:
        """The raw events per second these records stand for."""
        return self.events / self.seconds if self.seconds else 0.0


def sink_workload(events: int, *, runs_per_job: int = 2, seed: int = 1,
                  namespace: str | None = None) -> SinkWorkload:
    """About ``events`` synthetic events run through ``process()``; their records, encoded.

    The namespace is fresh unless given, so every run writes new nodes (the cold, all-create
    case) and never touches anyone else's.
    """
    namespace = namespace or f"bench://sink-{uuid.uuid4().hex[:8]}"
    jobs = max(1, events // (2 * runs_per_job))  # START + COMPLETE per run
    raw = encode_events(synthetic_events(jobs=jobs, runs_per_job=runs_per_job, seed=seed,
                                         namespace=namespace))
    state: dict[str, list[int]] = {}
    messages: list[tuple[bytes, bytes]] = []
    for _key, value in raw:
        outcome = process(value, Plan(state), ingested_at=0)
        messages.extend((change.key.encode(), encode(change.record(0)))
                        for change in outcome.changes)
        outcome.plan.commit()
    return SinkWorkload(namespace, len(raw), messages)


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


def bench_sink_in_process(workload: SinkWorkload, settings: SinkSettings,
                          batch_size: int | None = None) -> SinkResult:
    """Records already decoded, straight into Neo4j through the sink's write path."""
    records = [decode(value) for _key, value in workload.messages]
    driver = connect(settings)
    try:
        graph.migrate(driver, settings.neo4j.database)
        started = time.perf_counter()
        count, batches, row_seconds = write_records(
            driver, records, batch_size=batch_size or settings.sink.batch_size,
            database=settings.neo4j.database)
        seconds = time.perf_counter() - started
    finally:
        driver.close()
    return SinkResult(count, workload.events, seconds, row_seconds, batches, seconds)


def bench_sink_kafka(workload: SinkWorkload, settings: SinkSettings, *,
                     batch_size: int | None = None, log: Log = print) -> SinkResult:
    """Publish the records to a fresh changes topic; time one ``lineage sink`` until committed.

    ``seconds`` runs from the sink's first offset commit to its last (start-up, schema check and
    the group join are not counted; the first batch is then not counted either);
    ``wall_seconds`` from starting the subprocess to the last commit.
    """
    from confluent_kafka import Consumer, Producer, TopicPartition

    from core import topics
    from core.kafka_config import admin_client, consumer_config, producer_config

    tag = uuid.uuid4().hex[:8]
    topic, dlq, group = f"bench-changes-{tag}", f"bench-changes-dlq-{tag}", f"bench-sink-{tag}"
    kafka = settings.kafka
    topics.ensure_topics(kafka, {topic: kafka.changes_partitions, dlq: 1})
    producer = Producer(producer_config(kafka, **{
        "linger.ms": 20, "compression.type": "lz4", "message.max.bytes": 8_000_000}))
    for key, value in workload.messages:
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.5)
        producer.poll(0)
    producer.flush(120)
    log(f"published {workload.records} change records to {topic}; starting `lineage sink`")
    env = {**os.environ, "LINEAGE_KAFKA__CHANGES_TOPIC": topic,
           "LINEAGE_KAFKA__CHANGES_DLQ_TOPIC": dlq, "LINEAGE_SINK__GROUP_ID": group,
           "LINEAGE_SINK__METRICS_PORT": "0"}
    if batch_size:
        env["LINEAGE_SINK__BATCH_SIZE"] = str(batch_size)
    consumer = Consumer(consumer_config(kafka, group))
    # The sink's log goes to a file: a pipe nobody reads could fill up and stall the sink.
    with tempfile.TemporaryFile() as errors:
        launched = time.perf_counter()
        sink = subprocess.Popen([sys.executable, "-m", "lineage", "sink"], env=env,
                                stdout=subprocess.DEVNULL, stderr=errors)
        try:
            window = _wait_for_commits(consumer, topic, workload.records, sink, errors, log)
            dead = consumer.get_watermark_offsets(TopicPartition(dlq, 0), timeout=30)[1]
        finally:
            sink.terminate()
            sink.wait(60)
            consumer.close()
            admin_client(kafka).delete_topics([topic, dlq])
    if dead:
        log(f"warning: {dead} records went to the changes DLQ")
    records, seconds, from_start = window.timed(workload.records, launched)
    if from_start:
        log("the first commit covered every record: timed from the sink's start instead")
    return SinkResult(records, round(workload.events * records / max(1, workload.records)),
                      seconds, wall_seconds=window.last - launched)


def _wait_for_commits(consumer: Any, topic: str, records: int, sink: subprocess.Popen[bytes],
                      errors: IO[bytes], log: Log) -> CommitWindow:
    """The sink group's first and last commit on ``topic`` (see core.topics.commit_window)."""
    def check() -> None:
        if sink.poll() is not None:
            errors.seek(0)
            error = errors.read().decode(errors="replace")
            raise RuntimeError(f"the benchmark's sink exited early: {error[-2000:]}")

    return commit_window(consumer, topic, check,
                         lambda done: log(f"  sink committed {done}/{records} records"),
                         progress_seconds=5)


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


# ---------------------------------------------------------------------------------------------
# The query benchmark's graph


@dataclass(frozen=True)
class GraphShape:
    """How big the query benchmark's graph is, and how it is wired.

    Jobs sit in ``layers`` layers (a wide DAG: 50k jobs in 10 layers are 5k side by side); a job
    of layer k reads 2-5 datasets, one of layer k-1 and the others mostly from k-1, some from
    any earlier layer, and writes 1-2 datasets of its own. Datasets that no job writes are raw
    sources (layer 0). Runs are spread evenly over jobs. Each output has ``columns`` columns,
    each fed by 1-2 columns of the job's inputs.
    """

    datasets: int = 100_000
    jobs: int = 50_000
    runs: int = 1_000_000
    layers: int = 10
    columns: tuple[int, int] = (3, 8)
    seed: int = 1

    def as_dict(self) -> dict[str, int]:
        return {"datasets": self.datasets, "jobs": self.jobs, "runs": self.runs,
                "layers": self.layers, "columnsMin": self.columns[0],
                "columnsMax": self.columns[1], "seed": self.seed}


@dataclass(frozen=True)
class PlannedJob:
    """One job of the plan: dataset indexes it reads and writes, its layer and run count."""

    name: str
    layer: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    runs: int


@dataclass(frozen=True)
class GraphPlan:
    """The datasets (name, layer, columns) and jobs the events will describe."""

    shape: GraphShape
    datasets: list[tuple[str, int, int]]
    jobs: list[PlannedJob]
    layer_datasets: list[list[int]] = field(repr=False)

    def outputs(self) -> list[int]:
        """Indexes of the datasets some job writes (those with upstream lineage)."""
        return [o for job in self.jobs for o in job.outputs]


def plan_graph(shape: GraphShape) -> GraphPlan:
    """The deterministic wiring of the graph (see :class:`GraphShape`), without any event.

    Exactly ``shape.datasets`` datasets, ``shape.jobs`` jobs and ``shape.runs`` runs; at least
    one source dataset, so ``datasets`` must exceed ``jobs``.
    """
    if shape.datasets <= shape.jobs:
        raise ValueError("datasets must exceed jobs (each job writes at least one dataset)")
    if shape.layers < 1 or shape.jobs < 1:
        raise ValueError("at least one layer and one job")
    rng = random.Random(f"lineage-bench-graph|{shape.seed}")  # noqa: S311
    # Every job writes one dataset; as many as leave a fifth (at least one) for sources write two.
    sources_min = max(1, shape.datasets // 5)
    doubles = set(rng.sample(range(shape.jobs),
                             max(0, min(shape.jobs, shape.datasets - shape.jobs - sources_min))))
    sources = shape.datasets - shape.jobs - len(doubles)
    datasets: list[tuple[str, int, int]] = []
    layer_datasets: list[list[int]] = [[] for _ in range(shape.layers + 1)]
    low, high = shape.columns
    for s in range(sources):
        layer_datasets[0].append(len(datasets))
        datasets.append((f"raw.source_{s}", 0, rng.randint(low, high)))
    wiring: list[tuple[int, set[int], list[int]]] = []
    per_layer = math.ceil(shape.jobs / shape.layers)
    base_runs, extra_runs = divmod(shape.runs, shape.jobs)
    for j in range(shape.jobs):
        layer = j // per_layer + 1
        wanted = rng.randint(2, 5)
        chosen = {rng.choice(layer_datasets[layer - 1])}
        for _ in range(wanted * 3):  # a few tries; small early layers may offer fewer
            if len(chosen) >= wanted:
                break
            from_layer = layer - 1 if layer == 1 or rng.random() < 0.6 else rng.randrange(layer)
            chosen.add(rng.choice(layer_datasets[from_layer]))
        outputs = []
        for o in range(2 if j in doubles else 1):
            outputs.append(len(datasets))
            layer_datasets[layer].append(len(datasets))
            datasets.append((f"mart.l{layer}.job{j}_out{o}", layer, rng.randint(low, high)))
        wiring.append((layer, chosen, outputs))
    # A source nobody reads would be in no event: give each such one a reader in layer 1.
    unread = set(layer_datasets[0]).difference(*(inputs for _, inputs, _ in wiring))
    first_layer = [w for w in wiring if w[0] == 1]
    for source in sorted(unread):
        reader = rng.choice(first_layer)
        for _ in range(20):  # prefer a job with room left among its 2-5 inputs
            if len(reader[1]) < 5:
                break
            reader = rng.choice(first_layer)
        reader[1].add(source)
    jobs = [PlannedJob(f"etl.l{layer}.job{j}", layer, tuple(sorted(inputs)), tuple(outputs),
                       base_runs + (j < extra_runs))
            for j, (layer, inputs, outputs) in enumerate(wiring)]
    return GraphPlan(shape, datasets, jobs, layer_datasets)


def column_names(dataset: str, columns: int) -> list[str]:
    """The column names of a dataset of the plan."""
    short = dataset.rsplit(".", 1)[-1]
    return [f"{short}_c{i}" for i in range(columns)]


def _facet(spec: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"https://openlineage.io/spec/facets/{spec}",
            **body}


START_TIME = datetime(2024, 1, 1, tzinfo=UTC)
RUN_TIME = timedelta(minutes=3)


def graph_events(plan: GraphPlan, namespace: str = QUERY_NAMESPACE) -> Iterator[dict[str, Any]]:
    """The plan's runs as OpenLineage events, round by round (a day each), jobs in layer order.

    Every run emits START (inputs and outputs by name) and COMPLETE. A job's first run is the
    full one: its COMPLETE carries the outputs' schema and column lineage (so the graph gets
    fields, dataset versions and FEEDS). Later runs share that content and are what a scheduler
    repeats all day: START names the datasets, COMPLETE only ends the run. Each run has a
    scheduler parent run, one per layer and round.
    """
    # Run ids depend on the namespace: the Run key is the run id alone, so two workloads with
    # the same ids would share (and their clean-ups delete) each other's runs.
    rng = random.Random(f"lineage-bench-events|{plan.shape.seed}|{namespace}")  # noqa: S311
    rounds = max((job.runs for job in plan.jobs), default=0)
    step = timedelta(days=1) / (len(plan.jobs) + 1)
    for r in range(rounds):
        clock = START_TIME + timedelta(days=r)
        parents: dict[int, str] = {}
        for job in plan.jobs:
            clock += step
            if job.runs <= r:
                continue
            if job.layer not in parents:
                parents[job.layer] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            yield from _run_events(plan, job, namespace, run_id, parents[job.layer],
                                   f"scheduler.layer_{job.layer}", clock,
                                   full=(r == 0), rng=rng)


def _run_events(plan: GraphPlan, job: PlannedJob, namespace: str, run_id: str, parent_id: str,
                parent_job: str, clock: datetime, *, full: bool,
                rng: random.Random) -> Iterator[dict[str, Any]]:
    parent = _facet("1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet", {
        "run": {"runId": parent_id}, "job": {"namespace": namespace, "name": parent_job}})
    names = [plan.datasets[i][0] for i in job.inputs]
    outs = [plan.datasets[i][0] for i in job.outputs]
    base: dict[str, Any] = {
        "run": {"runId": run_id, "facets": {"parent": parent}},
        "job": {"namespace": namespace, "name": job.name, "facets": {
            "sql": _facet("1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", {
                # Synthetic text for the sql facet; never executed anywhere.
                "query": f"INSERT INTO {outs[0]} SELECT * FROM {names[0]}"})}},  # noqa: S608
        "producer": PRODUCER, "schemaURL": RUN_SCHEMA_URL,
    }
    yield {**base, "eventType": "START", "eventTime": clock.isoformat(),
           "inputs": [{"namespace": namespace, "name": n} for n in names],
           "outputs": [{"namespace": namespace, "name": n} for n in outs]}
    end: dict[str, Any] = {**base, "eventType": "COMPLETE",
                           "eventTime": (clock + RUN_TIME).isoformat()}
    if full:
        end["inputs"] = [{"namespace": namespace, "name": n} for n in names]
        end["outputs"] = [_output(plan, job, namespace, o, rng) for o in job.outputs]
    yield end


def _output(plan: GraphPlan, job: PlannedJob, namespace: str, index: int,
            rng: random.Random) -> dict[str, Any]:
    name, _layer, columns = plan.datasets[index]
    sources = [(plan.datasets[i][0], column_names(plan.datasets[i][0], plan.datasets[i][2]))
               for i in job.inputs]
    fields = {}
    for column in column_names(name, columns):
        inputs = []
        for _ in range(rng.randint(1, 2)):
            source, source_columns = rng.choice(sources)
            inputs.append({"namespace": namespace, "name": source,
                           "field": rng.choice(source_columns),
                           "transformations": [{"type": "DIRECT", "subtype": rng.choice(
                               ("IDENTITY", "TRANSFORMATION", "AGGREGATION"))}]})
        fields[column] = {"inputFields": inputs}
    return {"namespace": namespace, "name": name, "facets": {
        "schema": _facet("1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet", {
            "fields": [{"name": c, "type": "string"} for c in column_names(name, columns)]}),
        "columnLineage": _facet(
            "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
            {"fields": fields}),
    }}


def pipeline_records(events: Iterable[dict[str, Any]], *, retention_days: float = 2,
                     stats: Counter[str] | None = None) -> Iterator[ChangeRecord]:
    """The change records the processor sends for ``events`` (state in a dict, as a worker).

    State entries whose last time is ``retention_days`` behind the newest event are expired
    from time to time, as the worker does, so that the state stays small on long workloads.
    """
    state: dict[str, list[int]] = {}
    retention = int(retention_days * 86_400_000_000)
    expire_every = 200_000
    newest = 0
    for n, event in enumerate(events, 1):
        raw = json.dumps(event, separators=(",", ":")).encode()
        outcome = process(raw, Plan(state), ingested_at=0)
        if not outcome.accepted:
            raise RuntimeError(f"a generated event was refused: {outcome.dead_letters}")
        for change in outcome.changes:
            yield change.record(0)
        outcome.plan.commit()
        if stats is not None:
            stats["events"] += 1
            stats["records"] += len(outcome.changes)
        newest = max(newest, outcome.event_time or 0)
        if n % expire_every == 0:
            for key in stale_keys(list(state.items()), newest, retention):
                del state[key]


def graph_marker(driver: Driver, namespace: str = QUERY_NAMESPACE) -> dict[str, Any] | None:
    """The properties of the loaded graph's marker node, or None when there is none."""
    with driver.session() as session:
        found = session.run(f"MATCH (m:{MARKER_LABEL} {{namespace: $ns}}) RETURN m",
                            ns=namespace).single()
    return dict(found["m"]) if found else None


def graph_counts(driver: Driver, namespace: str = QUERY_NAMESPACE) -> dict[str, int]:
    """Datasets, jobs and runs of the benchmark graph, as Neo4j has them now."""
    with driver.session() as session:
        datasets = session.run("MATCH (d:Dataset {namespace: $ns}) RETURN count(d) AS n",
                               ns=namespace).single(strict=True)["n"]
        jobs = session.run("MATCH (j:Job {namespace: $ns}) WHERE NOT j.name STARTS WITH "
                           "'scheduler.' RETURN count(j) AS n", ns=namespace).single(
                               strict=True)["n"]
        runs = session.run("MATCH (j:Job {namespace: $ns}) WHERE NOT j.name STARTS WITH "
                           "'scheduler.' RETURN sum(COUNT { (j)-[:HAS_RUN]->() }) AS n",
                           ns=namespace).single(strict=True)["n"]
    return {"datasets": datasets, "jobs": jobs, "runs": runs or 0}


def load_graph(plan: GraphPlan, settings: SinkSettings, *, namespace: str = QUERY_NAMESPACE,
               reload: bool = False, batch_size: int | None = None,
               log: Log = print) -> tuple[bool, float]:
    """Make sure the plan's graph is in Neo4j; returns (loaded now, seconds spent loading).

    A marker node with the same shape means it is there already. Otherwise the events are
    generated and processed in one thread while another writes the records (the driver waits
    on the socket without the GIL), with a progress line every 10 seconds. An interrupted load
    is simply run again: every write is an idempotent merge, and the marker is written last.
    """
    driver = connect(settings)
    try:
        graph.migrate(driver, settings.neo4j.database)
        marker = graph_marker(driver, namespace)
        wanted = plan.shape.as_dict()
        if marker and not reload and all(marker.get(k) == v for k, v in wanted.items()):
            return False, 0.0
        if reload or marker:
            log(f"deleting the old benchmark graph in {namespace}")
            delete_namespace(driver, namespace, settings.neo4j.database)
        size = batch_size or settings.sink.batch_size
        total_events = 2 * plan.shape.runs
        stats: Counter[str] = Counter()
        batches: queue.Queue[list[ChangeRecord] | BaseException | None] = queue.Queue(8)

        def produce() -> None:
            try:
                batch: list[ChangeRecord] = []
                for record in pipeline_records(graph_events(plan, namespace), stats=stats):
                    batch.append(record)
                    if len(batch) >= size:
                        batches.put(batch)
                        batch = []
                if batch:
                    batches.put(batch)
                batches.put(None)
            except BaseException as exc:  # handed to the writer, which raises it
                batches.put(exc)

        producer = threading.Thread(target=produce, name="bench-events", daemon=True)
        started = time.perf_counter()
        producer.start()
        written = 0
        progress = _every(10)
        log(f"loading {plan.shape.datasets:,} datasets, {plan.shape.jobs:,} jobs, "
            f"{plan.shape.runs:,} runs ({total_events:,} events) into {namespace}")
        while True:
            item = batches.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            written += write_records(driver, item, batch_size=size,
                                     database=settings.neo4j.database)[0]
            if progress():
                elapsed = time.perf_counter() - started
                done = stats["events"] / total_events
                eta = elapsed / done - elapsed if done else 0
                log(f"  {stats['events']:,}/{total_events:,} events ({done:.0%}), "
                    f"{written:,} records written, {written / elapsed:,.0f} records/s, "
                    f"{elapsed / 60:.1f} min, about {eta / 60:.0f} min to go")
        producer.join()
        seconds = time.perf_counter() - started
        with driver.session(database=settings.neo4j.database) as session:
            session.run(f"MERGE (m:{MARKER_LABEL} {{namespace: $ns}}) SET m += $shape, "
                        "m.records = $records, m.events = $events, m.loadSeconds = $seconds, "
                        "m.loadedAt = datetime()", ns=namespace, shape=wanted,
                        records=written, events=stats["events"], seconds=seconds).consume()
        log(f"loaded {stats['events']:,} events as {written:,} change records in "
            f"{seconds / 60:.1f} min ({written / seconds:,.0f} records/s)")
        return True, seconds
    finally:
        driver.close()


# ---------------------------------------------------------------------------------------------
# Query latency


@dataclass(frozen=True)
class Latency:
    """Latencies (milliseconds, client side: send, run, fetch every row) of one query."""

    name: str
    millis: list[float]
    rows: list[int]

    @property
    def p50(self) -> float:
        return percentile(self.millis, 50)

    @property
    def p99(self) -> float:
        return percentile(self.millis, 99)

    @property
    def mean(self) -> float:
        return sum(self.millis) / len(self.millis)

    @property
    def mean_rows(self) -> float:
        return sum(self.rows) / len(self.rows) if self.rows else 0.0


def query_targets(plan: GraphPlan, name: str, samples: int, *, namespace: str = QUERY_NAMESPACE,
                  seed: int = 7) -> list[dict[str, str]]:
    """Deterministic parameters for ``samples`` runs of query ``name``.

    ``upstream*`` ask about datasets some job writes (a source has no upstream), ``impact``
    about any dataset, ``columns`` about a column of a written dataset (those carry lineage).
    """
    # The three upstream forms ask about the same datasets, so they can be compared.
    rng = random.Random(f"{seed}|{name.split('_')[0]}")  # noqa: S311
    outputs = plan.outputs()
    params = []
    for _ in range(samples):
        if name == "impact":
            dataset = plan.datasets[rng.randrange(len(plan.datasets))]
        else:
            dataset = plan.datasets[rng.choice(outputs)]
        if name == "columns":
            column = rng.choice(column_names(dataset[0], dataset[2]))
            params.append({"ns": namespace, "dataset": dataset[0], "name": column})
        else:
            params.append({"ns": namespace, "name": dataset[0]})
    return params


def time_query(driver: Driver, name: str, params: Sequence[dict[str, str]], *,
               warmup: Sequence[dict[str, str]] = (), database: str | None = None,
               query: str | None = None) -> Latency:
    """Run query ``name`` once per parameter set, after untimed runs with ``warmup``'s.

    The warm-up parameters should be other ones than the timed ones, so that the timed runs
    do not find their own answers in the page cache because of the warm-up.
    """
    text = query or QUERIES[name]
    millis: list[float] = []
    rows: list[int] = []
    with driver.session(database=database, default_access_mode="READ") as session:
        for p in warmup:
            session.run(text, p).consume()
        for p in params:
            started = time.perf_counter()
            count = len(session.run(text, p).values())
            millis.append((time.perf_counter() - started) * 1000)
            rows.append(count)
    return Latency(name, millis, rows)


def profile_query(driver: Driver, name: str, params: dict[str, str],
                  database: str | None = None) -> tuple[int, int, str]:
    """(rows, database hits, operator tree) of one PROFILEd run of query ``name``."""
    with driver.session(database=database) as session:
        result = session.run(f"PROFILE {QUERIES[name]}", params)
        count = len(result.values())
        summary = result.consume()
    plan = summary.profile or {}
    lines: list[str] = []

    def walk(node: dict[str, Any], depth: int) -> int:
        hits = int(node.get("dbHits", 0))
        lines.append(f"{'  ' * depth}{node.get('operatorType', '?')} rows={node.get('rows')} "
                     f"dbHits={node.get('dbHits')}")
        return hits + sum(walk(child, depth + 1) for child in node.get("children", []))

    hits = walk(plan, 0) if plan else 0
    return count, hits, "\n".join(lines)


def bench_queries(plan: GraphPlan, settings: SinkSettings, names: Sequence[str], *,
                  samples: int = 200, warmup: int = 20, namespace: str = QUERY_NAMESPACE,
                  log: Log = print) -> list[Latency]:
    """Time each query of ``names`` over ``samples`` sampled datasets or fields."""
    results = []
    driver = connect(settings)
    try:
        for name in names:
            params = query_targets(plan, name, samples + warmup, namespace=namespace)
            log(f"timing {name} ({samples} samples after {warmup} warm-up runs)")
            results.append(time_query(driver, name, params[warmup:], warmup=params[:warmup],
                                      database=settings.neo4j.database))
    finally:
        driver.close()
    return results

