"""``lineage bench query``: p50/p99 latency of lineage questions on a big synthetic graph.

A graph of (by default) 100k datasets, 50k jobs and 1M runs (the *graph* shape of
:mod:`lineage.bench.workload`) is loaded once through the pipeline's own change records
(events -> ``process()`` -> ``sinks.graph.write_batch``) and reused by later runs (a
``:LineageBenchmark`` marker node records the shape; ``--reload`` wipes and loads it again).
Then p50/p99 latency of three analyst questions, each asked about many sampled datasets or
fields:

- ``upstream`` (and the equivalent forms ``upstream_bfs``, ``upstream_shortest``): the datasets
  up to 5 dataset hops upstream of a dataset; ``upstream_as_of`` (and ``upstream_as_of_qpp``)
  asks it as of ``$asOf`` (now), through the pairs valid then (issue #13), and
  ``recipe_upstream`` / ``recipe_upstream_ever`` are the cookbook's recipes for it
  (``lineage/queries.py``: the tree of jobs and datasets, as of ``$asOf`` / ever);
- ``impact``: every dataset and job downstream of a dataset, with its distance;
- ``columns``: every column upstream of a column (column lineage), with its distance.

The query texts live in :data:`QUERIES`; the ``recipe_*`` ones are the cookbook's own
(``lineage/queries.py``).

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

>>> from lineage.bench.workload import GraphShape, plan_graph
>>> plan = plan_graph(GraphShape(datasets=40, jobs=12, runs=30, layers=3))
>>> [sorted(p) for p in query_targets(plan, "columns", 1)]
[['dataset', 'name', 'ns']]
>>> Latency("upstream", [1.0, 2.0, 3.0], [4, 4, 4]).p50
2.0
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from neo4j import Driver

from lineage import queries
from lineage.bench.measure import percentile
from lineage.bench.neo4j_io import MARKER_LABEL, connect, delete_namespace, write_records
from lineage.bench.processor import pipeline_changes
from lineage.bench.workload import (
    QUERY_NAMESPACE,
    GraphPlan,
    column_names,
    graph_events,
)
from schemas.codec import ChangeRecord
from sinks import graph
from sinks.settings import SinkSettings

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
    # The same question as of a time (issue #13): a step is taken only when one of the pair's
    # validity intervals (validFrom[i] <= $asOf < validTo[i], sinks/timeline.py) holds $asOf.
    "upstream_as_of": (
        "MATCH p = (up:Dataset)-[:INPUT_TO|OUTPUT_TO*1..10]->(d:Dataset {namespace: $ns, "
        "name: $name}) WHERE all(r IN relationships(p) WHERE "
        "any(i IN range(0, size(coalesce(r.validFrom, [])) - 1) "
        "WHERE r.validFrom[i] <= $asOf < r.validTo[i])) "
        "RETURN DISTINCT up.namespace AS namespace, up.name AS name"),
    # The same, with the predicate inside a quantified path pattern: Neo4j 5.26 plans it as a
    # pruning, breadth-first VarLengthExpand with the predicate on each step, as upstream_bfs,
    # where the bound path p of upstream_as_of makes it enumerate the paths and filter them.
    "upstream_as_of_qpp": (
        "MATCH (up:Dataset) (()-[r:INPUT_TO|OUTPUT_TO WHERE "
        "any(i IN range(0, size(coalesce(r.validFrom, [])) - 1) "
        "WHERE r.validFrom[i] <= $asOf < r.validTo[i])]->()){1,10} "
        "(d:Dataset {namespace: $ns, name: $name}) "
        "RETURN DISTINCT up.namespace AS namespace, up.name AS name"),
    # The cookbook's recipes (lineage/queries.py) for the question: the tree (jobs and datasets
    # with their hop and via) as of $asOf, and ever (every pair, unfiltered).
    "recipe_upstream": queries.DATASET_UPSTREAM,
    "recipe_upstream_ever": queries.DATASET_UPSTREAM_EVER,
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
DEFAULT_QUERIES = ("upstream", "upstream_bfs", "upstream_shortest", "upstream_as_of",
                   "recipe_upstream", "impact", "columns")

#: The hops of the cookbook recipes' ``$hops``: 5 dataset hops, as the other upstream forms.
RECIPE_HOPS = 5


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


def pipeline_records(events: Iterable[dict[str, Any]], *, retention_days: float = 2,
                     stats: Counter[str] | None = None) -> Iterator[ChangeRecord]:
    """The change records the processor sends for ``events`` (state in a dict, as a worker).

    State entries whose last time is ``retention_days`` behind the newest event are expired
    from time to time, as the worker does, so that the state stays small on long workloads
    (see :func:`lineage.bench.processor.pipeline_changes`).
    """
    values = (json.dumps(event, separators=(",", ":")).encode() for event in events)
    for change in pipeline_changes(values, retention_days=retention_days, stats=stats):
        yield change.record(0)


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
                  seed: int = 7, as_of: datetime | None = None) -> list[dict[str, Any]]:
    """Deterministic parameters for ``samples`` runs of query ``name``.

    ``upstream*`` ask about datasets some job writes (a source has no upstream), ``impact``
    about any dataset, ``columns`` about a column of a written dataset (those carry lineage).
    The cookbook's ``recipe_*`` take ``$namespace`` and ``$hops`` (:data:`RECIPE_HOPS`), and
    every query that reads ``$asOf`` gets ``as_of`` (default: now, once for all samples).
    """
    # Every upstream form (the recipes too) asks about the same datasets, so they compare.
    family = name.removeprefix("recipe_").split("_")[0]
    rng = random.Random(f"{seed}|{family}")  # noqa: S311
    text = QUERIES.get(name, "")
    when = {"asOf": as_of or datetime.now(UTC)} if "$asOf" in text else {}
    outputs = plan.outputs()
    params: list[dict[str, Any]] = []
    for _ in range(samples):
        if name == "impact":
            dataset = plan.datasets[rng.randrange(len(plan.datasets))]
        else:
            dataset = plan.datasets[rng.choice(outputs)]
        if name == "columns":
            column = rng.choice(column_names(dataset[0], dataset[2]))
            params.append({"ns": namespace, "dataset": dataset[0], "name": column})
        elif name.startswith("recipe_"):
            params.append({"namespace": namespace, "name": dataset[0], "hops": RECIPE_HOPS,
                           **when})
        else:
            params.append({"ns": namespace, "name": dataset[0], **when})
    return params


def time_query(driver: Driver, name: str, params: Sequence[dict[str, Any]], *,
               warmup: Sequence[dict[str, Any]] = (), database: str | None = None,
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


def profile_query(driver: Driver, name: str, params: dict[str, Any],
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
