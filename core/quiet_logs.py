"""Quiet outages: a repeated warning or error is written once per interval, with a count.

While Kafka or Neo4j is away, client libraries log the same connection error many times a
second (a 28 s Kafka outage wrote about 52,000 ERROR lines, 5.4 MB, to the processor's log).
:class:`RateLimited`, on the handlers of the root logger (:func:`install`), lets the first record
of a kind through, drops the ones like it for ``interval`` seconds, and adds to the next one let
through how many were dropped. Records are "alike" when they come from the same logger at the
same level and their messages differ only in numbers (ports, timings, counts). Below WARNING
nothing is dropped. librdkafka's own log lines go through the same handlers (the clients of
:mod:`core.kafka_config` give it the ``librdkafka`` logger).

>>> limit = RateLimited(interval=60)
>>> def warn(text): return logging.LogRecord("kafka", logging.ERROR, "", 0, text, (), None)
>>> [limit.filter(warn(f"connect to 127.0.0.1:{port} failed")) for port in (1, 2, 3)]
[True, False, False]
>>> limit.seen[("kafka", logging.ERROR, "connect to #.#.#.#:# failed")][1]
2
"""

from __future__ import annotations

import logging
import re
import time
from typing import Final

INTERVAL_SECONDS: Final = 10.0
_NUMBERS: Final = re.compile(r"\d+")
_MAX_KINDS: Final = 1_000


class RateLimited(logging.Filter):
    """One record per kind per ``interval`` seconds (see the module docstring)."""

    def __init__(self, interval: float = INTERVAL_SECONDS) -> None:
        super().__init__()
        self.interval = interval
        # kind -> [when one was last let through, how many were dropped since]
        self.seen: dict[tuple[str, int, str], list[float]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        kind = (record.name, record.levelno, _NUMBERS.sub("#", message)[:300])
        now = time.monotonic()
        found = self.seen.get(kind)
        if found is not None and now - found[0] < self.interval:
            found[1] += 1
            return False
        if len(self.seen) >= _MAX_KINDS:
            self.seen.clear()
        self.seen[kind] = [now, 0]
        if found is not None and found[1]:
            record.msg, record.args = (f"{message} ({found[1]:.0f} more like it in the last "
                                       f"{now - found[0]:.0f}s)"), ()
        return True


def install(interval: float = INTERVAL_SECONDS) -> None:
    """Put a :class:`RateLimited` filter on every handler of the root logger (once each)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RateLimited) for f in handler.filters):
            handler.addFilter(RateLimited(interval))
