"""The HTTP gateway's pure logic: bodies, keys, tokens, idempotency keys and its answers.

The app tests at the end run the real ASGI app with an in-memory publisher in place of Kafka, to
pin the status code and problem document of each refusal; tests/integration/test_gateway.py does
the same through the real Kafka and the real OpenLineage client.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import (
    Dataset,
    DatasetEvent,
    Job,
    JobEvent,
    Run,
    RunEvent,
    RunState,
    StaticDataset,
)
from openlineage.client.facet_v2 import parent_run
from openlineage.client.transport.kafka import KafkaTransport
from pydantic import ValidationError
from starlette.testclient import TestClient

from core.errors import BadBody, ConfigError, ServiceUnavailable
from producers.emitter import message_key
from producers.gateway.app import _listen, create_app
from producers.gateway.auth import TokenTable
from producers.gateway.body import gunzip, split_json_array, split_ndjson
from producers.gateway.idempotency import IdempotencyStore
from producers.gateway.publish import Delivery
from producers.gateway.settings import GatewaySettings
from schemas.validation import validate

PRODUCER = "https://example.com/tests"


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from defaults only: no .env, no local stack files, no LINEAGE_ variables."""
    for name in [n for n in os.environ if n.startswith("LINEAGE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINEAGE_STATE_DIR", str(tmp_path / "state"))
RUN_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def event(job: str = "daily", run_id: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"eventType": "START", "eventTime": "2024-05-01T12:00:00Z", "producer": PRODUCER,
            "schemaURL": RUN_SCHEMA, "run": {"runId": run_id or str(uuid.uuid4())},
            "job": {"namespace": "etl", "name": job}, **extra}


def body(*events: dict[str, Any]) -> bytes:
    return json.dumps(events[0] if len(events) == 1 else list(events)).encode()


# ---------------------------------------------------------------------------------------------
# Bodies
# ---------------------------------------------------------------------------------------------


def test_ndjson_yields_one_event_per_non_blank_line_whatever_the_line_endings() -> None:
    assert split_ndjson(b'{"a":1}\r\n\r\n{"b":2}\n   \n{"c":3}', 10) == [
        b'{"a":1}', b'{"b":2}', b'{"c":3}']
    assert split_ndjson(b"\n \n", 10) == []


def test_a_json_array_is_split_into_the_original_bytes_of_each_item() -> None:
    items = split_json_array(b'[ {"a": 1,  "b": [1, 2]} , {"c": "\\u00e9"} ]', 10)
    assert items == [b'{"a": 1,  "b": [1, 2]}', b'{"c": "\\u00e9"}']


@pytest.mark.parametrize(("raw", "says"), [
    (b'{"a": 1}', "found an object"),
    (b'"x"', "found a string"),
    (b"[1, 2", "not valid UTF-8 JSON"),
    (b"\xff[]", "not valid UTF-8 JSON"),
    (b"[1 2]", "not valid UTF-8 JSON"),
    (b"[1] 2", "data after the array"),
    (b"[]", None),
])
def test_a_batch_that_is_not_a_json_array_is_refused_with_what_it_is(raw: bytes,
                                                                       says: str | None) -> None:
    if says is None:
        assert split_json_array(raw, 10) == []
        return
    with pytest.raises(BadBody, match=says):
        split_json_array(raw, 10)


@pytest.mark.parametrize("split", [split_json_array, split_ndjson])
def test_a_batch_of_millions_of_tiny_items_is_split_only_past_the_limit(
        split: Callable[[bytes, int], list[bytes]]) -> None:
    """Issue #14, item 5: a 16 MB batch of `1`s made millions of objects (about 980 MB)."""
    body = b"[" + b"1," * 8_000_000 + b"1]" if split is split_json_array else b"1\n" * 8_000_000
    assert len(split(body, 1000)) == 1001


def test_gzip_bodies_are_inflated_including_concatenated_members() -> None:
    assert gunzip(gzip.compress(b"abc") + gzip.compress(b"def"), limit=100) == b"abcdef"


def test_a_gzip_bomb_stops_at_the_limit() -> None:
    bomb = gzip.compress(b"\0" * 50_000_000)
    assert len(bomb) < 100_000
    with pytest.raises(OverflowError):
        gunzip(bomb, limit=1_048_576)


@pytest.mark.parametrize("raw", [b"plain text", gzip.compress(bytes(range(256)) * 8)[:-20]],
                         ids=["plain", "truncated"])
def test_bodies_that_are_not_whole_gzip_streams_are_refused(raw: bytes) -> None:
    with pytest.raises(BadBody):
        gunzip(raw, limit=10_000)


# ---------------------------------------------------------------------------------------------
# The Kafka transport's key
# ---------------------------------------------------------------------------------------------


def client_events() -> Iterator[RunEvent | DatasetEvent | JobEvent]:
    """Events built with openlineage-python, one for each way of choosing the key."""
    run = str(uuid.uuid4())
    job = Job(namespace="etl", name="load")
    yield RunEvent(eventType=RunState.START, eventTime="2024-05-01T12:00:00Z", producer=PRODUCER,
                   run=Run(runId=run), job=job)
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=str(uuid.uuid4())),
        job=parent_run.Job(namespace="airflow", name="dag.task"))
    yield RunEvent(eventType=RunState.COMPLETE, eventTime="2024-05-01T12:00:00Z",
                   producer=PRODUCER, run=Run(runId=run, facets={"parent": parent}), job=job)
    rooted = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=str(uuid.uuid4())),
        job=parent_run.Job(namespace="airflow", name="dag.task"),
        root=parent_run.Root(run=parent_run.RootRun(runId=str(uuid.uuid4())),
                             job=parent_run.RootJob(namespace="airflow", name="dag")))
    yield RunEvent(eventType=RunState.FAIL, eventTime="2024-05-01T12:00:00Z", producer=PRODUCER,
                   run=Run(runId=run, facets={"parent": rooted}), job=job)
    yield DatasetEvent(eventTime="2024-05-01T12:00:00Z", producer=PRODUCER,
                       dataset=StaticDataset(namespace="pg://db", name="public.orders"))
    yield JobEvent(eventTime="2024-05-01T12:00:00Z", producer=PRODUCER, job=job,
                   inputs=[], outputs=[Dataset(namespace="pg://db", name="public.sales")])


@pytest.mark.parametrize("ol_event", list(client_events()), ids=lambda e: type(e).__name__)
def test_the_gateways_message_key_is_the_one_openlineage_pythons_kafka_transport_gives(
    ol_event: RunEvent | DatasetEvent | JobEvent,
) -> None:
    from openlineage.client.serde import Serde

    result = validate(Serde.to_json(ol_event).encode())
    assert result.ok, result.reasons
    assert result.event is not None
    expected = KafkaTransport._get_message_key(object.__new__(KafkaTransport), ol_event)
    assert message_key(result.event) == expected


# ---------------------------------------------------------------------------------------------
# Idempotency keys
# ---------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_repeated_idempotency_key_with_the_same_body_replays_the_first_answer() -> None:
    store: IdempotencyStore[str] = IdempotencyStore(60, 10)
    assert store.claim("k", b"A").state == "new"
    store.release("k", "first")
    replay = store.claim("k", b"A")
    assert (replay.state, replay.answer) == ("replay", "first")


def test_the_same_idempotency_key_with_another_body_is_a_conflict() -> None:
    store: IdempotencyStore[str] = IdempotencyStore(60, 10)
    store.claim("k", b"A")
    assert store.claim("k", b"B").state == "conflict"  # while the first is still running
    store.release("k", "first")
    assert store.claim("k", b"B").state == "conflict"


def test_idempotency_keys_are_forgotten_after_the_retention() -> None:
    clock = Clock()
    store: IdempotencyStore[str] = IdempotencyStore(60, 10, clock=clock)
    store.claim("k", b"A")
    store.release("k", "first")
    clock.now += 59
    assert store.claim("k", b"B").state == "conflict"
    clock.now += 2
    assert store.claim("k", b"B").state == "new"


def test_the_store_keeps_at_most_max_keys_dropping_the_oldest() -> None:
    store: IdempotencyStore[str] = IdempotencyStore(60, 3)
    for key in "abcd":
        store.claim(key, b"x")
        store.release(key, key)
    assert len(store) == 3
    assert store.claim("a", b"other").state == "new"
    assert store.claim("d", b"x").answer == "d"


def test_an_answer_that_is_not_kept_frees_the_key_for_the_next_try() -> None:
    store: IdempotencyStore[str] = IdempotencyStore(60, 10)
    store.claim("k", b"A")
    store.release("k", None)  # e.g. a 503: the retry must publish
    assert store.claim("k", b"A").state == "new"


def test_a_concurrent_repeat_waits_for_the_first_request_and_then_replays_it() -> None:
    async def scenario() -> tuple[str, str | None]:
        store: IdempotencyStore[str] = IdempotencyStore(60, 10)
        store.claim("k", b"A")
        pending = store.claim("k", b"A")
        assert pending.state == "pending" and pending.waiter is not None
        asyncio.get_running_loop().call_later(0.01, store.release, "k", "first")
        await asyncio.wait_for(pending.waiter, 1)
        again = store.claim("k", b"A")
        return again.state, again.answer

    assert asyncio.run(scenario()) == ("replay", "first")


# ---------------------------------------------------------------------------------------------
# Tokens and settings
# ---------------------------------------------------------------------------------------------


def test_write_tokens_publish_read_tokens_are_forbidden_and_others_unauthorized() -> None:
    table = TokenTable.from_tokens(write=["w-token"], read=["r-token"])
    assert table.check("Bearer w-token", "write")[0] == 200
    assert table.check("bearer   w-token ", "write")[0] == 200
    status, challenge = table.check("Bearer r-token", "write")
    assert status == 403 and 'error="insufficient_scope"' in challenge
    assert table.check("Bearer r-token", "read")[0] == 200
    for header in (None, "", "Bearer", "Bearer nope", "Basic dzp0b2tlbg==", "w-token"):
        status, challenge = table.check(header, "write")
        assert status == 401 and challenge.startswith('Bearer realm="lineage-gateway"')


def test_without_tokens_authentication_is_off() -> None:
    table = TokenTable.from_tokens(write=[])
    assert not table.enabled
    assert table.check(None, "write") == (200, "-")


def test_tokens_come_from_a_json_list_or_a_file_named_in_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINEAGE_GATEWAY__TOKENS", '["one", "two"]')
    table = TokenTable.from_options(GatewaySettings().gateway)
    assert table.check("Bearer two", "write")[0] == 200
    tokens = tmp_path / "tokens"
    tokens.write_text("# publishers\nthree\n\n  four  \n")
    monkeypatch.setenv("LINEAGE_GATEWAY__TOKENS", str(tokens))
    table = TokenTable.from_options(GatewaySettings().gateway)
    assert [table.check(f"Bearer {t}", "write")[0] for t in ("three", "four", "one")] == [
        200, 200, 401]
    assert "three" not in repr(GatewaySettings())


@pytest.mark.parametrize(("content", "says"), [
    (None, "cannot be read"), ("# only a comment\n", "holds no token")])
def test_a_token_file_that_is_missing_or_empty_stops_the_gateway(
    tmp_path: Path, content: str | None, says: str,
) -> None:
    path = tmp_path / "tokens"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=says):
        TokenTable.from_options(GatewaySettings(gateway={"tokens": path}).gateway)


def test_a_token_cannot_be_both_a_write_and_a_read_token() -> None:
    with pytest.raises(ConfigError, match="both"):
        TokenTable.from_tokens(write=["t"], read=["t"])


def test_gateway_settings_refuse_nonsense() -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(gateway={"port": 0})
    with pytest.raises(ValidationError):
        GatewaySettings(gateway={"max_body_bytes": 10})
    assert GatewaySettings().gateway.max_body_bytes == 1_048_576


def test_the_gateways_connections_send_answers_at_once_without_nagles_delay() -> None:
    async def nodelay_of_an_accepted_connection() -> int:
        sock = _listen("127.0.0.1", 0)
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def connected(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            conn = writer.get_extra_info("socket")
            accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(connected, sock=sock)
        _, writer = await asyncio.open_connection(*sock.getsockname())
        value = await asyncio.wait_for(accepted, 5)
        writer.close()
        server.close()
        await server.wait_closed()
        return value

    # Without TCP_NODELAY every answer waits ~40 ms for the client's delayed ACK.
    assert asyncio.run(nodelay_of_an_accepted_connection()) != 0


def test_a_port_in_use_is_a_clear_configuration_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(ConfigError, match=r"cannot listen on 127\.0\.0\.1"):
            _listen("127.0.0.1", taken.getsockname()[1])


# ---------------------------------------------------------------------------------------------
# The app's answers, with an in-memory publisher standing in for Kafka
# ---------------------------------------------------------------------------------------------


class MemoryPublisher:
    """Keeps what it is given; ``down`` makes it fail as an unreachable Kafka does."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []
        self.down = False

    def start(self) -> None:
        pass

    async def publish(self, messages: Sequence[tuple[bytes, bytes]]) -> list[Delivery]:
        if self.down:
            raise ServiceUnavailable("Kafka did not acknowledge within 4s")
        self.messages.extend(messages)
        return [Delivery(0, len(self.messages) - len(messages) + i) for i in range(len(messages))]

    async def check(self) -> str | None:
        return "Kafka did not answer" if self.down else None

    async def close(self) -> None:
        pass


@pytest.fixture
def published() -> MemoryPublisher:
    return MemoryPublisher()


def client_for(publisher: MemoryPublisher, **gateway: Any) -> TestClient:
    settings = GatewaySettings(gateway={"max_body_bytes": 4096, "max_batch_bytes": 16384,
                                        "max_batch_events": 5, **gateway})
    return TestClient(create_app(settings, publisher))


@pytest.fixture
def client(published: MemoryPublisher) -> Iterator[TestClient]:
    with client_for(published) as test_client:
        yield test_client


JSON = {"Content-Type": "application/json"}


def test_a_valid_event_is_published_with_its_key_and_answered_201(
    client: TestClient, published: MemoryPublisher,
) -> None:
    raw = body(event("daily"))
    answer = client.post("/api/v1/lineage", content=raw, headers=JSON)
    assert answer.status_code == 201
    assert answer.json()["events"] == [
        {"index": 0, "key": "run:etl/daily", "partition": 0, "offset": 0}]
    assert published.messages == [(b"run:etl/daily", raw)]


def test_a_gzip_body_is_published_decompressed(
    client: TestClient, published: MemoryPublisher,
) -> None:
    raw = body(event())
    answer = client.post("/api/v1/lineage", content=gzip.compress(raw),
                         headers={**JSON, "Content-Encoding": "gzip"})
    assert answer.status_code == 201
    assert published.messages[0][1] == raw


@pytest.mark.parametrize(("raw", "code"), [
    (b"{not json", "not_json"), (b"[1, 2]", "not_object"), (b"\xff\xfe", "not_json")])
def test_a_body_that_is_not_a_json_object_is_a_400(client: TestClient, raw: bytes,
                                                   code: str) -> None:
    answer = client.post("/api/v1/lineage", content=raw, headers=JSON)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == code


def test_a_spec_violation_is_a_422_with_the_validators_reasons(
    client: TestClient, published: MemoryPublisher,
) -> None:
    bad = event(run_id="not-a-uuid")
    del bad["producer"]
    answer = client.post("/api/v1/lineage", content=body(bad), headers=JSON)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "invalid_event"
    assert {(r["code"], r["pointer"]) for r in problem["reasons"]} == {
        ("bad_uuid", "/run/runId"), ("missing_field", "/producer")}
    assert all(r["message"] for r in problem["reasons"])
    assert published.messages == []


def test_a_bad_standard_facet_is_reported_but_the_event_is_published(
    client: TestClient, published: MemoryPublisher,
) -> None:
    facet = {"_producer": PRODUCER,
             "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json",
             "query": 42}
    raw = body({**event(), "job": {"namespace": "etl", "name": "sql", "facets": {"sql": facet}}})
    answer = client.post("/api/v1/lineage", content=raw, headers=JSON)
    assert answer.status_code == 201
    dropped = answer.json()["events"][0]["droppedFacets"]
    assert [d["key"] for d in dropped] == ["sql"]
    assert published.messages == [(b"run:etl/sql", raw)]  # the processor dead-letters the facet


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-ndjson",
                                          "application/json; charset=latin-1"])
def test_a_single_event_in_another_media_type_is_a_415(client: TestClient,
                                                        content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    answer = client.post("/api/v1/lineage", content=body(event()), headers=headers)
    assert answer.status_code == 415
    assert answer.headers["accept-post"] == "application/json"


def test_a_content_coding_other_than_gzip_is_a_415(client: TestClient) -> None:
    answer = client.post("/api/v1/lineage", content=body(event()),
                         headers={**JSON, "Content-Encoding": "br"})
    assert answer.status_code == 415
    assert answer.json()["code"] == "unsupported_content_encoding"


def test_a_body_over_the_limit_is_a_413_whether_announced_streamed_or_inflated(
    client: TestClient,
) -> None:
    big = body(event(job="x" * 5000))
    assert client.post("/api/v1/lineage", content=big, headers=JSON).status_code == 413
    streamed = client.post("/api/v1/lineage", content=iter([big[:3000], big[3000:]]),
                           headers=JSON)
    assert streamed.status_code == 413
    inflated = client.post("/api/v1/lineage", content=gzip.compress(big),
                           headers={**JSON, "Content-Encoding": "gzip"})
    assert inflated.status_code == 413
    assert "decompressed" in inflated.json()["detail"]


def test_bad_gzip_is_a_400(client: TestClient) -> None:
    answer = client.post("/api/v1/lineage", content=b"not gzip",
                         headers={**JSON, "Content-Encoding": "gzip"})
    assert (answer.status_code, answer.json()["code"]) == (400, "bad_gzip")


def test_kafka_unavailable_is_a_503_with_retry_after_and_never_a_201(
    client: TestClient, published: MemoryPublisher,
) -> None:
    published.down = True
    answer = client.post("/api/v1/lineage", content=body(event()), headers=JSON)
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert client.get("/healthz").status_code == 503


def test_a_batch_is_published_whole_from_a_json_array_or_ndjson(
    client: TestClient, published: MemoryPublisher,
) -> None:
    events = [event("a"), event("b"), event("c")]
    answer = client.post("/api/v1/lineage/batch", content=body(*events), headers=JSON)
    assert answer.status_code == 201
    assert answer.json()["accepted"] == 3
    ndjson = "\n".join(json.dumps(e) for e in events).encode()
    answer = client.post("/api/v1/lineage/batch", content=ndjson,
                         headers={"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 201
    assert [key for key, _ in published.messages] == [b"run:etl/a", b"run:etl/b",
                                                      b"run:etl/c"] * 2


def test_a_batch_with_invalid_events_is_refused_whole_listing_each_bad_index(
    client: TestClient, published: MemoryPublisher,
) -> None:
    events = [event("a"), event("b", run_id="nope"), event("c"), {"eventType": "START"}]
    answer = client.post("/api/v1/lineage/batch", content=body(*events), headers=JSON)
    assert answer.status_code == 422
    problem = answer.json()
    assert problem["code"] == "invalid_events"
    assert [item["index"] for item in problem["invalid"]] == [1, 3]
    assert problem["invalid"][0]["reasons"][0]["pointer"] == "/run/runId"
    assert published.messages == []


def test_an_ndjson_line_that_is_not_json_is_listed_by_index(client: TestClient) -> None:
    ndjson = json.dumps(event()).encode() + b"\n{oops\n"
    answer = client.post("/api/v1/lineage/batch", content=ndjson,
                         headers={"Content-Type": "application/x-ndjson"})
    assert answer.status_code == 422
    assert answer.json()["invalid"] == [{"index": 1, "reasons": [
        {"code": "not_json", "pointer": "", "message": answer.json()["invalid"][0]["reasons"][0][
            "message"]}]}]


@pytest.mark.parametrize(("raw", "status", "code"), [
    (b"[]", 400, "empty_batch"), (b'{"a": 1}', 400, "bad_batch"),
    (json.dumps([event() for _ in range(6)]).encode(), 413, "too_many_events"),
])
def test_an_empty_malformed_or_overfull_batch_is_refused(
    client: TestClient, raw: bytes, status: int, code: str,
) -> None:
    answer = client.post("/api/v1/lineage/batch", content=raw, headers=JSON)
    assert (answer.status_code, answer.json()["code"]) == (status, code)


def test_an_idempotency_key_replays_the_first_answer_and_refuses_another_body(
    client: TestClient, published: MemoryPublisher,
) -> None:
    headers = {**JSON, "Idempotency-Key": '"nightly-1"'}
    raw = body(event())
    first = client.post("/api/v1/lineage", content=raw, headers=headers)
    again = client.post("/api/v1/lineage", content=raw, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert len(published.messages) == 1
    other = client.post("/api/v1/lineage", content=body(event()), headers=headers)
    assert (other.status_code, other.json()["code"]) == (409, "idempotency_key_reused")
    batch = client.post("/api/v1/lineage/batch", content=body(event(), event()), headers=headers)
    assert batch.status_code == 201, "a key is scoped to its endpoint"


def test_a_503_is_not_replayed_so_the_retry_publishes(
    client: TestClient, published: MemoryPublisher,
) -> None:
    headers = {**JSON, "Idempotency-Key": "retry-me"}
    published.down = True
    assert client.post("/api/v1/lineage", content=body(event(run_id=str(uuid.UUID(int=1)))),
                       headers=headers).status_code == 503
    published.down = False
    assert client.post("/api/v1/lineage", content=body(event(run_id=str(uuid.UUID(int=1)))),
                       headers=headers).status_code == 201
    assert len(published.messages) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\there"])
def test_a_malformed_idempotency_key_is_a_400(client: TestClient, key: str) -> None:
    headers = {**JSON, "Idempotency-Key": key}
    answer = client.post("/api/v1/lineage", content=body(event()), headers=headers)
    assert (answer.status_code, answer.json()["code"]) == (400, "bad_idempotency_key")


def test_with_tokens_a_request_needs_a_write_token_and_metrics_any_token(
    published: MemoryPublisher,
) -> None:
    with client_for(published, tokens=["w"], read_tokens=["r"]) as client:
        raw = body(event())
        missing = client.post("/api/v1/lineage", content=raw, headers=JSON)
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="lineage-gateway"'
        wrong = client.post("/api/v1/lineage", content=raw,
                            headers={**JSON, "Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        assert 'error="invalid_token"' in wrong.headers["www-authenticate"]
        read_only = client.post("/api/v1/lineage", content=raw,
                                headers={**JSON, "Authorization": "Bearer r"})
        assert read_only.status_code == 403
        assert client.post("/api/v1/lineage", content=raw,
                           headers={**JSON, "Authorization": "Bearer w"}).status_code == 201
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"Authorization": "Bearer r"}).status_code == 200
        assert client.get("/healthz").status_code == 200
    assert len(published.messages) == 1


def test_metrics_count_requests_by_status_and_refusals_by_reason(client: TestClient) -> None:
    client.post("/api/v1/lineage", content=body(event(run_id="nope")), headers=JSON)
    client.post("/api/v1/lineage", content=body(event()), headers=JSON)
    text = client.get("/metrics").text
    assert 'lineage_gateway_requests_total{endpoint="lineage",status="422"}' in text
    assert 'lineage_gateway_events_refused_total{reason="bad_uuid"}' in text
    assert "lineage_gateway_events_accepted_total" in text
    assert "lineage_gateway_request_seconds_bucket" in text
