"""The SQL harvester's pure parts: splitting, naming jobs, and openlineage-sql's results mapped
to OpenLineage datasets and facets (the real parser, no stand-in)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from producers.harvest_sql import (
    Naming,
    Options,
    harvest_sql_text,
    job_name,
    normalize,
    parse,
    split_statements,
    statement_event,
)
from schemas.validation import validate
from tests.conftest import run_cli

NAMING = Naming("postgres://warehouse:5432", "retail")
ROLLUP = ("CREATE TABLE market.sales AS SELECT day, amount FROM market.retail_sales "
          "UNION ALL SELECT day, amount FROM market.online_sales")
WHEN = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


class ListSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def flush(self) -> None:
        pass


def texts(sql: str) -> list[str]:
    return [s.text for s in split_statements(sql)]


def test_statements_split_at_semicolons_outside_strings_names_and_comments() -> None:
    sql = """
        INSERT INTO t VALUES ('a;b', 'it''s; fine');  -- a comment; with a semicolon
        SELECT "odd;name" FROM s;
        /* a block; /* nested; */ still comment */ SELECT 1;
        CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql;
        DO $$ BEGIN PERFORM 1; END $$;
        SELECT E'escaped \\' quote; here' AS x;
        SELECT $1::int
    """
    assert texts(sql) == [
        "INSERT INTO t VALUES ('a;b', 'it''s; fine')",
        'SELECT "odd;name" FROM s',
        "SELECT 1",
        "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; SELECT 2; $body$ LANGUAGE sql",
        "DO $$ BEGIN PERFORM 1; END $$",
        "SELECT E'escaped \\' quote; here' AS x",
        "SELECT $1::int",
    ]


def test_each_statement_knows_the_line_it_starts_on_and_empty_ones_are_dropped() -> None:
    sql = "-- header\n\nSELECT 1;\n;\n  /* only a comment */ ;\n\nINSERT INTO t\nSELECT 2;"
    assert [(s.text, s.line) for s in split_statements(sql)] == [
        ("SELECT 1", 3), ("INSERT INTO t\nSELECT 2", 7)]


def test_an_unterminated_string_runs_to_the_end_instead_of_splitting() -> None:
    assert texts("SELECT 'open; SELECT 2") == ["SELECT 'open; SELECT 2"]


def test_the_same_statement_with_other_values_blanks_or_case_is_one_job() -> None:
    a = job_name("INSERT INTO mart.daily SELECT * FROM raw.t WHERE d = '2024-05-01' AND n > 10",
                 "retail")
    b = job_name("insert into MART.daily\n  select *\tfrom raw.t where d=$1 and n>$2 -- nightly",
                 "retail")
    assert a == b
    assert a.startswith("retail.sql_")
    assert len(a.removeprefix("retail.sql_")) == 12


def test_another_table_a_quoted_name_or_another_database_is_another_job() -> None:
    base = job_name("INSERT INTO t SELECT * FROM s", "retail")
    assert job_name("INSERT INTO t SELECT * FROM s2", "retail") != base
    assert job_name('INSERT INTO "T" SELECT * FROM s', "retail") != base
    assert job_name("INSERT INTO t SELECT * FROM s", "web") != base


def test_normalizing_keeps_quoted_names_and_drops_comments() -> None:
    assert normalize('SELECT "Mixed Case" /* why */ FROM T') == 'select "Mixed Case" from t'


def test_a_given_job_name_numbers_the_statements_of_a_script() -> None:
    assert job_name("SELECT 1", "db", job="nightly") == "nightly"
    assert job_name("SELECT 1", "db", job="nightly", index=2, count=3) == "nightly.2"


def test_tables_are_named_database_schema_table_as_openlineage_names_postgres_tables() -> None:
    parsed = parse('INSERT INTO Web.Public."Visits" SELECT * FROM raw_events', NAMING)
    assert parsed.outputs == ["web.public.Visits"]
    assert parsed.inputs == ["retail.public.raw_events"]
    other = Naming("snowflake://acct", "DB", "PUBLIC", dialect="snowflake")
    assert parse("INSERT INTO Mart.Daily SELECT * FROM Raw", other).outputs == ["DB.Mart.Daily"]


def test_a_union_into_a_new_table_gives_its_inputs_output_and_column_lineage() -> None:
    parsed = parse(ROLLUP, NAMING)
    assert parsed.inputs == ["retail.market.online_sales", "retail.market.retail_sales"]
    assert parsed.outputs == ["retail.market.sales"]
    assert parsed.columns == {"retail.market.sales": {
        "amount": [("retail.market.online_sales", "amount"),
                   ("retail.market.retail_sales", "amount")],
        "day": [("retail.market.online_sales", "day"), ("retail.market.retail_sales", "day")]}}
    assert parsed.kind(ROLLUP) == "write"


def test_expressions_map_each_output_column_to_the_columns_it_is_computed_from() -> None:
    parsed = parse("INSERT INTO mart.daily (day, total) "
                   "SELECT date_trunc('day', sold_at) AS day, sum(price * qty) AS total "
                   "FROM shop.orders GROUP BY 1", NAMING)
    assert parsed.columns["retail.mart.daily"] == {
        "day": [("retail.shop.orders", "sold_at")],
        "total": [("retail.shop.orders", "price"), ("retail.shop.orders", "qty")]}


@pytest.mark.parametrize(("sql", "kind"), [
    ("UPDATE a SET x = b.y FROM b WHERE a.id = b.id", "write"),
    ("INSERT INTO t VALUES (1)", "write"),
    ("CREATE TABLE t (a int)", "ddl"),
    ("SELECT * FROM t", "read"),
    ("SELECT * FROM pg_catalog.pg_class", "system"),
    ("SET search_path = market", "none"),
])
def test_statements_are_told_apart_by_what_they_do(sql: str, kind: str) -> None:
    assert parse(sql, NAMING).kind(sql) == kind


def test_the_event_of_a_statement_is_a_valid_complete_run_event_with_its_facets() -> None:
    parsed = parse(ROLLUP, NAMING)
    event = statement_event(ROLLUP, parsed, NAMING, job_namespace=NAMING.namespace,
                            job="retail.sales_rollup",
                            run_id="6a2f41a3-c54c-4d5c-9a4a-6f0d3d9a5b10", event_time=WHEN,
                            schemas={"retail.market.sales": [("day", "date"),
                                                             ("amount", "numeric")]})
    result = validate(json.dumps(event).encode())
    assert result.ok, result.reasons
    assert result.dropped_facets == ()
    assert event["eventType"] == "COMPLETE"
    assert event["eventTime"] == "2024-05-01T12:00:00.000+00:00"
    assert event["job"]["facets"]["sql"]["query"] == ROLLUP
    [output] = event["outputs"]
    assert output["facets"]["schema"]["fields"] == [{"name": "day", "type": "date"},
                                                    {"name": "amount", "type": "numeric"}]
    assert output["facets"]["columnLineage"]["fields"]["day"] == {"inputFields": [
        {"namespace": NAMING.namespace, "name": "retail.market.online_sales", "field": "day"},
        {"namespace": NAMING.namespace, "name": "retail.market.retail_sales", "field": "day"}]}


def test_a_script_gives_one_event_per_writing_statement_the_same_each_time() -> None:
    script = f"CREATE TABLE market.sales_copy (a int);\nSELECT 1 FROM t;\nSELEC oops;\n{ROLLUP};"
    sinks = [ListSink(), ListSink()]
    reports = [harvest_sql_text(script, "etl.sql", sink, Options(NAMING), event_time=WHEN,
                                log=lambda _: None) for sink in sinks]
    assert sinks[0].events == sinks[1].events
    [rollup] = sinks[0].events
    assert rollup["job"]["name"] == job_name(ROLLUP, "retail")
    report = reports[0]
    assert report.sent == 1
    assert report.problems[0].startswith("etl.sql:3: openlineage-sql could not parse the "
                                         "statement: ")
    assert report.notes == ["4 statements: 1 DDL without a source, 1 not parsed, "
                            "1 read-only (see --reads), 1 with lineage"]
    with_reads = ListSink()
    harvest_sql_text(script, "etl.sql", with_reads, Options(NAMING, job="etl", reads=True),
                     event_time=WHEN, log=lambda _: None)
    assert [e["job"]["name"] for e in with_reads.events] == ["etl.2", "etl.4"]


def test_a_sql_file_without_its_namespace_gets_a_clear_error(tmp_path: Any) -> None:
    script = tmp_path / "etl.sql"
    script.write_text(ROLLUP)
    result = run_cli("harvest", "sql", str(script), "--dry-run")
    assert result.returncode == 1
    assert "error: a SQL file needs --namespace and --database" in result.stderr
    assert "hint: e.g. --namespace postgres://" in result.stderr


def test_a_sql_file_is_printed_as_events_on_a_dry_run(tmp_path: Any) -> None:
    script = tmp_path / "etl.sql"
    script.write_text(ROLLUP + ";")
    result = run_cli("harvest", "sql", str(script), "--namespace", NAMING.namespace,
                     "--database", "retail", "--job", "rollup", "--event-time",
                     "2024-05-01T12:00:00", "--dry-run")
    assert result.returncode == 0, result.stderr
    [event] = [json.loads(line) for line in result.stdout.splitlines()]
    assert (event["job"]["name"], event["eventTime"]) == ("rollup",
                                                          "2024-05-01T12:00:00.000+00:00")


def test_an_unreachable_postgres_gets_a_clear_error() -> None:
    result = run_cli("harvest", "sql", "--dsn", "host=127.0.0.1 port=1 connect_timeout=2",
                     "--dry-run")
    assert result.returncode == 1
    assert "error: cannot connect to PostgreSQL: " in result.stderr
    assert "hint: check --dsn" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    ((), "give either a SQL file or --dsn"),
    (("x.sql", "--dsn", "host=h"), "give either a SQL file or --dsn"),
    (("--dsn", "host=h", "--job", "j"), "--job names the statements of a file"),
])
def test_contradictory_options_are_refused_before_anything_runs(
    args: tuple[str, ...], message: str,
) -> None:
    result = run_cli("harvest", "sql", *args)
    assert result.returncode == 1
    assert f"error: {message}" in result.stderr
