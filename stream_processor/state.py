"""What a worker remembers: events it has processed and change records it has sent.

One key-value map (a Faust table backed by a changelog topic in the worker; a dict in tests and
benchmarks) holds ``[first, last]`` eventTimes (microseconds) per entry:

==========================  ==========================  ========================================
entry                       key                         a new observation at time t is sent when
==========================  ==========================  ========================================
processed event (dedup)     ``x|<event content id>``    never seen (then it is a duplicate)
a node's facets             ``n|<node>``                never seen, t < first or t >= last
a node without facets       ``n0|<node>``               never seen, or t < first (firstSeen)
job version                 ``v|<version id>``          never seen, or t < first (validFrom)
dataset version sighting    ``s|<version id>|<t>``      never seen
job lineage, run state     ``r|<content id>``          never seen, or t outside [first, last]
run IO, columns, symlink    ``o|<content id>``          never seen
==========================  ==========================  ========================================

A record that is not sent would change nothing in the graph: the sink keeps the minimum time for
validFrom and first-seen, the maximum for last-seen, the facets of the record with the latest
time (ties by content, so one at the latest time is sent too), and sets for the rest. A worker
sends a node's record whenever it is the latest that worker saw, not only when its facets are
new: another worker may have sent other facets at a time in between. Entries are updated
only *after* Kafka acknowledged the records they describe, so a crash can repeat a record but
never lose one. Entries whose ``last`` is older than the retention (7 days of eventTime by
default) behind the newest eventTime seen are expired; forgetting only means a record may be sent
again, which the idempotent sink absorbs.

>>> state: dict[str, list[int]] = {}
>>> plan = Plan(state)
>>> plan.wants("v|abc", 10, "min"), plan.wants("v|abc", 20, "min")
(True, False)
>>> plan.commit()
{'v|abc': [10, 10]}
>>> plan.wants("v|abc", 20, "min"), plan.wants("v|abc", 5, "min")
(False, True)
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Literal, TypeVar

Rule = Literal["once", "min", "range", "latest"]
K = TypeVar("K")
Span = list[int]


class Plan:
    """Decisions for one event against ``state``; ``commit`` records them once Kafka has acked."""

    def __init__(self, state: MutableMapping[str, Span]) -> None:
        self.state = state
        self.pending: dict[str, Span] = {}

    def wants(self, key: str, time: int, rule: Rule) -> bool:
        """Whether an observation of ``key`` at ``time`` must be sent; remembers it if so."""
        known = self.pending.get(key) or self.state.get(key)
        if known is None:
            send = True
        elif rule == "once":
            send = False
        elif rule == "min":
            send = time < known[0]
        elif rule == "latest":
            send = time < known[0] or time >= known[1]
        else:
            send = time < known[0] or time > known[1]
        if send:
            first, last = (time, time) if known is None else (min(known[0], time),
                                                               max(known[1], time))
            self.pending[key] = [first, last]
        return send

    def commit(self) -> dict[str, Span]:
        """Write the remembered observations to the state; returns what was written."""
        written, self.pending = self.pending, {}
        for key, span in written.items():
            self.state[key] = span
        return written


def stale_keys(items: Iterable[tuple[K, Span]], watermark: int,
               retention_micros: int) -> list[K]:
    """Keys of entries last seen more than ``retention_micros`` before ``watermark``."""
    cutoff = watermark - retention_micros
    return [key for key, span in items if span[1] < cutoff]
