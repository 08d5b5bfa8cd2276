"""The dead-letter format shared by every stage (processor DLQ, sink DLQ).

A dead letter keeps the original message key and bytes unchanged and says why in three headers:
``lineage.dlq.kind``, ``lineage.dlq.reasons`` (comma-separated codes) and ``lineage.dlq.envelope``
(JSON: kind, reasons with code/pointer/message, the source topic/partition/offset/timestamp, when
and by which service it was dead-lettered). ``stream_processor.dlq`` reads them back.

>>> hs = dict(headers("record", [{"code": "undecodable", "message": "no C3 01 marker"}],
...                   topic="lineage.changes", partition=1, offset=7, timestamp=0.0, by="sink"))
>>> hs["lineage.dlq.kind"], hs["lineage.dlq.reasons"]
(b'record', b'undecodable')
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

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
        ("lineage.dlq.kind", kind.encode()),
        ("lineage.dlq.reasons", codes.encode()),
        ("lineage.dlq.envelope", json.dumps(envelope).encode()),
    ]
