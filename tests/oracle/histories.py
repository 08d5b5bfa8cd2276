"""Histories of OpenLineage events: builders, hypothesis strategies and hand-made examples.

Every event is valid per the OpenLineage 2-0-2 spec (producer, schemaURL, uuid runIds, RFC 3339
times with an offset, ``_producer`` / ``_schemaURL`` on each facet); a test checks them with the
official JSON Schema.

:func:`timelines` draws a realistic history in time order: a few jobs over a few days, each run
a START, maybe a partial RUNNING (a subset of the datasets, with statistics facets), and a
COMPLETE or FAIL (or nothing yet); jobs switch between a few query variants, so rollbacks
(A -> B -> A) happen; schemas change from run to run; some datasets have a symlink alias that
other jobs read by; some jobs are tasks of a DAG (the parent facet); outputs carry column
lineage with DIRECT and INDIRECT transformations. :func:`arrivals` adds duplicates and shuffles;
:func:`histories` is both. :func:`times_of_interest` gives instants to ask at.

>>> events = rollback_history()
>>> [e["eventType"] for e in events]
['START', 'COMPLETE', 'START', 'COMPLETE', 'START', 'COMPLETE']
>>> [t.isoformat() for t in times_of_interest(events)][:3]
['2024-05-01T05:00:00+00:00', '2024-05-01T06:00:00+00:00', '2024-05-01T06:02:30+00:00']
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tests.oracle.model import Node, dataset, job, parse_time

PRODUCER = "https://github.com/openlineage-stream/openlineage-stream/tree/main/tests/oracle"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/"
FACET_SCHEMAS = {
    "sql": "1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet",
    "jobType": "2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
    "parent": "1-2-0/ParentRunFacet.json#/$defs/ParentRunFacet",
    "schema": "1-2-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
    "symlinks": "1-0-1/SymlinksDatasetFacet.json#/$defs/SymlinksDatasetFacet",
    "columnLineage": "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
    "inputStatistics":
        "1-0-0/InputStatisticsInputDatasetFacet.json#/$defs/InputStatisticsInputDatasetFacet",
    "outputStatistics":
        "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet",
}

#: A column dependency: (input dataset, input field, "TYPE/SUBTYPE").
Source = tuple[Node, str, str]

# -- builders -----------------------------------------------------------------------------------


def facet(key: str, **body: Any) -> dict[str, Any]:
    """A standard facet with its ``_producer`` and ``_schemaURL``."""
    return {"_producer": PRODUCER,
            "_schemaURL": f"https://openlineage.io/spec/facets/{FACET_SCHEMAS[key]}", **body}


def stamp(moment: datetime, offset_hours: int = 0) -> str:
    """``moment`` as RFC 3339, written in the given UTC offset (``Z`` for none)."""
    text = moment.astimezone(timezone(timedelta(hours=offset_hours))).isoformat()
    return text.replace("+00:00", "Z")


def run_id(*parts: object) -> str:
    """A uuid named by ``parts`` (the same parts, the same id)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "/".join(map(str, parts))))


def column_lineage(fields: Mapping[str, Sequence[Source]],
                   whole: Sequence[Source] = ()) -> dict[str, Any]:
    """A ``columnLineage`` facet: output field -> its sources, and dataset-level sources."""

    def inputs(sources: Iterable[Source]) -> list[dict[str, Any]]:
        return [{"namespace": d.namespace, "name": d.name, "field": f,
                 "transformations": [dict(zip(("type", "subtype"), key.split("/"),
                                              strict=False))]}
                for d, f, key in sources]

    body: dict[str, Any] = {"fields": {out: {"inputFields": inputs(sources)}
                                       for out, sources in fields.items()}}
    if whole:
        body["dataset"] = inputs(whole)
    return facet("columnLineage", **body)


def entry(name: Node, fields: Sequence[str] | None = None, *, aliases: Sequence[Node] = (),
          lineage: dict[str, Any] | None = None,
          statistics: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dataset as an event lists it; ``statistics``: an input or output facet map."""
    facets: dict[str, Any] = {}
    if fields is not None:
        facets["schema"] = facet("schema", fields=[{"name": f, "type": _TYPES.get(f, "string")}
                                                   for f in fields])
    if aliases:
        facets["symlinks"] = facet("symlinks", identifiers=[
            {"namespace": a.namespace, "name": a.name, "type": "TABLE"} for a in aliases])
    if lineage is not None:
        facets["columnLineage"] = lineage
    body: dict[str, Any] = {"namespace": name.namespace, "name": name.name}
    if facets:
        body["facets"] = facets
    if statistics:
        body.update(statistics)
    return body


def run_event(event_type: str, moment: datetime, the_run: str, the_job: Node, *,
              inputs: Sequence[dict[str, Any]] = (), outputs: Sequence[dict[str, Any]] = (),
              sql: str | None = None, parent: tuple[str, Node] | None = None,
              offset_hours: int = 0) -> dict[str, Any]:
    """A RunEvent; ``parent``: (parent runId, parent job), also named as the root."""
    job_facets: dict[str, Any] = {}
    if sql is not None:
        job_facets["sql"] = facet("sql", query=sql)
        job_facets["jobType"] = facet("jobType", processingType="BATCH", integration="SPARK",
                                      jobType="SQL_JOB")
    run_facets: dict[str, Any] = {}
    if parent is not None:
        ref = {"run": {"runId": parent[0]},
               "job": {"namespace": parent[1].namespace, "name": parent[1].name}}
        run_facets["parent"] = facet("parent", **ref, root=ref)
    return {
        "eventType": event_type, "eventTime": stamp(moment, offset_hours),
        "producer": PRODUCER, "schemaURL": SPEC + "RunEvent",
        "run": {"runId": the_run, **({"facets": run_facets} if run_facets else {})},
        "job": {"namespace": the_job.namespace, "name": the_job.name,
                **({"facets": job_facets} if job_facets else {})},
        "inputs": list(inputs), "outputs": list(outputs),
    }


def dataset_event(moment: datetime, body: dict[str, Any], offset_hours: int = 0) -> dict[str, Any]:
    """A DatasetEvent about ``body`` (see :func:`entry`)."""
    return {"eventTime": stamp(moment, offset_hours), "producer": PRODUCER,
            "schemaURL": SPEC + "DatasetEvent", "dataset": body}


def job_event(moment: datetime, the_job: Node, inputs: Sequence[dict[str, Any]],
              outputs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A JobEvent: static lineage of a job, without a run."""
    return {"eventTime": stamp(moment), "producer": PRODUCER, "schemaURL": SPEC + "JobEvent",
            "job": {"namespace": the_job.namespace, "name": the_job.name},
            "inputs": list(inputs), "outputs": list(outputs)}


def renamespaced(value: Any, suffix: str) -> Any:
    """A copy of events (or any JSON) with every namespace given ``suffix`` and every runId
    replaced by one derived from it and ``suffix``: a history of its own in a graph shared with
    other tests (and other copies of the same history)."""
    if isinstance(value, list):
        return [renamespaced(v, suffix) for v in value]
    if isinstance(value, dict):
        return {k: (v + suffix if k == "namespace" and isinstance(v, str)
                    else run_id(v, suffix) if k == "runId" and isinstance(v, str)
                    else renamespaced(v, suffix)) for k, v in value.items()}
    return value


def times_of_interest(events: Iterable[Mapping[str, Any]]) -> list[datetime]:
    """Instants to ask at: before the first event, at each event time, between each two, after."""
    times = sorted({parse_time(e["eventTime"]) for e in events})
    if not times:
        return []
    between = [a + (b - a) / 2 for a, b in itertools.pairwise(times)]
    hour = timedelta(hours=1)
    return sorted({times[0] - hour, *times, *between, times[-1] + hour})


# -- hand-made histories (the cases of issue #13) ---------------------------------------------

DAY = datetime(2024, 5, 1, 6, tzinfo=UTC)


def rollback_history() -> list[dict[str, Any]]:
    """Day 1 the job reads orders; day 2 orders and customers; day 4 the day-1 query again."""
    the_job, out = job("etl", "daily_revenue"), dataset("pg", "revenue")
    q1 = "INSERT INTO revenue SELECT day, sum(amount) FROM orders GROUP BY day"
    q2 = "INSERT INTO revenue SELECT o.day, sum(o.amount) FROM orders o JOIN customers c"
    events = []
    for day, inputs, sql in ((0, ["orders"], q1), (1, ["orders", "customers"], q2),
                             (3, ["orders"], q1)):
        start, the_run = DAY + timedelta(days=day), run_id("rollback", day)
        for event_type, moment in (("START", start), ("COMPLETE", start + timedelta(minutes=5))):
            events.append(run_event(event_type, moment, the_run, the_job, sql=sql,
                                    inputs=[entry(dataset("pg", i)) for i in inputs],
                                    outputs=[entry(out)]))
    return events


def partial_run_history() -> list[dict[str, Any]]:
    """START with every dataset, a RUNNING with one input and statistics, COMPLETE with all."""
    the_job, the_run = job("etl", "load"), run_id("partial")
    a, b, out = dataset("pg", "a"), dataset("pg", "b"), dataset("pg", "out")
    full: dict[str, Any] = {"inputs": [entry(a), entry(b)], "outputs": [entry(out)]}
    stats = {"inputFacets": {"inputStatistics": facet("inputStatistics", rowCount=10)}}
    return [
        run_event("START", DAY, the_run, the_job, sql="INSERT INTO out SELECT * FROM a, b",
                  **full),
        run_event("RUNNING", DAY + timedelta(minutes=1), the_run, the_job,
                  inputs=[entry(a, statistics=stats)]),
        run_event("COMPLETE", DAY + timedelta(minutes=2), the_run, the_job,
                  sql="INSERT INTO out SELECT * FROM a, b", **full),
    ]


# -- strategies ---------------------------------------------------------------------------------

NAMESPACE = "postgres://db:5432"
ALIAS_NAMESPACE = "hive://metastore"
JOB_NAMESPACE = "airflow"
DAG = job(JOB_NAMESPACE, "etl_dag")
DATASETS = tuple(dataset(NAMESPACE, n) for n in (
    "raw.orders", "raw.customers", "raw.payments", "staging.orders", "mart.revenue"))
FIELDS = ("id", "cust_id", "amount", "day", "name", "total")
_TYPES = {"id": "bigint", "cust_id": "bigint", "amount": "decimal(10,2)", "day": "date",
          "total": "decimal(12,2)"}
TRANSFORMATIONS = ("DIRECT/IDENTITY", "DIRECT/TRANSFORMATION", "DIRECT/AGGREGATION",
                   "INDIRECT/JOIN", "INDIRECT/FILTER", "INDIRECT/GROUP_BY", "INDIRECT/SORT",
                   "INDIRECT/WINDOW", "INDIRECT/CONDITIONAL")
_OFFSETS = st.sampled_from((0, 0, 2, -5))


def alias_of(name: Node) -> Node:
    """The catalog name under which a dataset may also be known."""
    return dataset(ALIAS_NAMESPACE, name.name)


@st.composite
def _variant(draw: st.DrawFn, schemas: Mapping[Node, list[list[str]]],
             aliased: frozenset[Node]) -> dict[str, Any]:
    """One query of a job: what it reads (by which name), writes, and its column lineage."""
    inputs = draw(st.lists(st.sampled_from(DATASETS), min_size=1, max_size=3, unique=True))
    output = draw(st.sampled_from([d for d in DATASETS if d not in inputs]))
    named = [alias_of(d) if d in aliased and draw(st.booleans()) else d for d in inputs]
    sources = st.sampled_from([(n, f, "") for n, d in zip(named, inputs, strict=True)
                               for f in schemas[d][0]])

    def with_key(keys: Sequence[str]) -> st.SearchStrategy[Source]:
        return st.tuples(sources, st.sampled_from(keys)).map(lambda s: (s[0][0], s[0][1], s[1]))

    fields = {f: draw(st.lists(with_key(TRANSFORMATIONS), max_size=2, unique=True))
              for f in schemas[output][0]}
    whole = draw(st.lists(with_key([t for t in TRANSFORMATIONS if t.startswith("INDIRECT")]),
                          max_size=2, unique=True))
    return {"inputs": named, "output": output, "fields": fields, "whole": whole,
            "sql": " ".join(["INSERT INTO", output.name, "SELECT * FROM",
                             ", ".join(n.name for n in named)])}


@st.composite
def timelines(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A realistic history in time order, without duplicates (see the module docstring)."""
    schemas = {d: draw(st.lists(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=4,
                                         unique=True), min_size=1, max_size=2))
               for d in DATASETS}
    aliased = frozenset(draw(st.sets(st.sampled_from(DATASETS), max_size=2)))
    primary = {alias_of(d): d for d in aliased}
    # Drawn variants rarely come back (hypothesis favours small draws): in half the histories
    # the jobs roll back on purpose, A -> B -> A (-> C), over at least three days.
    rollback = draw(st.booleans())
    jobs = [(job(JOB_NAMESPACE, f"{DAG.name}.task_{i}" if in_dag else f"job_{i}"),
             draw(st.lists(_variant(schemas, aliased), min_size=1 + rollback, max_size=3)),
             in_dag)
            for i, in_dag in enumerate(draw(st.lists(st.booleans(), min_size=1, max_size=3)))]

    def schema_of(name: Node, flavour: int) -> list[str]:
        pool = schemas[primary.get(name, name)]
        return pool[flavour % len(pool)]

    events = [dataset_event(DAY + timedelta(minutes=draw(st.integers(0, 600))),
                            entry(d, schema_of(d, 0), aliases=[alias_of(d)]), draw(_OFFSETS))
              for d in sorted(aliased)]
    if draw(st.booleans()):
        first_job, variants, _ = jobs[0]
        events.append(job_event(DAY - timedelta(minutes=5), first_job,
                                [entry(n) for n in variants[0]["inputs"]],
                                [entry(variants[0]["output"])]))
    for day in range(draw(st.integers(3 if rollback else 1, 4))):
        dag_run = run_id("dag", day)
        midnight = DAY.replace(hour=0) + timedelta(days=day)
        if any(in_dag for _, _, in_dag in jobs):
            events += [run_event(kind, midnight + timedelta(hours=hours), dag_run, DAG)
                       for kind, hours in (("START", 0.5), ("COMPLETE", 23))]
        for index, (the_job, variants, in_dag) in enumerate(jobs):
            if not (rollback and index == 0) and draw(st.integers(0, 3)) == 3:
                continue  # no run of this job today
            chosen = (0, 1, 0, 2)[day] if rollback else draw(st.integers(0, len(variants) - 1))
            variant = variants[chosen % len(variants)]
            start = midnight + timedelta(hours=index + 1, minutes=draw(st.integers(0, 50)))
            aliases = [alias_of(variant["output"])] if variant["output"] in aliased else []
            events += draw(_run(the_job, run_id(the_job, day), start, variant, schema_of,
                                aliases, (dag_run, DAG) if in_dag else None))
    return events


@st.composite
def _run(draw: st.DrawFn, the_job: Node, the_run: str, start: datetime,
         variant: Mapping[str, Any], schema_of: Callable[[Node, int], list[str]],
         aliases: Sequence[Node], parent: tuple[str, Node] | None) -> list[dict[str, Any]]:
    """The events of one run: START, maybe a partial RUNNING, maybe a COMPLETE or FAIL."""
    flavour, output = draw(st.integers(0, 1)), variant["output"]
    full = {
        "inputs": [entry(n, schema_of(n, flavour)) for n in variant["inputs"]],
        "outputs": [entry(output, schema_of(output, flavour), aliases=aliases,
                          lineage=column_lineage(variant["fields"], variant["whole"]))],
    }
    terminal = draw(st.sampled_from(("COMPLETE", "COMPLETE", "FAIL", None)))
    start_full = terminal is None or draw(st.booleans())
    events = [run_event("START", start, the_run, the_job, sql=variant["sql"], parent=parent,
                        offset_hours=draw(_OFFSETS), **(full if start_full else {}))]
    if draw(st.booleans()):
        read = draw(st.lists(st.sampled_from(variant["inputs"]), unique=True))
        stats = {"inputFacets": {"inputStatistics": facet("inputStatistics", rowCount=100)}}
        written = ([entry(output, statistics={"outputFacets": {"outputStatistics": facet(
            "outputStatistics", rowCount=draw(st.integers(0, 10**6)))}})]
            if draw(st.booleans()) else [])
        events.append(run_event("RUNNING", start + timedelta(minutes=5), the_run, the_job,
                                parent=parent, offset_hours=draw(_OFFSETS),
                                inputs=[entry(n, statistics=stats) for n in read],
                                outputs=written))
    if terminal is not None:
        events.append(run_event(terminal, start + timedelta(minutes=10), the_run, the_job,
                                sql=variant["sql"], parent=parent, offset_hours=draw(_OFFSETS),
                                **(full if not start_full or draw(st.booleans()) else {})))
    return events


def arrivals(events: Sequence[Mapping[str, Any]]) -> st.SearchStrategy[list[dict[str, Any]]]:
    """The same events as a producer's retries and a topic's partitions deliver them: some
    twice (as equal copies), in any order."""
    extra = st.lists(st.sampled_from(events), max_size=len(events) // 2 + 1) if events else \
        st.just([])
    return extra.flatmap(lambda more: st.permutations(
        [copy.deepcopy(dict(e)) for e in [*events, *more]]))


def histories() -> st.SearchStrategy[list[dict[str, Any]]]:
    """A drawn timeline as it arrives: with duplicates, in random order."""
    return timelines().flatmap(arrivals)
