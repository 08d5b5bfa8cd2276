"""Unit tests of the processor's state rules (state.py) and of process() (pipeline.py).

DESIGN.md guarantees 1 (nothing lost), 2 (effectively once), 3 (order-independent) and 6 (bad
input gets a clear answer), without Kafka: the state is a dict, as in the benchmark.
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest

from schemas.codec import current_schema
from stream_processor import pipeline
from stream_processor.pipeline import Outcome, process, state_key
from stream_processor.state import Plan, Rule, stale_keys
from stream_processor.versioning import Change, canonical_json
from tests.unit.test_versioning import (
    COLUMNS,
    OTHER_RUN_ID,
    PARENT,
    RUN_ID,
    T0_MICROS,
    dataset,
    facet,
    job_facets,
    run_event,
)

pytestmark = pytest.mark.unit

PAYLOAD_KINDS = {branch["name"].rsplit(".", 1)[-1] for branch in next(
    f["type"] for f in current_schema()["fields"] if f["name"] == "payload")}
DAY = 86_400_000_000
SECOND = 1_000_000


def raw(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def run(event: dict[str, Any] | bytes, state: dict[str, list[int]], *, commit: bool = True,
        **options: Any) -> Outcome:
    """process() one event against ``state``, committing its plan as the worker does on ack."""
    outcome = process(event if isinstance(event, bytes) else raw(event), Plan(state),
                      ingested_at=0, **options)
    if commit:
        outcome.plan.commit()
    return outcome


def kinds(outcome: Outcome) -> list[str]:
    return [change.kind for change in outcome.changes]


def body(outcome: Outcome, kind: str) -> dict[str, Any]:
    (found,) = (change.body for change in outcome.changes if change.kind == kind)
    return found


# --- Plan: which observations are worth sending --------------------------------------------------

@pytest.mark.parametrize(("rule", "known", "time", "sent"), [
    ("once", None, 10, True),
    ("once", [10, 20], 5, False),
    ("once", [10, 20], 15, False),
    ("once", [10, 20], 25, False),
    ("min", None, 10, True),
    ("min", [10, 20], 5, True),
    ("min", [10, 20], 10, False),
    ("min", [10, 20], 15, False),
    ("min", [10, 20], 25, False),
    ("range", None, 10, True),
    ("range", [10, 20], 5, True),
    ("range", [10, 20], 10, False),
    ("range", [10, 20], 15, False),
    ("range", [10, 20], 20, False),
    ("range", [10, 20], 25, True),
])
def test_a_plan_sends_an_observation_by_its_rule_against_the_committed_state(
        rule: Rule, known: list[int] | None, time: int, sent: bool) -> None:
    state = {} if known is None else {"k": list(known)}
    plan = Plan(state)
    assert plan.wants("k", time, rule) is sent
    assert state == ({} if known is None else {"k": known}), "state changes only on commit"


# Observations in arrival order and whether each is sent, within one plan before any commit.
SEQUENCES: dict[Rule, list[tuple[int, bool]]] = {
    "once": [(10, True), (10, False), (5, False), (20, False)],
    "min": [(10, True), (20, False), (5, True), (7, False), (5, False)],
    "range": [(10, True), (20, True), (15, False), (5, True), (25, True), (25, False), (5, False)],
}
SPANS: dict[Rule, list[int]] = {"once": [10, 10], "min": [5, 10], "range": [5, 25]}


@pytest.mark.parametrize("rule", SEQUENCES)
def test_a_plan_remembers_its_own_decisions_before_commit(rule: Rule) -> None:
    plan = Plan({})
    assert [plan.wants("k", t, rule) for t, _ in SEQUENCES[rule]] == [
        sent for _, sent in SEQUENCES[rule]]
    assert plan.commit() == {"k": SPANS[rule]}


@pytest.mark.parametrize("rule", SEQUENCES)
def test_after_commit_no_observation_already_sent_is_sent_again(rule: Rule) -> None:
    state: dict[str, list[int]] = {}
    first = Plan(state)
    for t, _ in SEQUENCES[rule]:
        first.wants("k", t, rule)
    first.commit()
    again = Plan(state)
    assert not any(again.wants("k", t, rule) for t, _ in SEQUENCES[rule])


def test_commit_returns_what_it_wrote_and_only_once() -> None:
    state = {"old": [1, 2]}
    plan = Plan(state)
    plan.wants("a", 10, "once")
    plan.wants("old", 5, "range")
    plan.wants("old", 1, "range")  # inside the known span: nothing to write
    written = plan.commit()
    assert written == {"a": [10, 10], "old": [1, 5]}
    assert state == written
    assert plan.commit() == {}


def test_stale_keys_lists_entries_last_seen_longer_than_the_retention_ago() -> None:
    watermark, retention = 30 * DAY, 7 * DAY
    entries = {
        "last seen 8 days ago": [0, watermark - 8 * DAY],
        "first seen long ago, last seen today": [0, watermark],
        "last seen 6 days ago": [watermark - 6 * DAY, watermark - 6 * DAY],
        "last seen exactly 7 days ago": [0, watermark - retention],
        "last seen 7 days and 1 microsecond ago": [0, watermark - retention - 1],
    }
    assert sorted(stale_keys(entries.items(), watermark, retention)) == [
        "last seen 7 days and 1 microsecond ago", "last seen 8 days ago"]


# --- process(): dedup ----------------------------------------------------------------------------

def _reserialised(event: dict[str, Any]) -> bytes:
    return json.dumps(event, sort_keys=True, indent=2).encode()


@pytest.mark.parametrize("again", [
    raw,
    _reserialised,
    lambda e: raw({**e, "eventTime": "2024-05-01T14:00:00+02:00"}),
    lambda e: raw({**e, "eventTime": "2024-05-01T12:00:00.000Z"}),
], ids=["same bytes", "other key order", "same instant at +02:00", "same instant with fraction"])
def test_an_identical_event_is_a_duplicate_the_second_time(again: Any) -> None:
    state: dict[str, list[int]] = {}
    event = run_event()
    first = run(event, state)
    assert first.accepted and not first.duplicate and first.changes
    second = run(again(event), state)
    assert second.accepted and second.duplicate
    assert second.changes == [] and second.dead_letters == []


def test_an_event_is_a_duplicate_within_one_uncommitted_plan_too() -> None:
    plan = Plan({})
    process(raw(run_event()), plan, ingested_at=0)
    assert process(raw(run_event()), plan, ingested_at=0).duplicate


def test_an_event_not_yet_committed_is_processed_again_after_a_crash() -> None:
    state: dict[str, list[int]] = {}
    lost = run(run_event(), state, commit=False)
    assert state == {}
    retried = run(run_event(), state)
    assert not retried.duplicate
    assert retried.changes == lost.changes


# --- process(): refused events, dropped facets, repairs, size ------------------------------------

def _without(key: str) -> bytes:
    event = run_event()
    del event[key]
    return raw(event)


@pytest.mark.parametrize(("message", "code"), [
    (b"{not json", "not_json"),
    (b"[1, 2]", "not_object"),
    (raw({**run_event(), "run": {"runId": "not-a-uuid"}}), "bad_uuid"),
    (raw({**run_event(), "eventTime": "yesterday"}), "bad_time"),
    (_without("producer"), "missing_field"),
], ids=["not json", "not an object", "bad run id", "bad time", "no producer"])
def test_a_refused_event_is_one_dead_letter_with_its_reasons(message: bytes, code: str) -> None:
    outcome = run(message, {})
    assert not outcome.accepted
    assert outcome.changes == []
    (letter,) = outcome.dead_letters
    assert letter.kind == "event"
    assert letter.reasons
    assert all({"code", "pointer", "message"} <= set(r) and r["message"] for r in letter.reasons)
    assert code in {r["code"] for r in letter.reasons}


def test_a_bad_standard_facet_is_a_facet_dead_letter_and_the_event_goes_on() -> None:
    bad = facet("facets/1-0-1/NominalTimeRunFacet.json", nominalStartTime="yesterday")
    outcome = run(run_event(run_facets={"nominalTime": bad}), {})
    assert outcome.accepted
    (letter,) = outcome.dead_letters
    assert letter.kind == "facet"
    (reason,) = letter.reasons
    assert reason["facet"] == "nominalTime"
    assert reason["code"] == "bad_time"
    assert reason["pointer"].startswith("/run/facets/nominalTime")
    assert reason["message"]
    assert "Run" in kinds(outcome)
    assert "nominalTime" not in (body(outcome, "Run")["facets"] or "")


def test_a_bad_facet_goes_to_the_dlq_even_when_the_rest_of_its_event_was_seen_before() -> None:
    state: dict[str, list[int]] = {}
    run(run_event(), state)
    bad = facet("facets/1-0-1/NominalTimeRunFacet.json", nominalStartTime="yesterday")
    outcome = run(run_event(run_facets={"nominalTime": bad}), state)
    assert [letter.kind for letter in outcome.dead_letters] == ["facet"]


def test_an_event_with_many_bad_facets_makes_one_dead_letter_with_every_reason() -> None:
    """Issue #14, item 3: 300 bad facets made 300 copies of the event on the DLQ."""
    bad_schema = facet("facets/1-1-1/SchemaDatasetFacet.json", fields="not a list")
    inputs = [dataset(f"t{i}", schema=bad_schema) for i in range(300)]
    outcome = run(run_event(inputs=inputs), {})
    assert outcome.accepted
    (letter,) = outcome.dead_letters
    assert letter.kind == "facet"
    assert len({r["pointer"] for r in letter.reasons}) == 300
    assert {r["facet"] for r in letter.reasons} == {"schema"}


def test_repair_mode_repairs_a_missing_schema_url_and_marks_the_run() -> None:
    event = run_event()
    del event["schemaURL"]
    assert not run(event, {}).accepted
    outcome = run(event, {}, repair=True)
    assert outcome.accepted
    assert outcome.repairs == ("missing_schema_url",)
    assert body(outcome, "Run")["repairs"] == ["missing_schema_url"]


@pytest.mark.parametrize(("spare", "accepted"), [(0, True), (-1, False)])
def test_the_size_limit_refuses_a_message_longer_than_max_bytes(spare: int, accepted: bool) -> None:
    message = raw(run_event())
    outcome = run(message, {}, max_bytes=len(message) + spare)
    assert outcome.accepted is accepted
    codes = [r["code"] for letter in outcome.dead_letters for r in letter.reasons]
    assert codes == ([] if accepted else ["too_large"])


@pytest.mark.parametrize("event_time", ["2024-05-01t12:00:00z", "2024-05-01T12:00:00Z\n"])
def test_an_event_time_the_validator_accepts_never_crashes_processing(event_time: str) -> None:
    outcome = run(run_event(event_time=event_time), {})
    assert outcome.accepted
    assert outcome.event_time == T0_MICROS


# --- process(): suppression and order independence ------------------------------------------------

def _at(event: dict[str, Any], seconds: int, event_type: str) -> dict[str, Any]:
    moved = copy.deepcopy(event)
    moved["eventType"] = event_type
    moved["eventTime"] = f"2024-05-01T12:{seconds // 60:02d}:{seconds % 60:02d}Z"
    return moved


def test_a_later_event_that_changes_nothing_is_suppressed_and_a_change_is_sent() -> None:
    state: dict[str, list[int]] = {}
    start = run(_at(run_event(), 0, "START"), state)
    assert {"Job", "Run", "Dataset"} <= set(kinds(start))

    same = run(_at(run_event(), 60, "RUNNING"), state)
    assert same.suppressed > 0
    # The job's latest facets are what it shows, whatever comes later from elsewhere (its
    # datasets carry no facets: they count for firstSeen only).
    assert "Job" in kinds(same) and "Dataset" not in kinds(same)
    between = run(_at(run_event(), 30, "RUNNING"), state)
    assert not {"Job", "Dataset"} & set(kinds(between))

    new_sql = run_event(facets_of_job={**job_facets(), "sql": facet(
        "facets/1-1-0/SQLJobFacet.json", query="INSERT INTO c SELECT id FROM a")})
    changed = run(_at(new_sql, 120, "RUNNING"), state)
    assert {"Job", "Run"} <= set(kinds(changed))
    assert body(changed, "Run")["definition"] != body(start, "Run")["definition"]


def _read_versions(outcome: Outcome, name: str) -> list[tuple[int, str | None]]:
    return [(change.event_time, change.body["producingRunId"]) for change in outcome.changes
            if change.kind == "DatasetVersion" and change.body["datasetName"] == name]


def test_every_sighting_of_a_schema_is_sent_once_with_its_own_time() -> None:
    """The sink orders a dataset's schema sightings by these times, so an input schema that
    arrives after a later output's schema still sorts before it, and one seen again after
    another schema is current again: each distinct time of a sighting is sent, once."""
    state: dict[str, list[int]] = {}
    wider = [*COLUMNS, {"name": "w", "type": "string"}]
    write = run(_at(run_event(inputs=[], outputs=[dataset("a", columns=wider)]), 600,
                    "COMPLETE"), state)
    assert _read_versions(write, "a") == [(T0_MICROS + 600 * SECOND, RUN_ID)]
    read_late = run(_at(run_event(inputs=[dataset("a", columns=COLUMNS)], run_id=OTHER_RUN_ID),
                        300, "START"), state)
    assert _read_versions(read_late, "a") == [(T0_MICROS + 300 * SECOND, None)]
    earlier = run(_at(run_event(inputs=[dataset("a", columns=COLUMNS)], run_id=OTHER_RUN_ID),
                      60, "RUNNING"), state)
    assert _read_versions(earlier, "a") == [(T0_MICROS + 60 * SECOND, None)]
    later = run(_at(run_event(inputs=[dataset("a", columns=COLUMNS)], run_id=OTHER_RUN_ID),
                    900, "COMPLETE"), state)
    assert _read_versions(later, "a") == [(T0_MICROS + 900 * SECOND, None)]
    # The same sighting again (another event of that instant) adds nothing: not sent.
    third_run = "0b8e4a52-64f1-4d8e-9c6b-2f1e5d3c7a90"
    again = run(_at(run_event(inputs=[dataset("a", columns=COLUMNS)], run_id=third_run),
                    900, "COMPLETE"), state)
    assert _read_versions(again, "a") == []


def _workload() -> list[dict[str, Any]]:
    """Two runs of a job (the second with a new query), a status-only event, a DatasetEvent."""
    lineage = facet("facets/1-2-0/ColumnLineageDatasetFacet.json", fields={
        "id": {"inputFields": [{"namespace": "pg", "name": "a", "field": "id"}]}})
    symlinks = facet("facets/1-0-1/SymlinksDatasetFacet.json", identifiers=[
        {"namespace": "hive://metastore", "name": "warehouse.c", "type": "TABLE"}])
    parent = {"parent": facet("facets/1-1-0/ParentRunFacet.json", **PARENT)}
    first = run_event(run_facets=parent)
    done = run_event(run_facets=parent, outputs=[dataset("c", columns=COLUMNS,
                                                          columnLineage=lineage)])
    second = run_event(run_id=OTHER_RUN_ID, facets_of_job={**job_facets(), "sql": facet(
        "facets/1-1-0/SQLJobFacet.json", query="INSERT INTO c SELECT id FROM b")})
    dataset_event = {"eventTime": "2024-05-01T12:30:00+02:00", "producer": first["producer"],
                     "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"
                                  "#/$defs/DatasetEvent",
                     "dataset": dataset("c", columns=COLUMNS, symlinks=symlinks)}
    return [
        _at(first, 0, "START"), _at(first, 30, "RUNNING"),
        _at(run_event(inputs=[], outputs=[], run_facets=parent), 45, "RUNNING"),
        _at(done, 60, "COMPLETE"), _at(second, 600, "START"), _at(second, 900, "FAIL"),
        dataset_event,
    ]


def _graph(changes: list[Change]) -> dict[tuple[str, str, str], Any]:
    """What the sink would make of ``changes``: min/max times as the state rules define them;
    a Job or Dataset node its earliest time and the facets of its latest record with facets."""
    graph: dict[tuple[str, str, str], Any] = {}
    for change in changes:
        t = change.event_time
        if change.kind in ("Job", "Dataset"):
            first, latest = graph.get((change.kind, change.key, "")) or (t, None)
            facets = change.body["facets"]
            if facets is not None and (latest is None or (t, facets) > latest):
                latest = (t, facets)
            graph[(change.kind, change.key, "")] = (min(first, t), latest)
            continue
        identity = (change.kind, change.key, canonical_json(change.body))
        rule = state_key(change)[1]
        first, last = graph.get(identity) or (t, t)
        graph[identity] = {"once": None, "min": (min(first, t), min(first, t)),
                           "range": (min(first, t), max(last, t))}[rule]
    return graph


def _sent(events: list[dict[str, Any]], state: dict[str, list[int]]) -> list[Change]:
    return [change for event in events for change in run(event, state).changes]


def test_the_records_sent_describe_the_same_graph_in_any_arrival_order() -> None:
    events = _workload()
    expected = _graph(_sent(events, {}))
    # JobVersion records are no longer written (change schema v2): the sink derives versions.
    assert {kind for kind, _, _ in expected} == PAYLOAD_KINDS - {"JobVersion"}, (
        "the workload covers every kind")
    shuffled = events[:]
    random.Random(3).shuffle(shuffled)
    for order in (events[::-1], shuffled):
        assert _graph(_sent(order, {})) == expected


def test_replaying_committed_events_in_another_order_sends_nothing_new() -> None:
    state: dict[str, list[int]] = {}
    events = _workload()
    _sent(events, state)
    for order in (events[::-1], [*events[1::2], *events[::2]]):
        outcomes = [run(event, state) for event in order]
        assert all(o.duplicate for o in outcomes)
        assert [c for o in outcomes for c in o.changes] == []


# --- process() with what is remembered per content ----------------------------------------------

def _outcomes(events: list[bytes]) -> list[tuple[Any, ...]]:
    state: dict[str, list[int]] = {}
    found = []
    for message in events:
        outcome = run(message, state)
        found.append((outcome.accepted, outcome.duplicate, outcome.suppressed,
                      [(letter.kind, letter.reasons) for letter in outcome.dead_letters],
                      [(c.key, c.kind, repr(c.body), state_key(c)) for c in outcome.changes]))
    return found


def test_outcomes_do_not_depend_on_what_was_remembered_before() -> None:
    from schemas.validation.verdicts import VERDICTS
    from stream_processor import versioning

    bad = facet("facets/1-0-1/NominalTimeRunFacet.json", nominalStartTime="yesterday")
    events = [raw(_at(run_event(), seconds, kind)) for seconds, kind in (
        (0, "START"), (10, "COMPLETE"), (20, "START"), (30, "COMPLETE"))]
    events += [raw(run_event(run_facets={"nominalTime": bad}, run_id=OTHER_RUN_ID)), events[1]]
    events += [raw(run_event(inputs=[dataset("a", columns=COLUMNS), dataset(
        "b", columns=[{"name": "id", "type": 7}])]))]
    versioning.clear_memos()
    VERDICTS.clear()
    first = _outcomes(events)
    assert _outcomes(events) == first  # everything remembered now
    forgetful = []
    state: dict[str, list[int]] = {}
    for message in events:
        versioning.clear_memos()
        VERDICTS.clear()
        outcome = run(message, state)
        forgetful.append((
            outcome.accepted, outcome.duplicate, outcome.suppressed,
            [(letter.kind, letter.reasons) for letter in outcome.dead_letters],
            [(c.key, c.kind, repr(c.body), state_key(c)) for c in outcome.changes]))
    assert forgetful == first


def test_a_state_key_from_the_content_worked_out_is_the_one_computed_afresh() -> None:
    outcome = run(run_event(inputs=[dataset("a", columns=COLUMNS)]), {})
    for change in outcome.changes:
        bare = Change(change.key, change.kind, change.body, change.event_time)
        assert bare.content is None
        assert state_key(change) == state_key(bare)


def test_a_run_event_carrying_a_stray_dataset_is_versioned_as_a_run_event() -> None:
    event = {**run_event(), "dataset": {"namespace": "ns"}}
    outcome = process(raw(event), Plan({}), ingested_at=0)
    assert outcome.accepted, outcome.dead_letters
    assert "Run" in {change.kind for change in outcome.changes}


def test_an_event_the_versioning_cannot_handle_goes_to_the_dlq_instead_of_crashing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*_args: object) -> None:
        raise KeyError("name")

    monkeypatch.setattr(pipeline, "changes_for", broken)
    outcome = process(raw(run_event()), Plan({}), ingested_at=0)
    assert not outcome.accepted
    assert outcome.dead_letters[0].reasons[0]["code"] == "internal_error"
    assert outcome.plan.commit() == {}, "nothing remembered: a replay is processed again"


def test_versioning_keyed_with_the_validators_facet_json_works_out_what_it_would_alone() -> None:
    from schemas.validation import validate
    from stream_processor import versioning

    message = raw(run_event(inputs=[dataset("a", columns=COLUMNS)],
                            outputs=[dataset("b", columns=COLUMNS)]))
    result = validate(message)
    assert result.event is not None
    versioning.clear_memos()
    handed_on = versioning.changes_for(result.event, (), versioning.Prepared(result.facet_json))
    versioning.clear_memos()
    alone = versioning.changes_for(validate(message).event or {})
    assert [(c.key, c.kind, c.body, c.content) for c in handed_on] == [
        (c.key, c.kind, c.body, c.content) for c in alone]
