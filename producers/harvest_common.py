"""What the harvesters (``lineage harvest logs|sql|file``) share.

- :func:`looks_like_event`: is a JSON object an OpenLineage event (run, job or dataset event)?
- :func:`expand_paths`: files, directories (walked) and glob patterns to a sorted list of files.
- :class:`StateFile`: a small JSON file under the settings' ``state_dir`` that a harvester uses
  to resume where it stopped; written atomically (a crash leaves the old or the new version).
- :class:`Report`: what a harvest found, sent, skipped and could not use, with file:line.
- :class:`EventSink`: where events go; :class:`producers.emitter.Emitter` is one, and
  :class:`PrintSink` (``--dry-run``) prints them as NDJSON instead.

>>> looks_like_event({"eventTime": "2024-05-01T12:00:00Z", "eventType": "START",
...                   "run": {"runId": "r"}, "job": {"namespace": "n", "name": "j"}})
True
>>> looks_like_event({"eventTime": "2024-05-01T12:00:00Z", "level": "info"})
False
>>> report = Report("logs")
>>> report.found, report.sent = 3, 2
>>> report.problem("a.log", 7, "an event that is not JSON")
>>> print(report.summary())
logs: 0 files, 3 events found, 2 sent, 0 already sent, 1 problem
  a.log:7: an event that is not JSON
"""

from __future__ import annotations

import glob
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, Protocol, TextIO

from core.errors import ConfigError

PRODUCER = "https://github.com/openlineage-stream/harvest"
RUN_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
EVENT_MARKERS = ("eventTime", "eventType", "schemaURL")
GLOB_CHARS = frozenset("*?[")


def looks_like_event(obj: Any) -> bool:
    """True for a JSON object shaped like an OpenLineage event: it has an ``eventTime``,
    ``eventType`` or ``schemaURL`` and a ``run`` + ``job`` (RunEvent), a ``job`` (JobEvent) or
    a ``dataset`` (DatasetEvent). Whether it is *valid* is the processor's call (DLQ)."""
    if not isinstance(obj, Mapping) or not any(k in obj for k in EVENT_MARKERS):
        return False
    return isinstance(obj.get("job"), Mapping) or isinstance(obj.get("dataset"), Mapping)


def expand_paths(args: Iterable[str], patterns: Iterable[str] = ("*",),
                 ) -> tuple[list[Path], list[str]]:
    """The files that ``args`` name, sorted and without repeats, and the args that named none.

    An arg is a file, a directory (walked; its files whose name matches one of ``patterns``;
    hidden files and folders are skipped) or a glob pattern (``**`` reaches into folders).
    """
    patterns = tuple(patterns)
    found: dict[Path, None] = {}
    missing: list[str] = []
    for arg in args:
        if GLOB_CHARS & set(arg) and not Path(arg).exists():
            matches = [Path(m) for m in sorted(glob.glob(arg, recursive=True))]
        else:
            matches = [Path(arg)] if Path(arg).exists() else []
        if not matches:
            missing.append(arg)
        for match in matches:
            if match.is_dir():
                for file in _walk(match):
                    if any(fnmatch(file.name, p) for p in patterns):
                        found.setdefault(file, None)
            elif match.is_file():
                found.setdefault(match, None)
    return sorted(found), missing


def _walk(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(root) / n for n in names if not n.startswith(".")]
    return sorted(files)


class StateFile:
    """A JSON object on disk under ``state_dir/harvest/``; :meth:`save` is atomic."""

    def __init__(self, state_dir: Path, name: str) -> None:
        self.path = state_dir / "harvest" / f"{name}.json"

    def load(self) -> dict[str, Any]:
        if not self.path.is_file():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"the harvest state file {self.path} is damaged: {exc}",
                              hint="delete it to harvest from the start again (the processor "
                                   "drops the repeats)") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"the harvest state file {self.path} does not hold a JSON object",
                              hint="delete it to harvest from the start again")
        return data

    def save(self, data: Mapping[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with tmp.open("w", encoding="utf-8") as out:
            json.dump(data, out, indent=1, sort_keys=True)
            out.flush()
            os.fsync(out.fileno())
        tmp.replace(self.path)


class EventSink(Protocol):
    """Where harvested events go (the Emitter, or a printer for --dry-run)."""

    def emit(self, event: Any) -> None: ...

    def flush(self) -> None: ...


class PrintSink:
    """Prints events as NDJSON (``--dry-run``): nothing is sent and no state is saved."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout

    def emit(self, event: Any) -> None:
        self.out.write(json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n")

    def flush(self) -> None:
        self.out.flush()


@dataclass
class Report:
    """Counts of one harvest and the problems it met (``where`` is file or file:line)."""

    harvester: str
    files: int = 0
    found: int = 0
    sent: int = 0
    already_sent: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    show_files: bool = True  # False where the source is not files (a database)

    def problem(self, where: str | Path, line: int | None, what: str) -> None:
        """Record a problem once (a followed file is read again and again)."""
        text = f"{where}:{line}: {what}" if line else f"{where}: {what}"
        if text not in self.problems:
            self.problems.append(text)

    def note(self, text: str) -> None:
        """Record a remark once."""
        if text not in self.notes:
            self.notes.append(text)

    def summary(self) -> str:
        count = len(self.problems)
        files = f"{self.files} files, " if self.show_files else ""
        lines = [f"{self.harvester}: {files}{self.found} events found, "
                 f"{self.sent} sent, {self.already_sent} already sent, "
                 f"{count} problem{'' if count == 1 else 's'}"]
        lines += [f"  {note}" for note in self.notes]
        lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines)
