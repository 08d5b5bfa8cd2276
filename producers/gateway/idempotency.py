"""Idempotency keys: a repeated ``Idempotency-Key`` with the same body gets the first answer.

>>> store: IdempotencyStore[str] = IdempotencyStore(retention_seconds=60, max_keys=10)
>>> store.claim("key-1", b"body-A").state
'new'
>>> store.release("key-1", "201 Created")
>>> store.claim("key-1", b"body-A").answer, store.claim("key-1", b"body-B").state
('201 Created', 'conflict')
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Generic, Literal, TypeVar

from core.errors import BadRequest

__all__ = ["MAX_IDEMPOTENCY_KEY", "Claim", "IdempotencyStore", "idempotency_key"]

MAX_IDEMPOTENCY_KEY: Final = 255

T = TypeVar("T")


@dataclass(slots=True)
class _Entry(Generic[T]):
    fingerprint: bytes
    answer: T | None  # None while the first request is still being answered
    expires: float
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Claim(Generic[T]):
    """What :meth:`IdempotencyStore.claim` decided.

    ``new``: the caller answers the request and then calls :meth:`IdempotencyStore.release`;
    ``replay``: ``answer`` is the first answer; ``conflict``: the key came with another body;
    ``pending``: the first request is still running, await ``waiter`` and claim again.
    """

    state: Literal["new", "replay", "conflict", "pending"]
    answer: T | None = None
    waiter: asyncio.Future[None] | None = None


class IdempotencyStore(Generic[T]):
    """Answers by idempotency key, for ``retention_seconds``, at most ``max_keys`` (oldest go).

    In memory, so per gateway instance: a repeat that reaches another instance is published
    again, and the processor's deduplication drops it there.
    """

    def __init__(self, retention_seconds: float, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.retention_seconds = retention_seconds
        self.max_keys = max_keys
        self._clock = clock
        self._entries: OrderedDict[str, _Entry[T]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def claim(self, key: str, fingerprint: bytes) -> Claim[T]:
        """Look ``key`` up for a request whose body has ``fingerprint``."""
        now = self._clock()
        self._expire(now)
        entry = self._entries.get(key)
        if entry is None:
            self._entries[key] = _Entry(fingerprint, None, now + self.retention_seconds)
            while len(self._entries) > self.max_keys:
                _, evicted = self._entries.popitem(last=False)
                self._wake(evicted)
            return Claim("new")
        if entry.fingerprint != fingerprint:
            return Claim("conflict")
        if entry.answer is None:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            entry.waiters.append(waiter)
            return Claim("pending", waiter=waiter)
        return Claim("replay", answer=entry.answer)

    def release(self, key: str, answer: T | None) -> None:
        """End the ``new`` claim of ``key``: keep ``answer`` for replays, or forget the key."""
        entry = self._entries.get(key)
        if entry is None or entry.answer is not None:
            return
        if answer is None:
            del self._entries[key]
        else:
            entry.answer = answer
            entry.expires = self._clock() + self.retention_seconds
            self._entries.move_to_end(key)
        self._wake(entry)

    def _expire(self, now: float) -> None:
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.expires > now:
                return
            del self._entries[key]
            self._wake(entry)

    @staticmethod
    def _wake(entry: _Entry[T]) -> None:
        for waiter in entry.waiters:
            if not waiter.done():
                waiter.set_result(None)
        entry.waiters.clear()


def idempotency_key(value: str | None) -> str | None:
    """The header's key (a structured-field string, quotes optional), or None when absent.

    A key that is empty, too long or not printable ASCII is a :class:`BadRequest`.

    >>> idempotency_key('"nightly-1"'), idempotency_key(None)
    ('nightly-1', None)
    """
    if value is None:
        return None
    key = value.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not key or len(key) > MAX_IDEMPOTENCY_KEY or not all(" " <= c <= "~" for c in key):
        raise BadRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters")
    return key
