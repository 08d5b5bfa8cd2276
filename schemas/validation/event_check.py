"""The core of an event, checked by hand: OpenLineage.json's oneOf of RunEvent, DatasetEvent and
JobEvent, with the facet maps walked on the way.

The core is small and fixed, so it is written out rather than compiled: each field is looked at
once and reasons are only built for failures. The standard facets are checked by their compiled
checkers (:mod:`schemas.validation.spec`), through the verdict cache.

>>> check = EventCheck()
>>> event = {"eventTime": "2024-05-01T12:00:00Z", "producer": "https://example.com/etl",
...          "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
...          "job": {"namespace": "etl", "name": "daily",
...                  "facets": {"sql": {"_producer": "https://p", "_schemaURL": "https://s"}}}}
>>> check.classify(event)
('job', [])
>>> [(dropped.pointer, dropped.reasons[0].code) for dropped in check.dropped]
[('/job/facets/sql', 'missing_field')]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from schemas.validation.compiler import MISSING, reasons_at
from schemas.validation.formats import FORMATS, Format, format_message
from schemas.validation.results import (
    DroppedFacet,
    EventKind,
    FacetJson,
    Reason,
    ReasonCode,
    describe,
    pointer_token,
)
from schemas.validation.spec import SPEC, Place
from schemas.validation.verdicts import Verdict, facet_verdict

EVENT_TYPES: Final = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")
_URI_FORMAT: Final = FORMATS["uri"]
_DATASET_SIDES: Final[tuple[tuple[str, str, Place], ...]] = (
    ("inputs", "inputFacets", "input"),
    ("outputs", "outputFacets", "output"),
)


def _check_string(
    holder: dict[str, Any], name: str, pointer: str, out: list[Reason], fmt: Format | None = None
) -> None:
    """A required string field, optionally with a format."""
    value = holder.get(name, MISSING)
    if value is MISSING:
        message = f"required field '{name}' is missing"
        out.append(Reason("missing_field", f"{pointer}/{name}", message))
    elif not isinstance(value, str):
        message = f"expected a string, found {describe(value)}"
        out.append(Reason("wrong_type", f"{pointer}/{name}", message))
    elif fmt is not None and not fmt.test(value):
        out.append(Reason(fmt.code, f"{pointer}/{name}", format_message(fmt, value)))


def _check_object(value: Any, pointer: str, out: list[Reason]) -> bool:
    if isinstance(value, dict):
        return True
    out.append(Reason("wrong_type", pointer, f"expected an object, found {describe(value)}"))
    return False


def intended_kinds(event: Mapping[str, Any]) -> list[EventKind]:
    """The kinds an event may be by the keys it has, most likely first.

    The spec's alternatives: RunEvent needs run and job; JobEvent needs job and forbids run;
    DatasetEvent needs dataset and forbids run and job together. A run without a job is read as
    a RunEvent missing its job, unless a dataset makes it a DatasetEvent.
    """
    has_run, has_job, has_dataset = "run" in event, "job" in event, "dataset" in event
    kinds: list[EventKind] = []
    if has_run and (has_job or not has_dataset):
        kinds.append("run")
    if has_job and not has_run:
        kinds.append("job")
    if has_dataset and not (has_job and has_run):
        kinds.append("dataset")
    return kinds


class EventCheck:
    """The check of one event: the core decision, and the standard facets dropped on the way.

    Each facet map is walked once: a standard facet that violates its own schema is dropped (the
    core never looks at standard facets, so this changes no decision), and a custom facet is
    checked against the core's facet type for its place.
    """

    __slots__ = ("dropped", "facet_json")

    def __init__(self) -> None:
        self.dropped: list[DroppedFacet] = []
        self.facet_json = FacetJson()
        """The JSON bytes of the standard facets checked, as their verdicts' keys made them."""

    def classify(self, event: dict[str, Any]) -> tuple[EventKind | None, list[Reason]]:
        """The event's kind, or None and why it is none (bad standard facets are dropped)."""
        base: list[Reason] = []
        _check_string(event, "eventTime", "", base, FORMATS["date-time"])
        _check_string(event, "producer", "", base, _URI_FORMAT)
        _check_string(event, "schemaURL", "", base, _URI_FORMAT)
        kinds = intended_kinds(event)
        candidates = [(kind, _KIND_CHECKS[kind](self, event)) for kind in kinds]
        self._drop_elsewhere(event, kinds)
        if not candidates:
            message = (
                "expected a RunEvent (run and job), a JobEvent (job) or a DatasetEvent "
                "(dataset); the event has none of run, job and dataset"
            )
            return None, [*base, Reason("unknown_event_type", "", message)]
        valid = [kind for kind, errors in candidates if not errors]
        if not base and len(valid) == 1:
            return valid[0], []
        if not base and valid:
            message = (
                "the event is both a valid JobEvent and a valid DatasetEvent (job and dataset, "
                "no run); the spec requires it to be exactly one"
            )
            return None, [Reason("ambiguous_event_type", "", message)]
        _, errors = min(candidates, key=lambda candidate: len(candidate[1]))
        return None, [*base, *errors]

    def run_event(self, event: dict[str, Any]) -> list[Reason]:
        """Why ``event`` is not a valid RunEvent (empty if it is)."""
        out: list[Reason] = []
        event_type = event.get("eventType", MISSING)
        if event_type is not MISSING and event_type not in EVENT_TYPES:
            code: ReasonCode = "bad_enum" if isinstance(event_type, str) else "wrong_type"
            message = f"expected one of {', '.join(EVENT_TYPES)}, found {describe(event_type)}"
            out.append(Reason(code, "/eventType", message))
        run = event["run"]
        if _check_object(run, "/run", out):
            _check_string(run, "runId", "/run", out, FORMATS["uuid"])
            self._facets(run, "facets", "/run", "run", out)
        self._job(event, out)
        self._inputs_and_outputs(event, out)
        return out

    def job_event(self, event: dict[str, Any]) -> list[Reason]:
        """Why ``event`` is not a valid JobEvent (empty if it is)."""
        out: list[Reason] = []
        self._job(event, out)
        self._inputs_and_outputs(event, out)
        return out

    def dataset_event(self, event: dict[str, Any]) -> list[Reason]:
        """Why ``event`` is not a valid DatasetEvent (empty if it is)."""
        out: list[Reason] = []
        self._dataset(event["dataset"], "/dataset", out)
        return out

    def _job(self, event: dict[str, Any], out: list[Reason]) -> None:
        job = event.get("job", MISSING)
        if job is MISSING:
            out.append(Reason("missing_field", "/job", "required field 'job' is missing"))
        elif _check_object(job, "/job", out):
            _check_string(job, "namespace", "/job", out)
            _check_string(job, "name", "/job", out)
            self._facets(job, "facets", "/job", "job", out)

    def _inputs_and_outputs(self, event: dict[str, Any], out: list[Reason]) -> None:
        for side, extra, place in _DATASET_SIDES:
            datasets = event.get(side, MISSING)
            if datasets is MISSING:
                continue
            if not isinstance(datasets, list):
                message = f"expected an array, found {describe(datasets)}"
                out.append(Reason("wrong_type", f"/{side}", message))
                continue
            for index, dataset in enumerate(datasets):
                self._dataset(dataset, f"/{side}/{index}", out, extra, place)

    def _dataset(
        self,
        dataset: Any,
        pointer: str,
        out: list[Reason],
        extra: str | None = None,
        extra_place: Place = "dataset",
    ) -> None:
        if not _check_object(dataset, pointer, out):
            return
        _check_string(dataset, "namespace", pointer, out)
        _check_string(dataset, "name", pointer, out)
        self._facets(dataset, "facets", pointer, "dataset", out)
        if extra is not None:
            self._facets(dataset, extra, pointer, extra_place, out)

    def _facets(
        self,
        holder: dict[str, Any],
        name: str,
        pointer: str,
        place: Place,
        out: list[Reason] | None,
    ) -> None:
        """Walk the facet map ``holder[name]``; ``out`` is None where the core sets no rules."""
        facets = holder.get(name, MISSING)
        if facets is MISSING:
            return
        if not isinstance(facets, dict):
            if out is not None:
                message = f"expected an object, found {describe(facets)}"
                out.append(Reason("wrong_type", f"{pointer}/{name}", message))
            return
        standard = SPEC.standard[place]
        base = SPEC.bases[place]
        bad: list[tuple[str, Verdict]] = []
        for key, value in facets.items():
            check = standard.get(key)
            if check is not None:
                if verdict := facet_verdict(check, value, self.facet_json):
                    bad.append((key, verdict))
            elif out is not None and (errors := base(value)):
                out.extend(reasons_at(errors, f"{pointer}/{name}{pointer_token(key)}"))
        for key, verdict in bad:
            facet_pointer = f"{pointer}/{name}{pointer_token(key)}"
            reasons = tuple(Reason(code, facet_pointer + below, message)
                            for code, below, message in verdict)
            self.dropped.append(DroppedFacet(key, facet_pointer, facets.pop(key), reasons))

    def _drop_elsewhere(self, event: dict[str, Any], kinds: list[EventKind]) -> None:
        """Drop bad standard facets where the candidate kinds did not look.

        Standard facets are dropped wherever any kind of event may hold them, so that what is
        dropped does not depend on the kind; only odd events (a RunEvent with a ``dataset``)
        have facet maps outside their kind.
        """
        looked = {member for kind in kinds for member in _MEMBERS_OF_KIND[kind]}
        for name in ("run", "job", "dataset"):
            holder = event.get(name)
            if name not in looked and isinstance(holder, dict):
                self._facets(holder, "facets", f"/{name}", name, None)
        for side, extra, place in _DATASET_SIDES:
            datasets = event.get(side)
            if side in looked or not isinstance(datasets, list):
                continue
            for index, dataset in enumerate(datasets):
                if isinstance(dataset, dict):
                    self._facets(dataset, "facets", f"/{side}/{index}", "dataset", None)
                    self._facets(dataset, extra, f"/{side}/{index}", place, None)


_MEMBERS_OF_KIND: Final[dict[EventKind, tuple[str, ...]]] = {
    "run": ("run", "job", "inputs", "outputs"),
    "job": ("job", "inputs", "outputs"),
    "dataset": ("dataset",),
}
_KIND_CHECKS: Final[dict[EventKind, Callable[[EventCheck, dict[str, Any]], list[Reason]]]] = {
    "run": EventCheck.run_event,
    "job": EventCheck.job_event,
    "dataset": EventCheck.dataset_event,
}

