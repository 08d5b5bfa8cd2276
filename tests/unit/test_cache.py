"""Unit tests of core.cache.BoundedCache, the one bounded cache (validation's facet verdicts,
versioning's records per content)."""

from __future__ import annotations

import pytest

from core.cache import BoundedCache

pytestmark = pytest.mark.unit


def test_the_cache_stays_within_its_bounds_and_keeps_what_repeats() -> None:
    memo: BoundedCache[str, int] = BoundedCache(entries=8, size=1000)
    memo.put("hot", 1, 10)
    assert memo.get("hot") == 1  # asked for again: protected
    for i in range(100):
        memo.put(f"once{i}", i, 50)
        assert len(memo.new) <= 4 and memo.new_size <= 500
    assert memo.get("hot") == 1 and memo.get("once0") is None
    memo.put("huge", 0, 300 << 10)
    assert memo.get("huge") is None
    assert len(memo) <= 8


def test_the_protected_half_drops_its_least_recently_used_entry_first() -> None:
    memo: BoundedCache[str, str] = BoundedCache(entries=4, size=1000)
    for key in ("a", "b"):
        memo.put(key, key.upper(), 1)
        memo.get(key)  # both protected now: a, then b
    memo.get("a")  # a is now the most recently used
    memo.put("c", "C", 1)
    memo.get("c")  # protecting c pushes out b, not a
    assert (memo.get("a"), memo.get("b"), memo.get("c")) == ("A", None, "C")


def test_the_byte_bound_counts_what_is_held_and_clear_forgets_everything() -> None:
    memo: BoundedCache[int, int] = BoundedCache(entries=100, size=100)
    for i in range(20):
        memo.put(i, i, 10)
    assert memo.new_size <= 50 and memo.new_size == 10 * len(memo.new)
    memo.clear()
    assert (len(memo), memo.new_size, memo.kept_size) == (0, 0, 0)
