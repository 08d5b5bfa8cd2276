"""The graph contract in Cypher: schema migration, and one idempotent UNWIND statement per kind.

Contract: :func:`rows` turns decoded change records (``schemas/lineage_change.v2.avsc``) into
parameter rows, or raises :class:`ContractViolation` with the reason; :func:`write_batch` applies
rows inside one managed transaction. Every statement is a merge whose result does not depend on
how often or in which order records arrive (DESIGN.md, guarantees 2 and 3):

- nodes and relationships are merged on their keys (uniqueness constraints, :data:`SCHEMA`);
- times keep their earliest (``firstSeen``, ``validFrom``, ``startedAt``) or latest
  (``lastSeen``, ``endedAt``) value;
- a value that can differ between records (a node's facets, a run's state) is taken from the
  record that sorts last by an *order key*: eventTime first, then a content hash, so two
  records with the same time still resolve the same way whatever their arrival order;
- a DatasetVersion keeps every eventTime it was seen at (``seenAt``), and a dataset's validity
  intervals are worked out from all of its versions' sightings; a job's versions and their
  validity intervals from all of its runs (both in :mod:`sinks.timeline`).

A pair (``INPUT_TO`` / ``OUTPUT_TO``) an event names under a symlink alias is mirrored on the
dataset the alias stands for, by whichever of the pair and the ``SYMLINK_OF`` comes second (both
lock the alias node, so two sinks cannot miss each other), so the walks of the lineage questions
never stop at an alias (issue #13, any name of a dataset).

Every value reaches Neo4j as a query parameter; labels and relationship types are constants.

A conditional update is one ``FOREACH`` (or one ``SET``) clause on purpose: Cypher applies a clause
to all rows before the next clause, so a ``WITH ... WHERE n.x < row.x`` followed by ``SET n.x``
would compare every row of a batch with the value from *before* the batch, and the batch's last
row would win whatever its value.

>>> [row["name"] for row in rows("Dataset", [{"eventTime": 0, "payload": ("Dataset",
...     {"namespace": "pg", "name": "it's `odd`", "facets": None})}])]
["it's `odd`"]
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from neo4j import Driver, ManagedTransaction

from core.content import canonical_json
from core.errors import ContractViolation
from schemas.limits import MAX_KEY_BYTES, key_bytes
from sinks import timeline

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TERMINAL_STATES = frozenset({"COMPLETE", "FAIL", "ABORT"})

#: Idempotent schema migration, run by the sink at start-up.
SCHEMA = (
    "CREATE CONSTRAINT job_key IF NOT EXISTS "
    "FOR (n:Job) REQUIRE (n.namespace, n.name) IS UNIQUE",
    "CREATE CONSTRAINT dataset_key IF NOT EXISTS "
    "FOR (n:Dataset) REQUIRE (n.namespace, n.name) IS UNIQUE",
    "CREATE CONSTRAINT run_key IF NOT EXISTS FOR (n:Run) REQUIRE n.runId IS UNIQUE",
    "CREATE CONSTRAINT job_version_key IF NOT EXISTS FOR (n:JobVersion) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT dataset_version_key IF NOT EXISTS "
    "FOR (n:DatasetVersion) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT field_key IF NOT EXISTS "
    "FOR (n:Field) REQUIRE (n.namespace, n.dataset, n.name) IS UNIQUE",
    "CREATE INDEX dataset_name IF NOT EXISTS FOR (n:Dataset) ON (n.name)",
    "CREATE INDEX job_name IF NOT EXISTS FOR (n:Job) ON (n.name)",
    "CREATE INDEX run_state IF NOT EXISTS FOR (n:Run) ON (n.state)",
    "CREATE INDEX field_name IF NOT EXISTS FOR (n:Field) ON (n.name)",
)


def migrate(driver: Driver, database: str | None = None) -> None:
    """Create the constraints and indexes of :data:`SCHEMA` (idempotent) and wait for them."""
    with driver.session(database=database) as session:
        for statement in SCHEMA:
            session.run(statement).consume()
        session.run("CALL db.awaitIndexes(300)").consume()


#: The node labels and relationship types of the graph contract (docs/graph-model.md).
NODE_LABELS = ("Job", "Dataset", "Run", "JobVersion", "DatasetVersion", "Field")
RELATIONSHIP_TYPES = ("INPUT_TO", "OUTPUT_TO", "HAS_VERSION", "READS", "WRITES", "HAS_FIELD",
                      "HAS_RUN", "RAN_AS", "WROTE", "READ_FROM", "WROTE_TO", "CHILD_OF", "FEEDS",
                      "AFFECTS", "SYMLINK_OF", "VALID_AS")


def graph_size(driver: Driver, database: str | None = None
               ) -> tuple[dict[str, int], dict[str, int]]:
    """Nodes by label and relationships by type, for the contract's labels and types.

    Each is a single-label (or single-type) count, which Neo4j answers from its count store
    without touching the graph, so this is cheap at any size.
    """
    # Labels and types cannot be parameters; these come from the constants above, not input.
    # Notifications off: a label the graph does not have yet is a count of 0, not a warning.
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        nodes = {label: session.run(f"MATCH (n:{label}) RETURN count(n) AS c").single(
            strict=True)["c"] for label in NODE_LABELS}
        relationships = {kind: session.run(f"MATCH ()-[r:{kind}]->() RETURN count(r) AS c").single(
            strict=True)["c"] for kind in RELATIONSHIP_TYPES}
    return nodes, relationships


def _earliest(current: str, new: str) -> str:
    return f"CASE WHEN {current} IS NULL OR {new} < {current} THEN {new} ELSE {current} END"


def _latest(current: str, new: str) -> str:
    return f"CASE WHEN {current} IS NULL OR {new} > {current} THEN {new} ELSE {current} END"


_NODE_FACETS = """
UNWIND $rows AS row
MERGE (n:{label} {{namespace: row.namespace, name: row.name}})
SET n.firstSeen = {first}
FOREACH (_ IN CASE WHEN row.facets IS NOT NULL
                    AND (n.facetsOrder IS NULL OR row.order > n.facetsOrder) THEN [1] ELSE [] END |
  SET n.facets = row.facets, n.facetsOrder = row.order, n.description = row.description)
"""

def _keep_latest(key: str) -> str:
    """Cypher keeping a run's behaviour facet ``key`` from its latest event carrying it."""
    facet, order = f"{key}Facet", f"{key}FacetOrder"
    return (f"FOREACH (_ IN CASE WHEN row.{facet} IS NOT NULL\n"
            f"                    AND (r.{order} IS NULL OR row.{order} > r.{order})\n"
            f"               THEN [1] ELSE [] END |\n"
            f"  SET r.{facet} = row.{facet}, r.{order} = row.{order})\n")


_DEFINITION = "".join(_keep_latest(key) for key in timeline.DEFINING_JOB_FACETS)

# The properties of a FEEDS or AFFECTS {r} from a column edge e of a ColumnLineage record.
_EDGE_SET = ("SET {r}.type = e.type, {r}.subtype = e.subtype,\n"
             "        {r}.description = " + _latest("{r}.description", "e.description")
             + ",\n        {r}.masking = CASE WHEN e.masking IS NULL THEN {r}.masking\n"
             "                         ELSE coalesce({r}.masking, false) OR e.masking END")

# The FEEDS (to a column) or AFFECTS (to the whole dataset td) of column edge e from column s.
_COLUMN_EDGE_MERGE = f"""\
  FOREACH (name IN CASE WHEN e.targetField IS NULL THEN [] ELSE [e.targetField] END |
    MERGE (t:Field {{namespace: td.namespace, dataset: td.name, name: name}})
    MERGE (td)-[:HAS_FIELD]->(t)
    MERGE (s)-[f:FEEDS {{transformation: e.transformation}}]->(t)
    {_EDGE_SET.format(r="f")})
  FOREACH (_ IN CASE WHEN e.targetField IS NULL THEN [1] ELSE [] END |
    MERGE (s)-[a:AFFECTS {{transformation: e.transformation}}]->(td)
    {_EDGE_SET.format(r="a")})"""

STATEMENTS: dict[str, str] = {
    "Job": _NODE_FACETS.format(label="Job", first=_earliest("n.firstSeen", "row.t")),
    "Dataset": _NODE_FACETS.format(label="Dataset", first=_earliest("n.firstSeen", "row.t")),
    "DatasetVersion": f"""
UNWIND $rows AS row
MERGE (v:DatasetVersion {{id: row.id}})
SET v.validFrom = {_earliest("v.validFrom", "row.t")},
    v.seenAt = COLLECT {{ UNWIND coalesce(v.seenAt, []) + row.t AS t
                         RETURN DISTINCT t ORDER BY t }},
    v.namespace = row.namespace, v.name = row.name, v.schemaId = row.schemaId
MERGE (d:Dataset {{namespace: row.namespace, name: row.name}})
MERGE (d)-[:HAS_VERSION]->(v)
FOREACH (f IN row.fields |
  MERGE (fld:Field {{namespace: row.namespace, dataset: row.name, name: f.name}})
  MERGE (d)-[:HAS_FIELD]->(fld)
  MERGE (v)-[h:HAS_FIELD]->(fld)
  SET h.type = f.type, h.ordinal = f.ordinal,
      h.description = {_latest("h.description", "f.description")})
FOREACH (runId IN CASE WHEN row.producingRunId IS NULL THEN [] ELSE [row.producingRunId] END |
  MERGE (r:Run {{runId: runId}}) MERGE (r)-[:WROTE]->(v))
""",
    "JobLineage": f"""
UNWIND $rows AS row
MERGE (j:Job {{namespace: row.jobNamespace, name: row.jobName}})
FOREACH (d IN row.inputs |
  MERGE (ds:Dataset {{namespace: d.namespace, name: d.name}})
  MERGE (ds)-[e:INPUT_TO]->(j)
  SET e.firstSeen = {_earliest("e.firstSeen", "row.t")},
      e.lastSeen = {_latest("e.lastSeen", "row.t")})
FOREACH (d IN row.outputs |
  MERGE (ds:Dataset {{namespace: d.namespace, name: d.name}})
  MERGE (j)-[e:OUTPUT_TO]->(ds)
  SET e.firstSeen = {_earliest("e.firstSeen", "row.t")},
      e.lastSeen = {_latest("e.lastSeen", "row.t")})
WITH j, row
CALL (j, row) {{
  UNWIND row.inputs AS d
  MATCH (:Dataset {{namespace: d.namespace, name: d.name}})-[:SYMLINK_OF]->(p:Dataset)
  MERGE (p)-[e:INPUT_TO]->(j)
  SET e.firstSeen = {_earliest("e.firstSeen", "row.t")},
      e.lastSeen = {_latest("e.lastSeen", "row.t")}
}}
CALL (j, row) {{
  UNWIND row.outputs AS d
  MATCH (:Dataset {{namespace: d.namespace, name: d.name}})-[:SYMLINK_OF]->(p:Dataset)
  MERGE (j)-[e:OUTPUT_TO]->(p)
  SET e.firstSeen = {_earliest("e.firstSeen", "row.t")},
      e.lastSeen = {_latest("e.lastSeen", "row.t")}
}}
""",
    "Run": f"""
UNWIND $rows AS row
MERGE (r:Run {{runId: row.runId}})
MERGE (j:Job {{namespace: row.jobNamespace, name: row.jobName}})
MERGE (j)-[:HAS_RUN]->(r)
SET r.jobNamespace = row.jobNamespace, r.jobName = row.jobName,
    r.startedAt = CASE WHEN row.eventType = 'START'
                       THEN {_earliest("r.startedAt", "row.t")} ELSE r.startedAt END,
    r.endedAt = CASE WHEN row.terminal THEN {_latest("r.endedAt", "row.t")} ELSE r.endedAt END,
    r.firstSeen = {_earliest("r.firstSeen", "row.t")}
{_DEFINITION}FOREACH (p IN CASE WHEN row.parentRunId IS NULL THEN [] ELSE [row] END |
  MERGE (pr:Run {{runId: p.parentRunId}})
  MERGE (r)-[:CHILD_OF]->(pr)
  MERGE (pj:Job {{namespace: p.parentJobNamespace, name: p.parentJobName}})
  MERGE (pj)-[:HAS_RUN]->(pr)
  FOREACH (_ IN CASE WHEN pj = j THEN [] ELSE [1] END | MERGE (j)-[:CHILD_OF]->(pj)))
FOREACH (_ IN CASE WHEN row.rootRunId IS NOT NULL
                    AND (r.rootRunId IS NULL OR row.rootRunId > r.rootRunId) THEN [1] ELSE [] END |
  SET r.rootRunId = row.rootRunId, r.rootJobNamespace = row.rootJobNamespace,
      r.rootJobName = row.rootJobName)
FOREACH (repair IN row.repairs |
  SET r.repairs = CASE WHEN repair IN coalesce(r.repairs, []) THEN r.repairs
                       ELSE [x IN coalesce(r.repairs, []) WHERE x < repair] + repair
                            + [x IN coalesce(r.repairs, []) WHERE x > repair] END)
FOREACH (_ IN CASE WHEN r.stateOrder IS NULL OR row.order > r.stateOrder THEN [1] ELSE [] END |
  SET r.state = row.eventType, r.eventTime = row.t, r.stateOrder = row.order,
      r.facets = row.facets)
""",
    "RunIO": """
UNWIND $rows AS row
MERGE (r:Run {runId: row.runId})
FOREACH (d IN row.inputs |
  MERGE (ds:Dataset {namespace: d.namespace, name: d.name})
  MERGE (r)-[e:READ_FROM]->(ds)
  SET e.facets = CASE WHEN e.facets IS NULL OR d.facets > e.facets THEN d.facets
                      ELSE e.facets END
  FOREACH (id IN CASE WHEN d.versionId IS NULL THEN [] ELSE [d.versionId] END |
    MERGE (v:DatasetVersion {id: id}) MERGE (r)-[:READ]->(v)))
FOREACH (d IN row.outputs |
  MERGE (ds:Dataset {namespace: d.namespace, name: d.name})
  MERGE (r)-[e:WROTE_TO]->(ds)
  SET e.facets = CASE WHEN e.facets IS NULL OR d.facets > e.facets THEN d.facets
                      ELSE e.facets END
  FOREACH (id IN CASE WHEN d.versionId IS NULL THEN [] ELSE [d.versionId] END |
    MERGE (v:DatasetVersion {id: id}) MERGE (r)-[:WROTE]->(v)))
""",
    "ColumnLineage": f"""
UNWIND $rows AS row
MERGE (td:Dataset {{namespace: row.targetNamespace, name: row.targetDataset}})
FOREACH (e IN row.edges |
  MERGE (sd:Dataset {{namespace: e.sourceNamespace, name: e.sourceDataset}})
  MERGE (s:Field {{namespace: e.sourceNamespace, dataset: e.sourceDataset, name: e.sourceField}})
  MERGE (sd)-[:HAS_FIELD]->(s)
{_COLUMN_EDGE_MERGE})
WITH row, td
CALL (row, td) {{
  UNWIND row.edges AS e
  MATCH (:Dataset {{namespace: e.sourceNamespace, name: e.sourceDataset}})
        -[:SYMLINK_OF]->(sd:Dataset)
  MERGE (s:Field {{namespace: sd.namespace, dataset: sd.name, name: e.sourceField}})
  MERGE (sd)-[:HAS_FIELD]->(s)
{_COLUMN_EDGE_MERGE}
}}
CALL (row) {{
  WITH row WHERE row.runId IS NOT NULL
  MERGE (r:Run {{runId: row.runId}})
  SET r.columnEdges = COLLECT {{ UNWIND coalesce(r.columnEdges, []) + row.edgeKeys AS k
                                RETURN DISTINCT k ORDER BY k }}
}}
""",
    "Symlink": f"""
UNWIND $rows AS row
MERGE (a:Dataset {{namespace: row.aliasNamespace, name: row.aliasName}})
MERGE (d:Dataset {{namespace: row.datasetNamespace, name: row.datasetName}})
MERGE (a)-[s:SYMLINK_OF]->(d)
SET s.type = {_latest("s.type", "row.type")}
WITH a, d
CALL (a, d) {{
  MATCH (a)-[e:INPUT_TO]->(j:Job)
  MERGE (d)-[m:INPUT_TO]->(j)
  SET m.firstSeen = {_earliest("m.firstSeen", "e.firstSeen")},
      m.lastSeen = {_latest("m.lastSeen", "e.lastSeen")}
}}
CALL (a, d) {{
  MATCH (j:Job)-[e:OUTPUT_TO]->(a)
  MERGE (j)-[m:OUTPUT_TO]->(d)
  SET m.firstSeen = {_earliest("m.firstSeen", "e.firstSeen")},
      m.lastSeen = {_latest("m.lastSeen", "e.lastSeen")}
}}
CALL (a, d) {{
  MATCH (a)-[:HAS_FIELD]->(af:Field)-[f:FEEDS|AFFECTS]->(t)
  MERGE (s:Field {{namespace: d.namespace, dataset: d.name, name: af.name}})
  MERGE (d)-[:HAS_FIELD]->(s)
  WITH s, f, t, {{transformation: f.transformation, type: f.type, subtype: f.subtype,
                  description: f.description, masking: f.masking}} AS e
  FOREACH (_ IN CASE WHEN type(f) = 'FEEDS' THEN [1] ELSE [] END |
    MERGE (s)-[m:FEEDS {{transformation: e.transformation}}]->(t)
    {_EDGE_SET.format(r="m")})
  FOREACH (_ IN CASE WHEN type(f) = 'AFFECTS' THEN [1] ELSE [] END |
    MERGE (s)-[m:AFFECTS {{transformation: e.transformation}}]->(t)
    {_EDGE_SET.format(r="m")})
}}
""",
}

# Nodes before the relationships that refer to them (fewer lock waits), versions before validTo.
# A JobVersion record (written by processors before change schema v2) is not applied: versions
# come from the runs (sinks.timeline), after every other statement of the batch.
ORDER = ("Job", "Dataset", "DatasetVersion", "Run", "JobLineage", "RunIO", "ColumnLineage",
         "Symlink")


def to_datetime(micros: int) -> datetime:
    """Microseconds since the epoch as an aware UTC datetime (a Neo4j DateTime).

    >>> to_datetime(1_500_000).isoformat()
    '1970-01-01T00:00:01.500000+00:00'
    """
    return EPOCH + timedelta(microseconds=micros)


def _order(micros: int, content: str | None, rank: int = 0) -> str:
    """A key that sorts by time, then by ``rank``, then by content, the same on every replay."""
    digest = hashlib.sha256((content or "").encode()).hexdigest()[:16]
    return f"{micros + 2**62:020d}|{rank}|{digest}"


def _required(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise ContractViolation(f"{name} must be a non-empty string, got {value!r}")


def _fits(what: str, *parts: str | None) -> None:
    """Refuse a node key Neo4j's index cannot hold (schemas.limits)."""
    size = key_bytes(*(part or "" for part in parts))
    if size > MAX_KEY_BYTES:
        raise ContractViolation(f"the key of {what} takes {size} bytes of UTF-8; a node key "
                                f"holds at most {MAX_KEY_BYTES} (Neo4j's index limit)")


def _refs_ok(refs: Iterable[Mapping[str, Any]]) -> None:
    for ref in refs:
        _required(ref, "namespace", "name")
        _fits("a dataset", ref["namespace"], ref["name"])


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    """The JSON object ``text`` (empty for None)."""
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ContractViolation(f"{what} is not a JSON object: {exc}") from exc
    if not isinstance(value, dict):
        raise ContractViolation(f"{what} is not a JSON object: {text[:80]!r}")
    return value


def _inner_string(text: str | None, what: str, facet: str, key: str) -> str | None:
    """``text[facet][key]`` of a JSON object text, when that is a string."""
    inner = _json_object(text, what).get(facet)
    value = inner.get(key) if isinstance(inner, dict) else None
    return value if isinstance(value, str) else None


def schema_id(fields: Iterable[Mapping[str, Any]]) -> str | None:
    """What tells one schema from another: a hash of its fields' names and types, in order;
    None for a version without fields (it equals no schema, not even another empty one).

    >>> schema_id([{"name": "id", "type": "int"}]) == schema_id([{"name": "id", "type": "int",
    ...                                                          "description": "the key"}])
    True
    >>> schema_id([])
    """
    columns = [[field["name"], field.get("type")] for field in fields]
    if not columns:
        return None
    return hashlib.sha256(json.dumps(columns).encode()).hexdigest()[:32]


def row(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The parameter row of one decoded record of ``kind`` (checked against the contract)."""
    body: dict[str, Any] = dict(record["payload"][1])
    time = record["eventTime"]
    body["t"] = to_datetime(time)
    if kind in ("Job", "Dataset"):
        _required(body, "namespace", "name")
        _fits(f"a {kind.lower()}", body["namespace"], body["name"])
        body["description"] = _inner_string(body["facets"], "facets", "documentation",
                                            "description")
        body["order"] = _order(time, body["facets"])
    elif kind == "JobVersion":
        _required(body, "id", "jobNamespace", "jobName")
        _refs_ok(body["inputs"])
        _refs_ok(body["outputs"])
        body["sql"] = _inner_string(body["definition"], "definition", "sql", "query")
    elif kind == "DatasetVersion":
        _required(body, "id", "datasetNamespace", "datasetName")
        body["namespace"], body["name"] = body.pop("datasetNamespace"), body.pop("datasetName")
        for field in body["fields"]:
            _required(field, "name")
            _fits("a field", body["namespace"], body["name"], field["name"])
        body["schemaId"] = schema_id(body["fields"])
    elif kind == "JobLineage":
        _required(body, "jobNamespace", "jobName")
        _fits("a job", body["jobNamespace"], body["jobName"])
        _refs_ok(body["inputs"])
        _refs_ok(body["outputs"])
    elif kind == "Run":
        _required(body, "runId", "jobNamespace", "jobName", "eventType")
        _fits("a job", body["jobNamespace"], body["jobName"])
        if body["parentRunId"] is not None:
            _required(body, "parentJobNamespace", "parentJobName")
            _fits("a parent job", body["parentJobNamespace"], body["parentJobName"])
        body["terminal"] = body["eventType"] in TERMINAL_STATES
        # A terminal state wins a tie in time (DESIGN.md, guarantee 3).
        body["order"] = _order(time, f"{body['eventType']}|{body['facets'] or ''}",
                               rank=int(body["terminal"]))
        # Each behaviour facet is kept from the run's latest event that carries it.
        definition = _json_object(body.get("definition"), "definition")
        for key in timeline.DEFINING_JOB_FACETS:
            text = canonical_json(definition[key]) if key in definition else None
            body[f"{key}Facet"], body[f"{key}FacetOrder"] = text, _order(time, text)
    elif kind == "RunIO":
        _required(body, "runId")
        _refs_ok(body["inputs"])
        _refs_ok(body["outputs"])
    elif kind == "ColumnLineage":
        _required(body, "targetNamespace", "targetDataset")
        edges = []
        for edge in body["edges"]:
            _required(edge, "sourceNamespace", "sourceDataset", "sourceField")
            _fits("a field", edge["sourceNamespace"], edge["sourceDataset"], edge["sourceField"])
            _fits("a field", body["targetNamespace"], body["targetDataset"], edge["targetField"])
            kind_of = "/".join(p for p in (edge["type"], edge["subtype"]) if p) or "UNKNOWN"
            edges.append({**edge, "transformation": kind_of})
        body["edges"] = edges
        body["runId"] = body.get("runId")
        body["edgeKeys"] = sorted({timeline.column_edge_key(
            edge, body["targetNamespace"], body["targetDataset"]) for edge in edges})
    elif kind == "Symlink":
        _required(body, "aliasNamespace", "aliasName", "datasetNamespace", "datasetName")
        _fits("a dataset", body["aliasNamespace"], body["aliasName"])
        _fits("a dataset", body["datasetNamespace"], body["datasetName"])
    else:
        raise ContractViolation(f"unknown record kind {kind!r}")
    return body


def rows(kind: str, records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """:func:`row` for each record."""
    return [row(kind, record) for record in records]


def write_batch(tx: ManagedTransaction, batch: Mapping[str, list[dict[str, Any]]],
                timings: dict[str, float] | None = None) -> None:
    """Apply rows grouped by kind (from :func:`row`) in one transaction.

    ``timings``, when given, receives the seconds each kind's statement took (the datasets'
    ``validTo`` as ``VersionValidity``, the jobs' versions and intervals as ``JobTimeline``):
    where a batch's time goes, for the sink's metrics.
    """
    clock = time.perf_counter

    def timed(kind: str, started: float) -> None:
        if timings is not None:
            timings[kind] = clock() - started

    for kind in ORDER:
        kind_rows = batch.get(kind)
        if kind_rows:
            started = clock()
            tx.run(STATEMENTS[kind], rows=kind_rows).consume()
            timed(kind, started)
    datasets = {(r["namespace"], r["name"]) for r in batch.get("DatasetVersion", ())}
    datasets |= {(r[ns], r[n]) for r in batch.get("Symlink", ())
                 for ns, n in (("aliasNamespace", "aliasName"),
                               ("datasetNamespace", "datasetName"))}
    if datasets:
        started = clock()
        timeline.apply_datasets(tx, datasets)
        timed("VersionValidity", started)
    runs = {r["runId"] for kind in ("Run", "RunIO", "ColumnLineage") for r in batch.get(kind, ())
            if r.get("runId") is not None}
    aliases = {(r["aliasNamespace"], r["aliasName"]) for r in batch.get("Symlink", ())}
    if runs or aliases:
        started = clock()
        timeline.apply(tx, runs, aliases)
        timed("JobTimeline", started)
