"""``lineage harvest logs``: OpenLineage events scraped from task and driver logs.

Where a pipeline runs with OpenLineage's *console* transport (Airflow on MWAA with
``AIRFLOW__OPENLINEAGE__TRANSPORT='{"type": "console"}'``, a Spark job with
``spark.openlineage.transport.type=console``), every event is written into the task's or the
driver's log, as Amazon DataZone captures them. This harvester reads those logs and publishes the
events with :class:`producers.emitter.Emitter`, keyed like the standard Kafka transport.

What it recognises
    A JSON object that starts after a log prefix, or anywhere in a line, and is shaped like an
    OpenLineage event (:func:`producers.harvest_common.looks_like_event`): run, job and dataset
    events. Known prefixes are Airflow's ``[2024-05-01, 12:00:00 UTC] {console.py:29} INFO - ``
    and Spark's log4j ``24/05/01 12:00:00 INFO ConsoleTransport: ``. An event may be pretty-printed
    or wrapped over several lines, with or without a prefix on each continuation line: the
    scanner follows the object's braces (outside strings) until it closes. Other JSON objects in
    the log are ignored; an object that mentions ``eventTime``/``eventType``/``schemaURL`` but is
    not valid JSON is reported as a problem with its file:line.

Resumption
    Per file, the state file ``<state_dir>/harvest/logs.json`` remembers the byte offset up to
    which everything was read and sent, the line number there, and a fingerprint (SHA-256) of the
    file's first KiB. A file that became shorter than the offset (truncated) or whose head changed
    (rotated, replaced) is read again from the start. An event still being written at the end of
    a file (its object not closed yet) is not passed: the next run reads it again from its first
    line. Events found past that point are sent and remembered by content hash, so a re-run never
    sends them twice. The state is saved only after Kafka acknowledged the file's events: a crash
    can repeat events (which the processor deduplicates), never lose them.

>>> log = '''[2024-05-01, 12:00:00 UTC] {console.py:29} INFO - {"eventType": "START",
... "eventTime": "2024-05-01T12:00:00Z", "run": {"runId": "r1"},
... "job": {"namespace": "airflow", "name": "dag.task"}, "producer": "p", "schemaURL": "s"}
... 24/05/01 12:00:01 INFO ConsoleTransport: {"eventTime": "2024-05-01T12:00:01Z",
... 24/05/01 12:00:01 INFO ConsoleTransport:  "dataset": {"namespace": "s3://b", "name": "k"}}
... [2024-05-01, 12:00:02 UTC] {taskinstance.py:1} INFO - {"eventTime": oops, "job": {}}'''
>>> hits = scan_text(log)
>>> [(type(hit).__name__, hit.line) for hit in hits]
[('Found', 1), ('Found', 4), ('Broken', 6)]
>>> hits[1].event["dataset"]["name"], hits[2].reason[:40]
('k', 'an OpenLineage event that is not valid J')

Examples::

    lineage harvest logs /usr/local/airflow/logs            # every file under the folder
    lineage harvest logs 'logs/**/*.log' spark-driver.out   # globs and single files
    lineage harvest logs logs/ --follow --interval 5        # keep reading as the logs grow
    lineage harvest logs logs/ --dry-run > events.ndjson    # print, send nothing, keep no state
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from producers.harvest_common import (
    EVENT_MARKERS,
    EventSink,
    Report,
    StateFile,
    expand_paths,
    looks_like_event,
)

HEAD_BYTES = 1024
SAVE_SECONDS = 2.0
# The emitter's (and so Kafka's) largest message: an object still open past this is not an event.
MAX_EVENT_BYTES = 8 * 1024 * 1024

AIRFLOW_PREFIX = re.compile(r"\[[^\]\n]{6,48}\] \{[^}\n]*\} [A-Z]+ - ")
SPARK_PREFIX = re.compile(r"\d{2}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}(?:[.,]\d+)? +[A-Z]+ +[\w.$-]+: ")
PREFIXES = (AIRFLOW_PREFIX, SPARK_PREFIX)
_PREFIX_STARTS = frozenset("[0123456789")
# An object that opens with a key, or whose first key is on the next line (pretty-printed).
OPENING = re.compile(r'\{\s*(?:"|$)')
# A whole string in one step (the common case), else a brace, else a string left open.
_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[{}]|"')
_DECODER = json.JSONDecoder()
_STRING_STOP = re.compile(r'["\\]')


def strip_prefix(text: str) -> str:
    """``text`` without a known log prefix (Airflow task log, Spark log4j).

    >>> strip_prefix("24/05/01 12:00:00 INFO ConsoleTransport: {}")
    '{}'
    """
    if text[:1] not in _PREFIX_STARTS:
        return text  # most lines, and every line of a pretty-printed event
    for prefix in PREFIXES:
        match = prefix.match(text)
        if match:
            return text[match.end():]
    return text


@dataclass(frozen=True)
class Line:
    """One line of a file: its number, byte offsets (``end`` past the terminator), text."""

    number: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Found:
    """An event; ``line``/``start`` are its first line's number and offset, ``text`` its JSON
    as read (the same bytes read again give the same text)."""

    event: dict[str, Any]
    line: int
    start: int
    text: str = field(default="", compare=False, repr=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Broken:
    """Something that looked like an event but is not one; ``line`` is where it starts."""

    line: int
    reason: str


@dataclass(frozen=True)
class Incomplete:
    """An object still open at the end of the input: read it again from ``start`` next time."""

    line: int
    start: int


Hit = Found | Broken | Incomplete


class _Balance:
    """Follows a JSON object's braces, outside strings, across chunks of text."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False

    def feed(self, chunk: str) -> int:
        """The index just past the object's closing brace in ``chunk``, or -1 while open."""
        if (not self.in_string and "{" not in chunk and "}" not in chunk
                and "\\" not in chunk and chunk.count('"') % 2 == 0):
            return -1  # most lines of a pretty-printed object: no brace, whole strings only
        i, n = 0, len(chunk)
        if self.escaped and n:
            i, self.escaped = 1, False
        while i < n:
            if self.in_string:
                stop = _STRING_STOP.search(chunk, i)
                if stop is None:
                    return -1
                if stop.group() == "\\":
                    if stop.end() >= n:
                        self.escaped = True
                        return -1
                    i = stop.end() + 1
                    continue
                self.in_string, i = False, stop.end()
                continue
            token = _STRUCTURE.search(chunk, i)
            if token is None:
                return -1
            i, text = token.end(), token.group()
            if text == "{":
                self.depth += 1
            elif text == "}":
                self.depth -= 1
                if self.depth == 0:
                    return i
            elif text == '"':
                self.in_string = True
        return -1


def _eventish(text: str) -> bool:
    return any(f'"{marker}"' in text for marker in EVENT_MARKERS)


def scan(lines: Iterable[Line], max_event_bytes: int = MAX_EVENT_BYTES) -> Iterator[Hit]:
    """The events in ``lines``, what looked like one but was not, and an object left open.

    After an object that is not valid JSON (or that stays open past ``max_event_bytes``), the
    scan goes on from the character after its opening brace, so an event that follows a broken
    one is still found.
    """
    source = iter(lines)
    replay: deque[Line] = deque()

    def next_line() -> Line | None:
        return replay.popleft() if replay else next(source, None)

    left_open = False
    line, column = next_line(), 0
    while line is not None:
        text = strip_prefix(line.text)
        opening = OPENING.search(text, column)
        if opening is None:
            line, column = next_line(), 0
            continue
        start = opening.start()
        try:  # the usual case, an event on one line, at the JSON decoder's speed
            obj, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            pass
        else:
            if looks_like_event(obj):
                yield Found(obj, line.number, line.start, text[start:end])
            column = end
            continue
        balance = _Balance()
        taken, parts = [line], [text[start:]]
        size = len(parts[0])
        end = balance.feed(parts[0])
        following: Line | None = line
        while end < 0 and size <= max_event_bytes:
            following = next_line()
            if following is None:
                break
            chunk = strip_prefix(following.text)
            taken.append(following)
            parts.append(chunk)
            size += len(chunk)
            end = balance.feed(chunk)
        if end >= 0:
            parts[-1] = parts[-1][:end]
            candidate = "".join(parts)
            try:
                obj = json.loads(candidate)
            except json.JSONDecodeError as exc:
                if _eventish(candidate):
                    yield Broken(line.number, f"an OpenLineage event that is not valid JSON: "
                                              f"{exc.msg} (line {exc.lineno} column {exc.colno}"
                                              f" of the event)")
            else:
                if looks_like_event(obj):
                    yield Found(obj, line.number, line.start, candidate)
                # Go on after the object (a valid object's inner objects are its own).
                column = end + (start if len(taken) == 1 else 0)
                line = taken[-1]
                continue
        elif following is None:
            if not left_open:  # any later one lies inside this one
                yield Incomplete(line.number, line.start)
            left_open = True
        elif _eventish("".join(parts)):
            yield Broken(line.number, f"an OpenLineage event still open after "
                                      f"{max_event_bytes} bytes")
        replay.extendleft(reversed(taken[1:]))
        column = start + 1


def scan_text(text: str) -> list[Hit]:
    """:func:`scan` over a string (offsets are character offsets here)."""
    lines, offset = [], 0
    for number, raw in enumerate(text.splitlines(keepends=True), 1):
        lines.append(Line(number, offset, offset + len(raw), raw.rstrip("\r\n")))
        offset += len(raw)
    return list(scan(lines))


class _LineReader:
    """The lines of a binary file from ``offset`` on; remembers where the last one ended."""

    def __init__(self, handle: IO[bytes], offset: int, number: int) -> None:
        self.handle, self.end, self.number = handle, offset, number
        self.unterminated: Line | None = None

    def __iter__(self) -> Iterator[Line]:
        for raw in self.handle:
            line = Line(self.number, self.end, self.end + len(raw),
                        raw.decode("utf-8", errors="replace").rstrip("\r\n"))
            if not raw.endswith(b"\n"):
                self.unterminated = line  # perhaps still being written
            self.end, self.number = line.end, self.number + 1
            yield line


def fingerprint(head: bytes) -> str:
    """The fingerprint of a file's first bytes."""
    return hashlib.sha256(head).hexdigest()[:32]


@dataclass(frozen=True)
class Resume:
    """Where to start reading a file again."""

    offset: int
    line: int
    sent_after: frozenset[str]
    restarted: str | None = None


def resume_point(saved: dict[str, Any] | None, head: bytes, size: int) -> Resume:
    """Where to go on in a file whose first bytes are ``head`` and length ``size``.

    >>> saved = {"offset": 10, "line": 3, "head_len": 4, "head": fingerprint(b"abcd"),
    ...          "sent_after": ["e1"]}
    >>> resume_point(saved, b"abcdef", 20)
    Resume(offset=10, line=3, sent_after=frozenset({'e1'}), restarted=None)
    >>> resume_point(saved, b"abcd", 5).restarted
    'truncated'
    >>> resume_point(saved, b"xbcdef", 20).restarted
    'rotated'
    """
    if not saved:
        return Resume(0, 1, frozenset())
    offset, head_len = int(saved.get("offset", 0)), int(saved.get("head_len", 0))
    if size < offset:
        return Resume(0, 1, frozenset(), "truncated")
    if len(head) < head_len or fingerprint(head[:head_len]) != saved.get("head"):
        return Resume(0, 1, frozenset(), "rotated")
    return Resume(offset, int(saved.get("line", 1)), frozenset(saved.get("sent_after", ())))


def harvest_file(path: Path, saved: dict[str, Any] | None, sink: EventSink,
                 report: Report, max_event_bytes: int = MAX_EVENT_BYTES) -> dict[str, Any]:
    """Send the new events of one log file; returns its new state (see the module doc), to be
    saved only once ``sink.flush()`` has returned."""
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
        resume = resume_point(saved, head, os.fstat(handle.fileno()).st_size)
        if resume.restarted:
            report.note(f"{path}: {resume.restarted} since the last run; "
                                f"reading it again from the start")
        handle.seek(resume.offset)
        reader = _LineReader(handle, resume.offset, resume.line)
        sent: list[tuple[int, str]] = []
        pending: list[tuple[int, int]] = []  # (offset, line) of objects left open
        for hit in scan(reader, max_event_bytes):
            if isinstance(hit, Found):
                report.found += 1
                digest = hit.digest
                sent.append((hit.start, digest))
                if digest in resume.sent_after:
                    report.already_sent += 1
                else:
                    sink.emit(hit.event)
                    report.sent += 1
            elif isinstance(hit, Broken):
                report.problem(path, hit.line, hit.reason)
            else:
                pending.append((hit.start, hit.line))
                report.note(f"{path}:{hit.line}: a JSON object still open at the end of the "
                            f"file (read again next time)")
        if reader.unterminated is not None:
            pending.append((reader.unterminated.start, reader.unterminated.number))
    safe, safe_line = min(pending, default=(reader.end, reader.number))
    return {"offset": safe, "line": safe_line, "head": fingerprint(head),
            "head_len": len(head), "sent_after": sorted({d for s, d in sent if s >= safe})}


def harvest_logs(paths: Sequence[str], sink: EventSink, state: StateFile | None, *,
                 patterns: Sequence[str] = ("*",), follow: bool = False,
                 interval: float = 2.0, log: Callable[[str], None] = print,
                 max_event_bytes: int = MAX_EVENT_BYTES) -> Report:
    """Harvest every file that ``paths`` name (see :func:`expand_paths`); with ``follow``,
    again every ``interval`` seconds until interrupted. ``state`` None: no resumption (dry run).
    """
    report = Report("logs")
    saved = state.load() if state is not None else {}
    seen: set[Path] = set()
    try:
        while True:
            _one_pass(paths, patterns, sink, state, saved, seen, report, log, max_event_bytes,
                      report_missing=not follow)
            if not follow:
                return report
            time.sleep(interval)
    except KeyboardInterrupt:
        if not follow:
            raise
        # Stopped by the user: what was read and acknowledged is remembered.
        sink.flush()
        if state is not None:
            state.save(saved)
        return report


def _one_pass(paths: Sequence[str], patterns: Sequence[str], sink: EventSink,
              state: StateFile | None, saved: dict[str, Any], seen: set[Path], report: Report,
              log: Callable[[str], None], max_event_bytes: int, *, report_missing: bool) -> None:
    files, missing = expand_paths(paths, patterns)
    if report_missing:
        for arg in missing:
            report.problem(arg, None, "no such file, folder or matching file")
    saved_at = time.monotonic()
    done: dict[str, Any] = {}  # states whose events are not acknowledged yet
    for index, path in enumerate(files, 1):
        seen.add(path)
        report.files = len(seen)
        key = str(path.resolve())
        before = (report.found, report.sent, len(report.problems))
        try:
            done[key] = harvest_file(path, saved.get(key), sink, report, max_event_bytes)
        except OSError as exc:
            report.problem(path, None, f"cannot read it: {exc.strerror or exc}")
            continue
        found, sent = report.found - before[0], report.sent - before[1]
        if found or len(report.problems) > before[2]:
            log(f"[{index}/{len(files)}] {path}: {found} events found, {sent} sent")
        elif index % 1000 == 0:
            log(f"[{index}/{len(files)}] files read")
        if time.monotonic() - saved_at > SAVE_SECONDS:
            _commit(sink, state, saved, done)
            saved_at = time.monotonic()
    gone = [k for k in saved if not Path(k).exists()]
    for key in gone:
        del saved[key]
    _commit(sink, state, saved, done, force=bool(gone))


def _commit(sink: EventSink, state: StateFile | None, saved: dict[str, Any],
            done: dict[str, Any], *, force: bool = False) -> None:
    """Wait for Kafka's acknowledgement, then remember the files' new offsets."""
    sink.flush()  # the state may only name events Kafka acknowledged
    changed = force or any(saved.get(key) != value for key, value in done.items())
    saved.update(done)
    done.clear()
    if state is not None and changed:
        state.save(saved)
