"""The dead-letter format shared by every stage (processor DLQ, sink DLQ).

A dead letter keeps the original message key and bytes unchanged and says why in three headers:
``lineage.dlq.kind``, ``lineage.dlq.reasons`` (comma-separated codes) and ``lineage.dlq.envelope``
(JSON: kind, reasons with code/pointer/message, the source topic/partition/offset/timestamp, when
and by which service it was dead-lettered). :func:`headers` writes them and :class:`Letter` reads
them back (``lineage dlq`` shows and replays dead letters through it).

A dead letter never outgrows what the DLQ topic takes (:func:`dead_letter`): an original that
would make it longer than ``max_bytes`` is cut to fit, and the envelope's ``truncated`` says so
with the original's size and SHA-256 (the whole original stays on its source topic, at the
coordinates the envelope names), and reasons that would take more than half of it are cut to
the first ones, with ``omittedReasons`` counting the others. Retrying a message Kafka will never
take would stall a stage.

>>> hs = dict(headers("record", [{"code": "undecodable", "message": "no C3 01 marker"}],
...                   topic="lineage.changes", partition=1, offset=7, timestamp=0.0, by="sink"))
>>> hs["lineage.dlq.kind"], hs["lineage.dlq.reasons"]
(b'record', b'undecodable')
>>> letter = Letter(hs)
>>> letter.kind, letter.codes, letter.envelope["source"]["offset"]
('record', ['undecodable'], 7)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property, partial
from typing import Any

from core.delivery import OutMessage

KIND = "lineage.dlq.kind"
REASONS = "lineage.dlq.reasons"
ENVELOPE = "lineage.dlq.envelope"

# One entry of a dead letter's reasons: "code" and "message", and "pointer" where the reason is
# about one place in the event (a validation Reason as a dict).
DeadLetterReason = Mapping[str, Any]


def headers(kind: str, reasons: Sequence[DeadLetterReason], *, topic: str, partition: int,
            offset: int, timestamp: float | None, by: str, omitted: int = 0,
            truncated: Mapping[str, Any] | None = None) -> list[tuple[str, str | bytes | None]]:
    """Kafka headers of a dead letter (see the module docstring)."""
    envelope: dict[str, Any] = {
        "kind": kind,
        "reasons": [dict(r) for r in reasons],
        "source": {"topic": topic, "partition": partition, "offset": offset,
                   "timestamp": timestamp},
        "deadAt": datetime.now(UTC).isoformat(),
        "processor": by,
    }
    if omitted:
        envelope["omittedReasons"] = omitted
    if truncated is not None:
        envelope["truncated"] = dict(truncated)
    codes = ",".join(dict.fromkeys(str(r["code"]) for r in reasons))
    return [
        (KIND, kind.encode()),
        (REASONS, codes.encode()),
        (ENVELOPE, json.dumps(envelope).encode()),
    ]


def dead_letter(value: bytes, kind: str, reasons: Sequence[DeadLetterReason], *, topic: str,
                partition: int, offset: int, timestamp: float | None, by: str,
                max_bytes: int) -> tuple[bytes, list[tuple[str, str | bytes | None]]]:
    """The value and :func:`headers` of a dead letter of ``value``, together at most
    ``max_bytes`` (see the module docstring).

    >>> value, hs = dead_letter(b"x" * 100_000, "event", [{"code": "too_large", "message": "!"}],
    ...                         topic="t", partition=0, offset=1, timestamp=None, by="p",
    ...                         max_bytes=65_536)
    >>> len(value) + sum(len(v or b"") for _, v in hs) <= 65_536
    True
    >>> Letter(dict(hs)).truncated["bytes"]
    100000
    """
    make = partial(headers, kind, topic=topic, partition=partition, offset=offset,
                   timestamp=timestamp, by=by)
    letter = make(reasons)
    if len(value) + _size(letter) <= max_bytes:
        return value, letter
    # The reasons take at most half: an event with thousands of bad facets keeps the first ones
    # and the count of the others.
    kept_reasons = list(reasons)
    while len(kept_reasons) > 1 and _size(letter) > max_bytes // 2:
        kept_reasons = kept_reasons[:len(kept_reasons) // 2]
        letter = make(kept_reasons, omitted=len(reasons) - len(kept_reasons))
    if len(value) + _size(letter) <= max_bytes:
        return value, letter
    truncated = {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest(),
                 "kept": len(value)}
    omitted = len(reasons) - len(kept_reasons)
    room = max_bytes - _size(make(kept_reasons, omitted=omitted, truncated=truncated))
    kept = value[:max(0, room)]
    return kept, make(kept_reasons, omitted=omitted, truncated={**truncated, "kept": len(kept)})


def shrink(message: OutMessage) -> OutMessage | None:
    """A dead letter that Kafka refused as too large, with half of its value (the envelope
    saying so); None for a message that is no dead letter, or has no value left to cut.

    The DLQ topic may take less than ``max_bytes`` (its ``max.message.bytes``): the stage then
    sends the letter again smaller (:meth:`core.delivery.Delivery.send_all`) instead of
    retrying what can never be taken.

    >>> value, hs = dead_letter(b"abcd", "event", [], topic="t", partition=0, offset=1,
    ...                         timestamp=None, by="p", max_bytes=1_000_000)
    >>> smaller = shrink(OutMessage("dlq", None, value, hs))
    >>> smaller.value, Letter(dict(smaller.headers)).truncated["kept"]
    (b'ab', 2)
    """
    found = dict(message.headers or [])
    raw, value = found.get(ENVELOPE), message.value or b""
    if not value or not isinstance(raw, bytes):
        return None
    envelope = json.loads(raw)
    truncated = envelope.get("truncated") or {"bytes": len(value),
                                              "sha256": hashlib.sha256(value).hexdigest()}
    kept = value[:len(value) // 2]
    envelope["truncated"] = {**truncated, "kept": len(kept)}
    letter = [(key, json.dumps(envelope).encode() if key == ENVELOPE else header)
              for key, header in message.headers or []]
    return OutMessage(message.topic, message.key, kept, letter)


def _size(letter: list[tuple[str, str | bytes | None]]) -> int:
    return sum(len(key) + len(value or b"") for key, value in letter)


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

    @property
    def truncated(self) -> dict[str, Any] | None:
        """How the original was cut to fit (``bytes``, ``sha256``, ``kept``), or None."""
        found = self.envelope.get("truncated")
        return dict(found) if isinstance(found, dict) else None

    @cached_property
    def envelope(self) -> dict[str, Any]:
        """The JSON envelope (see the module docstring); empty when absent."""
        raw = self.headers.get(ENVELOPE)
        return dict(json.loads(raw)) if raw else {}
