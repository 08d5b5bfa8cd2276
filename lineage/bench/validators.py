"""jsonschema-rs against the hand-written schema compiler, on the standard facets.

The validator checks every standard facet against its own schema with a checker that
:mod:`schemas.validation.compiler` generates from the shipped spec. This benchmark puts
jsonschema-rs (a Rust JSON Schema validator, ``Draft202012Validator`` with the same registry of
spec files and formats asserted) beside it, on the same facets: the verdicts of both on every
standard facet (valid or not), and the CPU time per event of checking all of an event's standard
facets (every occurrence, as without the verdict cache; and each distinct facet once, what the
cache leaves to the checker), with the whole ``validate()`` for scale. docs/benchmarks.md
("Validation: jsonschema-rs against the hand-written compiler") has the figures and the decision.

.. code-block:: bash

    .venv/bin/python -m lineage.bench.validators \\
        --corpus ../shared/openlineage/events --workload /tmp/wl/wl.ndjson --repeats 7

>>> sql = {"_producer": "https://example.com", "_schemaURL": "https://example.com/s"}
>>> messages = [msgspec.json.encode({"job": {"namespace": "n", "name": "j", "facets": {
...     "sql": {**sql, "query": "SELECT 1"}, "custom": {}}}}),
...     msgspec.json.encode({"job": {"facets": {"sql": sql}}}), b"not json"]
>>> events = standard_facets(messages)
>>> [len(facets) for facets in events]
[1, 1]
>>> agreement(events, rust_validators()).counts
{'both_valid': 1, 'both_invalid': 1, 'only_compiler_valid': 0, 'only_rust_valid': 0}
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.metadata
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema_rs
import msgspec

from schemas.validation import event_check, validate
from schemas.validation.compiler import Check
from schemas.validation.formats import FORMATS
from schemas.validation.results import FacetJson
from schemas.validation.spec import SPEC, SPEC_DIR, Place, documents, load_spec
from schemas.validation.verdicts import Verdict, facet_verdict

__all__ = ["Agreement", "agreement", "differential", "main", "measure", "rust_validators",
           "standard_facets"]

Facets = list[tuple[Check, Any]]
"""The standard facets of one event: (the compiler's checker, the facet), in event order."""

_DATASET_SIDES: tuple[tuple[str, Place], ...] = (("inputs", "input"), ("outputs", "output"))


def load_corpus(directory: Path) -> list[bytes]:
    """Every file listed in the corpus's ``INDEX.tsv``, as it is (templates included)."""
    with (directory / "INDEX.tsv").open(newline="") as index:
        rows = list(csv.DictReader(index, delimiter="\t"))
    return [(directory / row["path"]).read_bytes() for row in rows]


def load_workload(path: Path) -> list[bytes]:
    """The messages of an NDJSON workload file, one a line."""
    with path.open("rb") as lines:
        return [line.rstrip(b"\n") for line in lines if line.strip()]


def standard_facets(messages: Sequence[bytes]) -> list[Facets]:
    """The standard facets of each message that is a JSON object, at every place where an event
    of any kind may hold them (where the validator checks them); other messages are skipped."""
    events: list[Facets] = []
    for message in messages:
        try:
            event = msgspec.json.decode(message)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            continue
        if isinstance(event, dict):
            events.append([(check, facet) for place, facets in _facet_maps(event)
                           for key, facet in facets.items()
                           if (check := SPEC.standard[place].get(key)) is not None])
    return events


def _facet_maps(event: dict[str, Any]) -> Iterator[tuple[Place, dict[str, Any]]]:
    places: tuple[Place, ...] = ("run", "job", "dataset")
    for place in places:
        yield from _facet_map(event.get(place), "facets", place)
    for side, place in _DATASET_SIDES:
        datasets = event.get(side)
        for dataset in datasets if isinstance(datasets, list) else ():
            yield from _facet_map(dataset, "facets", "dataset")
            yield from _facet_map(dataset, f"{place}Facets", place)


def _facet_map(holder: Any, name: str, place: Place) -> Iterator[tuple[Place, dict[str, Any]]]:
    facets = holder.get(name) if isinstance(holder, dict) else None
    if isinstance(facets, dict):
        yield place, facets


def rust_validators(project_formats: bool = False) -> dict[Check, jsonschema_rs.Validator]:
    """A jsonschema-rs validator for the schema of each of the compiler's standard checkers.

    Formats are asserted, by jsonschema-rs's own checks or, with ``project_formats``, by the
    validator's (:mod:`schemas.validation.formats`, which mirror the official schema's checker),
    called back in Python.
    """
    resources = [(uri, dict(document)) for uri, document in documents(SPEC_DIR).items()]
    registry = jsonschema_rs.Registry(resources)
    formats = {name: fmt.test for name, fmt in FORMATS.items()} if project_formats else None
    return {check: jsonschema_rs.Draft202012Validator({"$ref": uri}, registry=registry,
                                                      validate_formats=True, formats=formats)
            for check, uri in SPEC.schema_of.items()}


def _compiler_says_valid(check: Check, facet: Any) -> bool:
    try:
        return check(facet) is None
    except RecursionError:  # the validator drops such a facet as too_deep
        return False


_OUTCOMES: dict[tuple[bool, bool], str] = {
    (True, True): "both_valid",
    (False, False): "both_invalid",
    (True, False): "only_compiler_valid",
    (False, True): "only_rust_valid",
}


class Agreement:
    """How the two validators' verdicts on the same facet occurrences compare: a count per
    outcome (both valid, both invalid, only the compiler's checker or only jsonschema-rs finding
    the facet valid), and a few of the disagreements."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(_OUTCOMES.values(), 0)
        self.examples: list[dict[str, Any]] = []
        """The schema and the facet (cut to 300 characters) of the first 5 disagreements."""

    def __repr__(self) -> str:
        return f"Agreement({self.counts}, {len(self.examples)} examples)"

    def add(self, check: Check, facet: Any, ours: bool, theirs: bool) -> None:
        """Count one facet that the compiler judged ``ours`` and jsonschema-rs ``theirs``."""
        self.counts[_OUTCOMES[ours, theirs]] += 1
        if ours != theirs and len(self.examples) < 5:
            self.examples.append({"schema": SPEC.schema_of[check], "compiler_valid": ours,
                                  "facet": msgspec.json.encode(facet).decode()[:300]})

    def report(self) -> dict[str, Any]:
        """The counts, the number of facets compared and the examples, JSON-ready."""
        return {**self.counts, "facets": sum(self.counts.values()), "examples": self.examples}


def agreement(events: Sequence[Facets], rust: dict[Check, jsonschema_rs.Validator]) -> Agreement:
    """The verdicts of the compiler's checkers and of jsonschema-rs on every facet occurrence."""
    found = Agreement()
    for facets in events:
        for check, facet in facets:
            found.add(check, facet, _compiler_says_valid(check, facet), rust[check].is_valid(facet))
    return found


class _DifferentialRecorder:
    """A pytest plugin: while the differential test runs, each standard facet the validator
    checks is also judged by jsonschema-rs, with its own formats and with the project's."""

    def __init__(self, rust: dict[str, dict[Check, jsonschema_rs.Validator]]) -> None:
        self.rust = rust
        self.found = {name: Agreement() for name in rust}
        # The walk of the event check looks the function up in its module at each call.
        self._patch = mock.patch.object(event_check, "facet_verdict", self._verdict)

    def _verdict(self, check: Check, facet: Any, encodings: FacetJson) -> Verdict:
        verdict = facet_verdict(check, facet, encodings)
        for name, validators in self.rust.items():
            self.found[name].add(check, facet, not verdict, validators[check].is_valid(facet))
        return verdict

    def pytest_sessionstart(self) -> None:
        self._patch.start()

    def pytest_sessionfinish(self) -> None:
        self._patch.stop()


def differential(rust: dict[str, dict[Check, jsonschema_rs.Validator]]) -> dict[str, Any]:
    """The verdicts of both on every standard facet of the differential test's inputs (the
    corpus and its hypothesis mutations), the validator's own being the official schema's."""
    import pytest

    recorder = _DifferentialRecorder(rust)
    test = Path(__file__).resolve().parents[2] / "tests/unit/test_validation_differential.py"
    exit_code = pytest.main(["-q", "-p", "no:cacheprovider", str(test)], plugins=[recorder])
    return {"test_exit_code": int(exit_code),
            **{name: found.report() for name, found in recorder.found.items()}}


def _distinct(events: Sequence[Facets]) -> list[Facets]:
    """Each distinct (checker, facet JSON) once, as the verdict cache leaves them to a checker."""
    seen: set[tuple[Check, bytes]] = set()
    out: list[Facets] = []
    for facets in events:
        kept: Facets = []
        for check, facet in facets:
            key = (check, msgspec.json.encode(facet))
            if key not in seen:
                seen.add(key)
                kept.append((check, facet))
        out.append(kept)
    return out


def _compiler_pass(events: Sequence[Facets]) -> None:
    for facets in events:
        for check, facet in facets:
            with contextlib.suppress(RecursionError):
                check(facet)


def _rust_pass(rust: dict[Check, jsonschema_rs.Validator]) -> Callable[[Sequence[Facets]], None]:
    def run(events: Sequence[Facets]) -> None:
        for facets in events:
            for check, facet in facets:
                rust[check].is_valid(facet)

    return run


def _cpu_seconds(work: Callable[[], object]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def _per_event(seconds: list[float], events: int) -> dict[str, float]:
    """CPU microseconds per event: the median, min and max over the repeats."""
    micros = [1e6 * value / max(events, 1) for value in seconds]
    return {"median_us": round(statistics.median(micros), 2), "min_us": round(min(micros), 2),
            "max_us": round(max(micros), 2)}


def measure(name: str, messages: Sequence[bytes], repeats: int,
            rust: dict[Check, jsonschema_rs.Validator],
            rust_with_project_formats: dict[Check, jsonschema_rs.Validator]) -> dict[str, Any]:
    """Verdict agreement and per-event CPU time of both validators on one input.

    Every variant first gets one untimed pass (warm: the compiler's URI cache, jsonschema-rs's
    compiled schemas, the CPU caches); then the variants take turns, ``repeats`` timed passes
    each, so that a busy moment of the machine falls on all of them alike.
    """
    events = standard_facets(messages)
    distinct = _distinct(events)
    rust_pass, rust_formats_pass = _rust_pass(rust), _rust_pass(rust_with_project_formats)
    variants: dict[str, Callable[[], object]] = {
        "compiler, every facet": lambda: _compiler_pass(events),
        "jsonschema-rs, every facet": lambda: rust_pass(events),
        "jsonschema-rs + project formats, every facet": lambda: rust_formats_pass(events),
        "compiler, distinct facets": lambda: _compiler_pass(distinct),
        "jsonschema-rs, distinct facets": lambda: rust_pass(distinct),
        "jsonschema-rs + project formats, distinct facets": lambda: rust_formats_pass(distinct),
        # For scale: the whole validator as the processor runs it (warm verdict cache).
        "validate(), whole event": lambda: [validate(message) for message in messages],
    }
    seconds: dict[str, list[float]] = {variant: [] for variant in variants}
    for work in variants.values():
        work()
    for _ in range(repeats):
        for variant, work in variants.items():
            seconds[variant].append(_cpu_seconds(work))
    found = agreement(events, rust)
    found_with_formats = agreement(events, rust_with_project_formats)
    return {
        "input": name, "messages": len(messages), "events": len(events),
        "facets": sum(map(len, events)), "distinct_facets": sum(map(len, distinct)),
        "repeats": repeats,
        "agreement": found.report(),
        "agreement_with_project_formats": found_with_formats.report(),
        "cpu_per_message": {variant: _per_event(values, len(messages))
                            for variant, values in seconds.items()},
    }


def build_times(repeats: int) -> dict[str, dict[str, float]]:
    """CPU milliseconds to build each validator from the spec files (median, min, max)."""
    runs: dict[str, list[float]] = {"compiler (load_spec)": [], "jsonschema-rs (38 validators)": []}
    for _ in range(repeats):
        runs["compiler (load_spec)"].append(_cpu_seconds(lambda: load_spec(SPEC_DIR)))
        runs["jsonschema-rs (38 validators)"].append(_cpu_seconds(rust_validators))
    return {name: {"median_ms": round(1e3 * statistics.median(values), 1),
                   "min_ms": round(1e3 * min(values), 1), "max_ms": round(1e3 * max(values), 1)}
            for name, values in runs.items()}


def main(argv: Sequence[str] | None = None) -> int:
    """Measure and print a JSON report (``--help`` for the options)."""
    parser = argparse.ArgumentParser(prog="python -m lineage.bench.validators",
                                     description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--corpus", type=Path, help="a corpus directory with INDEX.tsv")
    parser.add_argument("--workload", type=Path, help="an NDJSON workload file")
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per variant")
    parser.add_argument("--differential", action="store_true",
                        help="also compare the verdicts on the differential test's inputs")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    args = parser.parse_args(argv)
    inputs = [("corpus", load_corpus(args.corpus))] if args.corpus else []
    if args.workload:
        inputs.append(("workload", load_workload(args.workload)))
    if not (inputs or args.differential):
        parser.error("give --corpus, --workload or --differential")
    rust, rust_with_project_formats = rust_validators(), rust_validators(project_formats=True)
    report = {
        "jsonschema_rs": importlib.metadata.version("jsonschema-rs"),
        "python": sys.version.split()[0],
        "build": build_times(args.repeats),
        "inputs": [measure(name, messages, args.repeats, rust, rust_with_project_formats)
                   for name, messages in inputs],
    }
    if args.differential:
        report["differential"] = differential({
            "jsonschema-rs": rust, "jsonschema-rs + project formats": rust_with_project_formats})
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
