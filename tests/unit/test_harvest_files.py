"""The file harvester and what the harvesters share: reading event files, finding files, the
state file, the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import ConfigError
from producers.harvest_common import StateFile, expand_paths
from producers.harvest_files import harvest_files, read_file
from tests.conftest import run_cli


def event(n: int) -> dict[str, Any]:
    return {"eventType": "COMPLETE", "eventTime": f"2024-05-01T12:00:{n:02}Z",
            "run": {"runId": f"r{n}"}, "job": {"namespace": "n", "name": f"j{n}"},
            "producer": "https://example.com/p", "schemaURL": "https://example.com/s"}


class ListSink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, item: Any) -> None:
        self.events.append(item)

    def flush(self) -> None:
        pass


def test_json_arrays_single_events_and_ndjson_are_read(tmp_path: Path) -> None:
    (tmp_path / "one.json").write_text(json.dumps(event(1), indent=2))
    (tmp_path / "many.json").write_text(json.dumps([event(1), event(2)]))
    (tmp_path / "lines.ndjson").write_text(f"{json.dumps(event(1))}\n\n{json.dumps(event(2))}\n")
    for name, count in (("one.json", 1), ("many.json", 2), ("lines.ndjson", 2)):
        events, problem = read_file(tmp_path / name)
        assert (len(events), problem) == (count, None)


def test_a_bad_ndjson_line_is_named_by_its_number(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text(f"{json.dumps(event(1))}\n{json.dumps(event(2))}\nnot json\n")
    assert read_file(path) == ([], "line 3 is not JSON: Expecting value")


def test_a_broken_pretty_printed_file_is_named_by_the_line_of_its_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    text = json.dumps(event(1), indent=2).replace('"COMPLETE",', '"COMPLETE"')
    path.write_text("\n\n" + text)
    events, problem = read_file(path)
    assert events == []
    # The comma is missing at the end of line 4: JSON notices at the next key, on line 5.
    assert problem == "line 5 is not JSON: Expecting ',' delimiter (column 3)"


def test_json_that_is_not_an_event_or_not_text_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('[{"retries": 3}]')
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe{}")
    assert read_file(tmp_path / "config.json")[1] == (
        "event 1 is not an OpenLineage event (no eventTime/eventType/schemaURL with a job or "
        "dataset)")
    assert read_file(tmp_path / "binary.json")[1] == "not UTF-8 text (byte 0)"


def test_a_bad_file_is_reported_and_skipped_whole_while_the_others_are_sent(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.json").write_text(json.dumps(event(1)))
    (tmp_path / "b.ndjson").write_text(f"{json.dumps(event(2))}\n{{oops\n")
    (tmp_path / "c.jsonl").write_text(json.dumps(event(3)) + "\n")
    sink, lines = ListSink(), []
    report = harvest_files([str(tmp_path), str(tmp_path / "missing.json")], sink,
                           log=lines.append)
    assert sink.events == [event(1), event(3)]
    assert (report.files, report.found, report.sent) == (3, 2, 2)
    assert report.problems == [
        f"{tmp_path / 'missing.json'}: no such file, folder or matching file",
        f"{tmp_path / 'b.ndjson'}: line 2 is not JSON: Expecting property name enclosed in "
        "double quotes"]
    assert lines[0] == f"[1/3] {tmp_path / 'a.json'}: 1 events sent"


def test_the_file_command_prints_the_good_events_and_fails_at_the_end_on_a_bad_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.json").write_text(json.dumps(event(1)))
    (tmp_path / "z.json").write_text("{")
    result = run_cli("harvest", "file", str(tmp_path), "--dry-run")
    assert result.returncode == 1
    assert [json.loads(line) for line in result.stdout.splitlines()] == [event(1)]
    assert f"{tmp_path / 'z.json'}: line 1 is not JSON" in result.stderr
    assert "file: 2 files, 1 events found, 1 printed" in result.stderr


def test_paths_can_be_files_walked_folders_and_globs(tmp_path: Path) -> None:
    for name in ("a/x.log", "a/b/y.log", "a/.hidden/z.log", "a/notes.txt", "top.log"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    files, missing = expand_paths([str(tmp_path / "a"), str(tmp_path / "*.log"),
                                   str(tmp_path / "top.log"), str(tmp_path / "none")],
                                  patterns=["*.log"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a/b/y.log", "a/x.log", "top.log"]
    assert missing == [str(tmp_path / "none")]
    files, _ = expand_paths([str(tmp_path / "**" / "*.txt")])
    assert [f.name for f in files] == ["notes.txt"]


def test_a_damaged_state_file_is_a_clear_error_with_a_way_out(tmp_path: Path) -> None:
    state = StateFile(tmp_path, "logs")
    state.save({"a": 1})
    assert state.load() == {"a": 1}
    state.path.write_text("{not json")
    with pytest.raises(ConfigError) as damaged:
        state.load()
    assert "is damaged" in damaged.value.cause
    assert damaged.value.hint is not None
    assert "delete it" in damaged.value.hint
