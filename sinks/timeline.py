"""Job versions from the run timeline (DESIGN.md, Versions), worked out in the sink.

A JobVersion is what one whole run did: the union of the datasets its events read and wrote
(the run's ``READ_FROM`` / ``WROTE_TO``, merged by the RunIO records) and its behaviour facets
(``sql``, ``sourceCode``, ``sourceCodeLocation``, ``jobType``; each the one of the run's latest
event that carried it, kept on the Run by the Run records). Its id is a content address
(:func:`core.content.job_version_id`), so two runs that did the same thing share a version. A
partial event (a RUNNING with a subset of the datasets, an event without any) only adds to its
run, so it never makes a version of its own; a run that named no dataset has no version.

Validity is not content: a job's version at time T is the version of its latest run (with a
version) started at or before T (its START's eventTime, else its earliest), ties between runs
started at the same instant going to the greater runId. So A -> B -> A is three intervals, each
a ``(:Job)-[:VALID_AS {validFrom, validTo, runs}]->(:JobVersion)`` relationship (``validTo``
absent: still valid). Each ``INPUT_TO`` / ``OUTPUT_TO`` pair keeps the intervals during which a
valid version of its job read / wrote that dataset, as two lists ``validFrom`` and ``validTo``
of equal length (``validTo`` :data:`STILL_VALID` while it still is), which is what the "as of"
questions walk. The intervals are kept on the pair of the dataset's *primary* name: a version
that read a symlink alias (the Hive name of a table) gives its interval to the pair of the table
the alias stands for (SYMLINK_OF), created if no event named it, so a walk never stops at an
alias. A pair no run's version made (a JobEvent's) has no intervals: "ever" only.

Contract: :func:`apply` is called in the sink's write transaction after the batch's Run, RunIO
and Symlink rows, with the runIds and the new aliases they touched. It locks the jobs of those
runs and of the pairs of those aliases (so two sinks writing runs of one job take turns),
gives each touched run the version its observations now imply, deletes the versions no run has
any more (the partial unions a run went through), and recomputes the intervals of those jobs
from all of their runs. The result depends only on what
the graph holds, never on the order the records arrived in.

>>> from datetime import datetime, UTC
>>> t = [datetime(2024, 5, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
>>> [(i.valid_from.day, i.valid_to and i.valid_to.day, i.version, i.runs)
...  for i in intervals([(t[0], "r1", "A"), (t[1], "r2", "B"), (t[2], "r3", "B"),
...                      (t[3], "r4", "A")])]
[(1, 2, 'A', 1), (2, 4, 'B', 2), (4, None, 'A', 1)]
"""

from __future__ import annotations

import json
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from neo4j import ManagedTransaction

from core.content import canonical_json, content_id, job_version_id
from schemas.limits import LATEST_TIME

#: The behaviour-defining job facets, each kept on a Run as ``<key>Facet`` (JSON text).
DEFINING_JOB_FACETS = ("sql", "sourceCode", "sourceCodeLocation", "jobType")

#: The end of a pair's interval that has not ended (Neo4j lists cannot hold null).
STILL_VALID = LATEST_TIME

_LOCK_JOBS = """
CALL () {
  UNWIND $runIds AS runId
  MATCH (r:Run {runId: runId})
  WHERE r.jobName IS NOT NULL
  RETURN r.jobNamespace AS namespace, r.jobName AS name
  UNION
  UNWIND $aliases AS a
  MATCH (:Dataset {namespace: a.namespace, name: a.name})-[:INPUT_TO]->(j:Job)
  RETURN j.namespace AS namespace, j.name AS name
  UNION
  UNWIND $aliases AS a
  MATCH (:Dataset {namespace: a.namespace, name: a.name})<-[:OUTPUT_TO]-(j:Job)
  RETURN j.namespace AS namespace, j.name AS name
}
WITH namespace, name
ORDER BY namespace, name
MATCH (j:Job {namespace: namespace, name: name})
SET j.name = j.name
RETURN namespace, name
"""
# Setting a property to its own value changes nothing but takes the node's write lock, held
# until the transaction ends: the jobs are locked in one order (sorted), before anything is read.

_RUN_CONTENT = """
UNWIND $runIds AS runId
MATCH (r:Run {runId: runId})
WHERE r.jobName IS NOT NULL
RETURN r.runId AS runId, r.jobNamespace AS namespace, r.jobName AS name,
       [key IN $facets | r[key + 'Facet']] AS facets,
       COLLECT { MATCH (r)-[:READ_FROM]->(d:Dataset) RETURN [d.namespace, d.name] AS d } AS inputs,
       COLLECT { MATCH (r)-[:WROTE_TO]->(d:Dataset) RETURN [d.namespace, d.name] AS d } AS outputs,
       COLLECT { MATCH (r)-[:RAN_AS]->(v:JobVersion) RETURN v.id AS id } AS versions
"""

_SET_RUN_VERSIONS = """
UNWIND $rows AS row
MATCH (r:Run {runId: row.runId})
MATCH (j:Job {namespace: row.namespace, name: row.name})
MERGE (v:JobVersion {id: row.id})
SET v.jobNamespace = row.namespace, v.jobName = row.name,
    v.definition = row.definition, v.sql = row.sql
MERGE (j)-[:HAS_VERSION]->(v)
FOREACH (d IN row.inputs |
  MERGE (ds:Dataset {namespace: d[0], name: d[1]}) MERGE (v)-[:READS]->(ds))
FOREACH (d IN row.outputs |
  MERGE (ds:Dataset {namespace: d[0], name: d[1]}) MERGE (v)-[:WRITES]->(ds))
WITH r, v
CALL (r, v) {
  MATCH (r)-[old:RAN_AS]->(other:JobVersion) WHERE other <> v
  DELETE old
}
MERGE (r)-[:RAN_AS]->(v)
"""

_DELETE_UNUSED = """
UNWIND $jobs AS key
MATCH (:Job {namespace: key.namespace, name: key.name})-[:HAS_VERSION]->(v:JobVersion)
WHERE NOT EXISTS { (:Run)-[:RAN_AS]->(v) }
DETACH DELETE v
"""

# A version's datasets by their primary names: the pairs with intervals join the datasets under
# the name the as-of questions walk, whichever name (a symlink alias) the events used.
def _primary(node: str) -> str:
    """Cypher for the primary name of the dataset ``node``: the first it is a SYMLINK_OF, else
    itself."""
    return (f"coalesce(head(COLLECT {{ MATCH ({node})-[:SYMLINK_OF]->(p:Dataset) "
            f"RETURN p ORDER BY p.namespace, p.name }}), {node})")


_PRIMARY = _primary("d")

_TIMELINE = f"""
UNWIND $jobs AS key
MATCH (j:Job {{namespace: key.namespace, name: key.name}})
RETURN key.namespace AS namespace, key.name AS name, j.timeline AS stored,
       COLLECT {{ MATCH (j)-[:HAS_RUN]->(r:Run)-[:RAN_AS]->(v:JobVersion)
                 WITH coalesce(r.startedAt, r.firstSeen) AS start, r.runId AS runId, v.id AS id,
                      coalesce(r.columnEdges, []) AS columns
                 ORDER BY start, runId
                 RETURN [start, runId, id, columns] }} AS runs,
       COLLECT {{ MATCH (j)-[:HAS_VERSION]->(v:JobVersion)
                 RETURN {{id: v.id,
                         inputs: COLLECT {{ MATCH (v)-[:READS]->(d) WITH {_PRIMARY} AS d
                                           RETURN [d.namespace, d.name] }},
                         outputs: COLLECT {{ MATCH (v)-[:WRITES]->(d) WITH {_PRIMARY} AS d
                                            RETURN [d.namespace, d.name] }}}} }} AS versions
"""

# The column edges a job's runs reported: a FEEDS between two columns, or an AFFECTS from a
# column to a whole dataset (target field null), from the source column under its dataset's
# primary name (sinks.graph mirrors an edge from an alias's column there). Each keeps, per job,
# the intervals during which the job's valid run reported it: parallel lists validJob /
# validFrom / validTo.
_COLUMN_EDGE = """
  CALL (c) {
    MATCH (named:Dataset {namespace: c.edge[0], name: c.edge[1]})
    WITH """ + _primary("named") + """ AS sd
    MATCH (:Field {namespace: sd.namespace, dataset: sd.name, name: c.edge[2]})
          -[e:FEEDS|AFFECTS {transformation: c.edge[6]}]->(t)
    WHERE CASE WHEN c.edge[5] IS NULL
               THEN t:Dataset AND t.namespace = c.edge[3] AND t.name = c.edge[4]
               ELSE t:Field AND t.namespace = c.edge[3] AND t.dataset = c.edge[4]
                    AND t.name = c.edge[5] END
    RETURN e
  }
"""

_SET_TIMELINE = """
UNWIND $jobs AS job
MATCH (j:Job {namespace: job.namespace, name: job.name})
SET j.timeline = job.hash
WITH j, job
CALL (j) {
  MATCH (j)-[old:VALID_AS]->(:JobVersion)
  DELETE old
}
CALL (j) {
  MATCH (:Dataset)-[e:INPUT_TO]->(j) WHERE e.validFrom IS NOT NULL
  REMOVE e.validFrom, e.validTo
}
CALL (j) {
  MATCH (j)-[e:OUTPUT_TO]->(:Dataset) WHERE e.validFrom IS NOT NULL
  REMOVE e.validFrom, e.validTo
}
CALL (j, job) {
  UNWIND job.intervals AS i
  MATCH (v:JobVersion {id: i.version})
  CREATE (j)-[:VALID_AS {validFrom: i.validFrom, validTo: i.validTo, runs: i.runs}]->(v)
}
CALL (j, job) {
  UNWIND job.versions AS version
  MATCH (v:JobVersion {id: version.id})
  SET v.validFrom = version.validFrom
}
CALL (j, job) {
  UNWIND job.inputs AS p
  MATCH (d:Dataset {namespace: p.namespace, name: p.name})
  MERGE (d)-[e:INPUT_TO]->(j)
  SET e.validFrom = p.validFrom, e.validTo = p.validTo
}
CALL (j, job) {
  UNWIND job.outputs AS p
  MATCH (d:Dataset {namespace: p.namespace, name: p.name})
  MERGE (j)-[e:OUTPUT_TO]->(d)
  SET e.validFrom = p.validFrom, e.validTo = p.validTo
}
CALL (job) {
  UNWIND job.columns AS c
""" + _COLUMN_EDGE + """
  WITH e, c, [i IN range(0, size(coalesce(e.validJob, [])) - 1)
              WHERE e.validJob[i] <> job.key] AS kept
  SET e.validJob = [i IN kept | e.validJob[i]] + [_ IN c.validFrom | job.key],
      e.validFrom = [i IN kept | e.validFrom[i]] + c.validFrom,
      e.validTo = [i IN kept | e.validTo[i]] + c.validTo
}
"""


def column_edge_key(edge: Mapping[str, Any], target_namespace: str, target_dataset: str) -> str:
    """The key under which a Run lists a column edge it reported (``columnEdges``): JSON of
    [source namespace, dataset, field, target namespace, dataset, field or null,
    transformation]."""
    return canonical_json([edge["sourceNamespace"], edge["sourceDataset"], edge["sourceField"],
                           target_namespace, target_dataset, edge["targetField"],
                           edge["transformation"]])


@dataclass(frozen=True)
class Interval:
    """A job's version from ``valid_from`` to ``valid_to`` (None: still valid)."""

    valid_from: datetime
    valid_to: datetime | None
    version: str
    runs: int


def intervals(runs: Iterable[tuple[datetime, str, str]]) -> list[Interval]:
    """The validity intervals of a job's versions from its runs as (start, runId, version),
    sorted by start then runId: a new interval wherever the valid version changes. Of runs
    started at the same instant the last (the greatest runId) is the valid one; ``runs``
    counts the runs of the interval's version started within it."""
    ordered = list(runs)
    valid: dict[datetime, str] = {}
    for start, _run, version in ordered:
        valid[start] = version  # in start order; the last run of an instant wins
    kept: list[tuple[datetime, str]] = []
    for start, version in valid.items():
        if not kept or kept[-1][1] != version:
            kept.append((start, version))
    starts = [start for start, _version in kept]
    counts = [0] * len(kept)
    for start, _run, version in ordered:
        index = bisect_right(starts, start) - 1
        if kept[index][1] == version:
            counts[index] += 1
    return [Interval(start, starts[i + 1] if i + 1 < len(kept) else None, version, counts[i])
            for i, (start, version) in enumerate(kept)]


def schema_intervals(sightings: Iterable[tuple[datetime, str, str | None, bool]]
                     ) -> list[tuple[datetime, datetime | None, str]]:
    """A dataset's versions over time, as (validFrom, validTo or None, version), from every
    sighting of its versions: (eventTime, version, schemaId, written).

    A sighting changes the dataset when it is the first, a write, or carries another schema
    than the sighting just before it (a schema id None, no fields, equals none); the dataset's
    version is then that sighting's until the next change. So a schema that readers see again
    after another is current again (A -> B -> A is three intervals), and a reader that sees the
    schema a write carried does not replace the write. Of sightings at one instant, reads come
    before writes and then go by schema id and version, so the same set gives the same answer
    in any arrival order; the last change of an instant is the valid one.

    >>> from datetime import datetime, UTC
    >>> t = [datetime(2024, 5, d, tzinfo=UTC) for d in (1, 2, 3, 4)]
    >>> [(f.day, e and e.day, v) for f, e, v in schema_intervals(
    ...     [(t[0], "rA", "A", False), (t[1], "rB", "B", False), (t[2], "rA", "A", False),
    ...      (t[3], "w1", "A", True), (t[3], "rA", "A", False), (t[3], "w1", "A", True)])]
    [(1, 2, 'rA'), (2, 3, 'rB'), (3, 4, 'rA'), (4, None, 'w1')]
    """
    changes: dict[datetime, str] = {}
    previous: str | None = None
    for time, version, schema, written in sorted(
            sightings, key=lambda s: (s[0], s[3], s[2] or "", s[1])):
        if not changes or written or schema is None or schema != previous:
            changes[time] = version  # in time order; the last change of an instant wins
        previous = schema
    kept: list[tuple[datetime, str]] = []
    for start, version in changes.items():
        if not kept or kept[-1][1] != version:  # a write seen again is still that write
            kept.append((start, version))
    return [(start, kept[i + 1][0] if i + 1 < len(kept) else None, version)
            for i, (start, version) in enumerate(kept)]


def pair_intervals(timeline: Sequence[Interval], datasets_of: Mapping[str, Iterable[Any]]
                   ) -> dict[tuple[str, str], tuple[list[datetime], list[datetime]]]:
    """For each dataset some version of the timeline uses (``datasets_of[version]``), the
    intervals during which the valid version used it, adjacent ones joined, as (validFrom,
    validTo) lists; an open end is :data:`STILL_VALID`."""
    spans: dict[tuple[str, str], list[list[datetime]]] = defaultdict(list)
    for interval in timeline:
        end = interval.valid_to or STILL_VALID
        for namespace, name in datasets_of.get(interval.version, ()):
            found = spans[(namespace, name)]
            if found and found[-1][1] == interval.valid_from:
                found[-1][1] = end
            else:
                found.append([interval.valid_from, end])
    return {key: ([s[0] for s in found], [s[1] for s in found]) for key, found in spans.items()}


def version_of(namespace: str, name: str, facets: Sequence[str | None],
               inputs: Iterable[Sequence[str]], outputs: Iterable[Sequence[str]]
               ) -> dict[str, Any] | None:
    """The version row of a run from its observations, or None when it named no dataset."""
    in_refs = sorted({(d[0], d[1]) for d in inputs})
    out_refs = sorted({(d[0], d[1]) for d in outputs})
    if not (in_refs or out_refs):
        return None
    definition = {key: json.loads(text)
                  for key, text in zip(DEFINING_JOB_FACETS, facets, strict=True) if text}
    sql = definition.get("sql")
    return {"id": job_version_id(namespace, name, in_refs, out_refs, definition),
            "namespace": namespace, "name": name,
            "inputs": [list(d) for d in in_refs], "outputs": [list(d) for d in out_refs],
            "definition": canonical_json(definition) if definition else None,
            "sql": sql.get("query") if isinstance(sql, dict) and isinstance(
                sql.get("query"), str) else None}


def apply(tx: ManagedTransaction, run_ids: Iterable[str],
          aliases: Iterable[tuple[str, str]] = ()) -> None:
    """Bring the versions of the runs ``run_ids`` and the timelines of their jobs up to date
    with what the graph holds (see the module docstring); also the timelines of the jobs that
    used a dataset of ``aliases`` (new symlink aliases: their pairs move to the primary)."""
    ids = sorted(set(run_ids))
    names = [{"namespace": ns, "name": n} for ns, n in sorted(set(aliases))]
    if not (ids or names):
        return
    jobs = [record.data() for record in tx.run(_LOCK_JOBS, runIds=ids, aliases=names)]
    if not jobs:
        return
    changed = []
    for record in tx.run(_RUN_CONTENT, runIds=ids, facets=list(DEFINING_JOB_FACETS)):
        version = version_of(record["namespace"], record["name"], record["facets"],
                             record["inputs"], record["outputs"])
        if version is not None and record["versions"] != [version["id"]]:
            changed.append({"runId": record["runId"], **version})
    if changed:
        tx.run(_SET_RUN_VERSIONS, rows=changed).consume()
        tx.run(_DELETE_UNUSED, jobs=jobs).consume()
    updates = []
    for record in tx.run(_TIMELINE, jobs=jobs):
        update = _timeline_update(record.data())
        if update is not None:
            updates.append(update)
    if updates:
        tx.run(_SET_TIMELINE, jobs=updates).consume()


# Every version of a dataset's class of names (the primary and its symlink aliases), with its
# sightings: a schema is the dataset's whichever name an event gave it.
_DATASET_SIGHTINGS = f"""
UNWIND $keys AS key
MATCH (named:Dataset {{namespace: key.namespace, name: key.name}})
WITH named, {_primary("named")} AS d
WITH DISTINCT d, named <> d AS alias, named
CALL (named, alias) {{
  WITH named WHERE alias
  SET named.schemaTimeline = null
  WITH named
  MATCH (named)-[old:VALID_AS]->(:DatasetVersion)
  DELETE old
}}
WITH DISTINCT d
RETURN d.namespace AS namespace, d.name AS name, d.schemaTimeline AS stored,
       COLLECT {{
         CALL (d) {{
           MATCH (d)-[:HAS_VERSION]->(v:DatasetVersion) RETURN v
           UNION
           MATCH (d)<-[:SYMLINK_OF]-(:Dataset)-[:HAS_VERSION]->(v:DatasetVersion) RETURN v
         }}
         RETURN [v.id, v.schemaId, EXISTS {{ (:Run)-[:WROTE]->(v) }},
                 coalesce(v.seenAt, [v.validFrom])]
       }} AS versions
"""

_SET_DATASET_TIMELINE = """
UNWIND $datasets AS ds
MATCH (d:Dataset {namespace: ds.namespace, name: ds.name})
SET d.schemaTimeline = ds.hash
WITH d, ds
CALL (d) {
  MATCH (d)-[old:VALID_AS]->(:DatasetVersion)
  DELETE old
}
CALL (d, ds) {
  UNWIND ds.intervals AS i
  MATCH (v:DatasetVersion {id: i.version})
  CREATE (d)-[:VALID_AS {validFrom: i.validFrom, validTo: i.validTo}]->(v)
}
"""


def apply_datasets(tx: ManagedTransaction, datasets: Iterable[tuple[str, str]]) -> None:
    """Bring the schema timelines (:func:`schema_intervals`) of ``datasets`` up to date: each
    as ``(:Dataset)-[:VALID_AS {validFrom, validTo}]->(:DatasetVersion)`` on the primary name,
    from the sightings of every version of every name of the dataset. Called in the sink's
    write transaction after the batch's DatasetVersion and Symlink rows; an alias keeps none."""
    keys = [{"namespace": ns, "name": n} for ns, n in sorted(set(datasets))]
    if not keys:
        return
    updates = []
    for record in tx.run(_DATASET_SIGHTINGS, keys=keys):
        timeline = schema_intervals(
            (_native(time), version, schema, written)
            for version, schema, written, seen in record["versions"] for time in seen)
        update = {"namespace": record["namespace"], "name": record["name"],
                  "intervals": [{"validFrom": start, "validTo": end, "version": version}
                                for start, end, version in timeline]}
        update["hash"] = content_id(update)
        if update["hash"] != record["stored"]:
            updates.append(update)
    if updates:
        tx.run(_SET_DATASET_TIMELINE, datasets=updates).consume()


def run_intervals(runs: Sequence[tuple[datetime, str]]) -> dict[str, tuple[datetime,
                                                                             datetime]]:
    """When each run (start, runId; sorted) is the job's valid run: from its start to the next
    later start (:data:`STILL_VALID` for the last); a run superseded at its own start instant
    (by a greater runId) never is."""
    starts = sorted({start for start, _run in runs})
    later = dict(zip(starts, [*starts[1:], STILL_VALID], strict=False))  # n starts, n ends
    valid = dict(runs)  # start -> run: the last run of each instant
    return {run: (start, later[start]) for start, run in valid.items()}


def column_intervals(runs: Sequence[tuple[datetime, str, Sequence[str]]]
                     ) -> dict[str, tuple[list[datetime], list[datetime]]]:
    """For each column edge key some run reported, the intervals during which the job's valid
    run reported it, adjacent ones joined (runs as (start, runId, edge keys), sorted)."""
    valid = run_intervals([(start, run) for start, run, _edges in runs])
    spans: dict[str, list[list[datetime]]] = defaultdict(list)
    for _start, run, edges in runs:
        if run not in valid:
            continue
        begin, end = valid[run]
        for key in edges:
            found = spans[key]
            if found and found[-1][1] == begin:
                found[-1][1] = end
            else:
                found.append([begin, end])
    for _start, _run, edges in runs:
        for key in edges:
            spans.setdefault(key, [])
    return {key: ([s[0] for s in found], [s[1] for s in found])
            for key, found in sorted(spans.items())}


def _timeline_update(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The parameters of :data:`_SET_TIMELINE` for one job, or None when nothing changed."""
    runs = [(_native(start), run_id, version, columns)
            for start, run_id, version, columns in record["runs"] if start is not None]
    timeline = intervals((start, run_id, version) for start, run_id, version, _ in runs)
    versions = {v["id"]: v for v in record["versions"]}

    def pairs(side: str) -> list[dict[str, Any]]:
        found = pair_intervals(timeline, {v: versions[v][side] for v in versions})
        return [{"namespace": ns, "name": n, "validFrom": starts, "validTo": ends}
                for (ns, n), (starts, ends) in sorted(found.items())]

    first: dict[str, datetime] = {}
    for start, _run, version, _columns in runs:
        first.setdefault(version, start)
    update = {
        "namespace": record["namespace"], "name": record["name"],
        "key": canonical_json([record["namespace"], record["name"]]),
        "intervals": [{"validFrom": i.valid_from, "validTo": i.valid_to,
                       "version": i.version, "runs": i.runs} for i in timeline],
        "versions": [{"id": v, "validFrom": start} for v, start in first.items()],
        "inputs": pairs("inputs"), "outputs": pairs("outputs"),
        "columns": [{"edge": json.loads(key), "validFrom": starts, "validTo": ends}
                    for key, (starts, ends) in column_intervals(
                        [(start, run_id, columns) for start, run_id, _, columns in runs]).items()],
    }
    # What the graph holds for the job already, as a digest: the same, nothing to write.
    update["hash"] = content_id(update)
    return None if update["hash"] == record["stored"] else update


def _native(value: Any) -> Any:
    """A Neo4j DateTime as a Python datetime in UTC (to compare and to send back).

    The driver reads a time back with the zone id ``UTC``; written so, it would be stored as
    ``...Z[UTC]``, which Neo4j orders after the ``...Z`` of the same instant (the records' times,
    the parameters of the questions): a boundary would be off by that tie. ``astimezone(UTC)``
    makes it an offset time again.
    """
    return value.to_native().astimezone(UTC) if hasattr(value, "to_native") else value
