"""Marquez's lineage read API, ``GET /api/v1/lineage?nodeId=...&depth=N``, answered from Neo4j.

Marquez (the OpenLineage reference server) serves the lineage around one node as a list of nodes
with their edges; its UI and clients read it. ``lineage gateway`` answers the same request from
the graph of docs/graph-model.md (served by :mod:`lineage.read_api`; the request and the answer
are described in docs/gateway.md). This module holds the parts that do not need HTTP:

- :func:`parse_node_id` and :func:`parse_depth` check the query parameters (a
  :class:`core.errors.BadRequest` is a 400);
- :func:`lineage_statement` is the one Cypher statement, every user value a parameter;
- :func:`marquez_graph` shapes its records into Marquez's JSON;
- :func:`fetch_lineage` runs the statement on a driver (blocking: the read API calls it in a
  worker thread).

The graph is every ``Dataset`` and ``Job`` reachable from the node within ``depth`` steps along
``INPUT_TO`` and ``OUTPUT_TO``, in both directions (upstream and downstream: what Marquez
returns). A step is one relationship, dataset to job or job to dataset. Each node lists only the
edges between nodes of the answer. ``data`` holds a subset of Marquez's fields.

>>> parse_node_id("dataset:postgres://db:5432:public.orders")
NodeRef(kind='dataset', namespace='postgres://db:5432', name='public.orders')
>>> records = [
...     {"kind": "Dataset", "namespace": "pg", "name": "raw", "description": None,
...      "ins": [], "outs": [["etl", "load"]], "fields": [], "runs": []},
...     {"kind": "Job", "namespace": "etl", "name": "load", "description": None,
...      "ins": [["pg", "raw"]], "outs": [["pg", "clean"]], "fields": [], "runs": []}]
>>> raw, load = marquez_graph(records)["graph"]
>>> raw["id"], raw["outEdges"]
('dataset:pg:raw', [{'origin': 'dataset:pg:raw', 'destination': 'job:etl:load'}])
>>> load["inEdges"] == raw["outEdges"], load["outEdges"]  # pg:clean is not in the answer
(True, [])
>>> load["data"]["outputs"]
[{'namespace': 'pg', 'name': 'clean'}]
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final, Literal

from core.errors import BadRequest
from lineage.queries import iso

if TYPE_CHECKING:
    from neo4j import Driver

__all__ = [
    "DEFAULT_DEPTH",
    "MAX_DEPTH",
    "NodeRef",
    "fetch_lineage",
    "lineage_parameters",
    "lineage_statement",
    "marquez_graph",
    "node_id",
    "parse_depth",
    "parse_node_id",
    "split_namespace",
]

#: Marquez's default ``depth``.
DEFAULT_DEPTH: Final = 20
#: The deepest ``depth`` accepted: the statement's bound is this literal (see below).
MAX_DEPTH: Final = 20

NodeKind = Literal["dataset", "job", "run"]


@dataclass(frozen=True, slots=True)
class NodeRef:
    """The node a request names. For a run, ``name`` is the run id and ``namespace`` is empty."""

    kind: NodeKind
    namespace: str
    name: str


_KINDS: Final[Mapping[str, NodeKind]] = {"dataset": "dataset", "job": "job"}

# A colon that separates the namespace from the name: not the one of ``scheme://`` and not the
# one before a port (Marquez's rule, NodeId.parts).
_SEPARATOR: Final = re.compile(r":(?!//|\d)")


def split_namespace(rest: str) -> tuple[str, str]:
    """Split ``<namespace>:<name>`` (a node id without its type) as Marquez does.

    The rule (Marquez's ``NodeId`` parser, made total):

    1. with a single ``:``, that colon separates them;
    2. otherwise the separator is the first ``:`` that is neither followed by ``//`` (a URI
       scheme, ``postgres://``) nor by a digit (a port, ``:5432``); the name is everything after
       it, colons included;
    3. when no colon qualifies (say, a name that starts with a digit after a port), the last
       ``:`` separates them. (Marquez fails there.)

    >>> split_namespace("postgres://db:5432:public.orders")
    ('postgres://db:5432', 'public.orders')
    >>> split_namespace("bench://ns-001:mart.job1_out0")
    ('bench://ns-001', 'mart.job1_out0')
    >>> split_namespace("warehouse:orders")
    ('warehouse', 'orders')
    >>> split_namespace("s3://bucket:/path/to/x")
    ('s3://bucket', '/path/to/x')
    >>> split_namespace("kafka://broker:9092:topic:with:colons")
    ('kafka://broker:9092', 'topic:with:colons')
    >>> split_namespace("pg://db:5432:2024_orders")
    ('pg://db:5432', '2024_orders')
    >>> split_namespace("no-separator")
    Traceback (most recent call last):
    ...
    core.errors.BadRequest: expected <namespace>:<name> after the type, got 'no-separator'
    """
    if rest.count(":") == 1:
        namespace, _, name = rest.partition(":")
    else:
        found = _SEPARATOR.search(rest)
        at = found.start() if found is not None else rest.rfind(":")
        namespace, name = (rest[:at], rest[at + 1:]) if at >= 0 else ("", "")
    if not namespace or not name:
        raise BadRequest(f"expected <namespace>:<name> after the type, got {rest!r}")
    return namespace, name


def parse_node_id(value: str | None) -> NodeRef:
    """The node of a ``nodeId``: ``dataset:<namespace>:<name>``, ``job:...`` or ``run:<uuid>``.

    >>> parse_node_id("job:airflow:nightly.load")
    NodeRef(kind='job', namespace='airflow', name='nightly.load')
    >>> parse_node_id("run:0190d6d2-4d4e-7e3b-9c1a-5b5f8d2c1e00").name
    '0190d6d2-4d4e-7e3b-9c1a-5b5f8d2c1e00'
    >>> parse_node_id("table:pg:t")
    Traceback (most recent call last):
    ...
    core.errors.BadRequest: unknown node type 'table' in nodeId: use dataset:, job: or run:
    """
    if not value:
        raise BadRequest("nodeId is required, e.g. nodeId=dataset:<namespace>:<name>")
    prefix, _, rest = value.partition(":")
    kind = _KINDS.get(prefix)
    if kind is not None:
        namespace, name = split_namespace(rest)
        return NodeRef(kind, namespace, name)
    if prefix == "run":
        try:
            return NodeRef("run", "", str(uuid.UUID(rest)))
        except ValueError:
            raise BadRequest(f"a run's nodeId is run:<uuid>, got {value!r}") from None
    raise BadRequest(f"unknown node type {prefix!r} in nodeId: use dataset:, job: or run:")


def parse_depth(value: str | None) -> int:
    """``depth``: a whole number from 0 to :data:`MAX_DEPTH`; :data:`DEFAULT_DEPTH` when absent.

    >>> parse_depth(None), parse_depth("0"), parse_depth("5")
    (20, 0, 5)
    >>> parse_depth("21")
    Traceback (most recent call last):
    ...
    core.errors.BadRequest: depth must be a whole number from 0 to 20, got '21'
    """
    if value is None:
        return DEFAULT_DEPTH
    text = value.strip()
    # isdigit alone would take '²' or '٣'; int() alone would take '+5', '1_0' and ' 5 '.
    if text.isascii() and text.isdigit() and len(text) <= 3 and int(text) <= MAX_DEPTH:
        return int(text)
    raise BadRequest(f"depth must be a whole number from 0 to {MAX_DEPTH}, got {value!r}")


def node_id(kind: str, namespace: str, name: str) -> str:
    """Marquez's id of a node of the graph (``kind`` is a label: ``Dataset`` or ``Job``).

    >>> node_id("Dataset", "postgres://db:5432", "public.orders")
    'dataset:postgres://db:5432:public.orders'
    """
    return f"{kind.lower()}:{namespace}:{name}"


# ---------------------------------------------------------------------------------------------
# The statement
# ---------------------------------------------------------------------------------------------

# How each kind of nodeId finds its start node: by key, through the uniqueness constraints on
# Dataset and Job {namespace, name} and Run {runId}. A run stands for its job (as in Marquez).
_START: Final[Mapping[NodeKind, str]] = {
    "dataset": "MATCH (start:Dataset {namespace: $namespace, name: $name})",
    "job": "MATCH (start:Job {namespace: $namespace, name: $name})",
    "run": "MATCH (start:Job)-[:HAS_RUN]->(:Run {runId: $runId})",
}

_LINEAGE: Final = """\
{start}
MATCH (start)-[:INPUT_TO|OUTPUT_TO*0..{depth}]-(n)
WITH DISTINCT n
RETURN labels(n)[0] AS kind, n.namespace AS namespace, n.name AS name,
       n.description AS description,
       [(n)<-[:INPUT_TO|OUTPUT_TO]-(m) | [m.namespace, m.name]] AS ins,
       [(n)-[:INPUT_TO|OUTPUT_TO]->(m) | [m.namespace, m.name]] AS outs,
       COLLECT {{
         MATCH (n)-[valid:VALID_AS]->(v:DatasetVersion) WHERE valid.validTo IS NULL
         MATCH (v)-[f:HAS_FIELD]->(field:Field)
         RETURN [field.name, f.type, f.description] AS field
         ORDER BY f.ordinal
       }} AS fields,
       COLLECT {{
         MATCH (n)-[:HAS_RUN]->(r:Run)
         RETURN [r.runId, r.state,
                 r.startedAt.epochSeconds * 1000000 + r.startedAt.microsecond,
                 r.endedAt.epochSeconds * 1000000 + r.endedAt.microsecond] AS run
         ORDER BY coalesce(r.startedAt, r.eventTime) DESC, r.runId DESC LIMIT 1
       }} AS runs
"""


@lru_cache(maxsize=3 * (MAX_DEPTH + 1), typed=True)  # typed: True is not 1 here
def lineage_statement(kind: NodeKind, depth: int) -> str:
    """The statement for a node of ``kind``, ``depth`` steps out; its parameters come from
    :func:`lineage_parameters`.

    The expansion is one undirected variable-length pattern whose end nodes are made distinct at
    once, so Neo4j plans a breadth-first pruning expansion: each node is visited once, however
    many paths lead to it. Per node, one row: its neighbours (Python keeps the edges inside the
    answer), the fields of its current dataset version and its latest run. Those come as lists,
    and times as microseconds since the epoch: a large answer has thousands of fields, and the
    driver turns lists and integers into Python values much faster than maps and times.

    >>> print(lineage_statement("dataset", 3).splitlines()[1])
    MATCH (start)-[:INPUT_TO|OUTPUT_TO*0..3]-(n)
    """
    if kind not in _START or type(depth) is not int or not 0 <= depth <= MAX_DEPTH:
        raise BadRequest(f"no lineage statement for {kind!r} at depth {depth!r}")
    # The bound of a variable-length pattern cannot be a parameter in Cypher: the depth is
    # interpolated, and only as an int checked to be within 0..MAX_DEPTH just above (a literal,
    # like the cookbook's *1..40). Every user value (namespace, name, run id) is a parameter.
    return _LINEAGE.format(start=_START[kind], depth=depth)


def lineage_parameters(ref: NodeRef) -> dict[str, str]:
    """The parameters of :func:`lineage_statement` for ``ref``.

    >>> lineage_parameters(NodeRef("job", "airflow", "load"))
    {'namespace': 'airflow', 'name': 'load'}
    """
    if ref.kind == "run":
        return {"runId": ref.name}
    return {"namespace": ref.namespace, "name": ref.name}


# ---------------------------------------------------------------------------------------------
# Marquez's JSON
# ---------------------------------------------------------------------------------------------

# Marquez's RunState for our run states (Marquez maps OpenLineage's event types the same way).
_RUN_STATES: Final = {"START": "RUNNING", "RUNNING": "RUNNING", "OTHER": "RUNNING",
                      "COMPLETE": "COMPLETED", "FAIL": "FAILED", "ABORT": "ABORTED"}


def _refs(pairs: Iterable[Iterable[str]]) -> list[dict[str, str]]:
    return [{"namespace": ns, "name": name} for ns, name in sorted({tuple(p) for p in pairs})]


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _time(micros: int | None) -> str | None:
    return None if micros is None else iso(_EPOCH + timedelta(microseconds=micros))


def _latest_run(runs: list[list[Any]]) -> dict[str, Any] | None:
    if not runs:
        return None
    run_id, state, started, ended = runs[0]
    return {"id": run_id, "state": _RUN_STATES.get(state, state), "startedAt": _time(started),
            "endedAt": _time(ended)}


def _data(record: Mapping[str, Any]) -> dict[str, Any]:
    namespace, name = record["namespace"], record["name"]
    common = {"id": {"namespace": namespace, "name": name}, "name": name,
              "namespace": namespace, "description": record["description"]}
    if record["kind"] == "Dataset":
        fields = [{"name": field, "type": kind, "description": text}
                  for field, kind, text in record["fields"]]
        return {"type": "DB_TABLE", **common, "fields": fields}
    return {"type": "BATCH", **common, "inputs": _refs(record["ins"]),
            "outputs": _refs(record["outs"]), "latestRun": _latest_run(record["runs"])}


def marquez_graph(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Marquez's ``{"graph": [node, ...]}`` from the records of :func:`lineage_statement`.

    A record has ``kind`` (the label), ``namespace``, ``name``, ``description``, ``ins`` and
    ``outs`` (the neighbours' ``[namespace, name]``), ``fields`` (``[name, type, description]``
    of the current version, in order) and ``runs`` (at most one ``[runId, state, startedAt,
    endedAt]``, times in microseconds since the epoch).

    Nodes are sorted by id; ``inEdges`` and ``outEdges`` (sorted) hold only the edges between
    nodes of the answer, ``data`` a subset of Marquez's fields (docs/gateway.md).
    """
    kinds = {"Dataset": "DATASET", "Job": "JOB"}
    rows = {node_id(r["kind"], r["namespace"], r["name"]): r for r in records
            if r["kind"] in kinds}
    # Every edge between two nodes of the answer is an outgoing edge of its origin.
    edges = sorted(
        (origin, target)
        for origin, r in rows.items()
        for target in {node_id("Job" if r["kind"] == "Dataset" else "Dataset", ns, name)
                       for ns, name in r["outs"]}
        if target in rows)
    outgoing: dict[str, list[dict[str, str]]] = {key: [] for key in rows}
    incoming: dict[str, list[dict[str, str]]] = {key: [] for key in rows}
    for origin, target in edges:
        edge = {"origin": origin, "destination": target}
        outgoing[origin].append(edge)
        incoming[target].append(edge)
    graph = [{"id": key, "type": kinds[r["kind"]], "data": _data(r),
              "inEdges": incoming[key], "outEdges": outgoing[key]}
             for key, r in sorted(rows.items())]
    return {"graph": graph}


# ---------------------------------------------------------------------------------------------
# Running it (blocking)
# ---------------------------------------------------------------------------------------------


def fetch_lineage(driver: Driver, ref: NodeRef, depth: int, *, database: str | None = None,
                  timeout: float | None = None) -> dict[str, Any] | None:
    """Marquez's lineage answer around ``ref``, or None when the node is not in the graph.

    Runs in a read transaction (retried by the driver while Neo4j is unavailable, up to its
    ``max_transaction_retry_time``); ``timeout`` bounds it on the server. The driver's errors
    pass through: the caller maps them to answers.
    """
    from neo4j import Query, Result, RoutingControl

    def rows(result: Result) -> list[dict[str, Any]]:
        # A shallow dict per record: Record.data() would walk every nested value again, which
        # costs more than the query on an answer of a few hundred nodes.
        keys = result.keys()
        return [dict(zip(keys, values, strict=True)) for values in result]

    records: list[dict[str, Any]] = driver.execute_query(
        Query(lineage_statement(ref.kind, depth), timeout=timeout), lineage_parameters(ref),
        routing_=RoutingControl.READ, database_=database, result_transformer_=rows)
    if not records:
        return None
    return marquez_graph(records)
