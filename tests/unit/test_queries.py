"""lineage.queries without Neo4j: the cookbook is the CLI's Cypher, and the answers' shaping."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import pytest
from neo4j.time import DateTime, Duration
from typer.testing import CliRunner

from core.errors import ConfigError, LineageError, NotFound
from lineage import cli, queries
from lineage.cli import query as query_cli
from tests.conftest import REPO

COOKBOOK = (REPO / "docs" / "cypher-cookbook.md").read_text(encoding="utf-8")


# --- the cookbook and the CLI cannot drift ----------------------------------------------------

def test_every_statement_of_the_cli_is_textually_its_cookbook_block() -> None:
    blocks = queries.recipes_in(COOKBOOK)
    assert set(blocks) == set(queries.RECIPES), "the cookbook and lineage/queries.py name " \
                                               "the same recipes"
    for name, statement in queries.RECIPES.items():
        assert blocks[name] == statement, f"{name} differs from its cookbook block"
        assert getattr(queries, name) is statement


def test_the_recipe_registry_holds_every_statement_constant_of_the_module() -> None:
    # The private fragments (_DATASET, _REACH, ...) are parts of statements, not statements.
    constants = {name for name, value in vars(queries).items()
                 if name.isupper() and not name.startswith("_") and isinstance(value, str)
                 and "MATCH" in value}
    assert constants == set(queries.RECIPES)


def test_recipes_hold_no_literal_values_but_the_graph_models_constants() -> None:
    allowed = {"'FAIL'", "'COMPLETE'", "'INPUT_TO'", "'READS'", "''", "'HAS_FIELD'", "'FEEDS'",
               "'DIRECT'", "'UNKNOWN'", "'/'"}
    for name, statement in queries.RECIPES.items():
        literals = set(re.findall(r"'[^']*'|\"[^\"]*\"", statement))
        assert literals <= allowed, (name, literals - allowed)
        assert "$" in statement, f"{name} takes no parameter"


def test_variable_length_bounds_are_the_documented_maxima() -> None:
    bounds = {m for s in queries.RECIPES.values() for m in re.findall(r"\*\d+\.\.\d+", s)}
    assert bounds <= {"*1..40", "*1..20", "*0..1", "*0..10"}
    assert queries.MAX_HOPS * 2 == 40
    assert "| `*1..40` relationships | 20 hops |" in COOKBOOK
    assert "| the child jobs of a parent job | `*0..10` `CHILD_OF` | 10 levels |" in COOKBOOK
    # Quantified path patterns enumerate paths: none (the cookbook's maximum depths).
    assert not any(re.search(r"\)\{\d*,\d*\}", s) for s in queries.RECIPES.values())


def test_the_cookbook_parser_names_every_block() -> None:
    text = "<!-- recipe: A -->\n```cypher\nRETURN $a\n```\n\n<!-- recipe: B -->\n```cypher\n" \
           "RETURN $b\n```\n```bash\nlineage query\n```\n"
    assert queries.recipes_in(text) == {"A": "RETURN $a\n", "B": "RETURN $b\n"}


def test_the_cookbook_parser_refuses_an_unnamed_block_and_a_name_used_twice() -> None:
    with pytest.raises(ValueError, match="without a <!-- recipe"):
        queries.recipes_in("<!-- recipe: A -->\n```cypher\nRETURN 1\n```\n```cypher\nX\n```\n")
    with pytest.raises(ValueError, match="A appears twice"):
        queries.recipes_in("<!-- recipe: A -->\n```cypher\nR\n```\n"
                           "<!-- recipe: A -->\n```cypher\nR\n```\n")


# --- naming a dataset or a job ------------------------------------------------------------------

def test_a_reference_splits_at_every_colon_the_last_one_first() -> None:
    assert queries.reference_candidates("test://abc:odd:name") == [
        ("test://abc:odd", "name"), ("test://abc", "odd:name"), ("test", "//abc:odd:name")]
    assert queries.reference_candidates("no-colon") == []
    assert queries.reference_candidates(":x") == []
    assert queries.reference_candidates("x:") == []


def test_the_one_existing_split_of_a_reference_is_chosen() -> None:
    candidates = queries.reference_candidates("test://abc:odd:name")
    found = [("test://abc", "odd:name"), ("elsewhere", "name")]
    assert queries.choose("dataset", "test://abc:odd:name", candidates, found) == (
        "test://abc", "odd:name")


def test_a_bare_name_is_chosen_when_one_namespace_has_it_and_refused_when_several_do() -> None:
    assert queries.choose("job", "load", [], [("airflow", "load")]) == ("airflow", "load")
    with pytest.raises(LineageError) as error:
        queries.choose("job", "load", [], [("b", "load"), ("a", "load")])
    assert error.value.cause == "load names 2 jobs: a:load, b:load"
    assert error.value.hint == "name one exactly with --namespace NS NAME, e.g. --namespace a load"
    assert not isinstance(error.value, NotFound)


def test_an_unknown_name_says_where_that_name_exists_else_how_names_are_read() -> None:
    with pytest.raises(NotFound) as error:
        queries.choose("dataset", "pg:orders", [("pg", "orders")], [("mysql", "orders")])
    assert error.value.cause == "no dataset pg:orders"
    assert error.value.hint == "a dataset of that name is in mysql:orders"
    with pytest.raises(NotFound) as error:
        queries.choose("dataset", "pg:nope", [("pg", "nope")], [])
    assert error.value.hint is not None and "case-sensitive" in error.value.hint


def test_names_are_shown_as_they_are_unless_they_hold_control_characters() -> None:
    odd = "we'ird `na{me}\"ü"
    assert queries.display(odd) == odd
    assert queries.display("two\nlines ü") == '"two\\nlines ü"'
    assert queries.display("tab\there") == '"tab\\there"'
    assert queries.display_ref("pg", "a\nb") == '"pg:a\\nb"'


# --- values, times and tables -------------------------------------------------------------------

def test_query_values_become_json_with_utc_times_ending_in_z() -> None:
    value = {"at": DateTime(2024, 3, 1, 2, 40, 0, 250_000_000, tzinfo=UTC),
             "list": [DateTime(2024, 3, 1, tzinfo=UTC), None, "x"],
             "local": datetime(2024, 3, 1, 14, tzinfo=timezone(timedelta(hours=2)))}
    assert queries.plain(value) == {"at": "2024-03-01T02:40:00.250Z",
                                    "list": ["2024-03-01T00:00:00Z", None, "x"],
                                    "local": "2024-03-01T12:00:00Z"}
    assert json.dumps(queries.plain(value))
    assert queries.plain([Duration(minutes=5, seconds=1.5)]) == ["PT5M1.5S"]


def test_times_on_the_command_line_are_utc_without_an_offset_and_refused_when_not_times() -> None:
    assert queries.parse_time("2024-03-01T12:00:00") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert queries.parse_time("2024-03-01T12:00:00Z") == datetime(2024, 3, 1, 12, tzinfo=UTC)
    assert queries.parse_time(" 2024-03-01T14:00+02:00 ") == datetime(2024, 3, 1, 12,
                                                                      tzinfo=UTC)
    with pytest.raises(ConfigError, match="yesterday is not a time"):
        queries.parse_time("yesterday")


def test_durations_read_as_hours_minutes_seconds() -> None:
    assert [queries.duration_text(s) for s in (0, 59.5, 600.25, 3600 * 26 + 61, None)] == [
        "0:00:00", "0:00:59.500", "0:10:00.250", "26:01:01", "-"]


def test_tables_align_columns_and_show_none_and_lists_readably() -> None:
    lines = queries.table(
        ["run", "written by", "retyped", "at", "ok"],
        [["r1", [{"runId": "x", "state": "FAIL"}], [{"field": "a", "before": "int",
                                                      "after": "bigint"}],
          datetime(2024, 3, 1, tzinfo=UTC), True],
         ["r22", [], None, None, False]])
    assert lines == [
        "run  written by  retyped           at                    ok",
        "r1   x (FAIL)    a: int -> bigint  2024-03-01T00:00:00Z  yes",
        "r22  -           -                 -                     no",
    ]


def test_table_cells_line_up_under_their_headers() -> None:
    lines = queries.table(["a", "bb"], [["xxx", "y"], [None, "z\nw"]])
    assert lines == ["a    bb", "xxx  y", '-    "z\\nw"']


def test_dataset_references_are_relative_to_the_roots_namespace() -> None:
    assert queries.relative([{"namespace": "pg", "name": "a"},
                             {"namespace": "s3://b", "name": "c\nd"}], "pg") == [
        "a", '"s3://b:c\\nd"']


def test_diffs_become_one_row_per_change() -> None:
    assert queries.dataset_diff_rows({"added": ["r"], "removed": ["n"], "retyped": [
        {"field": "a", "before": "double", "after": "decimal"}]}) == [
        ["added", "r", None, None], ["removed", "n", None, None],
        ["retyped", "a", "double", "decimal"]]
    regions = {"namespace": "pg", "name": "regions"}
    assert queries.job_diff_rows({
        "sqlBefore": "A", "sqlAfter": "B", "readsAdded": [regions], "readsRemoved": [],
        "writesAdded": [], "writesRemoved": [regions]}) == [
        ["sql changed", "sql", "A", "B"], ["read added", regions, None, None],
        ["write removed", regions, None, None]]
    assert queries.job_diff_rows({"sqlBefore": None, "sqlAfter": None, "readsAdded": [],
                                  "readsRemoved": [], "writesAdded": [],
                                  "writesRemoved": []}) == []


# --- trees --------------------------------------------------------------------------------------

def node(hops: int, kind: str, name: str, *via: str, namespace: str = "pg") -> dict[str, Any]:
    return {"hops": hops, "kind": kind, "namespace": namespace, "name": name,
            "via": [{"namespace": "pg", "name": v} for v in via]}


def test_an_upstream_tree_shows_a_shared_input_under_each_job_and_expands_it_once() -> None:
    rows = [node(1, "Job", "join", "report"),
            node(1, "Dataset", "a", "join"), node(1, "Dataset", "b", "join"),
            node(2, "Job", "make", "a", "b"),
            node(2, "Dataset", "raw", "make", namespace="s3://lake")]
    assert queries.lineage_tree(("Dataset", "pg", "report"), rows) == [
        "dataset pg:report",
        "└── job join",
        "    ├── dataset a",
        "    │   └── job make",
        "    │       └── dataset s3://lake:raw",
        "    └── dataset b",
        "        └── job make (as above)",
    ]


def test_a_job_and_a_dataset_of_the_same_name_are_different_nodes_of_a_tree() -> None:
    rows = [node(1, "Dataset", "daily", "daily")]
    assert queries.lineage_tree(("Job", "pg", "daily"), rows) == [
        "job pg:daily", "└── dataset daily"]


def test_a_column_tree_labels_each_column_with_the_transformations_of_its_edge() -> None:
    rows = [{"hops": 1, "namespace": "pg", "dataset": "mart", "field": "total",
             "via": [{"namespace": "pg", "dataset": "report", "field": "total",
                      "transformations": ["DIRECT/IDENTITY"]}]},
            {"hops": 2, "namespace": "s3", "dataset": "raw", "field": "amount",
             "via": [{"namespace": "pg", "dataset": "mart", "field": "total",
                      "transformations": ["DIRECT/AGGREGATION", "INDIRECT/FILTER"]}]}]
    assert queries.column_tree(("pg", "report", "total"), rows, "upstream") == [
        "upstream",
        "└── mart.total (DIRECT/IDENTITY)",
        "    └── s3:raw.amount (DIRECT/AGGREGATION, INDIRECT/FILTER)",
    ]


def test_a_parent_jobs_tree_starts_with_its_children() -> None:
    rows = [node(0, "Job", "dag.a", "dag"), node(0, "Job", "dag.b", "dag"),
            node(1, "Dataset", "orders", "dag.a", "dag.b"), node(1, "Dataset", "x", "dag.b")]
    assert queries.lineage_tree(("Job", "pg", "dag"), rows) == [
        "job pg:dag",
        "├── child job dag.a",
        "│   └── dataset orders",
        "└── child job dag.b",
        "    ├── dataset orders",
        "    └── dataset x",
    ]


def column(hops: int, dataset: str, field: str | None, indirect: bool,
           *via: tuple[str, str, list[str]]) -> dict[str, Any]:
    return {"hops": hops, "namespace": "pg", "dataset": dataset, "field": field,
            "indirect": indirect,
            "via": [{"namespace": "pg", "dataset": d, "field": f, "transformations": t}
                    for d, f, t in via]}


def test_a_column_tree_marks_indirect_columns_and_datasets_affected_as_a_whole() -> None:
    rows = [column(1, "mart", "total", False, ("raw", "amount", ["DIRECT/AGGREGATION"])),
            column(1, "big", None, True, ("raw", "amount", ["INDIRECT/FILTER"])),
            column(2, "report", "sum", True, ("mart", "total", ["INDIRECT/SORT"]))]
    assert queries.column_tree(("pg", "raw", "amount"), rows, "downstream") == [
        "downstream",
        "├── mart.total (DIRECT/AGGREGATION)",
        "│   └── report.sum (INDIRECT/SORT; indirect)",
        "└── dataset big (INDIRECT/FILTER; indirect)",
    ]


def test_a_columns_count_says_how_many_columns_datasets_and_indirect_ones() -> None:
    rows = [column(1, "mart", "total", False), column(1, "big", None, True),
            column(1, "other", None, True), column(2, "report", "sum", True)]
    assert queries.column_count(rows, "downstream") == (
        "2 columns and 2 datasets downstream, 3 indirect")
    assert queries.column_count(rows[:1], "upstream") == "1 column upstream"
    assert queries.column_count([], "downstream") == "0 columns downstream"


def test_an_indirect_column_is_labelled_with_its_transformations() -> None:
    row = column(1, "big", None, True, ("raw", "id", ["INDIRECT/JOIN"]),
                 ("raw", "cust", ["INDIRECT/FILTER", "INDIRECT/JOIN"]))
    assert queries.column_label(row, "pg") == (
        "dataset big (INDIRECT/FILTER, INDIRECT/JOIN; indirect)")
    assert queries.column_label({**row, "namespace": "s3"}, "pg") == (
        "dataset s3:big (INDIRECT/FILTER, INDIRECT/JOIN; indirect)")


def test_a_flat_answer_is_grouped_by_hop() -> None:
    rows = [{"hops": 1, "n": "a"}, {"hops": 1, "n": "b"}, {"hops": 3, "n": "c"}]
    assert queries.by_hops("title", rows, lambda r: r["n"]) == [
        "title", "├── hop 1", "│   ├── a", "│   └── b", "└── hop 3", "    └── c"]


# --- the CLI runs cookbook statements only ----------------------------------------------------

class FakeGraph:
    """Stands in for Neo4j in this unit test: canned rows, and a log of the statements run."""

    datasets = frozenset({("pg", "orders"), ("pg", "odd:name"), ("hive", "orders")})
    jobs = frozenset({("pg", "load")})
    aliases: ClassVar = {("hive", "orders"): ("pg", "orders")}

    def __init__(self) -> None:
        self.ran: list[tuple[str, dict[str, Any]]] = []

    def __enter__(self) -> FakeGraph:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def read(self, statement: str, **parameters: Any) -> list[dict[str, Any]]:
        self.ran.append((statement, parameters))
        q = queries
        if statement in (q.FIND_DATASETS, q.FIND_JOBS):
            known = self.datasets if statement == q.FIND_DATASETS else self.jobs
            return [{"namespace": ns, "name": n} for ns, n in sorted(known)
                    if n in parameters["names"]]
        if statement == q.DATASET_FIELDS:
            return [{"field": "amount", "currentType": "double"}]
        if statement == q.DATASET_NAMES:
            primary = self.aliases.get((parameters["namespace"], parameters["name"]))
            ns, name = primary or (parameters["namespace"], parameters["name"])
            return [{"namespace": ns, "name": name, "alias": primary is not None,
                     "aliases": []}]
        if statement == q.DATASET_VERSION_DIFF:
            return []
        if statement == q.JOB_VERSION_DIFF:
            version = {"id": "v1", "jobNamespace": "pg", "jobName": "load",
                       "validFrom": datetime(2024, 3, 1, tzinfo=UTC)}
            return [{"fromVersion": version, "toVersion": {**version, "id": "v2"},
                     "sqlBefore": "A", "sqlAfter": "B", "readsAdded": [], "readsRemoved": [],
                     "writesAdded": [{"namespace": "pg", "name": "orders"}],
                     "writesRemoved": []}]
        return []


@pytest.fixture
def fake_graph(monkeypatch: pytest.MonkeyPatch) -> FakeGraph:
    graph = FakeGraph()
    monkeypatch.setattr(query_cli, "_graph", lambda: graph)
    return graph


@pytest.mark.parametrize("argv", [
    ["upstream", "pg:orders"], ["downstream", "--job", "pg:load", "--hops", "1"],
    ["impact", "pg:orders"], ["impact", "pg:orders", "--field", "amount"],
    ["columns", "pg:orders", "--field", "amount"], ["history", "pg:orders"],
    ["history", "--job", "pg:load"], ["diff", "v1", "v2"],
    ["as-of", "pg:orders", "--at", "2024-03-01"], ["as-of", "pg:orders", "--at", "2024-03-01",
                                                   "--downstream"],
    ["runs", "pg:load"], ["upstream", "--namespace", "pg", "odd:name", "--json"],
    ["impact", "pg:orders", "--field", "amount", "--direct-only"],
    ["columns", "pg:orders", "--field", "amount", "--direct-only"],
    ["upstream", "hive:orders"], ["history", "hive:orders", "--json"],
])
def test_each_subcommand_runs_cookbook_statements_only(argv: list[str],
                                                       fake_graph: FakeGraph) -> None:
    result = CliRunner().invoke(cli.app, ["query", *argv])
    assert result.exit_code == 0, result.output
    blocks = set(queries.recipes_in(COOKBOOK).values())
    assert fake_graph.ran
    for statement, parameters in fake_graph.ran:
        assert statement in blocks
        assert set(re.findall(r"\$(\w+)", statement)) == set(parameters), statement


def test_a_name_with_a_colon_is_found_by_its_split_that_exists(fake_graph: FakeGraph) -> None:
    result = CliRunner().invoke(cli.app, ["query", "history", "--json", "pg:odd:name"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["parameters"] == {"namespace": "pg", "name": "odd:name"}


def test_an_unknown_dataset_is_an_error_with_a_hint_and_exit_code_1(
        fake_graph: FakeGraph) -> None:
    result = CliRunner().invoke(cli.app, ["query", "upstream", "pg:nope"])
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == "error: no dataset pg:nope"
    assert result.output.splitlines()[1].startswith("hint: ")


def test_an_alias_is_resolved_to_its_primary_and_the_answer_says_so(
        fake_graph: FakeGraph) -> None:
    result = CliRunner().invoke(cli.app, ["query", "upstream", "hive:orders"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "resolved alias hive:orders to pg:orders", "dataset pg:orders",
        "0 jobs and 0 datasets upstream within 3 hops"]
    result = CliRunner().invoke(cli.app, ["query", "history", "--json", "hive:orders"])
    output = json.loads(result.output)
    assert output["parameters"] == {"namespace": "pg", "name": "orders"}
    assert output["resolved"] == {"asked": {"namespace": "hive", "name": "orders"},
                                  "primary": {"namespace": "pg", "name": "orders"}}


def test_a_primary_name_is_resolved_to_nothing_else(fake_graph: FakeGraph) -> None:
    result = CliRunner().invoke(cli.app, ["query", "impact", "--json", "pg:orders"])
    assert json.loads(result.output)["resolved"] is None


def test_column_questions_run_the_indirect_recipes_unless_direct_only(
        fake_graph: FakeGraph) -> None:
    for argv, recipes in (
            (["impact", "pg:orders", "--field", "amount"], ["COLUMN_DOWNSTREAM"]),
            (["impact", "pg:orders", "--field", "amount", "--direct-only"], ["FIELD_IMPACT"]),
            (["columns", "pg:orders", "--field", "amount"],
             ["COLUMN_UPSTREAM", "COLUMN_DOWNSTREAM"]),
            (["columns", "pg:orders", "--field", "amount", "--direct-only"],
             ["FIELD_UPSTREAM", "FIELD_DOWNSTREAM"])):
        result = CliRunner().invoke(cli.app, ["query", *argv, "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output)["recipes"] == recipes, argv


def test_a_job_named_without_job_gets_a_hint_to_add_it(fake_graph: FakeGraph) -> None:
    result = CliRunner().invoke(cli.app, ["query", "history", "pg:load"])
    assert result.exit_code == 1
    assert result.output.splitlines() == ["error: no dataset pg:load",
                                          "hint: that is a job: add --job"]


def test_a_job_diff_shows_its_dataset_changes_and_both_sql_texts(fake_graph: FakeGraph) -> None:
    result = CliRunner().invoke(cli.app, ["query", "diff", "v1", "v2"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "diff of job pg:load: v1 (2024-03-01T00:00:00Z) -> v2 (2024-03-01T00:00:00Z)",
        "change       dataset", "write added  orders", "sql before: A", "sql after:  B"]
