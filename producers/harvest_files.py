"""``lineage harvest file``: replay files of OpenLineage events to Kafka.

Reads JSON files (one event, or an array of events) and NDJSON files (one event per line) with
:func:`producers.emitter.read_events`, given as files, folders (their ``*.json``, ``*.ndjson``
and ``*.jsonl`` files, walked) or glob patterns, and publishes the events with
:class:`producers.emitter.Emitter`, keyed like the standard Kafka transport.

A file is sent whole or not at all: one that is not JSON, or that holds something that is not an
OpenLineage event, is reported with the file and the line (or the event's position) and skipped,
and the other files are still sent; the command then exits with status 1. Replaying a file twice
is harmless: the processor drops exact repeats.

>>> check_events([{"eventTime": "2024-05-01T12:00:00Z", "job": {"namespace": "n", "name": "j"},
...               "run": {"runId": "r"}}, {"name": "not an event"}])
'event 2 is not an OpenLineage event (no eventTime/eventType/schemaURL with a job or dataset)'

Examples::

    lineage harvest file events.ndjson                 # one file
    lineage harvest file exports/ 'more/**/*.json'     # folders and globs
    lineage harvest file exports/ --dry-run | head     # show what would be sent
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core.errors import LineageError
from producers.emitter import read_events
from producers.harvest_common import EventSink, Report, expand_paths, looks_like_event

PATTERNS = ("*.json", "*.ndjson", "*.jsonl")


def check_events(events: Sequence[Any]) -> str | None:
    """Why ``events`` cannot be sent, or None when each one looks like an event."""
    for index, event in enumerate(events, 1):
        if not looks_like_event(event):
            return (f"event {index} is not an OpenLineage event "
                    f"(no eventTime/eventType/schemaURL with a job or dataset)")
    return None


def _where_not_json(text: str, fallback: str) -> str:
    """The position of a JSON syntax error, for a file that is one document (not NDJSON)."""
    stripped = text.lstrip()
    first_line = stripped.split("\n", 1)[0]
    try:
        json.loads(first_line)
    except json.JSONDecodeError:
        try:
            json.loads(stripped)
        except json.JSONDecodeError as exc:
            # Lines of ``stripped`` start after the leading blank lines of ``text``.
            skipped = text[: len(text) - len(stripped)].count("\n")
            return f"line {exc.lineno + skipped} is not JSON: {exc.msg} (column {exc.colno})"
    return fallback


def read_file(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The events of one file, or why it cannot be used (with the line where that is known)."""
    try:
        events = list(read_events(path))
    except LineageError as exc:
        text = path.read_text(encoding="utf-8", errors="replace")
        return [], _where_not_json(text, exc.cause)
    except UnicodeDecodeError as exc:
        return [], f"not UTF-8 text (byte {exc.start})"
    except OSError as exc:
        return [], f"cannot read it: {exc.strerror or exc}"
    return events, check_events(events)


def harvest_files(paths: Sequence[str], sink: EventSink, *,
                  patterns: Sequence[str] = PATTERNS,
                  log: Callable[[str], None] = print) -> Report:
    """Send the events of every file ``paths`` name; bad files are reported and skipped."""
    report = Report("file")
    files, missing = expand_paths(paths, patterns)
    for arg in missing:
        report.problem(arg, None, "no such file, folder or matching file")
    for index, path in enumerate(files, 1):
        report.files += 1
        events, why_not = read_file(path)
        if why_not is not None:
            report.problem(path, None, why_not)
            log(f"[{index}/{len(files)}] {path}: skipped: {why_not}")
            continue
        for event in events:
            sink.emit(event)
        sink.flush()
        report.found += len(events)
        report.sent += len(events)
        log(f"[{index}/{len(files)}] {path}: {len(events)} events sent")
    return report
