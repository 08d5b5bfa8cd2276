"""``lineage query``: the cookbook's recipes (lineage/queries.py) from the command line."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from core.errors import ConfigError, NotFound
from core.settings import CommonSettings
from lineage.cli.common import friendly_errors
from lineage.queries import MAX_HOPS

if TYPE_CHECKING:
    from lineage.queries import Graph

app = typer.Typer(
    help="Ask the lineage graph (read-only): trees and tables, or --json for scripts.\n\n"
         "Name a dataset or job as NS:NAME (split at a colon, the last one first; the split "
         "that exists is used), or as --namespace NS NAME (the name taken as it is: use it when "
         "a name holds a colon). A bare NAME works when exactly one namespace has it.\n\n"
         "Any name of a dataset will do: a symlink alias (e.g. the catalog name Spark reports "
         "for a table) means its primary dataset, which the answer names (\"resolved alias X to "
         "Y\"; \"resolved\" in --json), and lineage recorded under any of its names counts. A "
         "parent job (an Airflow DAG, a Spark application, a dbt run) answers with the lineage "
         "of its child jobs, which it lists.\n\n"
         "Lineage is answered as of a time, now by default: through the job versions valid "
         "then (a job's version is that of its latest run started by then), so an input a job "
         "dropped is not upstream any more; --at T asks for another time, --ever for every "
         "pair ever observed. Column lineage likewise: that of the runs valid then.\n\n"
         "Column questions include indirect dependencies (a column that joins, filters, groups, "
         "sorts... a dataset), marked as indirect; --direct-only follows column-to-column "
         "edges (FEEDS) only.\n\n"
         "Each subcommand runs recipes of docs/cypher-cookbook.md, with every value passed as "
         "a query parameter.",
    no_args_is_help=True)

Ref = Annotated[str, typer.Argument(
    metavar="NS:NAME", help="the dataset (or with --job the job): NS:NAME, or NAME with "
                            "--namespace")]
Namespace = Annotated[str | None, typer.Option(
    "--namespace", "-n", help="the namespace; NS:NAME is then read as a NAME, as it is")]
JobFlag = Annotated[bool, typer.Option(
    "--job", help="name a job instead of a dataset (a parent job: the lineage of its children)")]
Hops = Annotated[int, typer.Option(min=1, max=MAX_HOPS, help=f"how many jobs away, 1-{MAX_HOPS}")]
Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]
At = Annotated[str | None, typer.Option(
    "--at", help="answer as of this time (ISO 8601, UTC without an offset): the job versions "
                 "valid then; default now")]
Ever = Annotated[bool, typer.Option(
    "--ever", help="every pair ever observed, whatever the versions: the union of all time")]
DirectOnly = Annotated[bool, typer.Option(
    "--direct-only", help="only column-to-column lineage (FEEDS): leave out the indirect "
                          "dependencies (join, filter, group by, sort, window, conditional)")]

#: How a dataset name was resolved: None, or the alias asked and the primary it means.
Resolved = dict[str, dict[str, str]] | None


def _graph() -> Graph:
    from lineage.queries import Graph

    settings = CommonSettings()
    return Graph(settings.neo4j)


def _resolve(graph: Graph, kind: str, ref: str, namespace: str | None) -> tuple[str, str]:
    """The (namespace, name) of the one dataset or job ``ref`` names (see ``query --help``)."""
    from lineage import queries

    if namespace is not None:
        candidates, shown = [(namespace, ref)], f"{namespace}:{ref}"
    else:
        candidates, shown = queries.reference_candidates(ref), ref
    names = sorted({name for _, name in candidates} | {ref})
    rows = graph.read(queries.FIND_JOBS if kind == "job" else queries.FIND_DATASETS, names=names)
    try:
        return queries.choose(kind, shown, candidates,
                              [(r["namespace"], r["name"]) for r in rows])
    except NotFound as missing:
        other = "dataset" if kind == "job" else "job"
        others = graph.read(queries.FIND_DATASETS if kind == "job" else queries.FIND_JOBS,
                            names=names)
        pairs = {(r["namespace"], r["name"]) for r in others}
        if pairs & set(candidates) or (not candidates and pairs):
            raise NotFound(missing.cause, hint=f"that is a {other}: "
                           + ("leave out --job" if kind == "job" else "add --job")) from None
        raise


def _dataset(graph: Graph, ref: str, namespace: str | None) -> tuple[str, str, Resolved]:
    """The primary (namespace, name) of the dataset ``ref`` names, and how it was resolved."""
    from lineage import queries

    ns, name = _resolve(graph, "dataset", ref, namespace)
    [names] = graph.read(queries.DATASET_NAMES, namespace=ns, name=name)
    if not names["alias"]:
        return ns, name, None
    return names["namespace"], names["name"], {
        "asked": {"namespace": ns, "name": name},
        "primary": {"namespace": names["namespace"], "name": names["name"]}}


def _check_field(graph: Graph, namespace: str, name: str, field: str) -> None:
    from lineage import queries

    fields = [r["field"] for r in graph.read(queries.DATASET_FIELDS, namespace=namespace,
                                             name=name)]
    if field not in fields:
        known = ", ".join(queries.display(f) for f in fields[:20]) + (
            ", ..." if len(fields) > 20 else "")
        raise NotFound(f"no column {queries.display(field)} in dataset "
                       f"{queries.display_ref(namespace, name)}",
                       hint=f"its columns: {known}" if fields else "the graph knows no column "
                                                                   "of that dataset")


def _emit(as_json: bool, question: str, recipes: list[str], parameters: dict[str, Any],
          rows: list[dict[str, Any]], text: Callable[[], list[str]],
          resolved: Resolved = None) -> None:
    from lineage.queries import display_ref, plain

    if as_json:
        typer.echo(json.dumps({"question": question, "recipes": recipes,
                               "parameters": plain(parameters), "resolved": resolved,
                               "rows": plain(rows)},
                              ensure_ascii=False, indent=2))
    else:
        # Say which dataset an alias meant: the answer is about that one.
        said = [] if resolved is None else [
            f"resolved alias {display_ref(**resolved['asked'])} to "
            f"{display_ref(**resolved['primary'])}"]
        typer.echo("\n".join([*said, *text()]))


def _plural(count: int, what: str) -> str:
    return f"{count} {what}{'s' if count != 1 else ''}"


def _count(rows: list[dict[str, Any]]) -> str:
    """``N jobs and M datasets``, after ``K child jobs, `` when a parent job has children."""
    children = sum(1 for r in rows if r["hops"] == 0)
    jobs = sum(1 for r in rows if r["kind"] == "Job") - children
    return ((f"{_plural(children, 'child job')}, " if children else "")
            + f"{_plural(jobs, 'job')} and {_plural(len(rows) - children - jobs, 'dataset')}")


def _when(at: str | None, ever: bool) -> tuple[Any, str]:
    """The ``$asOf`` of a question and the words that say it (empty for now)."""
    from datetime import UTC, datetime

    from lineage import queries

    if ever and at is not None:
        raise ConfigError("--at and --ever contradict each other",
                          hint="--at T answers for one time, --ever for all of them")
    if ever:
        return None, ", ever"
    if at is None:
        return datetime.now(UTC), ""
    as_of = queries.parse_time(at)
    return as_of, f" as of {queries.iso(as_of)}"


def _lineage(direction: str, ref: str, namespace: str | None, job: bool, hops: int,
             at: str | None, ever: bool, as_json: bool) -> None:
    from lineage import queries

    kind = "job" if job else "dataset"
    recipe = f"{kind.upper()}_{direction.upper()}" + ("_EVER" if ever else "")
    as_of, when = _when(at, ever)
    with _graph() as graph:
        if job:
            (ns, name), resolved = _resolve(graph, kind, ref, namespace), None
        else:
            ns, name, resolved = _dataset(graph, ref, namespace)
        parameters = {"namespace": ns, "name": name, "hops": hops,
                      **({} if ever else {"asOf": as_of})}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        lines = queries.lineage_tree(("Job" if job else "Dataset", ns, name), rows)
        return [*lines, f"{_count(rows)} {direction} within {_plural(hops, 'hop')}{when}"]

    _emit(as_json, direction, [recipe], parameters, rows, text, resolved)


@app.command("upstream")
@friendly_errors
def query_upstream(ref: Ref, namespace: Namespace = None, job: JobFlag = False,
                   hops: Hops = 3, at: At = None, ever: Ever = False,
                   as_json: Json = False) -> None:
    """Where a dataset (or job) comes from, as a tree: the jobs and datasets upstream.

    For a parent job (--job of a DAG, a Spark application, a dbt run) the
    tree starts with its child jobs and shows what they depend on.

    Example: ``lineage query upstream 'postgres://db:5432:mart.revenue' --hops 2``
    """
    _lineage("upstream", ref, namespace, job, hops, at, ever, as_json)


@app.command("downstream")
@friendly_errors
def query_downstream(ref: Ref, namespace: Namespace = None, job: JobFlag = False,
                     hops: Hops = 3, at: At = None, ever: Ever = False,
                     as_json: Json = False) -> None:
    """What is built from a dataset (or job), as a tree: the jobs and datasets downstream.

    For a parent job the tree starts with its child jobs and shows what
    depends on them.

    Example: ``lineage query downstream --job 'airflow:etl.load_orders'``
    """
    _lineage("downstream", ref, namespace, job, hops, at, ever, as_json)


@app.command("impact")
@friendly_errors
def query_impact(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the dataset")],
    namespace: Namespace = None,
    field: Annotated[str | None, typer.Option(
        "--field", "-f", help="a column of the dataset: its impact through column lineage")] = None,
    direct_only: DirectOnly = False,
    at: At = None,
    ever: Ever = False,
    as_json: Json = False,
) -> None:
    """What breaks if a dataset (or one of its columns) changes: everything downstream, by hop.

    A column's impact includes the datasets it joins, filters, groups...
    (indirect, with the transformation); --direct-only leaves them out.

    Example: ``lineage query impact 'postgres://db:5432:raw.orders' --field amount``
    """
    from lineage import queries

    as_of, when = _when(at, ever)
    with _graph() as graph:
        ns, name, resolved = _dataset(graph, ref, namespace)
        if field is None:
            recipe = "DATASET_IMPACT_EVER" if ever else "DATASET_IMPACT"
            parameters = {"namespace": ns, "name": name, **({} if ever else {"asOf": as_of})}
        else:
            _check_field(graph, ns, name, field)
            recipe = ("FIELD_IMPACT" if direct_only else "COLUMN_DOWNSTREAM") + (
                "_EVER" if ever else "")
            parameters = {"namespace": ns, "dataset": name, "field": field,
                          **({} if ever else {"asOf": as_of})}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        if field is None:
            title = f"impact of dataset {queries.display_ref(ns, name)}"
            lines = queries.by_hops(title, rows, lambda r: (
                f"{'job' if r['kind'] == 'Job' else 'dataset'} "
                + (queries.display(r["name"]) if r["namespace"] == ns
                   else queries.display_ref(r["namespace"], r["name"]))))
            return [*lines, f"{_count(rows)} downstream{when}"]
        title = f"impact of column {queries.field_label(ns, name, field, '')}"
        lines = queries.by_hops(title, rows, lambda r: queries.column_label(r, ns))
        return [*lines, queries.column_count(rows, "downstream") + when]

    _emit(as_json, "impact", [recipe], parameters, rows, text, resolved)


@app.command("columns")
@friendly_errors
def query_columns(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the dataset")],
    field: Annotated[str, typer.Option("--field", "-f", help="the column")],
    namespace: Namespace = None,
    direct_only: DirectOnly = False,
    at: At = None,
    ever: Ever = False,
    as_json: Json = False,
) -> None:
    """Column lineage of one column: where it comes from and what it feeds, as two trees.

    Upstream includes the columns that join, filter, group... its dataset,
    downstream the datasets it joins, filters... (indirect, with the
    transformation); --direct-only leaves them out.

    Example: ``lineage query columns 'postgres://db:5432:mart.revenue' --field total``
    """
    from lineage import queries

    recipes = [name + ("_EVER" if ever else "") for name in (
        ["FIELD_UPSTREAM", "FIELD_DOWNSTREAM"] if direct_only
        else ["COLUMN_UPSTREAM", "COLUMN_DOWNSTREAM"])]
    as_of, when = _when(at, ever)
    with _graph() as graph:
        ns, name, resolved = _dataset(graph, ref, namespace)
        _check_field(graph, ns, name, field)
        parameters = {"namespace": ns, "dataset": name, "field": field,
                      **({} if ever else {"asOf": as_of})}
        upstream, downstream = (graph.read(queries.RECIPES[recipe], **parameters)
                                for recipe in recipes)
    rows = ([{"direction": "upstream", **r} for r in upstream]
            + [{"direction": "downstream", **r} for r in downstream])

    def text() -> list[str]:
        lines = [f"column {queries.field_label(ns, name, field, '')}{when}"]
        for title, part in (("upstream: where it comes from", upstream),
                            ("downstream: what it feeds", downstream)):
            tree = queries.column_tree((ns, name, field), part, title)
            lines += tree if part else [title, "    (none)"]
        return lines

    _emit(as_json, "columns", recipes, parameters, rows, text, resolved)


@app.command("history")
@friendly_errors
def query_history(ref: Ref, namespace: Namespace = None, job: JobFlag = False,
                  as_json: Json = False) -> None:
    """The versions of a dataset (schema changes) or of a job (SQL, inputs, outputs), as a table.

    Example: ``lineage query history 'postgres://db:5432:staging.orders'``
    """
    from lineage import queries

    kind = "job" if job else "dataset"
    recipe = "JOB_HISTORY" if job else "DATASET_HISTORY"
    with _graph() as graph:
        if job:
            (ns, name), resolved = _resolve(graph, kind, ref, namespace), None
        else:
            ns, name, resolved = _dataset(graph, ref, namespace)
        parameters = {"namespace": ns, "name": name}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        title = (f"history of {kind} {queries.display_ref(ns, name)}: {len(rows)} "
                 f"version{'s' if len(rows) != 1 else ''}")
        if not rows:
            return [title]
        if job:
            table = queries.table(
                ["version", "valid from", "valid to", "runs", "reads", "writes", "sql"],
                [[r["version"], r["validFrom"], r["validTo"], r["runs"],
                  queries.relative(r["reads"], ns), queries.relative(r["writes"], ns), r["sql"]]
                 for r in rows])
        else:
            table = queries.table(
                ["version", "valid from", "valid to", "written by", "added", "removed",
                 "retyped"],
                [[r["version"], r["validFrom"], r["validTo"], r["writtenBy"], r["added"],
                  r["removed"], r["retyped"]] for r in rows])
        return [title, *table]

    _emit(as_json, "history", [recipe], parameters, rows, text, resolved)


@app.command("schema")
@friendly_errors
def query_schema(ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the dataset")],
                 namespace: Namespace = None, at: At = None, as_json: Json = False) -> None:
    """The schema of a dataset as of a time (default now): the fields of its version valid
    then, from the latest event that carried a schema for it under any of its names.

    Example: ``lineage query schema 'postgres://db:5432:staging.orders' --at 2024-03-01T12:00Z``
    """
    from lineage import queries

    as_of, when = _when(at, False)
    with _graph() as graph:
        ns, name, resolved = _dataset(graph, ref, namespace)
        parameters = {"namespace": ns, "name": name, "asOf": as_of}
        rows = graph.read(queries.DATASET_SCHEMA, **parameters)

    def text() -> list[str]:
        title = f"schema of dataset {queries.display_ref(ns, name)}{when}: "
        if not rows:
            return [title + "none known"]
        first = queries.plain(rows[0])
        return [title + f"{_plural(len(rows), 'field')}, version {first['version']} (valid from "
                f"{first['validFrom']} to {first['validTo'] or 'now'})",
                *queries.table(["field", "type", "description"],
                               [[r["field"], r["type"], r["description"]] for r in rows])]

    _emit(as_json, "schema", ["DATASET_SCHEMA"], parameters, rows, text, resolved)


@app.command("diff")
@friendly_errors
def query_diff(
    from_id: Annotated[str, typer.Argument(metavar="FROM", help="a version id (see history)")],
    to_id: Annotated[str, typer.Argument(metavar="TO", help="another version id")],
    as_json: Json = False,
) -> None:
    """What changed between two versions of a dataset (fields) or of a job (SQL, datasets).

    Example: ``lineage query diff 626312d5df81405737ed5e1b65e44511 091cef4ee92540...``
    """
    from lineage import queries

    parameters = {"from": from_id, "to": to_id}
    with _graph() as graph:
        recipe = "DATASET_VERSION_DIFF"
        rows = graph.read(queries.DATASET_VERSION_DIFF, **parameters)
        if not rows:
            recipe = "JOB_VERSION_DIFF"
            rows = graph.read(queries.JOB_VERSION_DIFF, **parameters)
    if not rows:
        raise NotFound(f"no two dataset versions or two job versions with ids "
                       f"{queries.display(from_id)} and {queries.display(to_id)}",
                       hint="take both ids from `lineage query history NS:NAME` "
                            "(add --job for a job's versions)")
    [diff] = rows

    def text() -> list[str]:
        before, after = diff["fromVersion"], diff["toVersion"]
        if recipe == "DATASET_VERSION_DIFF":
            changes = queries.dataset_diff_rows(diff)
            what = "dataset " + " -> ".join(dict.fromkeys(
                queries.display_ref(v["namespace"], v["name"]) for v in (before, after)))
            headers = ["change", "field", "before", "after"]
        else:
            changes = [[c[0], queries.relative([c[1]], after["jobNamespace"])[0]]
                       for c in queries.job_diff_rows(diff) if c[0] != "sql changed"]
            what = "job " + " -> ".join(dict.fromkeys(
                queries.display_ref(v["jobNamespace"], v["jobName"]) for v in (before, after)))
            headers = ["change", "dataset"]
        lines = [f"diff of {what}: {before['id']} ({queries.cell(before['validFrom'])}) -> "
                 f"{after['id']} ({queries.cell(after['validFrom'])})"]
        lines += queries.table(headers, changes) if changes else []
        if recipe == "JOB_VERSION_DIFF" and diff["sqlBefore"] != diff["sqlAfter"]:
            lines += [f"sql before: {queries.cell(diff['sqlBefore'])}",
                      f"sql after:  {queries.cell(diff['sqlAfter'])}"]
        return lines if len(lines) > 1 else [*lines, "no differences"]

    _emit(as_json, "diff", [recipe], parameters, rows, text)


@app.command("as-of")
@friendly_errors
def query_as_of(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the dataset")],
    at: Annotated[str, typer.Option("--at", help="the time: ISO 8601 (UTC without an offset)")],
    namespace: Namespace = None,
    downstream: Annotated[bool, typer.Option(
        "--downstream", help="what was built from it (default: where it came from)")] = False,
    hops: Hops = 3,
    as_json: Json = False,
) -> None:
    """The lineage of a dataset as it was at a time: the job versions valid then, as a table.

    Example: ``lineage query as-of 'postgres://db:5432:mart.revenue' --at 2024-03-01T12:00Z``
    """
    from lineage import queries

    recipe = "AS_OF_DOWNSTREAM" if downstream else "AS_OF_UPSTREAM"
    as_of = queries.parse_time(at)
    with _graph() as graph:
        ns, name, resolved = _dataset(graph, ref, namespace)
        parameters = {"namespace": ns, "name": name, "asOf": as_of, "hops": hops}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        title = (f"{'downstream' if downstream else 'upstream'} of dataset "
                 f"{queries.display_ref(ns, name)} as of {queries.iso(as_of)}, within {hops} "
                 f"hop{'s' if hops != 1 else ''}: {_count(rows)}")
        return [title, *queries.table(
            ["hops", "kind", "name", "version", "valid from", "valid to"],
            [[r["hops"], "job" if r["kind"] == "Job" else "dataset",
              queries.relative([r], ns)[0], r["version"], r["validFrom"], r["validTo"]]
             for r in rows])] if rows else [title]

    _emit(as_json, "as-of", [recipe], parameters, rows, text, resolved)


@app.command("runs")
@friendly_errors
def query_runs(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the job")],
    namespace: Namespace = None,
    limit: Annotated[int, typer.Option(min=1, help="the latest runs to show")] = 20,
    as_json: Json = False,
) -> None:
    """The latest runs of a job: state, start, end, duration, version and parent run.

    Example: ``lineage query runs 'airflow:etl.load_orders' --limit 5``
    """
    from lineage import queries

    with _graph() as graph:
        ns, name = _resolve(graph, "job", ref, namespace)
        parameters = {"namespace": ns, "name": name, "limit": limit}
        rows = graph.read(queries.JOB_RUNS, **parameters)

    def text() -> list[str]:
        title = f"runs of job {queries.display_ref(ns, name)}: the latest {len(rows)}"
        return [title] if not rows else [title, *queries.table(
            ["run", "state", "started", "ended", "duration", "version", "parent"],
            [[r["runId"], r["state"], r["startedAt"], r["endedAt"],
              queries.duration_text(r["seconds"]), r["versions"],
              None if r["parent"] is None else
              f"{queries.display(r['parent']['job'] or '?')} {r['parent']['runId']}"]
             for r in rows])]

    _emit(as_json, "runs", ["JOB_RUNS"], parameters, rows, text)
