"""Lineage questions in Cypher, and the shaping of their answers, for ``lineage query``.

Each question is one named constant holding one Cypher statement. The same text is a recipe of
``docs/cypher-cookbook.md``: a unit test asserts that every constant of :data:`RECIPES` is
textually identical to the cookbook block marked with its name, and an integration test runs
every cookbook block on a graph written by the real pipeline. So the CLI, the cookbook and the
graph cannot drift apart. (The CLI does not read the Markdown at run time: an installed package
has no ``docs/`` folder, and a typo in the docs must not break the command.)

Every user value reaches Neo4j as a parameter; the only literals are constants of the graph
model (labels, relationship types, run states) and the documented maximum depths
(:data:`MAX_HOPS`).

The functions below the statements are pure: they turn records (as dicts) into JSON-ready values,
trees and tables.

>>> recipes_in("<!-- recipe: ONE -->\\n```cypher\\nRETURN $x AS x\\n```\\n")
{'ONE': 'RETURN $x AS x\\n'}
>>> rows = [{"hops": 1, "kind": "Job", "namespace": "pg", "name": "load",
...          "via": [{"namespace": "pg", "name": "sales"}]},
...         {"hops": 1, "kind": "Dataset", "namespace": "pg", "name": "raw",
...          "via": [{"namespace": "pg", "name": "load"}]}]
>>> print("\\n".join(lineage_tree(("Dataset", "pg", "sales"), rows)))
dataset pg:sales
└── job load
    └── dataset raw
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from typing import Any

from core.errors import ConfigError, LineageError, NotFound, ServiceUnavailable
from core.neo4j_driver import driver
from core.settings import Neo4jSettings

#: The deepest ``--hops``: the literal bound ``*1..40`` is two relationships a hop.
MAX_HOPS = 20

# ---------------------------------------------------------------------------------------------
# The statements. Keep each one identical to its block in docs/cypher-cookbook.md.
# ---------------------------------------------------------------------------------------------

def _primary(node: str) -> str:
    """Cypher for the primary of the dataset ``node`` when it is a SYMLINK_OF alias, else it."""
    return ("coalesce(head(COLLECT { MATCH (" + node + ")-[:SYMLINK_OF]->(d:Dataset)\n"
            "                             RETURN d ORDER BY d.namespace, d.name }), "
            + node + ")")


# Every name of a dataset stands for the same dataset (issue #13, case 4): a symlink alias (a
# SYMLINK_OF start) is resolved to its primary, and the walk starts from the primary and all of
# its aliases, so lineage recorded under any of them counts.
_DATASET = f"""\
MATCH (named:Dataset {{namespace: $namespace, name: $name}})
WITH {_primary("named")} AS asked
WITH asked, [asked] + COLLECT {{ MATCH (asked)<-[:SYMLINK_OF]-(a:Dataset) RETURN a }} AS roots
"""

# A parent job (issue #13, case 5) answers with its own and its child jobs' lineage: the jobs
# whose runs name it in their parent facet, transitively (CHILD_OF, at most 10 levels).
_JOB = """\
MATCH (asked:Job {namespace: $namespace, name: $name})
MATCH (root:Job)-[:CHILD_OF*0..10]->(asked)
WITH asked, collect(DISTINCT root) AS roots
"""

# Upstream walks against the relationships, downstream along them.
_ARROW = {"upstream": ("<-", "-"), "downstream": ("-", "->")}

# The shortest distance of each node from the nearest root. Grouping by root first keeps the
# breadth-first VarLengthExpand(Pruning,BFS) of one root (see the cookbook's maximum depths);
# so does filtering the end nodes only after the aggregation (a filter on n inside the MATCH's
# WHERE makes Neo4j enumerate the paths).
# <VALID> restricts the steps to the pairs valid at $asOf (empty for "ever"). A symlink alias
# is no answer of its own: its pairs are mirrored on its primary (sinks/graph.py), which is.
_REACH = """\
  UNWIND roots AS root
  MATCH p = (root)<IN>[:INPUT_TO|OUTPUT_TO*1..40]<OUT>(n)
  WHERE NOT n IN roots<VALID>
  WITH root, n, min(length(p)) AS steps
  WITH n, min(steps) AS steps
  WHERE NOT EXISTS { (n)-[:SYMLINK_OF]->(:Dataset) }
"""

# A pair (INPUT_TO / OUTPUT_TO) is valid at $asOf when one of its intervals holds it: the job's
# version valid then read or wrote that dataset (see docs/graph-model.md, "Time travel").
_PAIR_VALID = ("any(i IN range(0, size(coalesce({r}.validFrom, [])) - 1)\n"
               "{indent}WHERE {r}.validFrom[i] <= $asOf < {r}.validTo[i])")


def _valid(variable: str, indent: int) -> str:
    """Cypher: the relationship ``variable`` is valid at $asOf (one of its intervals holds it)."""
    return _PAIR_VALID.format(r=variable, indent=" " * indent)


_STEPS_VALID = "\n    AND all(r IN relationships(p) WHERE " + _valid("r", 28) + ")"
_LINK_VALID = "\n                          AND " + _valid("r", 30)

# Which nodes one step closer to the root a node n is linked to; a root that is an alias of
# the asked dataset is shown as the dataset.
_LINK = {"upstream": "(n)-[r:INPUT_TO|OUTPUT_TO]->(m)",
         "downstream": "(m)-[r:INPUT_TO|OUTPUT_TO]->(n)"}

_TREE = """\
CALL (roots) {
<REACH>    AND steps <= 2 * $hops
  WITH steps, collect(n) AS layer ORDER BY steps
  RETURN collect(layer) AS layers
}
UNWIND range(0, size(layers)) AS steps
UNWIND CASE steps WHEN 0 THEN [c IN roots WHERE c:Job AND c <> asked]
                  ELSE layers[steps - 1] END AS n
WITH asked, roots, n, steps,
     CASE WHEN steps <= 1 THEN roots ELSE layers[steps - 2] END AS closer
RETURN (steps + 1) / 2 AS hops, labels(n)[0] AS kind, n.namespace AS namespace, n.name AS name,
       CASE steps
         WHEN 0 THEN COLLECT { MATCH (n)-[:CHILD_OF]->(m) WHERE m IN closer
                               RETURN m {.namespace, .name} AS m ORDER BY m.namespace, m.name }
         ELSE COLLECT { MATCH <LINK> WHERE m IN closer<LINK_VALID>
                        WITH DISTINCT CASE WHEN m:Dataset AND m IN roots THEN asked ELSE m END AS m
                        RETURN m {.namespace, .name} AS m ORDER BY m.namespace, m.name }
       END AS via
ORDER BY steps, kind, namespace, name
"""


def _reach(direction: str, ever: bool = False) -> str:
    into, out = _ARROW[direction]
    return _REACH.replace("<IN>", into).replace("<OUT>", out).replace(
        "<VALID>", "" if ever else _STEPS_VALID)


def _tree_of(asked: str, direction: str, ever: bool = False) -> str:
    """The statement of an upstream/downstream tree (see :data:`DATASET_UPSTREAM`)."""
    return asked + _TREE.replace("<REACH>", _reach(direction, ever)).replace(
        "<LINK>", _LINK[direction]).replace(
        "<LINK_VALID>", "" if ever else _LINK_VALID)


DATASET_UPSTREAM = _tree_of(_DATASET, "upstream")
"""Where does this dataset come from, as of ``$asOf``? The jobs and datasets up to ``$hops``
hops upstream, through the job versions valid then.

A hop is one job: the jobs that write the dataset and their inputs are one hop away. ``via``
names the nodes one step closer to the root that each node is directly linked to (the tree).
A symlink alias stands for its primary, and the lineage of every name of the dataset counts.
"""

DATASET_DOWNSTREAM = _tree_of(_DATASET, "downstream")
"""What is built from this dataset, as of ``$asOf``? The jobs and datasets up to ``$hops``
hops downstream."""

JOB_UPSTREAM = _tree_of(_JOB, "upstream")
"""What does this job depend on, as of ``$asOf``? Its inputs and what made them.

For a parent job (a DAG, a Spark application, a dbt run), the lineage of its child jobs: each
child is a row at hop 0, ``via`` its parent.
"""

JOB_DOWNSTREAM = _tree_of(_JOB, "downstream")
"""What depends on this job (or its child jobs), as of ``$asOf``? Its outputs and what is
built from them."""

DATASET_UPSTREAM_EVER = _tree_of(_DATASET, "upstream", ever=True)
"""Where has this dataset ever come from? Every pair any event named, whenever."""

DATASET_DOWNSTREAM_EVER = _tree_of(_DATASET, "downstream", ever=True)
"""What has ever been built from this dataset?"""

JOB_UPSTREAM_EVER = _tree_of(_JOB, "upstream", ever=True)
"""What has this job (or its child jobs) ever depended on?"""

JOB_DOWNSTREAM_EVER = _tree_of(_JOB, "downstream", ever=True)
"""What has ever depended on this job (or its child jobs)?"""


def _impact(ever: bool) -> str:
    return _DATASET + f"""\
CALL (roots) {{
{_reach("downstream", ever)}  RETURN n, steps
}}
RETURN (steps + 1) / 2 AS hops, labels(n)[0] AS kind, n.namespace AS namespace, n.name AS name
ORDER BY steps, kind, namespace, name
"""


DATASET_IMPACT = _impact(ever=False)
"""What breaks if this dataset changes now (as of ``$asOf``)? Every job and dataset
downstream, with its distance."""

DATASET_IMPACT_EVER = _impact(ever=True)
"""What has ever been downstream of this dataset? Every pair any event named."""

_FIELD_IMPACT = """\
MATCH (root:Field {namespace: $namespace, dataset: $dataset, name: $field})
MATCH p = (root)-[:FEEDS*1..20]->(n:Field)
WHERE n <> root<VALID>
WITH n, min(length(p)) AS hops
RETURN hops, n.namespace AS namespace, n.dataset AS dataset, n.name AS field
ORDER BY hops, namespace, dataset, field
"""

_FIELD_UPSTREAM = """\
MATCH (root:Field {namespace: $namespace, dataset: $dataset, name: $field})
MATCH p = (root)<-[:FEEDS*1..20]-(n:Field)
WHERE n <> root<VALID>
WITH root, n, min(length(p)) AS hops
WITH root, hops, collect(n) AS layer ORDER BY hops
WITH root, collect(layer) AS layers
UNWIND range(1, size(layers)) AS hops
UNWIND layers[hops - 1] AS n
WITH n, hops, CASE hops WHEN 1 THEN [root] ELSE layers[hops - 2] END AS closer
RETURN hops, n.namespace AS namespace, n.dataset AS dataset, n.name AS field,
       COLLECT {
         MATCH (n)-[f:FEEDS]->(m) WHERE m IN closer<VIA_VALID>
         WITH m, f.transformation AS transformation ORDER BY transformation
         WITH m, collect(transformation) AS transformations
         RETURN m {.namespace, .dataset, field: m.name, transformations: transformations} AS e
         ORDER BY e.namespace, e.dataset, e.field
       } AS via
ORDER BY hops, namespace, dataset, field
"""

_FIELD_DOWNSTREAM = """\
MATCH (root:Field {namespace: $namespace, dataset: $dataset, name: $field})
MATCH p = (root)-[:FEEDS*1..20]->(n:Field)
WHERE n <> root<VALID>
WITH root, n, min(length(p)) AS hops
WITH root, hops, collect(n) AS layer ORDER BY hops
WITH root, collect(layer) AS layers
UNWIND range(1, size(layers)) AS hops
UNWIND layers[hops - 1] AS n
WITH n, hops, CASE hops WHEN 1 THEN [root] ELSE layers[hops - 2] END AS closer
RETURN hops, n.namespace AS namespace, n.dataset AS dataset, n.name AS field,
       COLLECT {
         MATCH (m)-[f:FEEDS]->(n) WHERE m IN closer<VIA_VALID>
         WITH m, f.transformation AS transformation ORDER BY transformation
         WITH m, collect(transformation) AS transformations
         RETURN m {.namespace, .dataset, field: m.name, transformations: transformations} AS e
         ORDER BY e.namespace, e.dataset, e.field
       } AS via
ORDER BY hops, namespace, dataset, field
"""



def _columns_at(template: str, ever: bool) -> str:
    """A column recipe as of $asOf (each FEEDS / AFFECTS valid then), or ever."""
    # HAS_FIELD (from a column to its dataset, in the walk of COLUMN_UPSTREAM) has no interval.
    steps = (_STEPS_VALID if "HAS_FIELD*" not in template else
             "\n    AND all(r IN relationships(p) WHERE type(r) = 'HAS_FIELD'\n"
             "                                        OR " + _valid("r", 43) + ")")
    via = "\n                          AND " + _valid("f", 30)
    direct = "\n                 AND " + _valid("r", 23)
    return (template.replace("<VALID>", "" if ever else steps)
            .replace("<VIA_VALID>", "" if ever else via)
            .replace("<DIRECT_VALID>", "" if ever else direct))


FIELD_IMPACT = _columns_at(_FIELD_IMPACT, ever=False)
"""What breaks if this column changes (as of ``$asOf``)? Every column it feeds, with its
distance."""

FIELD_UPSTREAM = _columns_at(_FIELD_UPSTREAM, ever=False)
"""Where does this column come from (as of ``$asOf``)? Every column that feeds it, with the
transformations."""

FIELD_DOWNSTREAM = _columns_at(_FIELD_DOWNSTREAM, ever=False)
"""What does this column feed (as of ``$asOf``)? Every column built from it, with the
transformations."""

FIELD_IMPACT_EVER = _columns_at(_FIELD_IMPACT, ever=True)
"""What has this column ever fed?"""

FIELD_UPSTREAM_EVER = _columns_at(_FIELD_UPSTREAM, ever=True)
"""Where has this column ever come from?"""

FIELD_DOWNSTREAM_EVER = _columns_at(_FIELD_DOWNSTREAM, ever=True)
"""What has this column ever fed, with the transformations?"""

# The column named, under any name of its dataset (issue #13, case 4).
_COLUMN = f"""\
MATCH (named:Dataset {{namespace: $namespace, name: $dataset}})
WITH {_primary("named")} AS asked
MATCH (asked)<-[:SYMLINK_OF*0..1]-(:Dataset)-[:HAS_FIELD]->(root:Field {{name: $field}})
WITH collect(root) AS roots
"""

# Indirect column dependencies (issue #13, case 6): a column is indirect in an answer when no
# path of direct edges reaches it; a direct edge is a FEEDS whose transformation is DIRECT (or
# unknown), an AFFECTS (a dataset-level dependency: join, filter, group by, ...) never is.
# A column of a symlink alias is no answer of its own: its edges are mirrored on the primary.
_COLUMN_WALK = """\
CALL (roots) {
  UNWIND roots AS root
  MATCH p = <PATH>
  WHERE NOT n IN roots<VALID>
  WITH root, n, min(<HOPS>) AS hops
  WITH n, min(hops) AS hops
  WHERE hops <= 20
    AND NOT EXISTS { (n)<-[:HAS_FIELD*0..1]-(:Dataset)-[:SYMLINK_OF]->(:Dataset) }
  WITH hops, collect(n) AS layer ORDER BY hops
  RETURN collect(layer) AS layers
}
CALL (roots) {
  UNWIND roots AS root
  MATCH p = <DIRECT>
  WHERE all(r IN relationships(p)
            WHERE split(r.transformation, '/')[0] IN ['DIRECT', 'UNKNOWN']<DIRECT_VALID>)
  RETURN collect(DISTINCT n) AS direct
}
UNWIND range(1, size(layers)) AS hops
UNWIND layers[hops - 1] AS n
WITH n, hops, NOT n IN direct AS indirect,
     CASE hops WHEN 1 THEN roots ELSE layers[hops - 2] END AS closer
RETURN hops, n.namespace AS namespace, coalesce(n.dataset, n.name) AS dataset,
       CASE WHEN n:Field THEN n.name END AS field, indirect,
       COLLECT {
         MATCH <EDGE> WHERE m IN closer<VIA_VALID>
         WITH DISTINCT m, f.transformation AS transformation ORDER BY transformation
         WITH m, collect(transformation) AS transformations
         RETURN m {.namespace, .dataset, field: m.name, transformations: transformations} AS e
         ORDER BY e.namespace, e.dataset, e.field
       } AS via
ORDER BY hops, namespace, dataset, field
"""

_COLUMN_UPSTREAM = _COLUMN + _COLUMN_WALK.replace(
    # Against the flow: a FEEDS into the column, or an AFFECTS into its dataset, reached from
    # the column through the dataset's HAS_FIELD, which is no hop. So the distance is not the
    # path's length, and the paths are enumerated (bounded: 40 relationships).
    "<PATH>", "(root)<-[:FEEDS|AFFECTS|HAS_FIELD*1..40]-(n:Field)").replace(
    "<HOPS>", "size([r IN relationships(p) WHERE type(r) <> 'HAS_FIELD'])").replace(
    "<DIRECT>", "(root)<-[:FEEDS*1..20]-(n)").replace(
    "<EDGE>", "(n)-[f:FEEDS|AFFECTS]->()-[:HAS_FIELD*0..1]->(m)")

_COLUMN_DOWNSTREAM = _COLUMN + _COLUMN_WALK.replace(
    # Along the flow: FEEDS to columns, AFFECTS to a whole dataset (``field`` null), where the
    # walk ends. Every relationship is a hop: breadth-first.
    "<PATH>", "(root)-[:FEEDS|AFFECTS*1..20]->(n)").replace("<HOPS>", "length(p)").replace(
    "<DIRECT>", "(root)-[:FEEDS*1..20]->(n)").replace("<EDGE>", "(m)-[f:FEEDS|AFFECTS]->(n)")

COLUMN_UPSTREAM = _columns_at(_COLUMN_UPSTREAM, ever=False)
"""Where does this column come from, as of ``$asOf``? The columns that feed it and those that
join, filter, group... its dataset (``indirect``), with the transformations of each edge of the
tree: the column lineage that the runs valid at ``$asOf`` reported."""

COLUMN_DOWNSTREAM = _columns_at(_COLUMN_DOWNSTREAM, ever=False)
"""What does this column feed, directly or not, as of ``$asOf``? Columns, and datasets it joins
or filters (``field`` null), each ``indirect`` or not, with the transformations of each edge."""

COLUMN_UPSTREAM_EVER = _columns_at(_COLUMN_UPSTREAM, ever=True)
"""Where has this column ever come from, directly or not? Every column edge ever reported."""

COLUMN_DOWNSTREAM_EVER = _columns_at(_COLUMN_DOWNSTREAM, ever=True)
"""What has this column ever fed, directly or not?"""

# As of a time, a flow step is taken only when the pair is valid then: the job's version valid
# at $asOf reads or writes that dataset; each job row carries that version and its interval.
_AS_OF = """\
CALL (roots) {
<REACH>    AND steps <= 2 * $hops
  RETURN n, steps
}
OPTIONAL MATCH (n)-[i:VALID_AS]->(v:JobVersion)
WHERE i.validFrom <= $asOf AND (i.validTo IS NULL OR $asOf < i.validTo)
RETURN (steps + 1) / 2 AS hops, labels(n)[0] AS kind, n.namespace AS namespace, n.name AS name,
       v.id AS version, i.validFrom AS validFrom, i.validTo AS validTo, v.sql AS sql
ORDER BY steps, kind, namespace, name
"""


def _as_of(direction: str) -> str:
    """The statement of the lineage as of ``$asOf`` (see :data:`AS_OF_UPSTREAM`)."""
    return _DATASET + _AS_OF.replace("<REACH>", _reach(direction))


AS_OF_UPSTREAM = _as_of("upstream")
"""Where did this dataset come from at time ``$asOf``? Through the job versions valid then.

Each ``INPUT_TO``/``OUTPUT_TO`` step is taken only when the job's version valid at ``$asOf``
read/wrote that dataset (the pair's intervals); a job row carries that version.
"""

AS_OF_DOWNSTREAM = _as_of("downstream")
"""What was built from this dataset at time ``$asOf``? Through the job versions valid then."""

DATASET_HISTORY = """\
MATCH (:Dataset {namespace: $namespace, name: $name})-[valid:VALID_AS]->(v:DatasetVersion)
WITH valid, v, COLLECT {
          MATCH (v)-[h:HAS_FIELD]->(f:Field)
          RETURN [f.name, h.type] AS column ORDER BY h.ordinal
        } AS columns
ORDER BY valid.validFrom
WITH collect({valid: valid, version: v, columns: columns}) AS versions
UNWIND range(0, size(versions) - 1) AS i
WITH versions[i].valid AS valid, versions[i].version AS v, versions[i].columns AS columns,
     CASE i WHEN 0 THEN [] ELSE versions[i - 1].columns END AS before
RETURN v.id AS version, valid.validFrom AS validFrom, valid.validTo AS validTo,
       COLLECT { MATCH (r:Run)-[:WROTE]->(v) RETURN r {.runId, .state} AS r
                 ORDER BY r.runId } AS writtenBy,
       [c IN columns | c[0]] AS fields,
       [c IN columns WHERE NOT c[0] IN [b IN before | b[0]] | c[0]] AS added,
       [b IN before WHERE NOT b[0] IN [c IN columns | c[0]] | b[0]] AS removed,
       [c IN columns WHERE any(b IN before WHERE b[0] = c[0]
                               AND coalesce(b[1], '') <> coalesce(c[1], ''))
        | {field: c[0], before: [b IN before WHERE b[0] = c[0]][0][1], after: c[1]}] AS retyped
ORDER BY validFrom, version
"""
"""How did this dataset change? Its versions in time order (a schema that comes back is a
version again), each against the one before."""

DATASET_SCHEMA = """\
MATCH (:Dataset {namespace: $namespace, name: $name})-[valid:VALID_AS]->(v:DatasetVersion)
WHERE valid.validFrom <= $asOf AND (valid.validTo IS NULL OR $asOf < valid.validTo)
MATCH (v)-[h:HAS_FIELD]->(f:Field)
RETURN f.name AS field, h.type AS type, h.description AS description, v.id AS version,
       valid.validFrom AS validFrom, valid.validTo AS validTo
ORDER BY h.ordinal
"""
"""What was this dataset's schema at time ``$asOf``? The fields of the version valid then."""

JOB_HISTORY = """\
MATCH (:Job {namespace: $namespace, name: $name})-[i:VALID_AS]->(v:JobVersion)
RETURN v.id AS version, i.validFrom AS validFrom, i.validTo AS validTo, v.sql AS sql,
       COLLECT { MATCH (v)-[:READS]->(d) RETURN d {.namespace, .name} AS d
                 ORDER BY d.namespace, d.name } AS reads,
       COLLECT { MATCH (v)-[:WRITES]->(d) RETURN d {.namespace, .name} AS d
                 ORDER BY d.namespace, d.name } AS writes,
       i.runs AS runs
ORDER BY validFrom, version
"""
"""How did this job change? Its versions in time order, one row per validity interval (a
version valid again after another is a row again), with their SQL, inputs, outputs and runs."""

DATASET_VERSION_DIFF = """\
MATCH (a:DatasetVersion {id: $from})
MATCH (b:DatasetVersion {id: $to})
WITH a, b,
     COLLECT { MATCH (a)-[h:HAS_FIELD]->(f:Field)
               RETURN [f.name, h.type] AS column ORDER BY h.ordinal } AS before,
     COLLECT { MATCH (b)-[h:HAS_FIELD]->(f:Field)
               RETURN [f.name, h.type] AS column ORDER BY h.ordinal } AS after
RETURN a {.id, .namespace, .name, .validFrom} AS fromVersion,
       b {.id, .namespace, .name, .validFrom} AS toVersion,
       [c IN after WHERE NOT c[0] IN [b IN before | b[0]] | c[0]] AS added,
       [b IN before WHERE NOT b[0] IN [c IN after | c[0]] | b[0]] AS removed,
       [c IN after WHERE any(b IN before WHERE b[0] = c[0]
                             AND coalesce(b[1], '') <> coalesce(c[1], ''))
        | {field: c[0], before: [b IN before WHERE b[0] = c[0]][0][1], after: c[1]}] AS retyped
"""
"""What changed between two versions of a dataset? Fields added, removed and retyped."""

JOB_VERSION_DIFF = """\
MATCH (a:JobVersion {id: $from})
MATCH (b:JobVersion {id: $to})
WITH a, b,
     COLLECT { MATCH (a)-[:READS]->(d) RETURN d {.namespace, .name} AS d } AS readsBefore,
     COLLECT { MATCH (b)-[:READS]->(d) RETURN d {.namespace, .name} AS d } AS readsAfter,
     COLLECT { MATCH (a)-[:WRITES]->(d) RETURN d {.namespace, .name} AS d } AS writesBefore,
     COLLECT { MATCH (b)-[:WRITES]->(d) RETURN d {.namespace, .name} AS d } AS writesAfter
RETURN a {.id, .jobNamespace, .jobName, .validFrom} AS fromVersion,
       b {.id, .jobNamespace, .jobName, .validFrom} AS toVersion,
       a.sql AS sqlBefore, b.sql AS sqlAfter,
       [d IN readsAfter WHERE NOT d IN readsBefore] AS readsAdded,
       [d IN readsBefore WHERE NOT d IN readsAfter] AS readsRemoved,
       [d IN writesAfter WHERE NOT d IN writesBefore] AS writesAdded,
       [d IN writesBefore WHERE NOT d IN writesAfter] AS writesRemoved
"""
"""What changed between two versions of a job? Its SQL, and the datasets it reads and writes."""

JOB_RUNS = """\
MATCH (:Job {namespace: $namespace, name: $name})-[:HAS_RUN]->(r:Run)
OPTIONAL MATCH (r)-[:CHILD_OF]->(parent:Run)<-[:HAS_RUN]-(parentJob:Job)
RETURN r.runId AS runId, r.state AS state, r.startedAt AS startedAt, r.endedAt AS endedAt,
       duration.inSeconds(r.startedAt, r.endedAt).milliseconds / 1000.0 AS seconds,
       COLLECT { MATCH (r)-[:RAN_AS]->(v:JobVersion) RETURN v.id AS id
                 ORDER BY v.validFrom, id } AS versions,
       CASE WHEN parent IS NOT NULL
            THEN {runId: parent.runId, jobNamespace: parentJob.namespace, job: parentJob.name}
       END AS parent
ORDER BY coalesce(r.startedAt, r.eventTime) DESC, runId
LIMIT $limit
"""
"""How did this job's runs go? The latest ``$limit`` runs: state, start, end and duration."""

FAILED_RUN_OUTPUTS = """\
MATCH (d:Dataset)<-[:WROTE_TO]-(r:Run {state: 'FAIL'})<-[:HAS_RUN]-(job:Job)
WHERE d.namespace = $namespace AND d.name IS NOT NULL
RETURN d.name AS dataset, job.namespace AS jobNamespace, job.name AS job, r.runId AS runId,
       r.endedAt AS failedAt,
       EXISTS { MATCH (d)<-[:WROTE_TO]-(later:Run {state: 'COMPLETE'})
                WHERE later.endedAt > r.endedAt } AS rewrittenSince
ORDER BY failedAt DESC, dataset, runId
"""
"""Which datasets did failed runs write? With the run, and whether a later run rewrote them."""

UNREAD_DATASETS = """\
MATCH (d:Dataset)
WHERE d.namespace = $namespace AND d.name IS NOT NULL
  AND NOT EXISTS { (d)-[:SYMLINK_OF]->(:Dataset) }
  AND NOT EXISTS { (d)<-[:SYMLINK_OF*0..1]-(:Dataset)-[:INPUT_TO]->(:Job) }
CALL (d) {
  OPTIONAL MATCH (job:Job)-[w:OUTPUT_TO]->(d)
  WITH job, w ORDER BY job.namespace, job.name
  RETURN [j IN collect(job) | j {.namespace, .name}] AS writtenBy, max(w.lastSeen) AS lastWritten
}
RETURN d.name AS dataset, writtenBy, lastWritten
ORDER BY dataset
"""
"""Which datasets does nobody read? No job ever read them (nor an alias of them)."""

DATASET_FLOW = """\
CALL () {
  MATCH (source:Dataset)-[:INPUT_TO]->(job:Job)-[:OUTPUT_TO]->(target:Dataset)
  WHERE source.namespace = $namespace AND source.name IS NOT NULL
  RETURN source, job, target
  UNION
  MATCH (source:Dataset)-[:INPUT_TO]->(job:Job)-[:OUTPUT_TO]->(target:Dataset)
  WHERE target.namespace = $namespace AND target.name IS NOT NULL
  RETURN source, job, target
}
WITH source, target, job ORDER BY job.name
RETURN source.namespace AS sourceNamespace, source.name AS source,
       target.namespace AS targetNamespace, target.name AS target, collect(job.name) AS jobs
ORDER BY sourceNamespace, source, targetNamespace, target
"""
"""How do the datasets of a namespace feed each other? Dataset pairs, the jobs hidden."""

DATASET_NAMES = f"""\
MATCH (named:Dataset {{namespace: $namespace, name: $name}})
WITH named, {_primary("named")} AS primary
RETURN primary.namespace AS namespace, primary.name AS name, primary <> named AS alias,
       COLLECT {{ MATCH (primary)<-[s:SYMLINK_OF]-(a:Dataset)
                 RETURN a {{.namespace, .name, type: s.type}} AS a
                 ORDER BY a.namespace, a.name }} AS aliases
"""
"""Which dataset does this name mean? Its primary (itself unless it is a symlink alias) and the
primary's aliases."""

FIND_DATASETS = """\
MATCH (d:Dataset)
WHERE d.name IN $names
RETURN d.namespace AS namespace, d.name AS name
ORDER BY namespace, name
"""
"""Which namespaces hold a dataset of one of these names?"""

FIND_JOBS = """\
MATCH (j:Job)
WHERE j.name IN $names
RETURN j.namespace AS namespace, j.name AS name
ORDER BY namespace, name
"""
"""Which namespaces hold a job of one of these names?"""

DATASET_FIELDS = """\
MATCH (d:Dataset {namespace: $namespace, name: $name})-[:HAS_FIELD]->(f:Field)
OPTIONAL MATCH (d)-[valid:VALID_AS]->(:DatasetVersion)-[h:HAS_FIELD]->(f)
WHERE valid.validTo IS NULL
RETURN f.name AS field, h.type AS currentType
ORDER BY field
"""
"""Which columns has this dataset had? With the type in its current version (null: gone)."""

#: Every statement by name: the names of the cookbook's recipe markers.
RECIPES: dict[str, str] = {
    "DATASET_UPSTREAM": DATASET_UPSTREAM, "DATASET_DOWNSTREAM": DATASET_DOWNSTREAM,
    "JOB_UPSTREAM": JOB_UPSTREAM, "JOB_DOWNSTREAM": JOB_DOWNSTREAM,
    "DATASET_IMPACT": DATASET_IMPACT, "FIELD_IMPACT": FIELD_IMPACT,
    "DATASET_UPSTREAM_EVER": DATASET_UPSTREAM_EVER,
    "DATASET_DOWNSTREAM_EVER": DATASET_DOWNSTREAM_EVER,
    "JOB_UPSTREAM_EVER": JOB_UPSTREAM_EVER, "JOB_DOWNSTREAM_EVER": JOB_DOWNSTREAM_EVER,
    "DATASET_IMPACT_EVER": DATASET_IMPACT_EVER,
    "FIELD_IMPACT_EVER": FIELD_IMPACT_EVER, "FIELD_UPSTREAM_EVER": FIELD_UPSTREAM_EVER,
    "FIELD_DOWNSTREAM_EVER": FIELD_DOWNSTREAM_EVER, "COLUMN_UPSTREAM_EVER": COLUMN_UPSTREAM_EVER,
    "COLUMN_DOWNSTREAM_EVER": COLUMN_DOWNSTREAM_EVER,
    "FIELD_UPSTREAM": FIELD_UPSTREAM, "FIELD_DOWNSTREAM": FIELD_DOWNSTREAM,
    "COLUMN_UPSTREAM": COLUMN_UPSTREAM, "COLUMN_DOWNSTREAM": COLUMN_DOWNSTREAM,
    "AS_OF_UPSTREAM": AS_OF_UPSTREAM, "AS_OF_DOWNSTREAM": AS_OF_DOWNSTREAM,
    "DATASET_HISTORY": DATASET_HISTORY, "JOB_HISTORY": JOB_HISTORY,
    "DATASET_VERSION_DIFF": DATASET_VERSION_DIFF, "JOB_VERSION_DIFF": JOB_VERSION_DIFF,
    "JOB_RUNS": JOB_RUNS, "FAILED_RUN_OUTPUTS": FAILED_RUN_OUTPUTS,
    "UNREAD_DATASETS": UNREAD_DATASETS, "DATASET_FLOW": DATASET_FLOW,
    "FIND_DATASETS": FIND_DATASETS, "FIND_JOBS": FIND_JOBS, "DATASET_FIELDS": DATASET_FIELDS,
    "DATASET_SCHEMA": DATASET_SCHEMA,
    "DATASET_NAMES": DATASET_NAMES,
}

# ---------------------------------------------------------------------------------------------
# Pure functions: the cookbook's blocks, references, values, trees and tables.
# ---------------------------------------------------------------------------------------------

_RECIPE = re.compile(r"<!-- recipe: (\w+) -->\n```cypher\n(.*?)```", re.DOTALL)
_CYPHER_BLOCK = re.compile(r"^```cypher$", re.MULTILINE)


def recipes_in(markdown: str) -> dict[str, str]:
    """The Cypher blocks of a cookbook, by the name in the ``<!-- recipe: NAME -->`` above each.

    Refuses a ```` ```cypher ```` block without a name and a name used twice, so every block of
    the cookbook can be run by a test.
    """
    found: dict[str, str] = {}
    for match in _RECIPE.finditer(markdown):
        name = match.group(1)
        if name in found:
            raise ValueError(f"recipe {name} appears twice")
        found[name] = match.group(2)
    unnamed = len(_CYPHER_BLOCK.findall(markdown)) - len(found)
    if unnamed:
        raise ValueError(f"{unnamed} cypher block(s) without a <!-- recipe: NAME --> marker")
    return found


def reference_candidates(ref: str) -> list[tuple[str, str]]:
    """The (namespace, name) pairs ``ref`` can mean: split at each ``:``, the last one first.

    Namespaces hold colons (``postgres://db:5432``) more often than names do, so the split at
    the last colon is tried first; the caller keeps the candidates that exist.

    >>> reference_candidates("postgres://db:5432:public.orders")
    [('postgres://db:5432', 'public.orders'), ('postgres://db', '5432:public.orders'), \
('postgres', '//db:5432:public.orders')]
    >>> reference_candidates("orders")
    []
    """
    return [(ref[:i], ref[i + 1:]) for i in range(len(ref) - 1, 0, -1)
            if ref[i] == ":" and i + 1 < len(ref)]


def choose(kind: str, ref: str, candidates: Sequence[tuple[str, str]],
           found: Iterable[tuple[str, str]]) -> tuple[str, str]:
    """The one existing node ``ref`` names, from the nodes ``found`` under candidate names.

    ``candidates`` empty means ``ref`` is a bare name: any namespace. Raises :class:`NotFound`
    (none, with the namespaces that hold that name as a hint) or :class:`LineageError` (several).

    >>> choose("dataset", "pg:a", [("pg", "a")], [("pg", "a"), ("mysql", "a")])
    ('pg', 'a')
    """
    existing = sorted(set(found))
    matches = [pair for pair in existing if pair in candidates] if candidates else existing
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise LineageError(
            f"{display(ref)} names {len(matches)} {kind}s: "
            + ", ".join(display_ref(ns, name) for ns, name in matches),
            hint=f"name one exactly with --namespace NS NAME, e.g. --namespace "
                 f"{display(matches[0][0])} {display(matches[0][1])}")
    elsewhere = [pair for pair in existing if pair not in candidates]
    if elsewhere:
        hint = (f"a {kind} of that name is in " + ", ".join(display_ref(ns, name)
                                                          for ns, name in elsewhere[:5]))
    else:
        hint = ("names are exact and case-sensitive; NS:NAME splits at a colon, "
                "--namespace NS NAME takes the name as it is")
    raise NotFound(f"no {kind} {display(ref)}", hint=hint)


def display(text: str) -> str:
    """``text`` for a terminal: as it is, or as a JSON string when it holds control characters.

    >>> display("mart.sales"), display("two\\nlines")
    ('mart.sales', '"two\\\\nlines"')
    """
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def display_ref(namespace: str, name: str) -> str:
    """``namespace:name`` for a terminal (see :func:`display`)."""
    return display(f"{namespace}:{name}")


def iso(value: datetime) -> str:
    """A time in UTC, ISO 8601 with ``Z``, as precise as it needs to be.

    >>> iso(datetime(2024, 3, 1, 2, 40, 0, 250000, tzinfo=UTC))
    '2024-03-01T02:40:00.250Z'
    """
    value = value.astimezone(UTC)
    spec = ("seconds" if not value.microsecond else
            "milliseconds" if not value.microsecond % 1000 else "microseconds")
    return value.isoformat(timespec=spec).replace("+00:00", "Z")


def plain(value: Any) -> Any:
    """A query result value as JSON-ready data: times become ISO 8601 text (UTC, ``Z``).

    >>> plain({"at": datetime(2024, 3, 1, tzinfo=UTC), "n": [1, None]})
    {'at': '2024-03-01T00:00:00Z', 'n': [1, None]}
    """
    if hasattr(value, "to_native"):  # neo4j.time.DateTime, Date, Time
        value = value.to_native()
    elif hasattr(value, "iso_format"):  # neo4j.time.Duration: ISO 8601, e.g. PT5M
        return value.iso_format()
    if isinstance(value, datetime):
        return iso(value) if value.tzinfo else value.isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {key: plain(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def parse_time(text: str) -> datetime:
    """A time given on the command line: ISO 8601, a date, UTC when it has no offset.

    >>> iso(parse_time("2024-03-01")), iso(parse_time("2024-03-01T12:00:00+02:00"))
    ('2024-03-01T00:00:00Z', '2024-03-01T10:00:00Z')
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ConfigError(f"{display(text)} is not a time",
                          hint="give ISO 8601, e.g. 2024-03-01T12:00:00Z or 2024-03-01") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def duration_text(seconds: float | None) -> str:
    """Seconds as ``h:mm:ss`` (with milliseconds when there are any); ``-`` for none.

    >>> duration_text(600.25), duration_text(14400), duration_text(None)
    ('0:10:00.250', '4:00:00', '-')
    """
    if seconds is None:
        return "-"
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    whole, fraction = divmod(rest, 1000)
    return f"{hours}:{minutes:02d}:{whole:02d}" + (f".{fraction:03d}" if fraction else "")


def _kind_label(kind: str) -> str:
    return "job" if kind == "Job" else "dataset"


def _relative(namespace: str, name: str, home: str) -> str:
    """A name, prefixed by its namespace when that differs from the root's."""
    return display(name) if namespace == home else display_ref(namespace, name)


def _tree(root: str, children: Mapping[Any, list[tuple[Any, str]]], root_key: Any) -> list[str]:
    """Render a layered DAG as a tree; a node met again is not expanded again."""
    lines = [root]
    expanded: set[Any] = set()

    def walk(key: Any, prefix: str) -> None:
        items = children.get(key, [])
        for i, (child, label) in enumerate(items):
            last = i == len(items) - 1
            again = child in expanded and bool(children.get(child))
            lines.append(f"{prefix}{'└── ' if last else '├── '}{label}"
                         + (" (as above)" if again else ""))
            if not again:
                expanded.add(child)
                walk(child, prefix + ("    " if last else "│   "))

    walk(root_key, "")
    return lines


def lineage_tree(root: tuple[str, str, str], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The lines of an upstream/downstream tree from ``root`` = (kind, namespace, name).

    ``rows`` are the records of :data:`DATASET_UPSTREAM` and its siblings; a node linked to
    several nodes closer to the root appears under each of them. The child jobs of a parent job
    (hop 0) come first, under their parent.

    >>> print("\\n".join(lineage_tree(("Job", "af", "dag"), [
    ...     {"hops": 0, "kind": "Job", "namespace": "af", "name": "dag.task",
    ...      "via": [{"namespace": "af", "name": "dag"}]},
    ...     {"hops": 1, "kind": "Dataset", "namespace": "pg", "name": "orders",
    ...      "via": [{"namespace": "af", "name": "dag.task"}]}])))
    job af:dag
    └── child job dag.task
        └── dataset pg:orders
    """
    kind, home, name = root
    children: dict[tuple[str, str, str], list[tuple[Any, str]]] = {}
    for row in rows:
        key = (row["kind"], row["namespace"], row["name"])
        child = row["hops"] == 0
        other = "Job" if child or row["kind"] == "Dataset" else "Dataset"
        label = (("child " if child else "") + f"{_kind_label(row['kind'])} "
                 + _relative(row["namespace"], row["name"], home))
        for via in row["via"]:
            children.setdefault((other, via["namespace"], via["name"]), []).append((key, label))
    return _tree(f"{_kind_label(kind)} {display_ref(home, name)}", children, root)


def field_label(namespace: str, dataset: str, field: str, home: str) -> str:
    """``dataset.field``, with the namespace when it differs from ``home``.

    >>> field_label("pg", "mart.sales", "total", "pg")
    'mart.sales.total'
    """
    return f"{_relative(namespace, dataset, home)}.{display(field)}"


def column_label(row: Mapping[str, Any], home: str) -> str:
    """A column of an answer, or a dataset (``field`` null: a dataset-level dependency), with
    ``; indirect`` and its transformations when only indirect edges reach it.

    >>> column_label({"namespace": "pg", "dataset": "mart", "field": None, "indirect": True,
    ...               "via": [{"transformations": ["INDIRECT/JOIN"]}]}, "pg")
    'dataset mart (INDIRECT/JOIN; indirect)'
    >>> column_label({"namespace": "pg", "dataset": "mart", "field": "total"}, "pg")
    'mart.total'
    """
    name = (f"dataset {_relative(row['namespace'], row['dataset'], home)}"
            if row["field"] is None else field_label(row["namespace"], row["dataset"],
                                                     row["field"], home))
    if not row.get("indirect"):
        return name
    kinds = sorted({t for via in row["via"] for t in via["transformations"]})
    return f"{name} ({', '.join(kinds)}; indirect)"


def column_count(rows: Sequence[Mapping[str, Any]], direction: str) -> str:
    """The last line of a column answer: columns, datasets (dataset-level) and how many are
    indirect.

    >>> column_count([{"field": "a"}, {"field": None, "indirect": True}], "downstream")
    '1 column and 1 dataset downstream, 1 indirect'
    """
    datasets = sum(1 for r in rows if r["field"] is None)
    indirect = sum(1 for r in rows if r.get("indirect"))
    columns = len(rows) - datasets
    return (f"{columns} column{'s' if columns != 1 else ''}"
            + (f" and {datasets} dataset{'s' if datasets != 1 else ''}" if datasets else "")
            + f" {direction}" + (f", {indirect} indirect" if indirect else ""))


def column_tree(root: tuple[str, str, str], rows: Sequence[Mapping[str, Any]],
                title: str | None = None) -> list[str]:
    """The lines of a column lineage tree (rows of :data:`COLUMN_UPSTREAM` and its siblings).

    ``root`` is (namespace, dataset, field); ``title`` replaces its label on the first line.
    Each column shows the transformations of its edge to the column above it, and ``indirect``
    when only indirect edges reach it; a dataset (``field`` null) is a dataset-level dependency.
    """
    home, dataset, field = root
    children: dict[tuple[str, str, str], list[tuple[Any, str]]] = {}
    for row in rows:
        key = (row["namespace"], row["dataset"], row["field"])
        name = column_label({**row, "indirect": False}, home)
        for via in row["via"]:
            label = (name + " (" + ", ".join(via["transformations"])
                     + ("; indirect" if row.get("indirect") else "") + ")")
            children.setdefault((via["namespace"], via["dataset"], via["field"]), []).append(
                (key, label))
    return _tree(title or field_label(home, dataset, field, home), children, root)


def by_hops(title: str, rows: Sequence[Mapping[str, Any]], label: Any) -> list[str]:
    """A flat answer grouped by distance: ``hop N`` branches holding ``label(row)`` leaves.

    >>> print("\\n".join(by_hops("impact", [{"hops": 1, "n": "a"}, {"hops": 2, "n": "b"}],
    ...                          lambda row: row["n"])))
    impact
    ├── hop 1
    │   └── a
    └── hop 2
        └── b
    """
    children: dict[Any, list[tuple[Any, str]]] = {}
    for index, row in enumerate(rows):
        hop = ("hop", row["hops"])
        if hop not in children:
            children.setdefault("root", []).append((hop, f"hop {row['hops']}"))
        children.setdefault(hop, []).append((index, label(row)))
    return _tree(title, children, "root")


def relative(datasets: Sequence[Mapping[str, str]], home: str) -> list[str]:
    """Dataset references as names, prefixed by their namespace when it is not ``home``.

    >>> relative([{"namespace": "pg", "name": "a"}, {"namespace": "s3", "name": "b"}], "pg")
    ['a', 's3:b']
    """
    return [_relative(d["namespace"], d["name"], home) for d in datasets]


def cell(value: Any) -> str:
    """One table cell: lists joined by commas, datasets as ``namespace:name``, none as ``-``.

    >>> cell([{"namespace": "pg", "name": "a"}, {"namespace": "pg", "name": "b"}])
    'pg:a, pg:b'
    """
    if value is None or value == []:
        return "-"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, Mapping) and {"namespace", "name"} <= value.keys():
        return display_ref(value["namespace"], value["name"])
    if isinstance(value, Mapping) and {"runId", "state"} <= value.keys():
        return f"{value['runId']} ({value['state']})"
    if isinstance(value, Mapping) and {"field", "before", "after"} <= value.keys():
        return f"{display(value['field'])}: {value['before']} -> {value['after']}"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return display(str(plain(value)))


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned columns, two spaces apart, under a header (cells through :func:`cell`).

    >>> print("\\n".join(table(["run", "state"], [["r1", "COMPLETE"], ["r2", None]])))
    run  state
    r1   COMPLETE
    r2   -
    """
    cells = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    return ["  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
            for line in [list(headers), *cells]]


def dataset_diff_rows(diff: Mapping[str, Any]) -> list[list[Any]]:
    """(change, field, before, after) rows of a :data:`DATASET_VERSION_DIFF` record.

    >>> dataset_diff_rows({"added": ["region"], "removed": [], "retyped": [
    ...     {"field": "amount", "before": "double", "after": "decimal(18,2)"}]})
    [['added', 'region', None, None], ['retyped', 'amount', 'double', 'decimal(18,2)']]
    """
    return ([["added", f, None, None] for f in diff["added"]]
            + [["removed", f, None, None] for f in diff["removed"]]
            + [["retyped", r["field"], r["before"], r["after"]] for r in diff["retyped"]])


def job_diff_rows(diff: Mapping[str, Any]) -> list[list[Any]]:
    """(change, item, before, after) rows of a :data:`JOB_VERSION_DIFF` record."""
    rows: list[list[Any]] = []
    if diff["sqlBefore"] != diff["sqlAfter"]:
        rows.append(["sql changed", "sql", diff["sqlBefore"], diff["sqlAfter"]])
    for key, change in (("readsAdded", "read added"), ("readsRemoved", "read removed"),
                        ("writesAdded", "write added"), ("writesRemoved", "write removed")):
        rows += [[change, d, None, None] for d in diff[key]]
    return rows


# ---------------------------------------------------------------------------------------------
# Running a statement (read-only).
# ---------------------------------------------------------------------------------------------


@contextmanager
def neo4j_errors(uri: str) -> Iterator[None]:
    """Turn the driver's errors into the project's (see :class:`Graph`)."""
    from neo4j.exceptions import AuthError, DriverError, Neo4jError
    from neo4j.exceptions import ServiceUnavailable as DriverUnavailable

    try:
        yield
    except AuthError as exc:
        raise ConfigError(f"Neo4j at {uri} refused the credentials",
                          hint="set LINEAGE_NEO4J__USER and LINEAGE_NEO4J__PASSWORD (the local "
                               "stack's password is in .stack/neo4j/password)") from exc
    except (DriverUnavailable, OSError) as exc:
        raise ServiceUnavailable(
            f"cannot reach Neo4j at {uri}",
            hint="is it running? `lineage stack status` for the local stack, `lineage check` "
                 "for any deployment; LINEAGE_NEO4J__URI sets the address") from exc
    except (Neo4jError, DriverError) as exc:
        raise LineageError(f"Neo4j refused the query: {exc}") from exc


class Graph:
    """A read-only connection to the lineage graph: :meth:`read` runs one statement.

    Errors become the project's: Neo4j unreachable -> :class:`ServiceUnavailable`, refused
    credentials -> :class:`ConfigError`, anything else Neo4j refuses -> :class:`LineageError`.
    """

    def __init__(self, neo4j: Neo4jSettings) -> None:
        self.uri = neo4j.uri
        self.database = neo4j.database
        with neo4j_errors(self.uri):
            # A short retry time: a user waits for the answer, a sink would wait longer.
            self._driver = driver(neo4j, max_transaction_retry_time=5.0)
            try:
                self._driver.verify_connectivity()
            except BaseException:
                self._driver.close()
                raise

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *_: object) -> None:
        self._driver.close()

    def read(self, statement: str, **parameters: Any) -> list[dict[str, Any]]:
        """The records of ``statement`` as dicts, run in a read transaction."""
        from neo4j import READ_ACCESS, ManagedTransaction

        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(statement, parameters)]

        with neo4j_errors(self.uri), self._driver.session(
                database=self.database, default_access_mode=READ_ACCESS) as session:
            return session.execute_read(work)
