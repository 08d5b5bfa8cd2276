"""``lineage query`` as a user runs it (a child process) on a graph the real pipeline wrote.

The known graph of ``known_graph.py`` plus one job and two datasets with awkward names, in a
namespace of this module's own. Each subcommand's text is compared in full; its ``--json`` rows
are compared with the cookbook's answers for the same recipe and parameters.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from neo4j import GraphDatabase

from core.errors import LineageError
from lineage.queries import Graph, plain
from lineage.stack.settings import StackSettings
from tests.conftest import run_cli
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import load_graph as load
from tests.integration.known_graph import (
    NOW,
    SQL_V1,
    SQL_V2,
    Known,
    KnownGraph,
    at,
    cases_of,
    version_ids,
)

WEIRD_DATASET = "we'ird `na{me}\nü"
WEIRD_JOB = 'jöb "q" {x}`\n\'s'
WEIRD_FIELD = 'çol "1" {x}'
COLON_DATASET = "odd:name"


def weird_events(graph: KnownGraph) -> list[dict[str, Any]]:
    """A job with an awkward name that reads raw.orders and writes two awkward datasets."""
    graph.runs["w"] = str(uuid.uuid4())
    weird = graph.ref(WEIRD_DATASET, schema=graph.schema([(WEIRD_FIELD, "string")]),
                      columnLineage=graph.lineage({WEIRD_FIELD: [("raw.orders", "id",
                                                                  "DIRECT/IDENTITY")]}))
    colon = graph.ref(COLON_DATASET, schema=graph.schema([("id", "bigint")]))
    inputs = [graph.ref("raw.orders")]
    return [graph.event("START", "2024-03-04T10:00:00Z", WEIRD_JOB, "w", inputs=inputs,
                        outputs=[graph.ref(WEIRD_DATASET), graph.ref(COLON_DATASET)],
                        parent=False),
            graph.event("COMPLETE", "2024-03-04T10:00:05Z", WEIRD_JOB, "w", inputs=inputs,
                        outputs=[weird, colon], parent=False)]


@pytest.fixture(scope="module")
def known(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Known]:
    graph = KnownGraph(f"test://{uuid.uuid4().hex[:10]}")
    events = graph.events() + weird_events(graph)
    with GraphDatabase.driver(stack.neo4j.uri, auth=stack.neo4j.auth()) as driver:
        try:
            load(stack, Path(tmp_path_factory.mktemp("query-cli")), iter(events))
            yield Known(graph.namespace, graph.runs, version_ids(driver, graph))
        finally:
            delete_namespace(driver, graph.namespace)


def query(*argv: str, ok: bool = True) -> str:
    """``lineage query ARGV``'s output; exit code 0 (or 1 with ``ok=False``), no traceback."""
    proc = run_cli("query", *argv)
    assert proc.returncode == (0 if ok else 1), proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout if ok else proc.stderr


def query_json(*argv: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(query(*argv, "--json"))
    return result


def answer(k: Known, recipe: str, **parameters: Any) -> list[dict[str, Any]]:
    """The cookbook's answer of ``recipe`` for these parameters (see known_graph.py)."""
    [expected] = [rows for params, rows in cases_of(k)[recipe] if params == parameters]
    return expected


# --- text ---------------------------------------------------------------------------------------

def test_upstream_prints_the_tree_of_jobs_and_datasets_a_dataset_comes_from(
        known: Known) -> None:
    assert query("upstream", f"{known.ns}:mart.revenue", "--hops", "2") == f"""\
dataset {known.ns}:mart.revenue
└── job build_revenue
    ├── dataset raw.customers
    │   └── job dedupe_customers
    └── dataset staging.orders
        └── job stage_orders
            ├── dataset raw.orders
            └── dataset raw.regions
3 jobs and 4 datasets upstream within 2 hops
"""


def test_downstream_of_a_job_prints_what_is_built_from_its_outputs(known: Known) -> None:
    assert query("downstream", "--job", f"{known.ns}:stage_orders") == f"""\
job {known.ns}:stage_orders
└── dataset staging.orders
    └── job build_revenue
        └── dataset mart.revenue
            └── job publish_dashboard
                └── dataset report.dashboard
2 jobs and 3 datasets downstream within 3 hops
"""


def test_downstream_of_a_parent_job_starts_with_its_children(known: Known) -> None:
    assert query("downstream", "--job", f"{known.ns}:daily", "--hops", "1") == f"""\
job {known.ns}:daily
├── child job build_revenue
│   └── dataset mart.revenue
├── child job dedupe_customers
│   └── dataset raw.customers
├── child job publish_dashboard
│   └── dataset report.dashboard
└── child job stage_orders
    └── dataset staging.orders
4 child jobs, 0 jobs and 4 datasets downstream within 1 hop
"""


def test_an_alias_answers_for_its_dataset_and_says_which_one(known: Known) -> None:
    assert query("downstream", f"{known.ns}:warehouse.orders", "--hops", "1") == f"""\
resolved alias {known.ns}:warehouse.orders to {known.ns}:raw.orders
dataset {known.ns}:raw.orders
├── job "jöb \\"q\\" {{x}}`\\n's"
│   ├── dataset odd:name
│   └── dataset "we'ird `na{{me}}\\nü"
└── job stage_orders
    └── dataset staging.orders
2 jobs and 3 datasets downstream within 1 hop
"""
    output = query_json("history", f"{known.ns}:warehouse.orders")
    assert (output["parameters"], output["resolved"]) == (
        {"namespace": known.ns, "name": "raw.orders"},
        {"asked": known.ref("warehouse.orders"), "primary": known.ref("raw.orders")})


def test_impact_lists_everything_downstream_by_hop(known: Known) -> None:
    assert query("impact", f"{known.ns}:raw.customers") == f"""\
impact of dataset {known.ns}:raw.customers
├── hop 1
│   ├── job build_revenue
│   ├── job dedupe_customers
│   └── dataset mart.revenue
└── hop 2
    ├── job publish_dashboard
    └── dataset report.dashboard
3 jobs and 2 datasets downstream
"""


def test_impact_of_a_column_lists_the_columns_it_feeds_by_hop(known: Known) -> None:
    assert query("impact", f"{known.ns}:raw.orders", "--field", "amount") == f"""\
impact of column {known.ns}:raw.orders.amount
├── hop 1
│   └── staging.orders.amount
├── hop 2
│   └── mart.revenue.total
└── hop 3
    └── report.dashboard.total
3 columns downstream
"""


def test_columns_prints_where_a_column_comes_from_and_what_it_feeds(known: Known) -> None:
    assert query("columns", f"{known.ns}:mart.revenue", "--field", "total") == f"""\
column {known.ns}:mart.revenue.total
upstream: where it comes from
└── staging.orders.amount (DIRECT/AGGREGATION)
    └── raw.orders.amount (DIRECT/TRANSFORMATION)
downstream: what it feeds
└── report.dashboard.total (DIRECT/IDENTITY)
"""


def test_history_of_a_dataset_is_a_table_of_schema_changes(known: Known) -> None:
    v, runs = known.versions, known.runs
    assert query("history", f"{known.ns}:staging.orders") == f"""\
history of dataset {known.ns}:staging.orders: 2 versions
version                           valid from            valid to              written by \
                                      added                       removed  retyped
{v["staging_a"]}  2024-03-01T01:05:00Z  2024-03-02T01:07:30Z  {runs["a"]} (COMPLETE)  \
id, amount, customer, note  -        -
{v["staging_d"]}  2024-03-02T01:07:30Z  -                     {runs["d"]} (COMPLETE)  \
region                      note     amount: double -> decimal(18,2)
"""


def test_history_has_no_version_from_a_failed_run_without_a_schema(known: Known) -> None:
    v, runs = known.versions, known.runs
    assert query("history", f"{known.ns}:mart.revenue") == f"""\
history of dataset {known.ns}:mart.revenue: 1 version
version                           valid from                valid to  \
written by                                       added                 removed  retyped
{v["revenue_b2"]}  2024-03-01T02:40:00.250Z  -         {runs["b2"]} \
(COMPLETE)  customer_name, total  -        -
"""


def test_history_of_a_job_is_a_table_of_its_versions_with_their_sql(known: Known) -> None:
    v = known.versions
    assert query("history", "--job", f"{known.ns}:stage_orders") == f"""\
history of job {known.ns}:stage_orders: 2 versions
version                           valid from            valid to              runs  reads \
                   writes          sql
{v["stage_v1"]}  2024-03-01T01:00:00Z  2024-03-02T01:00:00Z  1     raw.orders               \
staging.orders  {SQL_V1}
{v["stage_v2"]}  2024-03-02T01:00:00Z  -                     1     raw.orders, raw.regions  \
staging.orders  {SQL_V2}
"""


def test_diff_of_two_dataset_versions_lists_fields_added_removed_and_retyped(
        known: Known) -> None:
    v = known.versions
    assert query("diff", v["staging_a"], v["staging_d"]) == f"""\
diff of dataset {known.ns}:staging.orders: {v["staging_a"]} (2024-03-01T01:05:00Z) -> \
{v["staging_d"]} (2024-03-02T01:07:30Z)
change   field   before  after
added    region  -       -
removed  note    -       -
retyped  amount  double  decimal(18,2)
"""


def test_diff_of_two_job_versions_lists_datasets_and_both_sql_texts(known: Known) -> None:
    v = known.versions
    assert query("diff", v["stage_v1"], v["stage_v2"]) == f"""\
diff of job {known.ns}:stage_orders: {v["stage_v1"]} (2024-03-01T01:00:00Z) -> \
{v["stage_v2"]} (2024-03-02T01:00:00Z)
change      dataset
read added  raw.regions
sql before: {SQL_V1}
sql after:  {SQL_V2}
"""


def test_as_of_prints_the_lineage_through_the_job_versions_valid_then(known: Known) -> None:
    v = known.versions
    assert query("as-of", f"{known.ns}:mart.revenue", "--at", "2024-03-01T12:00:00Z",
                 "--hops", "2") == f"""\
upstream of dataset {known.ns}:mart.revenue as of 2024-03-01T12:00:00Z, within 2 hops: \
3 jobs and 3 datasets
hops  kind     name              version                           valid from            \
valid to
1     job      build_revenue     {v["revenue_job"]}  2024-03-01T02:00:00Z  -
1     dataset  raw.customers     -                                 -                     -
1     dataset  staging.orders    -                                 -                     -
2     job      dedupe_customers  {v["dedupe_job"]}  2024-03-01T00:30:00Z  -
2     job      stage_orders      {v["stage_v1"]}  2024-03-01T01:00:00Z  2024-03-02T01:00:00Z
2     dataset  raw.orders        -                                 -                     -
"""


def test_as_of_downstream_takes_a_date_as_midnight_utc(known: Known) -> None:
    v = known.versions
    assert query("as-of", f"{known.ns}:raw.regions", "--at", "2024-03-03", "--downstream",
                 "--hops", "1") == f"""\
downstream of dataset {known.ns}:raw.regions as of 2024-03-03T00:00:00Z, within 1 hop: \
1 job and 1 dataset
hops  kind     name            version                           valid from            valid to
1     job      stage_orders    {v["stage_v2"]}  2024-03-02T01:00:00Z  -
1     dataset  staging.orders  -                                 -                     -
"""


def test_runs_prints_the_latest_runs_with_state_duration_version_and_parent(
        known: Known) -> None:
    v, runs = known.versions, known.runs
    assert query("runs", f"{known.ns}:build_revenue") == f"""\
runs of job {known.ns}:build_revenue: the latest 2
run                                   state     started               ended                 \
    duration     version                           parent
{runs["b2"]}  COMPLETE  2024-03-01T02:30:00Z  2024-03-01T02:40:00.250Z  0:10:00.250  \
{v["revenue_job"]}  daily {runs["daily"]}
{runs["b1"]}  FAIL      2024-03-01T02:00:00Z  2024-03-01T02:01:00Z      0:01:00      \
{v["revenue_job"]}  daily {runs["daily"]}
"""


# --- JSON ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("argv", "recipe", "parameters"), [
    (["upstream", "{ns}:mart.revenue", "--hops", "2"], "DATASET_UPSTREAM",
     {"name": "mart.revenue", "hops": 2}),
    (["downstream", "--job", "--namespace", "{ns}", "stage_orders", "--hops", "2"],
     "JOB_DOWNSTREAM", {"name": "stage_orders", "hops": 2}),
    (["upstream", "--job", "{ns}:build_revenue", "--hops", "1"], "JOB_UPSTREAM",
     {"name": "build_revenue", "hops": 1}),
    (["downstream", "--job", "{ns}:stage_orders", "--hops", "1"], "JOB_DOWNSTREAM",
     {"name": "stage_orders", "hops": 1}),
    (["impact", "{ns}:raw.customers"], "DATASET_IMPACT", {"name": "raw.customers"}),
    (["impact", "{ns}:raw.orders", "--field", "amount"], "COLUMN_DOWNSTREAM",
     {"dataset": "raw.orders", "field": "amount"}),
    (["impact", "{ns}:raw.orders", "--field", "amount", "--direct-only"], "FIELD_IMPACT",
     {"dataset": "raw.orders", "field": "amount"}),
    (["upstream", "--job", "{ns}:daily", "--hops", "1"], "JOB_UPSTREAM",
     {"name": "daily", "hops": 1}),
    (["history", "{ns}:staging.orders"], "DATASET_HISTORY", {"name": "staging.orders"}),
    (["history", "--job", "{ns}:stage_orders"], "JOB_HISTORY", {"name": "stage_orders"}),
    (["runs", "{ns}:build_revenue", "--limit", "1"], "JOB_RUNS",
     {"name": "build_revenue", "limit": 1}),
])
def test_json_output_holds_the_recipes_rows_and_parameters(
        known: Known, argv: list[str], recipe: str, parameters: dict[str, Any]) -> None:
    output = query_json(*[a.format(ns=known.ns) for a in argv])
    full = {"namespace": known.ns, **parameters}
    if "asOf" in output["parameters"]:
        # Asked as of now: the time the command ran (the known graph's answers hold for any
        # time after its last event, which is what NOW stands for).
        asked = datetime.fromisoformat(output["parameters"].pop("asOf"))
        assert abs((datetime.now(UTC) - asked).total_seconds()) < 120
        expected = answer(known, recipe, **full, asOf=NOW)
    else:
        expected = answer(known, recipe, **full)
    assert output == {"question": argv[0], "recipes": [recipe], "parameters": full,
                      "resolved": None, "rows": expected}


def test_json_of_as_of_has_the_time_in_utc_and_the_rows_of_the_recipe(known: Known) -> None:
    output = query_json("as-of", f"{known.ns}:staging.orders", "--at",
                        "2024-03-02T03:00:00+02:00", "--hops", "1")
    parameters = {"namespace": known.ns, "name": "staging.orders",
                  "asOf": at("2024-03-02T01:00:00Z"), "hops": 1}
    assert output == {"question": "as-of", "recipes": ["AS_OF_UPSTREAM"],
                      "parameters": plain(parameters), "resolved": None,
                      "rows": answer(known, "AS_OF_UPSTREAM", **parameters)}


def test_json_of_columns_tags_each_row_with_its_direction(known: Known) -> None:
    output = query_json("columns", f"{known.ns}:report.dashboard", "--field", "total")
    parameters = {"namespace": known.ns, "dataset": "report.dashboard", "field": "total"}
    assert output["recipes"] == ["COLUMN_UPSTREAM", "COLUMN_DOWNSTREAM"]
    assert output["parameters"].pop("asOf")  # now
    assert output["parameters"] == parameters
    assert output["rows"] == [{"direction": "upstream", **row} for row in answer(
        known, "COLUMN_UPSTREAM", **parameters, asOf=NOW)]
    ever = query_json("columns", f"{known.ns}:report.dashboard", "--field", "total", "--ever")
    assert ever["recipes"] == ["COLUMN_UPSTREAM_EVER", "COLUMN_DOWNSTREAM_EVER"]
    assert ever["parameters"] == parameters


def test_column_impact_follows_the_column_lineage_of_the_runs_valid_then(known: Known) -> None:
    note = f"{known.ns}:raw.orders"
    assert query("impact", note, "--field", "note") == (
        f"impact of column {note}.note\n0 columns downstream\n")
    assert query("impact", note, "--field", "note", "--at", "2024-03-01T12:00:00Z") == (
        f"impact of column {note}.note\n└── hop 1\n    └── staging.orders.note\n"
        "1 column downstream as of 2024-03-01T12:00:00Z\n")
    assert query("impact", note, "--field", "note", "--ever").endswith(
        "1 column downstream, ever\n")


def test_json_of_a_diff_is_the_diff_recipes_row(known: Known) -> None:
    v = known.versions
    for recipe, a, b in (("DATASET_VERSION_DIFF", "staging_d", "staging_a"),
                         ("JOB_VERSION_DIFF", "stage_v1", "stage_v2")):
        parameters = {"from": v[a], "to": v[b]}
        assert query_json("diff", v[a], v[b]) == {
            "question": "diff", "recipes": [recipe], "parameters": parameters,
            "resolved": None, "rows": answer(known, recipe, **parameters)}


# --- names that need care -----------------------------------------------------------------------

def test_awkward_names_round_trip_through_the_pipeline_and_the_query(known: Known) -> None:
    for argv in ([f"{known.ns}:{WEIRD_DATASET}"], ["--namespace", known.ns, WEIRD_DATASET]):
        output = query_json("upstream", *argv)
        assert output["parameters"].pop("asOf")  # now
        assert output["parameters"] == {"namespace": known.ns, "name": WEIRD_DATASET,
                                        "hops": 3}
        assert [(r["kind"], r["name"], r["via"]) for r in output["rows"]] == [
            ("Job", WEIRD_JOB, [known.ref(WEIRD_DATASET)]),
            ("Dataset", "raw.orders", [known.ref(WEIRD_JOB)])]
    runs = query_json("runs", "--namespace", known.ns, WEIRD_JOB)
    assert runs["parameters"]["name"] == WEIRD_JOB
    assert [(r["runId"], r["state"]) for r in runs["rows"]] == [(known.runs["w"], "COMPLETE")]
    columns = query_json("columns", f"{known.ns}:{WEIRD_DATASET}", "--field", WEIRD_FIELD)
    assert [(r["direction"], r["dataset"], r["field"], r["via"]) for r in columns["rows"]] == [
        ("upstream", "raw.orders", "id", [{"namespace": known.ns, "dataset": WEIRD_DATASET,
                                           "field": WEIRD_FIELD,
                                           "transformations": ["DIRECT/IDENTITY"]}])]
    history = query_json("history", f"{known.ns}:{WEIRD_DATASET}")
    assert [r["fields"] for r in history["rows"]] == [[WEIRD_FIELD]]


def test_awkward_names_are_printed_escaped_and_quoted_when_they_hold_a_newline(
        known: Known) -> None:
    assert query("upstream", f"{known.ns}:{WEIRD_DATASET}") == f"""\
dataset "{known.ns}:we'ird `na{{me}}\\nü"
└── job "jöb \\"q\\" {{x}}`\\n's"
    └── dataset raw.orders
1 job and 1 dataset upstream within 3 hops
"""


def test_a_name_with_a_colon_is_found_through_the_split_that_exists(known: Known) -> None:
    output = query_json("history", f"{known.ns}:{COLON_DATASET}")
    assert output["parameters"] == {"namespace": known.ns, "name": COLON_DATASET}
    assert [r["writtenBy"] for r in output["rows"]] == [
        [{"runId": known.runs["w"], "state": "COMPLETE"}]]


# --- errors -------------------------------------------------------------------------------------

def test_an_unknown_dataset_is_an_error_with_a_hint_and_exit_code_1(known: Known) -> None:
    assert query("upstream", f"{known.ns}:raw.order", ok=False) == (
        f"error: no dataset {known.ns}:raw.order\n"
        "hint: names are exact and case-sensitive; NS:NAME splits at a colon, --namespace NS "
        "NAME takes the name as it is\n")
    # Named in another namespace: the hint says where a dataset of that name is.
    error = query("history", "--namespace", "test://elsewhere", WEIRD_DATASET, ok=False)
    assert error.splitlines()[0] == (
        "error: no dataset " + json.dumps(f"test://elsewhere:{WEIRD_DATASET}",
                                          ensure_ascii=False))
    assert error.splitlines()[1].startswith("hint: a dataset of that name is in ")
    assert json.dumps(f"{known.ns}:{WEIRD_DATASET}", ensure_ascii=False) in error


def test_an_unknown_column_names_the_columns_the_dataset_has(known: Known) -> None:
    assert query("columns", f"{known.ns}:mart.revenue", "--field", "totl", ok=False) == (
        f"error: no column totl in dataset {known.ns}:mart.revenue\n"
        "hint: its columns: customer_name, total\n")


def test_unknown_version_ids_are_an_error_with_a_hint(known: Known) -> None:
    assert query("diff", known.versions["staging_a"], "0" * 32, ok=False).startswith(
        f"error: no two dataset versions or two job versions with ids "
        f"{known.versions['staging_a']} and {'0' * 32}\nhint: ")


def test_a_time_that_is_no_time_is_an_error_with_a_hint(known: Known) -> None:
    assert query("as-of", f"{known.ns}:mart.revenue", "--at", "last tuesday", ok=False) == (
        "error: last tuesday is not a time\n"
        "hint: give ISO 8601, e.g. 2024-03-01T12:00:00Z or 2024-03-01\n")


def test_neo4j_out_of_reach_is_the_usual_two_line_error(stack: StackSettings) -> None:
    with socket.socket() as sock:  # a port where nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = run_cli("query", "upstream", "pg:orders",
                   env={"LINEAGE_NEO4J__URI": f"bolt://127.0.0.1:{port}"})
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [
        f"error: cannot reach Neo4j at bolt://127.0.0.1:{port}",
        "hint: is it running? `lineage stack status` for the local stack, `lineage check` "
        "for any deployment; LINEAGE_NEO4J__URI sets the address"]
    assert proc.stdout == ""


def test_the_connection_of_lineage_query_refuses_to_write(stack: StackSettings) -> None:
    with Graph(stack.neo4j) as graph:
        assert graph.read("RETURN $x AS x", x="read") == [{"x": "read"}]
        with pytest.raises(LineageError, match="Writing in read access mode not allowed"):
            graph.read("CREATE (n:QueryCliProbe) DELETE n")


def test_query_help_lists_the_subcommands_and_how_to_name_a_dataset() -> None:
    proc = run_cli("query", "--help")
    assert proc.returncode == 0
    for word in ("upstream", "downstream", "impact", "columns", "history", "diff", "as-of",
                 "runs", "NS:NAME", "--namespace NS NAME", "symlink alias", "parent job",
                 "indirect", "--direct-only"):
        assert word in proc.stdout, word
