"""Marquez's lineage read: parsing ``nodeId`` and ``depth``, the statement, the JSON shape; and the
gateway's refusals that need no Neo4j (the answers from Neo4j: tests/integration/
test_gateway_lineage.py)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.errors import BadRequest
from lineage.marquez_api import (
    DEFAULT_DEPTH,
    MAX_DEPTH,
    NodeRef,
    lineage_parameters,
    lineage_statement,
    marquez_graph,
    node_id,
    parse_depth,
    parse_node_id,
    split_namespace,
)
from lineage.read_api import create_app
from producers.gateway.settings import GatewaySettings
from tests.conftest import free_port
from tests.unit.test_gateway import MemoryPublisher


@pytest.mark.parametrize(("rest", "expected"), [
    ("postgres://db:5432:public.orders", ("postgres://db:5432", "public.orders")),
    ("bench://ns-001:mart.job1_out0", ("bench://ns-001", "mart.job1_out0")),
    ("warehouse:orders", ("warehouse", "orders")),
    ("s3://bucket:/path/to/x", ("s3://bucket", "/path/to/x")),
    ("warehouse:2024_orders", ("warehouse", "2024_orders")),
    ("kafka://broker:9092:topic:with:colons", ("kafka://broker:9092", "topic:with:colons")),
    ("hive://metastore:9083:db.t#v2", ("hive://metastore:9083", "db.t#v2")),
    ("pg://db:5432:2024_orders", ("pg://db:5432", "2024_orders")),  # no qualifying colon
    ("bigquery:project.dataset.table", ("bigquery", "project.dataset.table")),
    ("file:/data/x.csv", ("file", "/data/x.csv")),
])
def test_the_namespace_and_the_name_split_as_marquez_splits_them(
    rest: str, expected: tuple[str, str],
) -> None:
    assert split_namespace(rest) == expected


@pytest.mark.parametrize(("namespace", "name"), [
    ("postgres://db:5432", "public.orders"), ("warehouse", "orders"), ("s3://bucket", "/x/y"),
    ("bench://ns-001", "mart.job1_out0"), ("kafka://b:9092", "events:v1"),
])
def test_the_ids_of_an_answer_parse_back_to_their_node(namespace: str, name: str) -> None:
    for kind in ("Dataset", "Job"):
        ref = parse_node_id(node_id(kind, namespace, name))
        assert ref == NodeRef(kind.lower(), namespace, name)


def test_a_run_id_is_a_uuid() -> None:
    run = "0190D6D2-4D4E-7E3B-9C1A-5B5F8D2C1E00"
    assert parse_node_id(f"run:{run}") == NodeRef("run", "", run.lower())


@pytest.mark.parametrize("value", [
    None, "", "dataset", "dataset:", "dataset:warehouse", "dataset::orders", "dataset:ns:",
    "job:", "table:pg:orders", "DATASET:pg:orders", "run:", "run:not-a-uuid", "run:pg:orders",
])
def test_a_bad_node_id_is_refused_with_a_reason(value: str | None) -> None:
    with pytest.raises(BadRequest) as refused:
        parse_node_id(value)
    assert str(refused.value)


@pytest.mark.parametrize(("value", "depth"), [
    (None, DEFAULT_DEPTH), ("0", 0), ("1", 1), ("5", 5), ("20", 20), (" 7 ", 7), ("007", 7),
])
def test_depth_is_a_whole_number_from_0_to_20(value: str | None, depth: int) -> None:
    assert parse_depth(value) == depth


@pytest.mark.parametrize("value", ["", " ", "21", "100", "-1", "+5", "1_0", "5.0", "abc", "²",
                                   "1e1", "0x5", "99999999999999999999"])
def test_any_other_depth_is_refused(value: str) -> None:
    with pytest.raises(BadRequest, match="depth must be a whole number from 0 to 20"):
        parse_depth(value)


def test_the_statement_has_the_depth_as_a_literal_and_every_user_value_as_a_parameter() -> None:
    for kind in ("dataset", "job", "run"):
        for depth in (0, 5, MAX_DEPTH):
            statement = lineage_statement(kind, depth)
            assert f"-[:INPUT_TO|OUTPUT_TO*0..{depth}]-" in statement
    assert "$namespace" in lineage_statement("dataset", 1)
    assert "$runId" in lineage_statement("run", 1)
    ref = NodeRef("dataset", "x'}) DETACH DELETE n //", "y")
    assert lineage_parameters(ref) == {"namespace": ref.namespace, "name": "y"}
    assert lineage_parameters(NodeRef("run", "", "r")) == {"runId": "r"}


@pytest.mark.parametrize("depth", [-1, MAX_DEPTH + 1, True, 2.0, "3"])
def test_the_statement_refuses_a_depth_that_was_not_checked(depth: Any) -> None:
    with pytest.raises(BadRequest):
        lineage_statement("dataset", depth)


def micros(at: datetime) -> int:
    """A time as the statement returns it: ``epochSeconds * 1000000 + microsecond``."""
    return int(at.timestamp()) * 1_000_000 + at.microsecond


def record(kind: str, name: str, ins: Sequence[str] = (), outs: Sequence[str] = (),
           **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "namespace": "ns", "name": name, "description": None,
            "ins": [["ns", n] for n in ins], "outs": [["ns", n] for n in outs],
            "fields": [], "runs": [], **extra}


def test_records_become_marquezs_graph_with_the_edges_inside_the_answer() -> None:
    started = micros(datetime(2024, 5, 1, 1, 0, 0, 250_000, tzinfo=UTC))
    records = [  # depth 1 around b: a and c are outside, but job1 and job2 still name them
        record("Job", "job2", ["b"], ["c"], runs=[["r2", "FAIL", started, None]]),
        record("Dataset", "b", ["job1"], ["job2"], description="staged",
               fields=[["id", "bigint", None], ["amount", None, "in EUR"]]),
        record("Job", "job1", ["a"], ["b"]),
    ]
    graph = marquez_graph(records)["graph"]
    assert [(n["id"], n["type"]) for n in graph] == [
        ("dataset:ns:b", "DATASET"), ("job:ns:job1", "JOB"), ("job:ns:job2", "JOB")]
    b, job1, job2 = graph
    assert b["inEdges"] == [{"origin": "job:ns:job1", "destination": "dataset:ns:b"}]
    assert b["outEdges"] == [{"origin": "dataset:ns:b", "destination": "job:ns:job2"}]
    assert (job1["inEdges"], job1["outEdges"]) == ([], b["inEdges"])
    assert (job2["inEdges"], job2["outEdges"]) == (b["outEdges"], [])
    assert b["data"] == {"id": {"namespace": "ns", "name": "b"}, "type": "DB_TABLE", "name": "b",
                         "namespace": "ns", "description": "staged",
                         "fields": [{"name": "id", "type": "bigint", "description": None},
                                    {"name": "amount", "type": None, "description": "in EUR"}]}
    assert job2["data"] == {
        "id": {"namespace": "ns", "name": "job2"}, "type": "BATCH", "name": "job2",
        "namespace": "ns", "description": None,
        "inputs": [{"namespace": "ns", "name": "b"}], "outputs": [{"namespace": "ns", "name": "c"}],
        "latestRun": {"id": "r2", "state": "FAILED", "startedAt": "2024-05-01T01:00:00.250Z",
                      "endedAt": None}}
    assert job1["data"]["latestRun"] is None


@pytest.mark.parametrize(("ours", "marquez"), [
    ("START", "RUNNING"), ("RUNNING", "RUNNING"), ("OTHER", "RUNNING"),
    ("COMPLETE", "COMPLETED"), ("FAIL", "FAILED"), ("ABORT", "ABORTED"),
])
def test_run_states_are_marquezs(ours: str, marquez: str) -> None:
    started, ended = (micros(datetime(2024, 5, 1, 0, 0, s, 123_456, tzinfo=UTC)) for s in (0, 9))
    [job] = marquez_graph([record("Job", "j", runs=[["r", ours, started, ended]])])["graph"]
    assert job["data"]["latestRun"] == {"id": "r", "state": marquez,
                                        "startedAt": "2024-05-01T00:00:00.123456Z",
                                        "endedAt": "2024-05-01T00:00:09.123456Z"}


def test_a_cycle_and_a_lone_node_shape_without_duplicates() -> None:
    records = [record("Dataset", "t", ["dedupe"], ["dedupe", "dedupe"]),
               record("Job", "dedupe", ["t"], ["t"])]
    t, dedupe = marquez_graph(records)["graph"]
    assert t["outEdges"] == dedupe["inEdges"] == [
        {"origin": "dataset:ns:t", "destination": "job:ns:dedupe"}]
    assert t["inEdges"] == dedupe["outEdges"] == [
        {"origin": "job:ns:dedupe", "destination": "dataset:ns:t"}]
    assert dedupe["data"]["inputs"] == dedupe["data"]["outputs"] == [
        {"namespace": "ns", "name": "t"}]
    [lone] = marquez_graph([record("Dataset", "alone")])["graph"]
    assert (lone["inEdges"], lone["outEdges"], lone["data"]["fields"]) == ([], [], [])
    assert marquez_graph([]) == {"graph": []}


# --- the gateway's refusals before Neo4j ----------------------------------------------------------


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = GatewaySettings(
        gateway={"tokens": ["w"], "read_tokens": ["r"], "lineage_timeout_seconds": 1,
                 "retry_after_seconds": 3},
        neo4j={"uri": f"bolt://127.0.0.1:{free_port()}", "password": "unused"})
    with TestClient(create_app(settings, MemoryPublisher())) as test_client:
        yield test_client


READ = {"Authorization": "Bearer r"}


def test_reading_lineage_needs_a_token_when_tokens_are_configured(client: TestClient) -> None:
    missing = client.get("/api/v1/lineage", params={"nodeId": "dataset:pg:orders"})
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="lineage-gateway"'
    wrong = client.get("/api/v1/lineage", params={"nodeId": "dataset:pg:orders"},
                       headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401


def test_bad_parameters_are_a_400_listing_every_reason(client: TestClient) -> None:
    answer = client.get("/api/v1/lineage", params={"nodeId": "table:x", "depth": "99"},
                        headers=READ)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "bad_node_id"
    assert [(r["code"], r["parameter"]) for r in body["reasons"]] == [
        ("bad_node_id", "nodeId"), ("bad_depth", "depth")]
    assert client.get("/api/v1/lineage", headers=READ).json()["code"] == "bad_node_id"


def test_neo4j_unreachable_is_a_503_with_retry_after(client: TestClient) -> None:
    answer = client.get("/api/v1/lineage", params={"nodeId": "job:etl:load", "depth": "2"},
                        headers={"Authorization": "Bearer w"})
    assert (answer.status_code, answer.json()["code"]) == (503, "neo4j_unavailable")
    assert answer.headers["retry-after"] == "3"


def test_another_method_is_a_405_that_names_get_and_post(client: TestClient) -> None:
    put = client.put("/api/v1/lineage", content=b"{}")
    assert put.status_code == 405
    assert set(put.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}
    text = client.get("/metrics", headers=READ).text
    assert 'lineage_gateway_requests_total{endpoint="lineage",status="405"}' in text
