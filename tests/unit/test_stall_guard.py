"""StallGuard: which raw partitions the worker re-reads from their commit."""

from __future__ import annotations

from stream_processor.worker import StallGuard


def test_a_partition_whose_commit_does_not_move_with_lag_is_stalled_after_the_period() -> None:
    guard = StallGuard(stall_seconds=30)
    assert guard.stalled({"p": 5}, {"p": 9}, now=0) == []
    assert guard.stalled({"p": 5}, {"p": 9}, now=29) == []
    assert guard.stalled({"p": 5}, {"p": 9}, now=30) == ["p"]


def test_a_moving_commit_restarts_the_clock() -> None:
    guard = StallGuard(stall_seconds=30)
    guard.stalled({"p": 5}, {"p": 9}, now=0)
    guard.stalled({"p": 6}, {"p": 9}, now=20)
    assert guard.stalled({"p": 6}, {"p": 9}, now=45) == []
    assert guard.stalled({"p": 6}, {"p": 9}, now=50) == ["p"]


def test_a_partition_without_lag_is_never_stalled() -> None:
    guard = StallGuard(stall_seconds=30)
    for now in (0, 40, 80):
        assert guard.stalled({"p": 9}, {"p": 9}, now=now) == []


def test_a_partition_never_committed_counts_from_offset_zero() -> None:
    guard = StallGuard(stall_seconds=30)
    guard.stalled({}, {"p": 3}, now=0)
    assert guard.stalled({}, {"p": 3}, now=31) == ["p"]
    assert guard.stalled({}, {"p": 0}, now=100) == []


def test_a_stalled_partition_gets_a_full_period_before_it_is_judged_again() -> None:
    guard = StallGuard(stall_seconds=30)
    guard.stalled({"p": 5}, {"p": 9}, now=0)
    assert guard.stalled({"p": 5}, {"p": 9}, now=30) == ["p"]
    assert guard.stalled({"p": 5}, {"p": 9}, now=45) == []
    assert guard.stalled({"p": 5}, {"p": 9}, now=60) == ["p"]


def test_a_batch_in_flight_holds_every_clock() -> None:
    guard = StallGuard(stall_seconds=30)
    guard.stalled({"p": 5, "q": 1}, {"p": 9, "q": 4}, now=0)
    guard.hold(now=25)
    assert guard.stalled({"p": 5, "q": 1}, {"p": 9, "q": 4}, now=40) == []
    assert sorted(guard.stalled({"p": 5, "q": 1}, {"p": 9, "q": 4}, now=55)) == ["p", "q"]


def test_partitions_no_longer_assigned_are_forgotten() -> None:
    guard = StallGuard(stall_seconds=30)
    guard.stalled({"p": 5}, {"p": 9}, now=0)
    guard.stalled({}, {"q": 4}, now=10)
    assert "p" not in guard.since
