"""The reference model ("oracle"): what the lineage answers SHOULD be, from a set of events.

This module is the specification of issue #13 and of DESIGN.md's Versions section in code. It is
deliberately small and slow: every question is answered from scratch by plain loops over what
the events said, so that it can be read and believed. The real pipeline's graph answers are
compared against it.

The spec
--------
Input: OpenLineage events as producers send them (JSON dicts): RunEvents (they have ``run``),
DatasetEvents (``dataset`` and no ``job``) and JobEvents (``job`` and no ``run``).

1. **A set.** The answers depend on the SET of events: duplicates (equal JSON) and arrival order
   change nothing. Times are ``eventTime`` (RFC 3339 with an offset, compared in UTC, finer than
   microseconds truncated); arrival never matters. Where two different things happen at the same
   eventTime, the one whose canonical JSON sorts last wins (any fixed rule would do; histories
   meant for comparison avoid such ties).
2. **Runs.** A run is every RunEvent with its ``runId``; it belongs to the job its events name.
   Its state is the ``eventType`` of its event with the latest eventTime (a terminal state,
   COMPLETE / FAIL / ABORT, wins a tie; a missing eventType counts as OTHER). Its start time is
   the eventTime of its START (the earliest, if several), else its earliest eventTime.
3. **Job versions.** A JobVersion is what one run did: its behaviour facets (``sql.query``,
   ``sourceCode``, ``sourceCodeLocation``, ``jobType``, each without ``_producer`` /
   ``_schemaURL``, each taken from the run's latest event carrying it) and the UNION of the
   inputs and of the outputs over all of the run's events. Partial events (a RUNNING with a
   subset of the datasets, an event without datasets) only add to their run; they never make a
   version of their own. A run none of whose events names a dataset makes no version (so it can
   never empty a job's lineage: DESIGN.md, guarantee 4). A JobEvent has no run and so makes no
   version: its pairs count for "ever" only.
4. **Validity.** A job's version at time T is the version of its latest run (with a version)
   started at or before T; ties between runs starting at the same instant go to the greater
   runId. So A -> B -> A is three intervals; a job has no version before its first run. The
   version of a run is the whole run's, also at a T before its later events.
5. **Schemas.** A dataset's schema at T is the schema facet (fields in order, nested ones
   flattened as ``parent.child``, each with its type) of the latest event with eventTime <= T
   that carries one for it, as input, output or DatasetEvent: a dataset only read has a schema.
   A dataset's versions (:meth:`Model.dataset_history`) start at each change of its schema and
   at each write, a write being a COMPLETE run with the dataset among its outputs, at the time
   of the event that set the run's state.
6. **Lineage at T** is made of the pairs (input dataset -> job, job -> output dataset) of the job
   versions valid at T; "ever" of every pair any RunEvent or JobEvent ever named (partial
   events, failed runs included). Column lineage likewise: at T the ``columnLineage`` facets of
   the runs whose versions are valid at T, "ever" every facet of any event.
7. **Hops.** ``upstream`` / ``downstream`` walk the pairs from the asked node; a hop is one job
   (the writers of a dataset and their inputs are 1 hop upstream), as in ``lineage query``.
8. **Columns.** A ``columnLineage`` facet on a dataset D makes edges from each input field to
   the field of D it names (``fields``), or to D as a whole (``dataset``: a dataset-level
   dependency, e.g. a join or filter column), one edge per transformation, keyed ``TYPE/SUBTYPE``
   (``UNKNOWN`` when none is given). An edge is *indirect* when it is dataset-level or its type is
   INDIRECT; a column is indirect in an answer when no path of direct edges reaches it.
   ``impact`` follows edges downstream from a column; a dataset-level edge ends at the dataset
   (field None). ``columns`` follows edges upstream; the dataset-level dependencies of a dataset
   are (indirect) sources of each of its columns. ``direct_only`` ignores the indirect edges.
9. **Any name.** A symlink alias (listed in a dataset's ``symlinks`` facet, by any event at any
   time) and the dataset listing it are one dataset; names joined by symlinks form a class whose
   primary is the least (namespace, name) of the members no other member lists as an alias (of
   all members, when they list each other). Every question resolves a name to its primary,
   so lineage recorded under an alias counts for the primary and the other way round; answers
   say which name was asked and which it resolved to.
10. **Parents.** A job's children are the jobs whose runs (started by T) name it in their
    ``parent`` facet, as parent job or as root job, transitively. A lineage question about a job
    answers with the union (least hops) of its own answer and its children's, and lists them.

Not modelled: ``_deleted`` facets; a runId reported under two jobs.

>>> from tests.oracle.histories import rollback_history
>>> model = Model.from_events(rollback_history())
>>> history = model.job_history(job("etl", "daily_revenue"))
>>> [sorted(d.name for d in interval.version.inputs) for interval in history]
[['orders'], ['customers', 'orders'], ['orders']]
>>> sorted(str(n) for n in model.upstream(dataset("pg", "revenue")).nodes)
['dataset pg:orders', 'job etl:daily_revenue']
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

Kind = Literal["Job", "Dataset"]
Fields = tuple[tuple[str, str | None], ...]

TERMINAL = frozenset({"COMPLETE", "FAIL", "ABORT"})
END_OF_TIME = datetime.max.replace(tzinfo=UTC)
MAX_HOPS = 20


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal content, equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def parse_time(text: str) -> datetime:
    """An RFC 3339 time (with its offset) in UTC."""
    parsed = datetime.fromisoformat(text.strip().upper())
    if parsed.tzinfo is None:
        raise ValueError(f"an eventTime without an offset: {text!r}")
    return parsed.astimezone(UTC)


@dataclass(frozen=True, order=True)
class Node:
    """A job or a dataset, by name."""

    kind: Kind
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind.lower()} {self.namespace}:{self.name}"


def dataset(namespace: str, name: str) -> Node:
    """The dataset ``namespace:name``."""
    return Node("Dataset", namespace, name)


def job(namespace: str, name: str) -> Node:
    """The job ``namespace:name``."""
    return Node("Job", namespace, name)


@dataclass(frozen=True)
class Column:
    """A column of a dataset; ``field`` None stands for the dataset as a whole."""

    namespace: str
    dataset: str
    field: str | None


@dataclass(frozen=True)
class ColumnEdge:
    """One transformation from an input column to a column (or a whole dataset)."""

    source: Column
    target: Column
    transformation: str

    @property
    def indirect(self) -> bool:
        return (self.target.field is None
                or self.transformation.split("/")[0] not in ("DIRECT", "UNKNOWN"))


@dataclass(frozen=True)
class JobVersion:
    """What one run did (spec 3). Equal content, equal version."""

    job: Node
    inputs: frozenset[Node]
    outputs: frozenset[Node]
    sql: str | None = None
    source_code: str | None = None
    source_code_location: str | None = None
    job_type: str | None = None


@dataclass(frozen=True)
class Run:
    """A run as all of its events tell it (spec 2 and 3)."""

    run_id: str
    job: Node
    state: str
    started_at: datetime
    state_time: datetime
    version: JobVersion | None
    column_edges: frozenset[ColumnEdge]
    parents: frozenset[Node]


@dataclass(frozen=True)
class JobInterval:
    """A job's version from ``valid_from`` to ``valid_to`` (None: still valid), and its runs."""

    valid_from: datetime
    valid_to: datetime | None
    version: JobVersion
    runs: tuple[str, ...]


@dataclass(frozen=True)
class DatasetVersion:
    """A dataset's version: its schema then (None: none known yet) and the runs that wrote it."""

    valid_from: datetime
    valid_to: datetime | None
    fields: Fields | None
    written_by: tuple[str, ...]


@dataclass(frozen=True)
class Lineage:
    """The answer of ``upstream`` / ``downstream`` / ``as_of``.

    ``nodes`` maps every node reached to its hops; ``versions`` the jobs among them to their
    version at T (empty for "ever"); ``children`` lists the child jobs a parent answered with.
    """

    asked: Node
    resolved: Node
    nodes: Mapping[Node, int]
    versions: Mapping[Node, JobVersion]
    children: tuple[Node, ...] = ()


@dataclass(frozen=True)
class ColumnEntry:
    """A column in an answer: its distance, whether only indirect paths reach it, and the
    transformations of its edges towards the asked column."""

    hops: int
    indirect: bool
    transformations: frozenset[str]


@dataclass(frozen=True)
class Columns:
    """The answer of ``impact`` / ``columns``: every column reached, by :class:`Column`."""

    asked: Column
    resolved: Column
    columns: Mapping[Column, ColumnEntry]


@dataclass(frozen=True)
class _Event:
    time: datetime
    text: str
    body: Mapping[str, Any]


@dataclass(frozen=True)
class _Schema:
    time: datetime
    text: str
    name: Node
    fields: Fields


class Model:
    """The answers that a set of events implies. Build it with :meth:`from_events`."""

    def __init__(self, runs: Mapping[str, Run], primary: Mapping[Node, Node],
                 schemas: Iterable[_Schema], ever_pairs: Iterable[tuple[Node, Node]],
                 ever_columns: Iterable[ColumnEdge]) -> None:
        self.runs = dict(runs)
        self._runs_of: dict[Node, list[Run]] = defaultdict(list)
        for run in sorted(runs.values(), key=lambda r: (r.started_at, r.run_id)):
            if run.version is not None:
                self._runs_of[run.job].append(run)
        self._primary = dict(primary)
        self._schemas = tuple(schemas)
        self._ever_pairs = frozenset(ever_pairs)
        self._ever_columns = frozenset(ever_columns)

    @classmethod
    def from_events(cls, events: Iterable[Mapping[str, Any]]) -> Model:
        """The model of a set of events (spec 1: duplicates and order do not matter)."""
        distinct = {canonical(e): e for e in events}
        ordered = sorted((_Event(parse_time(e["eventTime"]), text, e)
                          for text, e in distinct.items()), key=lambda e: (e.time, e.text))
        by_run: dict[str, list[_Event]] = defaultdict(list)
        schemas: list[_Schema] = []
        pairs: set[tuple[Node, Node]] = set()
        columns: set[ColumnEdge] = set()
        symlinks: set[tuple[Node, Node]] = set()
        for event in ordered:
            body = event.body
            if "run" in body:
                by_run[body["run"]["runId"]].append(event)
            entries = [body["dataset"]] if "dataset" in body and "job" not in body else []
            if "job" in body:
                the_job = _job_of(body)
                pairs |= {(d, the_job) for d in _names(body.get("inputs"))}
                pairs |= {(the_job, d) for d in _names(body.get("outputs"))}
                entries = [*(body.get("inputs") or ()), *(body.get("outputs") or ())]
            for entry in entries:
                name = dataset(entry["namespace"], entry["name"])
                facets = entry.get("facets") or {}
                if isinstance(facets.get("schema"), Mapping):
                    fields = _flatten(facets["schema"].get("fields") or [])
                    schemas.append(_Schema(event.time, canonical(fields), name, fields))
                for alias in (facets.get("symlinks") or {}).get("identifiers") or ():
                    symlinks.add((dataset(alias["namespace"], alias["name"]), name))
                columns |= _column_edges(entry)
        runs = {run_id: _run(run_id, run_events) for run_id, run_events in by_run.items()}
        return cls(runs, _primaries(symlinks), schemas, pairs, columns)

    # -- names ------------------------------------------------------------------------------

    def resolve(self, node: Node) -> Node:
        """The primary name of a dataset (spec 9); a job is itself."""
        return self._primary.get(node, node)

    def names(self, node: Node) -> frozenset[Node]:
        """Every name of the dataset (its class of symlinks), the asked one included."""
        primary = self.resolve(node)
        return frozenset({node, primary} | {n for n, p in self._primary.items() if p == primary})

    def _column(self, column: Column) -> Column:
        primary = self.resolve(dataset(column.namespace, column.dataset))
        return Column(primary.namespace, primary.name, column.field)

    # -- runs and versions ------------------------------------------------------------------

    def run_at(self, the_job: Node, at: datetime | None = None) -> Run | None:
        """The run whose version the job has at ``at`` (spec 4): None before its first."""
        instant = at or END_OF_TIME
        started = [r for r in self._runs_of.get(the_job, ()) if r.started_at <= instant]
        return started[-1] if started else None

    def version_at(self, the_job: Node, at: datetime | None = None) -> JobVersion | None:
        """The job's version at ``at`` (default: now, after every event)."""
        run = self.run_at(the_job, at)
        return run.version if run else None

    def jobs(self) -> frozenset[Node]:
        """Every job a RunEvent or JobEvent named (parents named only in facets excluded)."""
        return frozenset({r.job for r in self.runs.values()}
                         | {n for pair in self._ever_pairs for n in pair if n.kind == "Job"})

    def job_history(self, the_job: Node) -> tuple[JobInterval, ...]:
        """The job's versions in time order: a new interval wherever the version changes."""
        intervals: list[JobInterval] = []
        for run in self._runs_of.get(the_job, ()):
            assert run.version is not None
            if intervals and intervals[-1].version == run.version:
                intervals[-1] = replace(intervals[-1], runs=(*intervals[-1].runs, run.run_id))
            else:
                intervals.append(JobInterval(run.started_at, None, run.version, (run.run_id,)))
        return _closed(intervals)

    # -- datasets ---------------------------------------------------------------------------

    def schema(self, node: Node, at: datetime | None = None) -> Fields | None:
        """The dataset's schema at ``at`` (spec 5); None when no event carried one by then."""
        instant, names = at or END_OF_TIME, self.names(node)
        seen = [s for s in self._schemas if s.name in names and s.time <= instant]
        return max(seen, key=lambda s: (s.time, s.text)).fields if seen else None

    def dataset_history(self, node: Node) -> tuple[DatasetVersion, ...]:
        """The dataset's versions: at each change of its schema and at each write (spec 5)."""
        names = self.names(node)
        writes: dict[datetime, set[str]] = defaultdict(set)
        for run in self.runs.values():
            if run.state == "COMPLETE" and run.version and run.version.outputs & names:
                writes[run.state_time].add(run.run_id)
        times = sorted({s.time for s in self._schemas if s.name in names} | set(writes))
        versions: list[DatasetVersion] = []
        for time in times:
            fields, writers = self.schema(node, time), tuple(sorted(writes.get(time, ())))
            if writers or not versions or versions[-1].fields != fields:
                versions.append(DatasetVersion(time, None, fields, writers))
        return _closed(versions)

    # -- lineage ----------------------------------------------------------------------------

    def pairs(self, at: datetime | None = None, *, ever: bool = False) -> frozenset[
            tuple[Node, Node]]:
        """The lineage pairs at ``at`` (spec 6), datasets by their primary names."""
        if ever:
            raw: Iterable[tuple[Node, Node]] = self._ever_pairs
        else:
            raw = [pair for the_job in self.jobs()
                   if (version := self.version_at(the_job, at))
                   for pair in [*((d, the_job) for d in version.inputs),
                                *((the_job, d) for d in version.outputs)]]
        return frozenset((self.resolve(a), self.resolve(b)) for a, b in raw)

    def children(self, parent: Node, at: datetime | None = None, *,
                 ever: bool = False) -> tuple[Node, ...]:
        """The jobs below ``parent`` by the parent facets of runs started by ``at`` (spec 10)."""
        instant = at or END_OF_TIME
        links = {(p, r.job) for r in self.runs.values()
                 if ever or r.started_at <= instant for p in r.parents}
        below = set(_reach(links, parent, forward=True)) - {parent}
        return tuple(sorted(below))

    def upstream(self, node: Node, at: datetime | None = None, hops: int = MAX_HOPS, *,
                 ever: bool = False) -> Lineage:
        """Where a dataset comes from, or what a job depends on, at ``at`` (or ever)."""
        return self._lineage(node, at, hops, ever, forward=False)

    def downstream(self, node: Node, at: datetime | None = None, hops: int = MAX_HOPS, *,
                   ever: bool = False) -> Lineage:
        """What is built from a dataset, or depends on a job, at ``at`` (or ever)."""
        return self._lineage(node, at, hops, ever, forward=True)

    def as_of(self, node: Node, at: datetime, hops: int = MAX_HOPS, *,
              downstream: bool = False) -> Lineage:
        """``lineage query as-of``: the lineage at ``at``, each job with its version then."""
        return self._lineage(node, at, hops, ever=False, forward=downstream)

    def _lineage(self, node: Node, at: datetime | None, hops: int, ever: bool,
                 forward: bool) -> Lineage:
        pairs, resolved = self.pairs(at, ever=ever), self.resolve(node)
        children = self.children(resolved, at, ever=ever) if node.kind == "Job" else ()
        nodes: dict[Node, int] = {}
        for root in (resolved, *children):
            for reached, steps in _reach(pairs, root, forward).items():
                hop = (steps + 1) // 2
                if reached != root and steps <= 2 * hops:
                    nodes[reached] = min(nodes.get(reached, hop), hop)
        versions = {} if ever else {
            n: v for n in nodes if n.kind == "Job" and (v := self.version_at(n, at))}
        return Lineage(node, resolved, nodes, versions, children)

    # -- columns ----------------------------------------------------------------------------

    def column_edges(self, at: datetime | None = None, *,
                     ever: bool = False) -> frozenset[ColumnEdge]:
        """The column lineage at ``at`` (spec 6 and 8), datasets by their primary names."""
        if ever:
            raw: Iterable[ColumnEdge] = self._ever_columns
        else:
            raw = [e for the_job in self.jobs() if (run := self.run_at(the_job, at))
                   for e in run.column_edges]
        return frozenset(ColumnEdge(self._column(e.source), self._column(e.target),
                                    e.transformation) for e in raw)

    def impact(self, node: Node, field: str | None = None, at: datetime | None = None, *,
               direct_only: bool = False, ever: bool = False) -> Columns:
        """What a column (``field``; None: any column of the dataset) feeds, downstream."""
        resolved = self.resolve(node)
        edges = self._edges(at, ever, direct_only)
        # "Any column of the dataset" is every column of it that feeds anything, directly or
        # not, whatever the walk then follows: else --direct-only would start from fewer
        # columns and reach, through a cycle, one of those it left out.
        starts = ({Column(resolved.namespace, resolved.name, field)} if field is not None else
                  {e.source for e in self._edges(at, ever, False)
                   if (e.source.namespace, e.source.dataset) == (resolved.namespace,
                                                                  resolved.name)})

        def step(column: Column) -> Iterator[tuple[Column, ColumnEdge]]:
            return ((e.target, e) for e in edges if e.source == column)

        return Columns(Column(node.namespace, node.name, field),
                       Column(resolved.namespace, resolved.name, field), _spread(starts, step))

    def columns(self, node: Node, field: str, at: datetime | None = None, *,
                direct_only: bool = False, ever: bool = False) -> Columns:
        """Where a column comes from: every column that feeds it, or filters, joins... its
        dataset (indirect), upstream."""
        resolved = self.resolve(node)
        edges = self._edges(at, ever, direct_only)

        def step(column: Column) -> Iterator[tuple[Column, ColumnEdge]]:
            whole = Column(column.namespace, column.dataset, None)
            return ((e.source, e) for e in edges if e.target in (column, whole))

        start = Column(resolved.namespace, resolved.name, field)
        return Columns(Column(node.namespace, node.name, field), start, _spread({start}, step))

    def _edges(self, at: datetime | None, ever: bool, direct_only: bool) -> list[ColumnEdge]:
        return [e for e in self.column_edges(at, ever=ever) if not (direct_only and e.indirect)]


# -- building -----------------------------------------------------------------------------------


def _job_of(body: Mapping[str, Any]) -> Node:
    return job(body["job"]["namespace"], body["job"]["name"])


def _names(entries: Any) -> set[Node]:
    return {dataset(d["namespace"], d["name"]) for d in entries or ()}


def _flatten(items: Iterable[Mapping[str, Any]], prefix: str = "") -> Fields:
    out: list[tuple[str, str | None]] = []
    for item in items:
        out.append((prefix + item["name"], item.get("type")))
        out += _flatten(item.get("fields") or (), prefix + item["name"] + ".")
    return tuple(out)


def _transformation_keys(input_field: Mapping[str, Any]) -> list[str]:
    keys = [f"{t['type']}/{t['subtype']}" if t.get("subtype") else t["type"]
            for t in input_field.get("transformations") or ()]
    return keys or ["UNKNOWN"]


def _column_edges(entry: Mapping[str, Any]) -> set[ColumnEdge]:
    facet = (entry.get("facets") or {}).get("columnLineage")
    if not isinstance(facet, Mapping):
        return set()
    targets = [(Column(entry["namespace"], entry["name"], out), source)
               for out, spec in (facet.get("fields") or {}).items()
               for source in spec.get("inputFields") or ()]
    targets += [(Column(entry["namespace"], entry["name"], None), source)
                for source in facet.get("dataset") or ()]
    return {ColumnEdge(Column(s["namespace"], s["name"], s["field"]), target, key)
            for target, s in targets for key in _transformation_keys(s)}


def _latest(events: list[_Event], value: Callable[[_Event], Any]) -> Any:
    """``value`` of the latest event that has one (None when none has)."""
    carried = [(e.time, canonical(v), v) for e in events if (v := value(e)) is not None]
    return max(carried, key=lambda c: (c[0], c[1]))[2] if carried else None


def _behaviour(key: str) -> Callable[[_Event], Any]:
    def value(event: _Event) -> Any:
        facet = ((event.body.get("job") or {}).get("facets") or {}).get(key)
        if not isinstance(facet, Mapping):
            return None
        if key == "sql":
            return facet.get("query")
        return canonical({k: v for k, v in facet.items() if k not in ("_producer", "_schemaURL")})
    return value


def _run(run_id: str, events: list[_Event]) -> Run:
    last = max(events, key=lambda e: (e.time, e.body.get("eventType") in TERMINAL, e.text))
    starts = [e.time for e in events if e.body.get("eventType") == "START"]
    the_job = _job_of(last.body)
    inputs: frozenset[Node] = frozenset().union(*(_names(e.body.get("inputs")) for e in events))
    outputs: frozenset[Node] = frozenset().union(*(_names(e.body.get("outputs"))
                                                   for e in events))
    version = JobVersion(the_job, inputs, outputs, *(
        _latest(events, _behaviour(key))
        for key in ("sql", "sourceCode", "sourceCodeLocation", "jobType"))
    ) if inputs or outputs else None
    edges: frozenset[ColumnEdge] = frozenset().union(*(_column_edges(d) for e in events
                                for d in [*(e.body.get("inputs") or ()),
                                          *(e.body.get("outputs") or ())]))
    parents = set()
    for event in events:
        parent = ((event.body["run"].get("facets") or {}).get("parent")) or {}
        for holder in (parent, parent.get("root") or {}):
            if "job" in holder:
                parents.add(job(holder["job"]["namespace"], holder["job"]["name"]))
    return Run(run_id, the_job, last.body.get("eventType") or "OTHER",
               min(starts or [e.time for e in events]), last.time, version, edges,
               frozenset(parents - {the_job}))


def _primaries(symlinks: set[tuple[Node, Node]]) -> dict[Node, Node]:
    """Each name joined to others by symlinks -> the primary of its class (spec 9)."""
    links = symlinks | {(b, a) for a, b in symlinks}
    primary: dict[Node, Node] = {}
    for name in sorted({n for pair in links for n in pair}):
        if name in primary:
            continue
        members = set(_reach(links, name, forward=True))
        aliases = {a for a, p in symlinks if p in members and a != p}
        chosen = min(members - aliases or members)
        primary |= dict.fromkeys(members, chosen)
    return primary


# -- walking ------------------------------------------------------------------------------------


def _reach(pairs: Iterable[tuple[Node, Node]], root: Node, forward: bool) -> dict[Node, int]:
    """Every node reached from ``root`` along the pairs (or against them), with its steps."""
    after: dict[Node, set[Node]] = defaultdict(set)
    for a, b in pairs:
        after[a if forward else b].add(b if forward else a)
    steps, queue = {root: 0}, deque([root])
    while queue:
        node = queue.popleft()
        for nxt in sorted(after[node] - steps.keys()):
            steps[nxt] = steps[node] + 1
            queue.append(nxt)
    return steps


def _spread(starts: set[Column],
            step: Callable[[Column], Iterator[tuple[Column, ColumnEdge]]]
            ) -> dict[Column, ColumnEntry]:
    """Every column reached from ``starts`` by ``step``: hops, indirectness, transformations."""

    def walk(direct: bool) -> dict[Column, int]:
        hops = dict.fromkeys(starts, 0)
        queue = deque(starts)
        while queue:
            column = queue.popleft()
            for nxt, edge in step(column):
                if nxt not in hops and not (direct and edge.indirect):
                    hops[nxt] = hops[column] + 1
                    queue.append(nxt)
        return hops

    every, direct = walk(direct=False), walk(direct=True)
    transformations: dict[Column, set[str]] = defaultdict(set)
    for column in every:
        for nxt, edge in step(column):
            transformations[nxt].add(edge.transformation)
    return {c: ColumnEntry(h, c not in direct, frozenset(transformations[c]))
            for c, h in every.items() if c not in starts}


def _closed(versions: list[Any]) -> tuple[Any, ...]:
    """Each version valid until the next one's ``valid_from``; the last one still valid."""
    ends = [v.valid_from for v in versions[1:]] + [None]
    return tuple(replace(v, valid_to=end) for v, end in zip(versions, ends, strict=False))
