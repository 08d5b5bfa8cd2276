"""What the graph can hold: the limits the validator enforces on events
(:mod:`schemas.validation.limits`) and the sink on change records (docs/validation.md).

- A node key (a job's or dataset's namespace and name; a field's namespace, dataset and name)
  takes at most :data:`MAX_KEY_BYTES` bytes of UTF-8: keys are uniqueness constraints, and
  Neo4j's index refuses a value of about 8 KiB or more.
- An eventTime is in [:data:`EARLIEST_TIME`, :data:`LATEST_TIME`) in UTC: Python, the change
  records and Neo4j hold years 1 to 9999, and the end of that range is the open end of a
  validity interval in the graph (``sinks.timeline.STILL_VALID``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

MAX_KEY_BYTES: Final = 8_000
EARLIEST_TIME: Final = datetime(1, 1, 1, tzinfo=UTC)
LATEST_TIME: Final = datetime(9999, 12, 31, tzinfo=UTC)


def key_bytes(*parts: str) -> int:
    """The UTF-8 size of a node key made of ``parts``.

    >>> key_bytes("ns", "é")
    4
    """
    return sum(len(part.encode("utf-8", "surrogatepass")) for part in parts)
