"""Marquez's ``GET /api/v1/lineage`` on a real gateway process, answered from the real Neo4j.

A small graph goes straight into Neo4j (OpenLineage events through the processor's pure
``process`` and the sink's ``write_batch``: no Kafka needed), in a namespace of its own whose
name holds ``://`` and a port, as a JDBC-style OpenLineage namespace does::

    a ──> job1 ──> b ──> job2 ──> c          (b has a schema; job2 ran twice)
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from neo4j import Driver

from core.neo4j_driver import driver
from lineage.stack.settings import StackSettings
from schemas.codec import decode, encode
from sinks import graph
from stream_processor.pipeline import process
from stream_processor.state import Plan
from tests.integration.graph_io import delete_namespace
from tests.integration.kafka_io import Gateway, start_gateway

PRODUCER = "https://example.com/gateway-lineage-tests"
RUN_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
SCHEMA_URL = ("https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"
              "#/$defs/SchemaDatasetFacet")
TOKEN = "r-" + uuid.uuid4().hex
B_FIELDS = [("id", "bigint"), ("amount", "decimal(18,2)"), ("customer", "string")]


def dataset(namespace: str, name: str, fields: list[tuple[str, str]] | None = None
            ) -> dict[str, Any]:
    ref: dict[str, Any] = {"namespace": namespace, "name": name}
    if fields:
        ref["facets"] = {"schema": {"_producer": PRODUCER, "_schemaURL": SCHEMA_URL,
                                    "fields": [{"name": n, "type": t} for n, t in fields]}}
    return ref


def run_events(namespace: str, job: str, run_id: str, start: str, end: str, state: str,
               inputs: list[dict[str, Any]], outputs: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """The START and the terminal event of one run of ``job``."""
    return [{"eventType": kind, "eventTime": at, "producer": PRODUCER,
             "schemaURL": RUN_SCHEMA_URL, "run": {"runId": run_id},
             "job": {"namespace": namespace, "name": job}, "inputs": inputs, "outputs": outputs}
            for kind, at in (("START", start), (state, end))]


def write_events(driver: Driver, events: list[dict[str, Any]]) -> None:
    """The processor's change records for ``events``, written by the sink's statements."""
    state: dict[str, list[int]] = {}
    batch: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        outcome = process(json.dumps(event).encode(), Plan(state), ingested_at=0)
        assert outcome.accepted, outcome.dead_letters
        outcome.plan.commit()
        for change in outcome.changes:
            record = decode(encode(change.record(0)))
            kind = record["payload"][0]
            batch[kind].append(graph.row(kind, record))
    graph.migrate(driver)
    with driver.session() as session:
        session.execute_write(graph.write_batch, batch)


@pytest.fixture(scope="module")
def chain(neo4j_module_driver: Driver) -> Iterator[dict[str, Any]]:
    """The chain a -> job1 -> b -> job2 -> c in a fresh namespace; deleted afterwards."""
    ns = f"pg-test://db-{uuid.uuid4().hex[:8]}:5432"
    runs = {"job1": str(uuid.uuid4()), "job2a": str(uuid.uuid4()), "job2b": str(uuid.uuid4())}
    a, b, c = dataset(ns, "raw.a"), dataset(ns, "stage.b", B_FIELDS), dataset(ns, "mart.c")
    events = [
        *run_events(ns, "job1", runs["job1"], "2024-05-01T01:00:00Z", "2024-05-01T01:05:00Z",
                    "COMPLETE", [a], [b]),
        *run_events(ns, "job2", runs["job2a"], "2024-05-01T02:00:00Z", "2024-05-01T02:01:00Z",
                    "FAIL", [dataset(ns, "stage.b")], [c]),
        *run_events(ns, "job2", runs["job2b"], "2024-05-02T02:00:00Z", "2024-05-02T02:03:00Z",
                    "COMPLETE", [dataset(ns, "stage.b")], [c]),
    ]
    try:
        write_events(neo4j_module_driver, events)
        yield {"ns": ns, "runs": runs}
    finally:
        delete_namespace(neo4j_module_driver, ns)


@pytest.fixture(scope="module")
def neo4j_module_driver(stack: StackSettings) -> Iterator[Driver]:
    with driver(stack.neo4j) as opened:
        yield opened


@pytest.fixture(scope="module")
def gateways(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[str, Gateway]]:
    """An open gateway and one with a read-only token; Neo4j settings come from the stack."""
    folder = tmp_path_factory.mktemp("lineage-gateways")
    bootstrap = stack.kafka.bootstrap_servers
    started: dict[str, Gateway] = {}
    try:
        started["open"] = start_gateway(bootstrap, folder / "open.log")
        started["guarded"] = start_gateway(
            bootstrap, folder / "guarded.log",
            LINEAGE_GATEWAY__TOKENS=json.dumps(["w-" + uuid.uuid4().hex]),
            LINEAGE_GATEWAY__READ_TOKENS=json.dumps([TOKEN]))
        yield started
    finally:
        for gateway in started.values():
            gateway.remove()


def lineage(gateway: Gateway, node: str | None, depth: int | str | None = None,
            token: str | None = None) -> httpx.Response:
    params = {key: str(value) for key, value in (("nodeId", node), ("depth", depth))
              if value is not None}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{gateway.url}/api/v1/lineage", params=params, headers=headers,
                     timeout=30)


def edges(answer: httpx.Response) -> set[tuple[str, str]]:
    """Every edge of the answer, checked to be listed the same way at both of its ends."""
    nodes = {node["id"]: node for node in answer.json()["graph"]}
    found = set()
    for key, node in nodes.items():
        for edge in node["outEdges"]:
            assert edge["origin"] == key and edge in nodes[edge["destination"]]["inEdges"]
            found.add((edge["origin"], edge["destination"]))
        for edge in node["inEdges"]:
            assert edge["destination"] == key and edge in nodes[edge["origin"]]["outEdges"]
    return found


def test_the_whole_chain_at_the_default_depth_with_its_edges_and_data(
    gateways: dict[str, Gateway], chain: dict[str, Any],
) -> None:
    ns = chain["ns"]
    answer = lineage(gateways["open"], f"dataset:{ns}:raw.a")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"
    ids = [node["id"] for node in answer.json()["graph"]]
    a, b, c = f"dataset:{ns}:raw.a", f"dataset:{ns}:stage.b", f"dataset:{ns}:mart.c"
    job1, job2 = f"job:{ns}:job1", f"job:{ns}:job2"
    assert ids == sorted([a, b, c, job1, job2])
    assert edges(answer) == {(a, job1), (job1, b), (b, job2), (job2, c)}
    nodes = {node["id"]: node for node in answer.json()["graph"]}
    assert [node["type"] for node in (nodes[a], nodes[job1])] == ["DATASET", "JOB"]
    assert nodes[b]["data"] == {
        "id": {"namespace": ns, "name": "stage.b"}, "type": "DB_TABLE", "name": "stage.b",
        "namespace": ns, "description": None,
        "fields": [{"name": n, "type": t, "description": None} for n, t in B_FIELDS]}
    assert nodes[a]["data"]["fields"] == []
    assert nodes[job2]["data"] == {
        "id": {"namespace": ns, "name": "job2"}, "type": "BATCH", "name": "job2",
        "namespace": ns, "description": None,
        "inputs": [{"namespace": ns, "name": "stage.b"}],
        "outputs": [{"namespace": ns, "name": "mart.c"}],
        "latestRun": {"id": chain["runs"]["job2b"], "state": "COMPLETED",
                      "startedAt": "2024-05-02T02:00:00Z", "endedAt": "2024-05-02T02:03:00Z"}}
    # The same graph from the other end, and from a job.
    for other in (c, job2):
        again = lineage(gateways["open"], other, 20)
        assert again.json() == answer.json()


def test_depth_counts_edges_in_both_directions(gateways: dict[str, Gateway],
                                               chain: dict[str, Any]) -> None:
    ns = chain["ns"]
    b, job1, job2 = f"dataset:{ns}:stage.b", f"job:{ns}:job1", f"job:{ns}:job2"
    one = lineage(gateways["open"], b, 1)
    assert [node["id"] for node in one.json()["graph"]] == sorted([b, job1, job2])
    assert edges(one) == {(job1, b), (b, job2)}
    # A job's data lists all its datasets, also those beyond the depth.
    data = {node["id"]: node["data"] for node in one.json()["graph"]}
    assert data[job1]["inputs"] == [{"namespace": ns, "name": "raw.a"}]
    zero = lineage(gateways["open"], b, 0)
    assert [(n["id"], n["inEdges"], n["outEdges"]) for n in zero.json()["graph"]] == [(b, [], [])]
    two = lineage(gateways["open"], f"job:{ns}:job1", 2)
    assert len(two.json()["graph"]) == 4  # job1, a, b, job2; c is three steps away


def test_a_run_id_stands_for_its_job(gateways: dict[str, Gateway],
                                     chain: dict[str, Any]) -> None:
    ns = chain["ns"]
    by_run = lineage(gateways["open"], f"run:{chain['runs']['job2a']}", 1)
    assert by_run.status_code == 200, by_run.text
    by_job = lineage(gateways["open"], f"job:{ns}:job2", 1)
    assert by_run.json() == by_job.json()


def test_unknown_nodes_are_404_and_bad_parameters_400(gateways: dict[str, Gateway],
                                                      chain: dict[str, Any]) -> None:
    ns = chain["ns"]
    gateway = gateways["open"]
    missing = {
        "dataset": lineage(gateway, f"dataset:{ns}:no.such.table"),
        "job": lineage(gateway, f"job:{ns}:raw.a"),  # a dataset's name, as a job
        "run": lineage(gateway, f"run:{uuid.uuid4()}"),
    }
    for answer in missing.values():
        assert (answer.status_code, answer.json()["code"]) == (404, "node_not_found")
        assert answer.headers["content-type"] == "application/problem+json"
    assert "no.such.table" in missing["dataset"].json()["detail"]
    bad = {
        "no nodeId": lineage(gateway, None),
        "bad type": lineage(gateway, f"table:{ns}:raw.a"),
        "no name": lineage(gateway, "dataset:warehouse"),
        "bad run": lineage(gateway, "run:not-a-uuid"),
        "depth text": lineage(gateway, f"dataset:{ns}:raw.a", "deep"),
        "depth negative": lineage(gateway, f"dataset:{ns}:raw.a", -1),
        "depth over": lineage(gateway, f"dataset:{ns}:raw.a", 21),
    }
    codes = {name: (answer.status_code, answer.json()["code"]) for name, answer in bad.items()}
    assert codes == {"no nodeId": (400, "bad_node_id"), "bad type": (400, "bad_node_id"),
                     "no name": (400, "bad_node_id"), "bad run": (400, "bad_node_id"),
                     "depth text": (400, "bad_depth"), "depth negative": (400, "bad_depth"),
                     "depth over": (400, "bad_depth")}
    assert all(answer.json()["reasons"] for answer in bad.values())


def test_with_tokens_reading_lineage_needs_a_read_or_write_token(
    gateways: dict[str, Gateway], chain: dict[str, Any],
) -> None:
    node = f"dataset:{chain['ns']}:raw.a"
    refused = lineage(gateways["guarded"], node)
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith('Bearer realm="lineage-gateway"')
    assert lineage(gateways["guarded"], node, token="nope").status_code == 401
    allowed = lineage(gateways["guarded"], node, token=TOKEN)
    assert allowed.status_code == 200
    assert len(allowed.json()["graph"]) == 5
    metrics = httpx.get(f"{gateways['guarded'].url}/metrics",
                        headers={"Authorization": f"Bearer {TOKEN}"}).text
    assert 'lineage_gateway_requests_total{endpoint="lineage_read",status="401"} 2.0' in metrics
    assert 'lineage_gateway_requests_total{endpoint="lineage_read",status="200"} 1.0' in metrics
    assert "lineage_gateway_lineage_query_seconds_count 1.0" in metrics


def test_neo4j_unreachable_is_a_503_with_retry_after(stack: StackSettings,
                                                     tmp_path: Path) -> None:
    from tests.conftest import free_port

    gateway = start_gateway(stack.kafka.bootstrap_servers, tmp_path / "gateway.log",
                            LINEAGE_NEO4J__URI=f"bolt://127.0.0.1:{free_port()}",
                            LINEAGE_GATEWAY__LINEAGE_TIMEOUT_SECONDS="2",
                            LINEAGE_GATEWAY__RETRY_AFTER_SECONDS="7")
    try:
        started = time.monotonic()
        answer = lineage(gateway, "dataset:warehouse:orders")
        assert time.monotonic() - started < 15
        assert (answer.status_code, answer.json()["code"]) == (503, "neo4j_unavailable")
        assert answer.headers["Retry-After"] == "7"
    finally:
        gateway.remove()


def test_latency_of_200_reads_at_depth_5(gateways: dict[str, Gateway],
                                         chain: dict[str, Any]) -> None:
    """Not a benchmark: prints the figure, and fails only when reads are absurdly slow."""
    url = f"{gateways['open'].url}/api/v1/lineage"
    params = {"nodeId": f"dataset:{chain['ns']}:stage.b", "depth": "5"}
    times = []
    with httpx.Client(timeout=30) as client:
        client.get(url, params=params).raise_for_status()  # warm: the driver, the plan cache
        for _ in range(200):
            started = time.perf_counter()
            client.get(url, params=params).raise_for_status()
            times.append(time.perf_counter() - started)
    median = statistics.median(times)
    p99 = statistics.quantiles(times, n=100)[98]
    print(f"GET /api/v1/lineage depth=5, 200 calls: median {median * 1000:.1f} ms, "
          f"p99 {p99 * 1000:.1f} ms")
    assert median < 0.5
