"""The pure parts of ``lineage rebuild``: the fresh state it replays with, the raw topic's
retention, and what it says about the topic."""

from __future__ import annotations

import pytest

from core.settings import CommonSettings, KafkaSettings
from core.topics import topic_config
from lineage import rebuild
from lineage.bench.workload import encode_events, synthetic_events
from lineage.rebuild import Extent, Replay

EVENTS = [value for _key, value in encode_events(synthetic_events(jobs=3, runs_per_job=2))]


def records(replay: Replay, values: list[bytes]) -> list[tuple[str, str, int]]:
    return [(c.kind, c.key, c.event_time) for v in values for c in replay.feed(v).changes]


def test_a_fresh_replay_makes_every_record_again_where_a_used_state_makes_none() -> None:
    used = Replay()
    first = records(used, EVENTS)
    assert first
    assert records(used, EVENTS) == []  # the processor's state hides what it has sent (case 8)
    assert records(Replay(), EVENTS) == first


def test_a_replay_with_a_retention_forgets_entries_behind_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rebuild, "EXPIRE_EVERY", 1)
    forgetful, remembering = Replay(retention_days=1e-9), Replay()
    for value in EVENTS:
        forgetful.feed(value)
        remembering.feed(value)
    assert len(forgetful.state) < len(remembering.state)


def test_the_raw_topic_is_created_to_keep_its_events_forever_unless_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kafka = KafkaSettings(raw_topic="raw")
    assert topic_config(kafka, "raw") == {"retention.ms": "-1"}
    assert topic_config(kafka, kafka.changes_topic) == {}
    monkeypatch.setenv("LINEAGE_KAFKA__RAW_RETENTION_MS", "2592000000")
    assert topic_config(CommonSettings().kafka, "openlineage.events") == {
        "retention.ms": "2592000000"}


def test_a_partition_whose_first_events_are_gone_is_named_with_its_first_offset() -> None:
    extent = Extent("raw", {0: (0, 10), 1: (4, 10), 2: (7, 7)}, 86_400_000)
    assert extent.events == 16
    assert extent.trimmed == {1: 4, 2: 7}
    assert extent.describe() == ("raw topic raw: 16 events in 3 partitions, retention 1 day "
                                 "(partition 1 starts at 4, partition 2 starts at 7)")
