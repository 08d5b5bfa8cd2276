"""The stream processor on the real Kafka: order, duplicates, SIGKILL, scale-out, dead letters."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.settings import KafkaSettings
from lineage.bench.measure import message_count, wait_for_group
from lineage.bench.workload import encode_events, synthetic_events
from lineage.stack.settings import StackSettings
from tests.integration.kafka_io import (
    Pipeline,
    fold,
    in_process_fold,
    progress,
    read_topic,
)

WORKLOAD = {"jobs": 25, "runs_per_job": 3, "seed": 11}


@pytest.fixture(scope="module")
def workload() -> list[tuple[bytes, bytes]]:
    """The synthetic workload without its exact duplicates, in eventTime order."""
    return encode_events(synthetic_events(**WORKLOAD, duplicate_rate=0.0))


def kafka(run: Pipeline) -> KafkaSettings:
    """The settings of the run's Kafka, as the measurement helpers take them."""
    return KafkaSettings(bootstrap_servers=run.bootstrap)


@pytest.fixture
def run(stack: StackSettings, tmp_path: Path) -> Iterator[Pipeline]:
    deployment = Pipeline(stack, tmp_path)
    yield deployment
    deployment.stop()


@pytest.fixture(scope="module")
def reference(stack: StackSettings, tmp_path_factory: pytest.TempPathFactory,
              workload: list[tuple[bytes, bytes]]) -> dict[tuple[str, str], tuple[int, int] | None]:
    """The change set of one worker processing the workload in order, once."""
    deployment = Pipeline(stack, tmp_path_factory.mktemp("reference"))
    deployment.start()
    deployment.publish(list(workload))
    try:
        return deployment.changes()
    finally:
        deployment.stop()


def describe_difference(expected: dict[tuple[str, str], tuple[int, int] | None],
                        actual: dict[tuple[str, str], tuple[int, int] | None]) -> str:
    keys = sorted(k for k in set(expected) | set(actual) if expected.get(k) != actual.get(k))
    lines = [f"{len(keys)} differences:"]
    lines += [f"  {k[0]} {k[1][:120]}: expected {expected.get(k)}, got {actual.get(k)}"
              for k in keys[:10]]
    return "\n".join(lines)


def test_an_ordered_run_sends_what_the_in_process_pipeline_computes(
    reference: dict[tuple[str, str], tuple[int, int] | None],
    workload: list[tuple[bytes, bytes]],
) -> None:
    assert reference == in_process_fold(workload)


def test_an_ordered_run_describes_every_job_run_and_dataset(
    reference: dict[tuple[str, str], tuple[int, int] | None],
) -> None:
    kinds = {kind for kind, _ in reference}
    # No JobVersion: the sink derives a run's version from its Run and RunIO records.
    assert kinds == {"Job", "Dataset", "Run", "DatasetVersion", "JobLineage", "RunIO",
                     "ColumnLineage"}
    jobs = {json.loads(body.split("|", 1)[1])["name"] for kind, body in reference if kind == "Job"}
    assert jobs == {f"job_{j}" for j in range(WORKLOAD["jobs"])}
    runs = [body for kind, body in reference if kind == "Run"]
    assert len({json.loads(b.split("|", 1)[1])["runId"] for b in runs}) == 25 * 3


def test_duplicates_and_shuffled_order_give_the_same_change_set_as_an_ordered_run(
    run: Pipeline, workload: list[tuple[bytes, bytes]],
    reference: dict[tuple[str, str], tuple[int, int] | None],
) -> None:
    messy = list(workload) + random.Random(5).sample(workload, k=len(workload) // 3)
    random.Random(6).shuffle(messy)
    run.start()
    run.publish(messy)
    assert run.changes() == reference


# Known loss (issue #14, "the fault suite ... passes with 0 differences"): with the kill landing
# at the first change records, 2 of 14 runs of the code before issue #12 (7f0226f) and 2 of 9
# today lost a few records of one event after the restart. The test waited for 200 records
# before, so it mostly killed a worker that had already finished ("the kill should land
# mid-stream" failed instead). Not strict: it passes whenever the loss does not happen, and it
# must become a plain test again with the fix.
@pytest.mark.xfail(reason="issue #14: a SIGKILL at the first records sometimes loses records",
                   strict=False)
def test_a_worker_killed_with_sigkill_mid_stream_loses_nothing_after_a_restart(
    run: Pipeline, workload: list[tuple[bytes, bytes]],
    reference: dict[tuple[str, str], tuple[int, int] | None],
) -> None:
    worker = run.start()
    run.publish(workload)
    deadline = time.monotonic() + 60
    while message_count(kafka(run), run.topics.changes) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.kill()
    partial = fold(read_topic(run.bootstrap, run.topics.changes))
    assert 0 < len(partial) < len(reference), "the kill should land mid-stream"
    run.start()
    assert run.changes() == reference


def test_two_workers_give_the_same_change_set_as_one(
    run: Pipeline, workload: list[tuple[bytes, bytes]],
    reference: dict[tuple[str, str], tuple[int, int] | None],
) -> None:
    run.start(worker_id="0")
    run.start(worker_id="1")
    # Data that arrives while the group rebalances is a different test; here both share it.
    wait_for_group(kafka(run), run.topics.group, members=2)
    time.sleep(3)  # table recovery after the assignment
    run.publish(workload)
    changes = run.changes()
    assert changes == reference, describe_difference(reference, changes)
    logs = [w.log.read_text() for w in run.services]
    assert all("Ready" in log for log in logs), "both workers took part"


def test_a_worker_joining_mid_stream_loses_nothing_in_the_rebalance(run: Pipeline) -> None:
    # Big enough that worker 0 is still busy when worker 1 has started and joined.
    larger = encode_events(synthetic_events(jobs=150, runs_per_job=10, seed=12,
                                            duplicate_rate=0.0))
    run.start(worker_id="0")
    run.publish(larger)
    deadline = time.monotonic() + 60
    while message_count(kafka(run), run.topics.changes) < 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    run.start(worker_id="1")  # the group rebalances while worker 0 is busy
    wait_for_group(kafka(run), run.topics.group, members=2)
    committed, total = progress(run.bootstrap, run.topics)
    assert committed < total, "the workload is too small: worker 0 finished before the rebalance"
    changes = run.changes()
    expected = in_process_fold(larger)
    assert changes == expected, describe_difference(expected, changes)


def test_replaying_the_raw_topic_after_a_restart_sends_no_new_change(
    run: Pipeline, workload: list[tuple[bytes, bytes]],
) -> None:
    worker = run.start()
    run.publish(workload[:60])
    run.changes()
    sent = len(read_topic(run.bootstrap, run.topics.changes))
    worker.stop()
    run.start()  # dedup state must come back from the changelog
    run.publish(workload[:60])
    run.changes()
    assert len(read_topic(run.bootstrap, run.topics.changes)) == sent


GOOD = {
    "eventType": "START", "eventTime": "2024-05-01T12:00:00Z",
    "producer": "https://example.com/etl",
    "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    "run": {"runId": "0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"},
    "job": {"namespace": "etl", "name": "daily"},
}


def variant(**changes: object) -> bytes:
    event = json.loads(json.dumps(GOOD))
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = event
        for part in parents:
            node = node[part]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return json.dumps(event).encode()


BAD_INPUTS = {
    "not JSON": (b"{not json", "not_json", ""),
    "not an object": (b"[1, 2, 3]", "not_object", ""),
    "a wrong type": (variant(job__name=42), "wrong_type", "/job/name"),
    "a missing required field": (variant(job__name=None), "missing_field", "/job/name"),
    "a bad uuid": (variant(run__runId="not-a-uuid"), "bad_uuid", "/run/runId"),
    "a bad time": (variant(eventTime="yesterday"), "bad_time", "/eventTime"),
    "an oversized event": (variant(job__name="x" * 1_100_000), "too_large", ""),
}


def test_every_kind_of_bad_input_lands_in_the_dlq_with_a_precise_reason(run: Pipeline) -> None:
    bad_facet = json.loads(variant())
    bad_facet["run"]["facets"] = {"nominalTime": {
        "_producer": "https://example.com", "_schemaURL": "https://openlineage.io/spec/facets/"
        "1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
        "nominalStartTime": "not a time"}}
    messages = [(name.encode(), raw) for name, (raw, _, _) in BAD_INPUTS.items()]
    messages.append((b"a bad standard facet", json.dumps(bad_facet).encode()))
    run.start()
    run.publish(messages)
    run.changes()
    letters = {m.key().decode(): m for m in read_topic(run.bootstrap, run.topics.dlq)}
    assert set(letters) == set(BAD_INPUTS) | {"a bad standard facet"}
    for name, (raw, code, pointer) in BAD_INPUTS.items():
        letter = letters[name]
        headers = dict(letter.headers())
        envelope = json.loads(headers["lineage.dlq.envelope"])
        assert letter.value() == raw, "the original bytes, unchanged"
        assert headers["lineage.dlq.kind"] == b"event"
        assert code in headers["lineage.dlq.reasons"].decode().split(",")
        assert any(r["code"] == code and r["pointer"] == pointer and r["message"]
                   for r in envelope["reasons"]), envelope
        assert envelope["source"]["topic"] == run.topics.raw
    facet_letter = letters["a bad standard facet"]
    envelope = json.loads(dict(facet_letter.headers())["lineage.dlq.envelope"])
    assert envelope["kind"] == "facet"
    assert envelope["reasons"][0]["facet"] == "nominalTime"
    assert envelope["reasons"][0]["pointer"].startswith("/run/facets/nominalTime")
    kept = [m for m in read_topic(run.bootstrap, run.topics.changes)
            if m.key() == b"run:0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"]
    assert kept, "the event with a bad facet is kept, without that facet"


def test_state_past_the_retention_expires_so_an_old_event_replayed_is_processed_again(
    run: Pipeline,
) -> None:
    old = variant()
    newer = variant(eventTime="2024-05-03T12:00:00Z",
                    run__runId="0190b6d2-3c1a-7d1e-9f00-aaaaaaaaaaaa")
    run.start(LINEAGE_PROCESSOR__RETENTION_DAYS="1", LINEAGE_PROCESSOR__EXPIRY_INTERVAL_SECONDS="1")

    def records_of_the_old_run() -> int:
        run.changes()
        return sum(m.key() == b"run:0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"
                   for m in read_topic(run.bootstrap, run.topics.changes))

    run.publish([(b"daily", old)])
    sent = records_of_the_old_run()
    run.publish([(b"daily", old)])
    assert records_of_the_old_run() == sent, "within the retention the replay is a duplicate"
    time.sleep(1.5)  # past the expiry interval: the next batch expires what is stale
    run.publish([(b"daily", newer)])  # eventTime two days on: the old event's state is stale
    run.changes()
    run.publish([(b"daily", old)])
    assert records_of_the_old_run() == 2 * sent, "the old event's state was forgotten"
