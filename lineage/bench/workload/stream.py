"""The *stream* shape: a scheduler's traffic with noise, for ``lineage bench generate`` and the
end-to-end benchmark.

:func:`generate` yields NDJSON lines (compact JSON, one event per ``\\n``-terminated line) shaped
like a scheduler's traffic:

- **A DAG of jobs.** ``jobs`` jobs in ``min(max_depth, jobs)`` layers, none of them empty, so the
  deepest chain of jobs really is that deep: a job reads 1-3 datasets, one of them written by a
  job of the layer just above, the others by any earlier layer or raw sources, and writes 1-2
  datasets of its own, each with a 10-40 column ``schema`` and a ``columnLineage`` facet (every
  column fed by 1-2 input columns). Jobs and datasets are spread over ``bench://ns-NNN``
  namespaces, and jobs read across them.
- **Runs.** Schedule ticks repeat until ``events`` lines are out: per tick and namespace, an
  orchestrator run (job ``dag``: START, COMPLETE) is the ``parent`` and root of the runs of the
  namespace's jobs, which emit START, sometimes RUNNING, then COMPLETE or FAIL; a job starts once
  its upstream jobs have ended. START and RUNNING name their datasets; COMPLETE and FAIL carry
  the schemas and the column lineage. ``eventTime`` comes from a simulated clock and strictly
  increases in generation order.
- **Noise**, each rate a share of all lines: exact byte copies of one of the last 64 events
  (``duplicate_rate``), lines written 1-50 positions after their eventTime order
  (``out_of_order_rate``) and invalid lines of seven kinds in rotation (``invalid_rate``, see
  :data:`INVALID_KINDS`). An invalid line is made from a copy of a line already written, so it
  never breaks the sequence of a real run.

Guarantees: exactly ``spec.events`` lines; the same spec gives the same bytes (seeded generators,
no wall clock, no set order); memory bounded whatever the number of events (a 64-line window, at
most 64 displaced lines in flight, one tick's schedule, and the DAG, whose encoded static parts
take about 3 KB per job). Keyed like the Kafka transport (:func:`producers.emitter.message_key`),
every event of a namespace's tick has its orchestrator job's key, ``run:<namespace>/dag``.

>>> import json
>>> lines = list(generate(WorkloadSpec(events=50, jobs=30, seed=3)))
>>> len(lines), all(line.endswith(b"\\n") for line in lines)
(50, True)
>>> json.loads(lines[0])["eventType"]
'START'
>>> generator = WorkloadGenerator(WorkloadSpec(events=2_000, jobs=30, max_depth=6))
>>> sum(1 for _ in generator.lines())
2000
>>> stats = generator.stats
>>> stats.events == stats.valid + stats.invalid, stats.depth, stats.namespace_names
(True, 6, ['bench://ns-000'])
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import msgspec
from cramjam import lz4

from lineage.bench.workload.events import (
    PRODUCER,
    RUN_SCHEMA_URL,
    column_lineage,
    dataset,
    facet,
    random_columns,
)
from lineage.bench.workload.events import run_id as new_run_id

__all__ = [
    "EVENT_TYPES",
    "INVALID_KINDS",
    "WorkloadGenerator",
    "WorkloadSpec",
    "WorkloadStats",
    "generate",
    "manifest_path",
    "write_workload",
]

EVENT_TYPES: Final = ("START", "RUNNING", "COMPLETE", "FAIL")
INVALID_KINDS: Final = (
    "not_json",  # the first half of a line
    "not_object",  # a JSON array holding an event
    "missing_run_id",  # no run.runId
    "non_uuid_run_id",  # an Airflow-style run id instead of a UUID
    "bad_event_time",  # an eventTime that is not a date-time
    "missing_producer",  # no producer
    "event_type_not_string",  # eventType as a number
)
ORCHESTRATOR_JOB: Final = "dag"
WINDOW: Final = 64
"""How many recent lines duplicates and invalid lines are copied from."""
MAX_DISPLACED: Final = 64
"""At most this many out-of-order lines wait for their turn at any time."""
MAX_DISPLACEMENT: Final = 50
PROGRESS_EVERY: Final = 100_000
GENERATOR: Final = "lineage.bench.workload"
"""The generator a manifest names: the package, whichever shape's module writes it."""
MAX_DEEP_DATASETS: Final = 20

_EPOCH: Final = datetime(2024, 1, 1, tzinfo=UTC)
_INTEGRATIONS: Final = (("SPARK", "JOB"), ("DBT", "MODEL"), ("AIRFLOW", "TASK"))
_ORCHESTRATOR_START, _ORCHESTRATOR_COMPLETE, _START, _RUNNING, _COMPLETE, _FAIL = range(6)
_ERROR: Final = msgspec.json.encode(facet(
    "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
    {"message": "task failed: the upstream data check did not pass",
     "programmingLanguage": "python"}))


@dataclass(frozen=True)
class WorkloadSpec:
    """What to generate (see the module docstring); ``events`` counts every line, noise included.

    ``namespaces`` defaults to one per 100 jobs, between 1 and 50; ``running_rate`` is the share
    of job runs that also report RUNNING.
    """

    events: int
    jobs: int = 1000
    namespaces: int | None = None
    max_depth: int = 20
    seed: int = 1
    duplicate_rate: float = 0.05
    out_of_order_rate: float = 0.02
    invalid_rate: float = 0.01
    fail_rate: float = 0.05
    running_rate: float = 0.3

    def __post_init__(self) -> None:
        if self.events < 1:
            raise ValueError(f"events must be at least 1 (the number of lines), got {self.events}")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")
        if self.namespaces is not None and not 1 <= self.namespaces <= self.jobs:
            raise ValueError(f"namespaces must be between 1 and jobs ({self.jobs}) so that each "
                             f"has a job, got {self.namespaces}")
        if not 1 <= self.max_depth <= 20:
            raise ValueError(f"max_depth must be between 1 and 20, got {self.max_depth}")
        for name in ("duplicate_rate", "out_of_order_rate", "invalid_rate", "fail_rate"):
            rate = getattr(self, name)
            if not 0 <= rate < 0.5:
                raise ValueError(f"{name} must be at least 0 and below 0.5, got {rate}")
        if not 0 <= self.running_rate <= 1:
            raise ValueError(f"running_rate must be between 0 and 1, got {self.running_rate}")
        noise = self.duplicate_rate + self.out_of_order_rate + self.invalid_rate
        if noise >= 1:
            raise ValueError("duplicate_rate + out_of_order_rate + invalid_rate must stay below "
                             f"1, got {noise}")

    @property
    def namespace_count(self) -> int:
        """The number of namespaces: ``namespaces``, or its default for ``jobs``."""
        if self.namespaces is not None:
            return self.namespaces
        return min(50, max(1, self.jobs // 100))


@dataclass
class WorkloadStats:
    """What a workload holds, counted while it was generated.

    ``valid`` lines include duplicates and out-of-order lines, as does ``by_type``. ``jobs``,
    ``datasets`` and ``namespaces`` describe the DAG (the orchestrator jobs not included);
    ``runs`` counts the runs whose START was written (orchestrator runs included); ``depth`` is
    the deepest chain of jobs that ran, and ``deep_datasets`` are ``<namespace>/<name>`` of up to
    20 datasets written by the deepest of them: the ones whose lineage is worth querying.
    ``bytes`` is the size of the lines, ``invalid_by_kind`` counts the invalid lines by
    :data:`INVALID_KINDS` and ``namespace_names`` lists the namespaces (to clean up after a run).
    """

    events: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    bytes: int = 0
    by_type: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_TYPES, 0))
    invalid_by_kind: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(INVALID_KINDS, 0))
    jobs: int = 0
    datasets: int = 0
    namespaces: int = 0
    depth: int = 0
    runs: int = 0
    deep_datasets: list[str] = field(default_factory=list)
    namespace_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The stats as JSON-ready builtins."""
        return asdict(self)


class _Dag:
    """The jobs and datasets, in a few flat lists: O(jobs) memory, nothing per event."""

    def __init__(self, spec: WorkloadSpec) -> None:
        self.seed = spec.seed
        rng = random.Random(f"{spec.seed}|dag")  # noqa: S311 - a benchmark, not cryptography
        count = spec.namespace_count
        self.namespaces = [f"bench://ns-{index:03d}" for index in range(count)]
        depth = min(spec.max_depth, spec.jobs)
        layer_sizes = [1] * depth
        for _ in range(spec.jobs - depth):
            layer_sizes[rng.randrange(depth)] += 1
        order = list(range(spec.jobs))
        rng.shuffle(order)
        self.job_ns = [0] * spec.jobs
        for position, job in enumerate(order):
            self.job_ns[job] = position % count  # round robin: no namespace without jobs

        raw = max(5, spec.jobs // 10)
        self.dataset_ns = [rng.randrange(count) for _ in range(raw)]
        self.dataset_name = [f"raw.source_{index:04d}" for index in range(raw)]
        self.writer = [-1] * raw
        self.inputs: list[tuple[int, ...]] = []
        self.outputs: list[tuple[int, ...]] = []
        self.upstream: list[tuple[int, ...]] = []
        self.depth: list[int] = []
        self.integration: list[int] = []
        job = 0
        above = range(0)
        for layer, size in enumerate(layer_sizes):
            # Jobs are numbered layer by layer, so earlier layers wrote exactly this prefix.
            written_above = len(self.dataset_name)
            for _ in range(size):
                if layer == 0:
                    inputs = rng.sample(range(raw), k=rng.randint(1, 3))
                else:
                    inputs = [rng.choice(self.outputs[rng.choice(above)])]
                    for _ in range(rng.randint(0, 2)):
                        candidate = rng.randrange(written_above)
                        if candidate not in inputs:
                            inputs.append(candidate)
                outputs = []
                for index in range(rng.randint(1, 2)):
                    outputs.append(len(self.dataset_name))
                    self.dataset_name.append(f"mart.job_{job:05d}_out{index}")
                    self.dataset_ns.append(self.job_ns[job])
                    self.writer.append(job)
                upstream = tuple(sorted({self.writer[d] for d in inputs if self.writer[d] >= 0}))
                self.inputs.append(tuple(inputs))
                self.outputs.append(tuple(outputs))
                self.upstream.append(upstream)
                self.depth.append(1 + max((self.depth[u] for u in upstream), default=0))
                self.integration.append(
                    rng.randrange(len(_INTEGRATIONS)) if rng.random() < 0.5 else -1)
                job += 1
            above = range(job - size, job)
        self._tails: list[tuple[bytes, bytes] | None] = [None] * spec.jobs

    def columns(self, ds: int) -> list[dict[str, str]]:
        """The schema of dataset ``ds``: the same for its writer and its readers, every time."""
        rng = random.Random(f"{self.seed}|columns|{ds}")  # noqa: S311
        return random_columns(rng, self.dataset_name[ds])

    def dataset_id(self, ds: int) -> str:
        return f"{self.namespaces[self.dataset_ns[ds]]}/{self.dataset_name[ds]}"

    def start_tail(self, job: int) -> bytes:
        """The encoded static rest of ``job``'s START and RUNNING events, after ``run``."""
        return self._encoded(job)[0]

    def end_tail(self, job: int) -> bytes:
        """The same for its COMPLETE and FAIL events, which carry schemas and column lineage."""
        return bytes(lz4.decompress_block(self._encoded(job)[1]))

    def _encoded(self, job: int) -> tuple[bytes, bytes]:
        # The end part is kept lz4-compressed (16 KB -> 2.3 KB on the default spec): decompressing
        # it is ~60 times cheaper than building it again, and whole it would take 16 KB a job.
        cached = self._tails[job]
        if cached is None:
            start, end = self._encode(job)
            cached = self._tails[job] = (start, bytes(lz4.compress_block(end)))
        return cached

    def _encode(self, job: int) -> tuple[bytes, bytes]:
        namespace = self.namespaces[self.job_ns[job]]
        inputs = [(self.namespaces[self.dataset_ns[d]], self.dataset_name[d], self.columns(d))
                  for d in self.inputs[job]]
        outputs = [(self.namespaces[self.dataset_ns[d]], self.dataset_name[d], self.columns(d))
                   for d in self.outputs[job]]
        # Synthetic text for the sql facet; never executed anywhere.
        query = (f"INSERT INTO {outputs[0][1]} SELECT * FROM "  # noqa: S608
                 + " JOIN ".join(f"{name} USING (id)" if index else name
                                 for index, (_, name, _) in enumerate(inputs)))
        job_facets = {"sql": facet("1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", {"query": query})}
        if self.integration[job] >= 0:
            integration, job_type = _INTEGRATIONS[self.integration[job]]
            job_facets["jobType"] = facet(
                "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
                {"processingType": "BATCH", "integration": integration, "jobType": job_type})
        job_part = {"namespace": namespace, "name": f"job_{job:05d}", "facets": job_facets}
        lineage_rng = random.Random(f"{self.seed}|lineage|{job}")  # noqa: S311
        start = {
            "job": job_part,
            "inputs": [{"namespace": ns, "name": name} for ns, name, _ in inputs],
            "outputs": [{"namespace": ns, "name": name} for ns, name, _ in outputs],
            "producer": PRODUCER, "schemaURL": RUN_SCHEMA_URL,
        }
        end = {
            "job": job_part,
            "inputs": [dataset(ns, name, columns) for ns, name, columns in inputs],
            "outputs": [dataset(ns, name, columns, column_lineage(lineage_rng, columns, inputs))
                        for ns, name, columns in outputs],
            "producer": PRODUCER, "schemaURL": RUN_SCHEMA_URL,
        }
        # Encoded as the tail of an object: the event's first keys are put in front per event.
        return b"," + msgspec.json.encode(start)[1:], b"," + msgspec.json.encode(end)[1:]


def _iso(ms: int) -> bytes:
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").encode()


def _run_id(rng: random.Random) -> bytes:
    return new_run_id(rng).encode()


class WorkloadGenerator:
    """One workload: :meth:`lines` yields it, :attr:`stats` counts what has been yielded.

    ``stats`` may be an object to fill (e.g. one the caller already holds).
    """

    def __init__(self, spec: WorkloadSpec, stats: WorkloadStats | None = None) -> None:
        self.spec = spec
        self._dag = _Dag(spec)
        self._stats = stats if stats is not None else WorkloadStats()
        self._stats.jobs = spec.jobs
        self._stats.datasets = len(self._dag.dataset_name)
        self._stats.namespaces = len(self._dag.namespaces)
        self._stats.namespace_names = list(self._dag.namespaces)
        self._ran = bytearray(spec.jobs)
        self._ends = [0] * spec.jobs  # when each job's run of the current tick ends
        self.max_displaced = 0
        """The most out-of-order lines ever waiting at once (at most :data:`MAX_DISPLACED`)."""
        # The orchestrator jobs' static parts, one per namespace.
        self._orchestrator_tails = [b"," + msgspec.json.encode({
            "job": {"namespace": namespace, "name": ORCHESTRATOR_JOB, "facets": {
                "jobType": facet("2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet", {
                    "processingType": "BATCH", "integration": "AIRFLOW", "jobType": "DAG"})}},
            "inputs": [], "outputs": [], "producer": PRODUCER, "schemaURL": RUN_SCHEMA_URL,
        })[1:] for namespace in self._dag.namespaces]

    @property
    def stats(self) -> WorkloadStats:
        """The counts so far (final once :meth:`lines` is exhausted)."""
        self._refresh_depth()
        return self._stats

    def lines(self) -> Iterator[bytes]:
        """The workload's lines, each ending in ``\\n``; call it once per generator."""
        spec, stats = self.spec, self._stats
        rng = random.Random(f"{spec.seed}|noise")  # noqa: S311
        # Displaced lines take slots of their own, so the other draws are scaled to the rest
        # for every rate to be a share of all lines.
        rest = 1 - spec.out_of_order_rate
        duplicate_below = spec.duplicate_rate / rest
        invalid_below = duplicate_below + spec.invalid_rate / rest
        displace = spec.out_of_order_rate / (1 - spec.duplicate_rate - spec.invalid_rate)
        recent: deque[tuple[bytes, str]] = deque(maxlen=WINDOW)
        displaced: list[tuple[int, int, bytes, str, int]] = []
        order = itertools.count()
        kinds = itertools.cycle(INVALID_KINDS)
        by_type, ran, source = stats.by_type, self._ran, self._events()
        written = 0
        while written < spec.events:
            if displaced and displaced[0][0] <= written:
                _, _, line, event_type, job = heapq.heappop(displaced)
                stats.out_of_order += 1
            else:
                draw = rng.random()
                if draw < invalid_below and recent:
                    original = recent[rng.randrange(len(recent))]
                    if draw < duplicate_below:
                        line = original[0]
                        stats.duplicates += 1
                        stats.valid += 1
                        by_type[original[1]] += 1
                    else:
                        kind = next(kinds)
                        line = _invalid(original[0], kind)
                        stats.invalid += 1
                        stats.invalid_by_kind[kind] += 1
                    stats.events += 1
                    stats.bytes += len(line)
                    written += 1
                    yield line
                    continue
                line, event_type, job = next(source)
                while (displace and len(displaced) < MAX_DISPLACED
                       and rng.random() < displace):
                    due = written + rng.randint(1, MAX_DISPLACEMENT)
                    heapq.heappush(displaced, (due, next(order), line, event_type, job))
                    self.max_displaced = max(self.max_displaced, len(displaced))
                    line, event_type, job = next(source)
            recent.append((line, event_type))
            stats.valid += 1
            by_type[event_type] += 1
            if event_type == "START":
                stats.runs += 1
            if job >= 0:
                ran[job] = 1
            stats.events += 1
            stats.bytes += len(line)
            written += 1
            yield line
        self._refresh_depth()

    def _events(self) -> Iterator[tuple[bytes, str, int]]:
        """(line, eventType, job or -1 for an orchestrator) of every real event, tick by tick."""
        rng = random.Random(f"{self.spec.seed}|runs")  # noqa: S311
        dag, orchestrator_tails = self._dag, self._orchestrator_tails
        tick, last = 0, -1
        while True:
            entries, tick_end = self._schedule(rng, tick)
            for when, _, kind, who, run_id, run_facets in entries:
                # Ties (same millisecond) are broken forward: eventTime strictly increases.
                last = when if when > last else last + 1
                time = _iso(last)
                if kind <= _ORCHESTRATOR_COMPLETE:
                    event_type = "START" if kind == _ORCHESTRATOR_START else "COMPLETE"
                    tail = orchestrator_tails[who]
                    job = -1
                else:
                    event_type = EVENT_TYPES[kind - _START]
                    tail = dag.start_tail(who) if kind <= _RUNNING else dag.end_tail(who)
                    job = who
                line = b"".join((b'{"eventType":"', event_type.encode(), b'","eventTime":"',
                                 time, b'","run":{"runId":"', run_id, b'","facets":{',
                                 run_facets, b"}}", tail, b"\n"))
                yield line, event_type, job
            tick = max(tick_end, last) + rng.randint(60_000, 600_000)

    def _schedule(self, rng: random.Random, tick: int) -> tuple[
            list[tuple[int, int, int, int, bytes, bytes]], int]:
        """One tick's events, in time order: (ms, order, kind, job or namespace, run id,
        encoded run facets), and when the tick ends."""
        dag, spec = self._dag, self.spec
        entries: list[tuple[int, int, int, int, bytes, bytes]] = []
        order = itertools.count()
        nominal = _iso(tick).decode()
        runs = [_run_id(rng) for _ in dag.namespaces]
        starts = [tick + rng.randint(0, 5_000) for _ in dag.namespaces]
        parents, nominal_facets = [], []
        for index, namespace in enumerate(dag.namespaces):
            orchestrator = {"namespace": namespace, "name": ORCHESTRATOR_JOB}
            run = {"runId": runs[index].decode()}
            parents.append(b'"parent":' + msgspec.json.encode(facet(
                "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
                {"run": run, "job": orchestrator, "root": {"run": run, "job": orchestrator}})))
            nominal_facets.append(b'"nominalTime":' + msgspec.json.encode(facet(
                "1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
                {"nominalStartTime": nominal})))
            entries.append((starts[index], next(order), _ORCHESTRATOR_START, index, runs[index],
                            nominal_facets[index]))
        failed = [parent + b',"errorMessage":' + _ERROR for parent in parents]
        ends = self._ends
        namespace_ends = list(starts)
        for job in range(spec.jobs):
            index = dag.job_ns[job]
            ready = starts[index]
            for upstream in dag.upstream[job]:
                ready = max(ready, ends[upstream])
            start = ready + rng.randint(1_000, 60_000)
            end = start + rng.randint(5_000, 600_000)
            ends[job] = end
            namespace_ends[index] = max(namespace_ends[index], end)
            run_id = _run_id(rng)
            entries.append((start, next(order), _START, job, run_id, parents[index]))
            if rng.random() < spec.running_rate:
                entries.append((rng.randint(start + 1, end - 1), next(order), _RUNNING, job,
                                run_id, parents[index]))
            if rng.random() < spec.fail_rate:
                entries.append((end, next(order), _FAIL, job, run_id, failed[index]))
            else:
                entries.append((end, next(order), _COMPLETE, job, run_id, parents[index]))
        tick_end = tick
        for index in range(len(dag.namespaces)):
            end = namespace_ends[index] + rng.randint(1_000, 5_000)
            tick_end = max(tick_end, end)
            entries.append((end, next(order), _ORCHESTRATOR_COMPLETE, index, runs[index],
                            nominal_facets[index]))
        entries.sort()
        return entries, tick_end

    def _refresh_depth(self) -> None:
        dag, stats = self._dag, self._stats
        ran = [job for job in range(self.spec.jobs) if self._ran[job]]
        stats.depth = max((dag.depth[job] for job in ran), default=0)
        ran.sort(key=lambda job: (-dag.depth[job], job))
        deep = [dag.dataset_id(ds) for job in ran for ds in dag.outputs[job]]
        stats.deep_datasets = deep[:MAX_DEEP_DATASETS]


def _invalid(line: bytes, kind: str) -> bytes:
    """An invalid copy of the valid ``line``: one mutation of kind ``kind``."""
    body = line[:-1]
    if kind == "not_json":
        return body[: len(body) // 2] + b"\n"
    if kind == "not_object":
        return b"[" + body + b"]\n"
    event = msgspec.json.decode(body)
    if kind == "missing_run_id":
        del event["run"]["runId"]
    elif kind == "non_uuid_run_id":
        event["run"]["runId"] = f"scheduled__{event['eventTime']}"
    elif kind == "bad_event_time":
        event["eventTime"] = "yesterday, around noon"
    elif kind == "missing_producer":
        del event["producer"]
    else:
        event["eventType"] = EVENT_TYPES.index(event["eventType"])
    return msgspec.json.encode(event) + b"\n"


def generate(spec: WorkloadSpec, stats: WorkloadStats | None = None) -> Iterator[bytes]:
    """The workload's NDJSON lines, each ending in ``\\n`` (see the module docstring).

    ``stats``, when given, is filled as the lines are yielded (final once they are exhausted).
    """
    return WorkloadGenerator(spec, stats).lines()


def manifest_path(path: Path) -> Path:
    """Where :func:`write_workload` puts the manifest of the workload at ``path``."""
    return path.with_suffix(path.suffix + ".manifest.json")


def write_workload(spec: WorkloadSpec, path: Path,
                   progress: Callable[[int], None] | None = None) -> WorkloadStats:
    """Write the workload to ``path`` as NDJSON and its manifest beside it; return the stats.

    ``progress`` is called with the number of lines written every 100,000 lines and at the end.
    The manifest (:func:`manifest_path`) holds the spec and the stats (``bytes`` is the file's
    size): the spec is enough to make the same bytes again.
    """
    generator = WorkloadGenerator(spec)
    written = 0
    with path.open("wb", buffering=1 << 20) as out:
        for line in generator.lines():
            out.write(line)
            written += 1
            if progress is not None and written % PROGRESS_EVERY == 0:
                progress(written)
    if progress is not None and written % PROGRESS_EVERY:
        progress(written)
    stats = generator.stats
    manifest = {"generator": GENERATOR, "spec": asdict(spec), "stats": stats.to_json()}
    manifest_path(path).write_text(json.dumps(manifest, indent=2) + "\n")
    return stats
