"""The log harvester's pure parts: scanning console-transport output, and resuming per file."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from producers.harvest_common import Report, StateFile
from producers.harvest_logs import (
    Broken,
    Found,
    Incomplete,
    fingerprint,
    harvest_file,
    harvest_logs,
    resume_point,
    scan_text,
)

AIRFLOW = "[2024-05-01, 12:00:00 UTC] {console.py:29} INFO - "
AIRFLOW_NEW = "[2024-05-01T12:00:00.123+0000] {console.py:29} INFO - "
SPARK = "24/05/01 12:00:00 INFO ConsoleTransport: "


def event(n: int = 1, **extra: Any) -> dict[str, Any]:
    return {"eventType": "START", "eventTime": f"2024-05-01T12:00:{n:02}Z",
            "run": {"runId": f"run-{n}"}, "job": {"namespace": "airflow", "name": f"dag.t{n}"},
            "producer": "https://example.com/p", "schemaURL": "https://example.com/s", **extra}


def found(text: str) -> list[dict[str, Any]]:
    return [h.event for h in scan_text(text) if isinstance(h, Found)]


class ListSink:
    """Collects what a harvester sends; ``fail`` makes flush raise, as Kafka being down does."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.fail = fail

    def emit(self, event: Any) -> None:
        self.events.append(event)

    def flush(self) -> None:
        if self.fail:
            raise RuntimeError("Kafka did not acknowledge")


@pytest.mark.parametrize("prefix", [AIRFLOW, AIRFLOW_NEW, SPARK, ""])
def test_an_event_after_a_known_log_prefix_is_found(prefix: str) -> None:
    text = f"{prefix}starting\n{prefix}{json.dumps(event())}\n{prefix}done\n"
    assert found(text) == [event()]


def test_a_pretty_printed_event_over_several_lines_is_one_event() -> None:
    text = AIRFLOW + json.dumps(event(), indent=2) + "\n" + AIRFLOW + "next line\n"
    [hit] = scan_text(text)
    assert isinstance(hit, Found)
    assert hit.event == event()
    assert hit.line == 1


def test_an_event_whose_opening_brace_ends_the_line_is_found() -> None:
    body = json.dumps(event(), indent=4)
    assert body.startswith("{\n")
    assert found(f"{SPARK}{body}\n") == [event()]


def test_an_event_with_the_log_prefix_repeated_on_every_line_is_one_event() -> None:
    lines = json.dumps(event(), indent=2).splitlines()
    assert found("".join(f"{SPARK}{line}\n" for line in lines)) == [event()]


def test_an_event_wrapped_in_the_middle_of_a_string_is_put_back_together() -> None:
    text = json.dumps(event(description="a rather long description"))
    cut = text.index("rather") + 3
    assert found(f"{AIRFLOW}{text[:cut]}\n{text[cut:]}\n") == [
        event(description="a rather long description")]


def test_braces_quotes_and_escapes_inside_strings_do_not_end_the_event() -> None:
    tricky = event(sql='SELECT "}" FROM t WHERE a = \'{\' -- \\"{"')
    assert found(AIRFLOW + json.dumps(tricky) + "\n") == [tricky]
    pretty = json.dumps(tricky, indent=2)
    assert found(AIRFLOW + pretty + "\n") == [tricky]


def test_two_events_on_one_line_are_both_found() -> None:
    assert found(f"{json.dumps(event(1))} {json.dumps(event(2))}\n") == [event(1), event(2)]


def test_other_json_python_dicts_and_templates_in_the_log_are_ignored() -> None:
    text = (f"{AIRFLOW}config {{'retries': 3, 'eventTime': 1}}\n"
            f'{AIRFLOW}{{"level": "info", "msg": "hello"}}\n'
            f"{AIRFLOW}Jinja {{{{ ds }}}} and an empty {{}}\n"
            f"{AIRFLOW}{json.dumps(event())}\n")
    assert scan_text(text) == [Found(event(), 4, text.index(AIRFLOW + json.dumps(event())))]


def test_dataset_and_job_events_are_found_too() -> None:
    dataset_event = {"eventTime": "2024-05-01T12:00:00Z", "producer": "p", "schemaURL": "s",
                     "dataset": {"namespace": "s3://b", "name": "k"}}
    job_event = {"eventTime": "2024-05-01T12:00:00Z", "producer": "p", "schemaURL": "s",
                 "job": {"namespace": "n", "name": "j"}}
    assert found(f"{json.dumps(dataset_event)}\n{json.dumps(job_event)}\n") == [
        dataset_event, job_event]


def test_an_event_that_is_not_json_is_reported_at_its_line_and_the_next_one_is_found() -> None:
    text = (f"{AIRFLOW}ok\n{AIRFLOW}{{\"eventTime\": 2024-05-01, \"job\": {{}}}}\n"
            f"{AIRFLOW}{json.dumps(event())}\n")
    hits = scan_text(text)
    assert [type(h) for h in hits] == [Broken, Found]
    assert isinstance(hits[0], Broken)
    assert hits[0].line == 2
    assert "not valid JSON" in hits[0].reason


def test_an_event_cut_short_in_the_middle_of_the_log_does_not_hide_the_next_ones() -> None:
    cut = json.dumps(event(1))[:40]
    text = f"{AIRFLOW}{cut}\n{AIRFLOW}{json.dumps(event(2))}\n{AIRFLOW}{json.dumps(event(3))}\n"
    hits = scan_text(text)
    assert [h.event for h in hits if isinstance(h, Found)] == [event(2), event(3)]


def test_an_event_still_open_at_the_end_is_incomplete_not_broken() -> None:
    whole = json.dumps(event(2), indent=2)
    text = f"{AIRFLOW}{json.dumps(event(1))}\n{AIRFLOW}{whole[: len(whole) // 2]}"
    hits = scan_text(text)
    assert [type(h) for h in hits] == [Found, Incomplete]
    assert hits[1].line == 2


def test_an_object_still_open_past_the_size_limit_is_given_up() -> None:
    from producers.harvest_logs import Line, scan

    lines = [f'{AIRFLOW}{{"eventTime": "x", "job": {{', *(["padding"] * 50),
             f"{AIRFLOW}{json.dumps(event())}"]
    hits = list(scan([Line(i, 0, 0, t) for i, t in enumerate(lines, 1)], max_event_bytes=200))
    assert isinstance(hits[0], Broken)
    assert "still open" in hits[0].reason
    assert [h.event for h in hits if isinstance(h, Found)] == [event()]


def corpus(root: Path) -> list[dict[str, Any]]:
    events = root / "events"
    with (events / "INDEX.tsv").open(encoding="utf-8") as index:
        rows = [r for r in csv.DictReader(index, delimiter="\t") if r["concrete"] == "yes"]
    return [json.loads((events / r["path"]).read_text(encoding="utf-8")) for r in rows]


def test_every_concrete_event_of_the_shared_corpus_is_found_however_it_is_logged(
    shared_openlineage: Path,
) -> None:
    events = corpus(shared_openlineage)
    assert len(events) > 20
    as_airflow = "".join(f"{AIRFLOW}{json.dumps(e)}\n{AIRFLOW}next\n" for e in events)
    as_spark = "".join(f"{SPARK}{json.dumps(e, indent=2)}\n" for e in events)
    prefixed = "".join(f"{SPARK}{line}\n" for e in events
                       for line in json.dumps(e, indent=1).splitlines())
    for text in (as_airflow, as_spark, prefixed):
        assert found(text) == events


# --- resumption, on real files ---


def run(path: Path, saved: dict[str, Any] | None, sink: ListSink | None = None,
        ) -> tuple[dict[str, Any], Report, ListSink]:
    sink = sink or ListSink()
    report = Report("logs")
    state = harvest_file(path, saved, sink, report)
    return state, report, sink


def test_a_second_run_reads_only_what_was_appended(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(f"{AIRFLOW}{json.dumps(event(1))}\n")
    state, _, sink = run(log, None)
    assert sink.events == [event(1)]
    assert state["offset"] == log.stat().st_size
    with log.open("a") as out:
        out.write(f"{AIRFLOW}hello\n{AIRFLOW}{json.dumps(event(2))}\n")
    state, report, sink = run(log, state)
    assert sink.events == [event(2)]
    assert state["line"] == 4
    _, report, sink = run(log, state)
    assert (sink.events, report.found) == ([], 0)


def test_line_numbers_go_on_across_runs(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(f"{AIRFLOW}one\n{AIRFLOW}two\n")
    state, _, _ = run(log, None)
    with log.open("a") as out:
        out.write(f'{AIRFLOW}{{"eventTime": broken}}\n')
    _, report, _ = run(log, state)
    assert report.problems == [f"{log}:3: an OpenLineage event that is not valid JSON: "
                               "Expecting value (line 1 column 15 of the event)"]


def test_a_truncated_file_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(f"{AIRFLOW}{json.dumps(event(1))}\n{AIRFLOW}{json.dumps(event(2))}\n")
    state, _, _ = run(log, None)
    log.write_text(f"{AIRFLOW}{json.dumps(event(3))}\n")
    _, report, sink = run(log, state)
    assert sink.events == [event(3)]
    assert "truncated since the last run" in report.notes[0]


def test_a_rotated_file_with_another_head_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(f"{AIRFLOW}{json.dumps(event(1))}\n")
    state, _, _ = run(log, None)
    log.write_text(f"{SPARK}{json.dumps(event(2))}\n{SPARK}{json.dumps(event(3))}\n")
    _, report, sink = run(log, state)
    assert sink.events == [event(2), event(3)]
    assert "rotated since the last run" in report.notes[0]


def test_an_event_half_written_at_the_end_is_sent_once_when_it_is_complete(
    tmp_path: Path,
) -> None:
    log = tmp_path / "driver.log"
    pretty = json.dumps(event(2), indent=2)
    log.write_text(f"{SPARK}{json.dumps(event(1))}\n{SPARK}{pretty[:30]}")
    state, report, sink = run(log, None)
    assert sink.events == [event(1)]
    assert report.notes == [f"{log}:2: a JSON object still open at the end of the file "
                            "(read again next time)"]
    assert state["line"] == 2
    with log.open("a") as out:
        out.write(pretty[30:] + "\n")
    state, _, sink = run(log, state)
    assert sink.events == [event(2)]
    _, _, sink = run(log, state)
    assert sink.events == []


def test_events_after_one_still_open_are_sent_now_and_never_again(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(f'{AIRFLOW}{{"eventTime": "2024", "job": {{\n'
                   f"{AIRFLOW}{json.dumps(event(2))}\n")
    state, _, sink = run(log, None)
    assert sink.events == [event(2)], "sent although the object before it is still open"
    assert state["offset"] == 0
    assert len(state["sent_after"]) == 1
    with log.open("a") as out:
        out.write(f"{AIRFLOW}{json.dumps(event(3))}\n")
    state, report, sink = run(log, state)
    assert sink.events == [event(3)]
    assert report.already_sent == 1


def test_an_event_on_a_last_line_without_its_newline_is_sent_once(tmp_path: Path) -> None:
    log = tmp_path / "task.log"
    log.write_text(f"{AIRFLOW}{json.dumps(event(1))}")
    state, _, sink = run(log, None)
    assert sink.events == [event(1)]
    with log.open("a") as out:
        out.write(f"\n{AIRFLOW}{json.dumps(event(2))}\n")
    _, report, sink = run(log, state)
    assert sink.events == [event(2)]
    assert report.already_sent == 1


def test_the_resume_point_checks_length_and_head() -> None:
    saved = {"offset": 100, "line": 9, "head": fingerprint(b"x" * 64), "head_len": 64,
             "sent_after": ["d"]}
    assert resume_point(None, b"", 0).offset == 0
    assert resume_point(saved, b"x" * 80, 120).offset == 100
    assert resume_point(saved, b"x" * 80, 99).restarted == "truncated"
    assert resume_point(saved, b"y" + b"x" * 79, 120).restarted == "rotated"
    assert resume_point(saved, b"x" * 10, 120).restarted == "rotated"


def test_the_state_is_kept_only_after_kafka_acknowledged_the_events(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(f"{AIRFLOW}{json.dumps(event(1))}\n")
    state = StateFile(tmp_path / "state", "logs")
    with pytest.raises(RuntimeError):
        harvest_logs([str(logs)], ListSink(fail=True), state, log=lambda _: None)
    assert state.load() == {}
    sink = ListSink()
    report = harvest_logs([str(logs)], sink, state, log=lambda _: None)
    assert (sink.events, report.sent) == ([event(1)], 1)
    assert str((logs / "a.log").resolve()) in state.load()
    again = ListSink()
    harvest_logs([str(logs)], again, state, log=lambda _: None)
    assert again.events == []


def test_a_dry_run_keeps_no_state_and_a_missing_path_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "a.log").write_text(f"{AIRFLOW}{json.dumps(event(1))}\n")
    report = harvest_logs([str(tmp_path / "a.log"), str(tmp_path / "nope*.log")], ListSink(),
                          None, log=lambda _: None)
    assert report.found == 1
    assert report.problems == [f"{tmp_path / 'nope*.log'}: no such file, folder or matching file"]
    assert not (tmp_path / "harvest").exists()


def test_following_picks_up_new_files_until_interrupted_and_keeps_what_was_acknowledged(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(f"{AIRFLOW}{json.dumps(event(1))}\n")
    state = StateFile(tmp_path / "state", "logs")
    progress: list[str] = []

    def log(line: str) -> None:
        progress.append(line)
        if len(progress) == 1:
            (logs / "b.log").write_text(f"{SPARK}{json.dumps(event(2))}\n")
        else:
            raise KeyboardInterrupt  # the user presses Ctrl-C during the second pass

    sink = ListSink()
    report = harvest_logs([str(logs)], sink, state, follow=True, interval=0.01, log=log)
    assert sink.events == [event(1), event(2)]
    assert report.files == 2
    assert list(state.load()) == [str((logs / "a.log").resolve())]
