"""The harvesters on the real Kafka (and, for SQL history, a real PostgreSQL and Neo4j).

`lineage harvest logs|sql|file` run as a user runs them, in a child process, each with a state
folder of its own, publishing to a private topic (or a private pipeline's raw topic).
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver

from lineage.stack.settings import StackSettings
from producers.emitter import message_key
from producers.harvest_sql import job_name
from tests.conftest import run_cli
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import read_topic
from tests.integration.postgres_io import PrivatePostgres, server_bindir
from tests.integration.test_sink import Pipeline

RETAIL_SEED = """
CREATE SCHEMA market;
CREATE TABLE market.retail_sales (store_id int, day date, amount numeric(18,2));
CREATE TABLE market.online_sales (order_id int, day date, amount numeric(18,2));
INSERT INTO market.retail_sales VALUES (1, '2024-05-01', 120.50), (2, '2024-05-01', 80.00);
INSERT INTO market.online_sales VALUES (1001, '2024-05-01', 35.25);
"""
SALES_ROLLUP = ("CREATE TABLE market.sales AS "
                "SELECT day, amount FROM market.retail_sales "
                "UNION ALL SELECT day, amount FROM market.online_sales")


def corpus_events(root: Path) -> list[dict[str, Any]]:
    """The concrete events of the shared corpus (INDEX.tsv), in its order."""
    events = root / "events"
    with (events / "INDEX.tsv").open(encoding="utf-8") as index:
        rows = [r for r in csv.DictReader(index, delimiter="\t") if r["concrete"] == "yes"]
    return [json.loads((events / r["path"]).read_text(encoding="utf-8")) for r in rows]


def harvest(*args: str, state_dir: Path, **env: str) -> Any:
    result = run_cli("harvest", *args, env={"LINEAGE_STATE_DIR": str(state_dir), **env})
    print(result.stdout, result.stderr)
    return result


def on_topic(stack: StackSettings, topic: str) -> list[tuple[str, dict[str, Any]]]:
    return [(m.key().decode(), json.loads(m.value()))
            for m in read_topic(stack.kafka.bootstrap_servers, topic)]


def canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True)


def airflow_line(event: dict[str, Any]) -> str:
    return f"[2024-05-01, 12:00:00 UTC] {{console.py:29}} INFO - {json.dumps(event)}\n"


def spark_lines(event: dict[str, Any]) -> str:
    """A pretty-printed event, its first line behind a Spark log4j prefix."""
    return f"24/05/01 12:00:00 INFO ConsoleTransport: {json.dumps(event, indent=2)}\n"


def test_harvesting_airflow_and_spark_logs_sends_every_event_once_however_often_it_runs(
    stack: StackSettings, topic: str, shared_openlineage: Path, tmp_path: Path,
) -> None:
    events = corpus_events(shared_openlineage)[:30]
    logs, state = tmp_path / "logs", tmp_path / "state"
    airflow = logs / "dag_id=sales" / "run_id=manual" / "task_id=rollup" / "attempt=1.log"
    spark = logs / "spark" / "driver.log"
    airflow.parent.mkdir(parents=True)
    spark.parent.mkdir(parents=True)
    airflow.write_text("".join(
        "[2024-05-01, 12:00:00 UTC] {taskinstance.py:1} INFO - working\n" + airflow_line(e)
        for e in events[:15]))
    spark.write_text("".join("24/05/01 12:00:00 INFO SparkContext: Running Spark\n"
                             + spark_lines(e) for e in events[15:]))

    first = harvest("logs", str(logs), "--topic", topic, state_dir=state)
    assert first.returncode == 0, first.stderr
    assert "2 files, 30 events found, 30 sent" in first.stdout
    messages = on_topic(stack, topic)
    assert sorted(canonical(body) for _, body in messages) == sorted(map(canonical, events))
    assert all(key == message_key(body) for key, body in messages)

    again = harvest("logs", str(logs), "--topic", topic, state_dir=state)
    assert "0 events found, 0 sent" in again.stdout
    assert len(on_topic(stack, topic)) == 30, "a re-run sends nothing again"

    # Airflow writes one more event, and Spark is in the middle of writing another.
    new, half_written = events[0] | {"eventTime": "2024-05-02T00:00:00Z"}, events[16]
    half_written = half_written | {"eventTime": "2024-05-02T00:00:01Z"}
    with airflow.open("a") as out:
        out.write(airflow_line(new))
    text = spark_lines(half_written)
    with spark.open("a") as out:
        out.write(text[: len(text) // 2])
    harvest("logs", str(logs), "--topic", topic, state_dir=state)
    assert [b for _, b in on_topic(stack, topic)].count(new) == 1
    with spark.open("a") as out:
        out.write(text[len(text) // 2:])
    last = harvest("logs", str(logs), "--topic", topic, state_dir=state)
    assert "2 files, 1 events found, 1 sent" in last.stdout
    bodies = [b for _, b in on_topic(stack, topic)]
    assert len(bodies) == 32
    assert bodies.count(half_written) == 1


def test_replaying_files_sends_the_good_ones_and_names_the_bad_file_and_line(
    stack: StackSettings, topic: str, shared_openlineage: Path, tmp_path: Path,
) -> None:
    events = corpus_events(shared_openlineage)
    exports = tmp_path / "exports"
    (exports / "one-per-file").mkdir(parents=True)
    for index, event in enumerate(events[:20]):
        (exports / "one-per-file" / f"{index:02}.json").write_text(json.dumps(event, indent=2))
    (exports / "batch.ndjson").write_text("".join(json.dumps(e) + "\n" for e in events[20:]))
    (exports / "array.json").write_text(json.dumps(events[:3]))
    (exports / "broken.ndjson").write_text(
        json.dumps(events[0]) + "\n" + json.dumps(events[1]) + "\n{\"eventTime\": \n")
    (exports / "settings.json").write_text('{"retries": 3}')
    (exports / "README.txt").write_text("not a pattern the harvester reads")

    result = harvest("file", str(exports), "--topic", topic, state_dir=tmp_path / "state")

    assert result.returncode == 1, "bad files make the run fail, at its end"
    assert f"{exports / 'broken.ndjson'}: line 3 is not JSON" in result.stdout
    assert f"{exports / 'settings.json'}: event 1 is not an OpenLineage event" in result.stdout
    good = events[:20] + events[20:] + events[:3]
    assert f"24 files, {len(good)} events found, {len(good)} sent" in result.stdout
    messages = on_topic(stack, topic)
    assert sorted(canonical(b) for _, b in messages) == sorted(map(canonical, good))
    assert all(key == message_key(body) for key, body in messages)


def test_a_sql_file_becomes_one_run_per_writing_statement_and_the_same_events_again(
    stack: StackSettings, topic: str, tmp_path: Path,
) -> None:
    script = tmp_path / "nightly.sql"
    script.write_text(RETAIL_SEED + SALES_ROLLUP + ";\n")
    args = ("sql", str(script), "--namespace", "postgres://warehouse:5432", "--database",
            "retail", "--topic", topic)
    first = harvest(*args, state_dir=tmp_path / "state")
    assert first.returncode == 0, first.stderr
    assert ("6 statements: 2 DDL without a source, 3 with lineage, 1 without tables"
            in first.stdout)
    messages = on_topic(stack, topic)
    assert len(messages) == 3
    rollup = next(b for _, b in messages if b["job"]["name"] == job_name(SALES_ROLLUP, "retail"))
    assert [d["name"] for d in rollup["inputs"]] == ["retail.market.online_sales",
                                                     "retail.market.retail_sales"]
    [sales] = rollup["outputs"]
    assert sales["name"] == "retail.market.sales"
    lineage = sales["facets"]["columnLineage"]["fields"]
    assert sorted(lineage) == ["amount", "day"]
    assert {f["name"] for f in lineage["day"]["inputFields"]} == {
        "retail.market.online_sales", "retail.market.retail_sales"}
    assert rollup["job"]["facets"]["sql"]["query"] == SALES_ROLLUP
    assert all(key == message_key(body) for key, body in messages)

    harvest(*args, state_dir=tmp_path / "state")
    values = Counter(canonical(b) for _, b in on_topic(stack, topic))
    assert sorted(values.values()) == [2, 2, 2], "a re-run repeats the same events"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PrivatePostgres]:
    """A private PostgreSQL with pg_stat_statements and the retail example loaded."""
    bindir = server_bindir()
    if bindir is None:
        message = ("PostgreSQL's server binaries are not installed: deploy/local/bootstrap.sh "
                   "installs Debian's postgresql package")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    server = PrivatePostgres(bindir).start()
    try:
        server.run("CREATE EXTENSION pg_stat_statements")
        server.run("CREATE DATABASE retail")
        server.run(RETAIL_SEED, "retail")
        server.run(SALES_ROLLUP, "retail")
        yield server
    finally:
        server.stop()


def test_query_history_from_postgres_reaches_the_graph_as_job_and_column_lineage(
    postgres: PrivatePostgres, stack: StackSettings, tmp_path: Path, neo4j_driver: Driver,
) -> None:
    pipeline = Pipeline(stack, tmp_path)
    namespace = postgres.namespace
    try:
        pipeline.start("process")
        pipeline.start("sink")
        result = harvest("sql", "--dsn", postgres.dsn(), "--topic", pipeline.topics.raw,
                         state_dir=tmp_path / "state")
        assert result.returncode == 0, result.stderr
        pipeline.wait_in_graph()

        def query(cypher: str) -> list[Any]:
            return neo4j_driver.execute_query(cypher, ns=namespace, routing_="r")[0]

        rollup = job_name(SALES_ROLLUP, "retail")
        edges = query("MATCH (i:Dataset {namespace: $ns})-[:INPUT_TO]->(j:Job)-[:OUTPUT_TO]->"
                      "(:Dataset {namespace: $ns, name: 'retail.market.sales'}) "
                      "RETURN i.name AS input, j.name AS job, j.namespace AS jns")
        assert sorted((r["input"], r["job"], r["jns"]) for r in edges) == [
            ("retail.market.online_sales", rollup, namespace),
            ("retail.market.retail_sales", rollup, namespace)]
        feeds = query("MATCH (s:Field)-[:FEEDS]->(t:Field {namespace: $ns, "
                      "dataset: 'retail.market.sales'}) "
                      "RETURN s.dataset AS dataset, s.name AS source, t.name AS target")
        assert sorted((r["dataset"], r["source"], r["target"]) for r in feeds) == [
            ("retail.market.online_sales", "amount", "amount"),
            ("retail.market.online_sales", "day", "day"),
            ("retail.market.retail_sales", "amount", "amount"),
            ("retail.market.retail_sales", "day", "day")]
        schema = query("MATCH (:Dataset {namespace: $ns, name: 'retail.market.sales'})"
                       "-[:HAS_VERSION]->(:DatasetVersion)-[h:HAS_FIELD]->(f:Field) "
                       "RETURN f.name AS name, h.type AS type ORDER BY h.ordinal")
        assert [(r["name"], r["type"]) for r in schema] == [("day", "date"),
                                                            ("amount", "numeric")]
        [version] = query("MATCH (:Job {namespace: $ns, name: '" + rollup + "'})"
                          "-[:HAS_VERSION]->(v:JobVersion) RETURN v.sql AS sql")
        assert version["sql"] == SALES_ROLLUP
    finally:
        pipeline.stop()
        delete_namespace(neo4j_driver, namespace)


def test_a_second_harvest_of_postgres_sends_only_statements_run_again_since(
    postgres: PrivatePostgres, stack: StackSettings, topic: str, tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    first = harvest("sql", "--dsn", postgres.dsn(), "--topic", topic, state_dir=state)
    assert first.returncode == 0, first.stderr
    before = Counter(canonical(b) for _, b in on_topic(stack, topic))
    assert sum(before.values()) >= 3, "the two loads and the rollup"
    assert "0 events found" in harvest("sql", "--dsn", postgres.dsn(), "--topic", topic,
                                       state_dir=state).stdout
    refresh = "INSERT INTO market.sales SELECT day, amount FROM market.online_sales"
    postgres.run(refresh, "retail")
    third = harvest("sql", "--dsn", postgres.dsn(), "--topic", topic, state_dir=state)
    assert "sql: 1 events found, 1 sent" in third.stdout
    [newest] = list((Counter(canonical(b) for _, b in on_topic(stack, topic)) - before).elements())
    event = json.loads(newest)
    assert event["job"]["name"] == job_name(refresh, "retail")
    assert [d["name"] for d in event["inputs"]] == ["retail.market.online_sales"]


def test_a_database_without_pg_stat_statements_gets_a_clear_error_and_a_fix(
    postgres: PrivatePostgres, tmp_path: Path,
) -> None:
    result = harvest("sql", "--dsn", postgres.dsn("retail"), "--dry-run",
                     state_dir=tmp_path / "state")
    assert result.returncode == 1
    assert "error: pg_stat_statements is not available in database 'retail'" in result.stderr
    assert "CREATE EXTENSION pg_stat_statements" in result.stderr
