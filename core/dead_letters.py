"""The dead-letter format shared by every stage (processor DLQ, sink DLQ).

A dead letter keeps the original message key and bytes unchanged and says why in three headers:
``lineage.dlq.kind``, ``lineage.dlq.reasons`` (comma-separated codes) and ``lineage.dlq.envelope``
(JSON: kind, reasons with code/pointer/message, the source topic/partition/offset/timestamp, when
and by which service it was dead-lettered). :func:`headers` writes them and :class:`Letter` reads
them back (``lineage dlq`` shows and replays dead letters through it).

>>> hs = dict(headers("record", [{"code": "undecodable", "message": "no C3 01 marker"}],
...                   topic="lineage.changes", partition=1, offset=7, timestamp=0.0, by="sink"))
>>> hs["lineage.dlq.kind"], hs["lineage.dlq.reasons"]
(b'record', b'undecodable')
>>> letter = Letter(hs)
>>> letter.kind, letter.codes, letter.envelope["source"]["offset"]
('record', ['undecodable'], 7)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

KIND = "lineage.dlq.kind"
REASONS = "lineage.dlq.reasons"
ENVELOPE = "lineage.dlq.envelope"

# One entry of a dead letter's reasons: "code" and "message", and "pointer" where the reason is
# about one place in the event (a validation Reason as a dict).
DeadLetterReason = Mapping[str, Any]


def headers(kind: str, reasons: Sequence[DeadLetterReason], *, topic: str, partition: int,
            offset: int, timestamp: float | None, by: str) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers of a dead letter (see the module docstring)."""
    envelope = {
        "kind": kind,
        "reasons": [dict(r) for r in reasons],
        "source": {"topic": topic, "partition": partition, "offset": offset,
                   "timestamp": timestamp},
        "deadAt": datetime.now(UTC).isoformat(),
        "processor": by,
    }
    codes = ",".join(dict.fromkeys(str(r["code"]) for r in reasons))
    return [
        (KIND, kind.encode()),
        (REASONS, codes.encode()),
        (ENVELOPE, json.dumps(envelope).encode()),
    ]


class Letter:
    """A dead letter's headers, read back: its kind, reason codes and envelope."""

    def __init__(self, headers: Mapping[str, bytes]) -> None:
        self.headers = headers

    @property
    def kind(self) -> str:
        """``event``, ``facet`` or ``record``; a letter without the header is an event's."""
        return self.headers.get(KIND, b"event").decode()

    @property
    def codes(self) -> list[str]:
        """The reason codes, in order, without repeats."""
        return [c for c in self.headers.get(REASONS, b"").decode().split(",") if c]

    @cached_property
    def envelope(self) -> dict[str, Any]:
        """The JSON envelope (see the module docstring); empty when absent."""
        raw = self.headers.get(ENVELOPE)
        return dict(json.loads(raw)) if raw else {}
