"""The *stream* shape of the workload generator (lineage/bench/workload/stream.py)."""

from __future__ import annotations

import bisect
import hashlib
import json
import tracemalloc
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest

from lineage.bench.workload import stream as workload
from lineage.bench.workload.stream import (
    EVENT_TYPES,
    INVALID_KINDS,
    MAX_DISPLACED,
    MAX_DISPLACEMENT,
    WorkloadGenerator,
    WorkloadSpec,
    WorkloadStats,
    generate,
    manifest_path,
    write_workload,
)
from schemas.validation import validate

pytestmark = pytest.mark.unit

# What the validator says about each kind of invalid line: (code, pointer) of its first reason.
REJECTED_AS = {
    "not_json": ("not_json", ""),
    "not_object": ("not_object", ""),
    "missing_run_id": ("missing_field", "/run/runId"),
    "non_uuid_run_id": ("bad_uuid", "/run/runId"),
    "bad_event_time": ("bad_time", "/eventTime"),
    "missing_producer": ("missing_field", "/producer"),
    "event_type_not_string": ("wrong_type", "/eventType"),
}


def digest(spec: WorkloadSpec) -> str:
    hashed = hashlib.sha256()
    for line in generate(spec):
        hashed.update(line)
    return hashed.hexdigest()


@lru_cache(maxsize=2)  # decoded events are big: keep only the workloads of neighbouring tests
def valid_events(**options: Any) -> tuple[list[dict[str, Any]], WorkloadStats]:
    """The events our validator accepts, in line order (duplicates included), and the stats."""
    stats = WorkloadStats()
    events = []
    for line in generate(WorkloadSpec(**options), stats):
        result = validate(line)
        if result.ok:
            assert result.event is not None
            events.append(result.event)
    return events, stats


def first_occurrences(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    unique = []
    for event in events:
        key = (event["run"]["runId"], event["eventType"])
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


def is_orchestrator(event: dict[str, Any]) -> bool:
    return bool(event["job"]["name"] == workload.ORCHESTRATOR_JOB)


def dataset_key(dataset: dict[str, Any]) -> tuple[str, str]:
    return dataset["namespace"], dataset["name"]


# --------------------------------------------------------------------------------------------
# One pass over 20,000 lines of the default spec, checked line by line as it streams by.
# --------------------------------------------------------------------------------------------


@dataclass
class Pass:
    stats: WorkloadStats
    lines: int = 0
    accepted: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    cleaned: int = 0  # accepted, but with a facet dropped or a repair
    repeated: int = 0  # lines equal to an earlier accepted line
    behind: int = 0  # first occurrences older than a line written before them
    lags: list[int] = field(default_factory=list)  # how many positions late each of those is


@pytest.fixture(scope="module")
def default_pass() -> Pass:
    stats = WorkloadStats()
    checked = Pass(stats)
    seen: set[bytes] = set()
    in_order: list[tuple[str, int]] = []  # (eventTime, position) of the lines in time order
    for position, line in enumerate(generate(WorkloadSpec(events=20_000), stats)):
        checked.lines += 1
        assert line.endswith(b"\n")
        assert b"\n" not in line[:-1]
        result = validate(line)
        if not result.ok:
            first = result.reasons[0]
            checked.rejected.append((first.code, first.pointer))
            continue
        checked.accepted += 1
        checked.cleaned += bool(result.dropped_facets or result.repairs)
        key = hashlib.blake2b(line).digest()
        if key in seen:
            checked.repeated += 1
            continue
        seen.add(key)
        assert result.event is not None
        time = result.event["eventTime"]
        if in_order and time < in_order[-1][0]:
            checked.behind += 1
            # It was due where the first line later than it was written instead.
            slot = in_order[bisect.bisect_right(in_order, (time, len(in_order) + 1_000_000))][1]
            checked.lags.append(position - slot)
        else:
            in_order.append((time, position))
    return checked


def test_exactly_the_requested_number_of_lines_is_written(default_pass: Pass) -> None:
    assert default_pass.lines == default_pass.stats.events == 20_000
    for events in (1, 2, 7, 1_234):
        assert sum(1 for _ in generate(WorkloadSpec(events=events, jobs=40))) == events


def test_the_noise_rates_are_those_of_the_spec(default_pass: Pass) -> None:
    stats = default_pass.stats
    assert 0.04 <= stats.duplicates / stats.events <= 0.06
    assert 0.015 <= stats.out_of_order / stats.events <= 0.025
    assert 0.007 <= stats.invalid / stats.events <= 0.013


def test_the_noise_counted_by_the_stats_is_found_in_the_lines(default_pass: Pass) -> None:
    stats = default_pass.stats
    assert default_pass.repeated == stats.duplicates
    assert default_pass.behind == stats.out_of_order
    assert stats.valid + stats.invalid == stats.events
    assert sum(stats.by_type.values()) == stats.valid


def test_out_of_order_lines_come_one_to_fifty_positions_late(default_pass: Pass) -> None:
    lags = default_pass.lags
    assert min(lags) >= 1
    # Displaced lines due at the same position wait their turn: a little beyond 50 at most.
    assert max(lags) <= MAX_DISPLACEMENT + 10
    assert 15 <= sum(lags) / len(lags) <= 35


def test_every_line_called_valid_passes_the_validator_as_it_stands(default_pass: Pass) -> None:
    assert default_pass.accepted == default_pass.stats.valid
    assert default_pass.cleaned == 0


def test_every_invalid_line_is_rejected_for_its_kind_in_rotation(default_pass: Pass) -> None:
    stats = default_pass.stats
    assert len(default_pass.rejected) == stats.invalid
    expected = [REJECTED_AS[INVALID_KINDS[i % len(INVALID_KINDS)]] for i in range(stats.invalid)]
    assert default_pass.rejected == expected
    assert sum(stats.invalid_by_kind.values()) == stats.invalid


def test_the_same_seed_gives_the_same_bytes() -> None:
    spec = WorkloadSpec(events=3_000, jobs=120, seed=7)
    assert digest(spec) == digest(WorkloadSpec(events=3_000, jobs=120, seed=7))


def test_another_seed_gives_other_bytes() -> None:
    assert digest(WorkloadSpec(events=3_000, jobs=120, seed=7)) != digest(
        WorkloadSpec(events=3_000, jobs=120, seed=8))


def test_a_longer_workload_starts_with_the_shorter_one() -> None:
    short = list(generate(WorkloadSpec(events=500, jobs=60)))
    assert list(generate(WorkloadSpec(events=900, jobs=60)))[:500] == short


# --------------------------------------------------------------------------------------------
# The shape of the traffic
# --------------------------------------------------------------------------------------------


def chain_depths(events: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """For each job, the most jobs on a path of the job -> dataset -> job graph ending at it."""
    reads: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    writers: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for event in events:
        job = dataset_key(event["job"])
        reads[job].update(dataset_key(d) for d in event.get("inputs", ()))
        for output in event.get("outputs", ()):
            writers[dataset_key(output)].add(job)
    depth: dict[tuple[str, str], int] = {}

    def chain(job: tuple[str, str]) -> int:
        if job not in depth:
            depth[job] = 1 + max((chain(writer) for read in reads[job]
                                  for writer in writers.get(read, ())), default=0)
        return depth[job]

    return {job: chain(job) for job in reads}


@pytest.mark.parametrize(("jobs", "max_depth", "depth"), [(200, 20, 20), (200, 5, 5), (3, 20, 3)])
def test_the_dag_is_as_deep_as_asked(jobs: int, max_depth: int, depth: int) -> None:
    events, stats = valid_events(events=1_500, jobs=jobs, max_depth=max_depth)
    assert stats.depth == depth
    assert max(chain_depths(events).values()) == depth


def test_the_deep_datasets_are_written_by_the_deepest_jobs() -> None:
    events, stats = valid_events(events=1_500, jobs=200, max_depth=20)
    assert len(stats.deep_datasets) == 20
    depths = chain_depths(events)
    writers = {f"{ns}/{name}": dataset_key(event["job"]) for event in events
               for ns, name in map(dataset_key, event.get("outputs", ()))}
    found = [depths[writers[dataset]] for dataset in stats.deep_datasets]
    assert found == sorted(found, reverse=True)
    assert found[0] == 20
    deep_writers = {writers[dataset] for dataset in stats.deep_datasets}
    assert min(found) >= max(depth for job, depth in depths.items() if job not in deep_writers)


def test_jobs_and_datasets_are_spread_over_namespaces_and_read_across_them() -> None:
    events, stats = valid_events(events=3_000, jobs=200)
    assert stats.namespaces == 2
    assert stats.namespace_names == ["bench://ns-000", "bench://ns-001"]
    assert {event["job"]["namespace"] for event in events} == set(stats.namespace_names)
    assert any(dataset["namespace"] != event["job"]["namespace"]
               for event in events for dataset in event.get("inputs", ()))


def test_the_default_number_of_namespaces_follows_the_jobs() -> None:
    assert WorkloadSpec(events=1, jobs=50).namespace_count == 1
    assert WorkloadSpec(events=1, jobs=1_000).namespace_count == 10
    assert WorkloadSpec(events=1, jobs=100_000).namespace_count == 50
    assert WorkloadSpec(events=1, jobs=100_000, namespaces=3).namespace_count == 3


def test_schemas_have_10_to_40_columns_and_column_lineage_reads_real_input_columns() -> None:
    events, _ = valid_events(events=3_000, jobs=100)
    ends = [event for event in events
            if event["eventType"] in ("COMPLETE", "FAIL") and not is_orchestrator(event)]
    assert ends
    for event in ends:
        inputs = {dataset_key(d): {f["name"] for f in d["facets"]["schema"]["fields"]}
                  for d in event["inputs"]}
        assert 1 <= len(event["inputs"]) <= 3
        assert 1 <= len(event["outputs"]) <= 2
        assert all(10 <= len(columns) <= 40 for columns in inputs.values())
        for output in event["outputs"]:
            columns = [f["name"] for f in output["facets"]["schema"]["fields"]]
            assert 10 <= len(columns) <= 40
            lineage = output["facets"]["columnLineage"]["fields"]
            assert list(lineage) == columns
            for column in lineage.values():
                assert 1 <= len(column["inputFields"]) <= 2
                for source in column["inputFields"]:
                    assert source["field"] in inputs[dataset_key(source)]


def test_a_dataset_has_the_same_schema_wherever_it_appears() -> None:
    events, _ = valid_events(events=3_000, jobs=100)
    schemas: dict[tuple[str, str], set[str]] = defaultdict(set)
    for event in events:
        for dataset in [*event.get("inputs", ()), *event.get("outputs", ())]:
            if "facets" in dataset:
                schemas[dataset_key(dataset)].add(json.dumps(dataset["facets"]["schema"]))
    assert schemas
    assert all(len(versions) == 1 for versions in schemas.values())


def test_every_job_run_has_its_namespace_orchestrator_run_as_parent_and_root() -> None:
    events, stats = valid_events(events=3_000, jobs=200)
    orchestrators: dict[str, list[str]] = defaultdict(list)
    started: list[str] = []
    for event in events:
        if is_orchestrator(event):
            run_id = event["run"]["runId"]
            orchestrators[run_id].append(event["eventType"])
            if event["eventType"] == "START" and run_id not in started:
                started.append(run_id)
    parents = set()
    for event in events:
        if is_orchestrator(event):
            continue
        parent = event["run"]["facets"]["parent"]
        orchestrator = {"namespace": event["job"]["namespace"], "name": "dag"}
        assert parent["job"] == orchestrator
        assert parent["root"] == {"run": parent["run"], "job": orchestrator}
        parents.add(parent["run"]["runId"])
    assert parents <= set(orchestrators)
    assert all("START" in orchestrators[parent] for parent in parents)
    unfinished = {run for run in parents if "COMPLETE" not in orchestrators[run]}
    # Only the last tick is cut off: its orchestrator runs are the last ones started.
    assert unfinished <= set(started[-stats.namespaces:])
    assert len(parents - unfinished) > stats.namespaces


def test_each_run_starts_may_report_running_then_ends_in_event_time_order() -> None:
    events, _ = valid_events(events=3_000, jobs=100)
    runs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for event in first_occurrences(events):
        runs[event["run"]["runId"]].append((event["eventTime"], event["eventType"]))
    sequences = Counter(tuple(kind for _, kind in sorted(run)) for run in runs.values())
    complete = {("START", "COMPLETE"), ("START", "RUNNING", "COMPLETE"), ("START", "FAIL"),
                ("START", "RUNNING", "FAIL")}
    assert complete <= set(sequences)
    # Runs still going when the workload stops are the only incomplete ones.
    incomplete = sum(n for sequence, n in sequences.items() if sequence not in complete)
    assert incomplete < len(runs) * 0.2
    assert all(sequence[0] == "START" for sequence in sequences
               if sequence not in complete and len(sequence) > 1)


def test_all_four_event_types_occur() -> None:
    events, stats = valid_events(events=3_000, jobs=100)
    assert {event["eventType"] for event in events} == set(EVENT_TYPES)
    assert all(stats.by_type[kind] > 0 for kind in EVENT_TYPES)


def test_the_events_are_valid_by_the_official_openlineage_schema(
        shared_openlineage: Path) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    spec = shared_openlineage / "spec"
    documents = [json.loads(path.read_text()) for path in
                 [spec / "OpenLineage.json", *sorted((spec / "facets").glob("*.json"))]]
    registry: Registry[Any] = Registry().with_resources(
        (document["$id"], Resource.from_contents(document)) for document in documents)

    def validator(schema: dict[str, Any]) -> Draft202012Validator:
        return Draft202012Validator(schema, registry=registry,
                                    format_checker=Draft202012Validator.FORMAT_CHECKER)

    core = validator(documents[0])
    facets = {key: validator(document) for document in documents[1:]
              for key in document.get("properties", {})}
    events, _ = valid_events(events=3_000, jobs=100)
    sample = [event for kind in EVENT_TYPES
              for event in [e for e in events if e["eventType"] == kind][:10]]
    sample += [event for event in events if is_orchestrator(event)][:4]
    for event in sample:
        errors = [error.message for error in core.iter_errors(event)]
        assert not errors, errors
        holders = [event["run"], event["job"],
                   *event.get("inputs", ()), *event.get("outputs", ())]
        used = [(key, value) for holder in holders
                for key, value in holder.get("facets", {}).items()]
        assert used
        for key, value in used:
            errors = [error.message for error in facets[key].iter_errors({key: value})]
            assert not errors, (key, errors)


# --------------------------------------------------------------------------------------------
# Memory, the file and the spec
# --------------------------------------------------------------------------------------------


def test_the_look_ahead_stays_bounded_over_200k_lines() -> None:
    generator = WorkloadGenerator(WorkloadSpec(events=200_000, jobs=100, out_of_order_rate=0.2))
    assert sum(1 for _ in generator.lines()) == 200_000
    assert 0 < generator.max_displaced <= MAX_DISPLACED
    assert generator.stats.out_of_order > 30_000


def test_memory_does_not_grow_with_the_number_of_lines() -> None:
    def peak(events: int) -> int:
        tracemalloc.start()
        try:
            for _ in generate(WorkloadSpec(events=events, jobs=100)):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(2_000), peak(20_000)
    assert large < 50_000_000
    # Ten times the lines (1.5 GB of them at this size would be a leak) cost no more memory.
    assert large < small * 1.5 + 1_000_000


def test_write_workload_writes_the_lines_and_a_manifest_and_reports_progress(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workload, "PROGRESS_EVERY", 100)
    spec = WorkloadSpec(events=250, jobs=30, seed=5)
    path = tmp_path / "workload.ndjson"
    calls: list[int] = []
    stats = write_workload(spec, path, progress=calls.append)
    assert calls == [100, 200, 250]
    assert path.read_bytes() == b"".join(generate(spec))
    assert manifest_path(path) == tmp_path / "workload.ndjson.manifest.json"
    manifest = json.loads(manifest_path(path).read_text())
    assert WorkloadSpec(**manifest["spec"]) == spec
    assert manifest["stats"] == stats.to_json()
    assert stats.events == 250
    assert stats.bytes == path.stat().st_size


@pytest.mark.parametrize(("options", "message"), [
    ({"events": 0}, "events must be at least 1"),
    ({"jobs": 0}, "jobs must be at least 1"),
    ({"max_depth": 0}, "max_depth must be between 1 and 20"),
    ({"max_depth": 21}, "max_depth must be between 1 and 20"),
    ({"namespaces": 0}, "namespaces must be between 1 and jobs"),
    ({"jobs": 5, "namespaces": 6}, "namespaces must be between 1 and jobs"),
    ({"duplicate_rate": -0.1}, "duplicate_rate must be at least 0 and below 0.5"),
    ({"out_of_order_rate": 0.5}, "out_of_order_rate must be at least 0 and below 0.5"),
    ({"invalid_rate": float("nan")}, "invalid_rate must be at least 0 and below 0.5"),
    ({"fail_rate": 0.9}, "fail_rate must be at least 0 and below 0.5"),
    ({"running_rate": 1.5}, "running_rate must be between 0 and 1"),
    ({"duplicate_rate": 0.4, "out_of_order_rate": 0.4, "invalid_rate": 0.4},
     "must stay below 1"),
])
def test_a_bad_spec_is_refused_with_a_clear_message(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkloadSpec(**{"events": 10, **options})


def test_no_noise_gives_only_valid_lines_in_time_order() -> None:
    stats = WorkloadStats()
    lines = list(generate(WorkloadSpec(events=2_000, jobs=50, duplicate_rate=0,
                                       out_of_order_rate=0, invalid_rate=0), stats))
    times = [json.loads(line)["eventTime"] for line in lines]
    assert times == sorted(set(times))
    assert (stats.valid, stats.duplicates, stats.out_of_order, stats.invalid) == (2_000, 0, 0, 0)
