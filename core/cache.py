"""A bounded cache for what is worked out once per distinct content: a segmented LRU.

The processor sees the same content again and again (a dataset's schema in every event that
reads it, a job's sql in every run), so the validator's facet verdicts and versioning's records
are remembered per content. Both remember in a :class:`BoundedCache`, bounded by entries and by
(estimated) bytes, so that no workload can make it grow without limit.

>>> cache: BoundedCache[str, int] = BoundedCache(entries=4, size=100)
>>> cache.put("a", 1, size=10)
1
>>> cache.get("a"), cache.get("b")
(1, None)
>>> cache.put("huge", 2, size=300 << 10)  # over ``largest``: handed back, not remembered
2
>>> cache.get("huge"), len(cache)
(None, 1)
"""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["BoundedCache"]

K = TypeVar("K")
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """A segmented LRU of at most ``entries`` entries and ``size`` (estimated) bytes.

    What is new waits in a first-in-first-out probation segment (half the bounds); what is asked
    for again moves to the protected segment (the other half), least recently used out first. So
    content seen once (a run's own column lineage) cannot push out content that repeats (the
    schema of a dataset read by every run). Entries above ``largest`` bytes are never
    remembered. A value is never None: :meth:`get` answers None for "not remembered".
    """

    __slots__ = ("kept", "kept_bytes", "kept_entries", "kept_size", "largest", "new",
                 "new_bytes", "new_entries", "new_size")

    def __init__(self, entries: int, size: int, largest: int = 256 << 10) -> None:
        self.new_entries, self.new_bytes = max(1, entries // 2), max(1, size // 2)
        self.kept_entries, self.kept_bytes = entries - self.new_entries, size - self.new_bytes
        self.largest = largest
        self.new: dict[K, tuple[V, int]] = {}
        self.kept: dict[K, tuple[V, int]] = {}
        self.new_size = self.kept_size = 0

    def get(self, key: K) -> V | None:
        """The value remembered for ``key`` (now protected), or None."""
        kept = self.kept
        found = kept.pop(key, None)
        if found is not None:
            kept[key] = found  # the most recently used last
            return found[0]
        found = self.new.pop(key, None)
        if found is None:
            return None
        self.new_size -= found[1]
        while kept and (len(kept) >= self.kept_entries
                        or self.kept_size + found[1] > self.kept_bytes):
            self.kept_size -= kept.pop(next(iter(kept)))[1]
        kept[key] = found
        self.kept_size += found[1]
        return found[0]

    def put(self, key: K, value: V, size: int) -> V:
        """Remember ``value`` for ``key`` and return it; ``size`` estimates the bytes both hold."""
        if size > self.largest:
            return value
        new = self.new
        while new and (len(new) >= self.new_entries or self.new_size + size > self.new_bytes):
            self.new_size -= new.pop(next(iter(new)))[1]
        new[key] = (value, size)
        self.new_size += size
        return value

    def __len__(self) -> int:
        return len(self.new) + len(self.kept)

    def clear(self) -> None:
        """Forget everything."""
        self.new.clear()
        self.kept.clear()
        self.new_size = self.kept_size = 0
