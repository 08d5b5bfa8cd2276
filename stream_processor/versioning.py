"""From one accepted OpenLineage event to the graph change records it implies.

Pure functions: no I/O, no state. The records follow ``schemas/lineage_change.v2.avsc``; each is
an idempotent merge, so the sink can apply any set of them in any order (DESIGN.md, guarantees 2
and 3). Which of them are worth sending is decided afterwards (:mod:`stream_processor.state`).

Job versions are not made here. A JobVersion is what one whole run did (DESIGN.md, Versions):
the union of the datasets over all of the run's events, which arrive one by one and may be
processed by different workers. So each Run record carries its event's behaviour-defining job
facets (``definition``: ``sql``, ``sourceCode``, ``sourceCodeLocation``, ``jobType`` without their
``_producer``/``_schemaURL``) and each RunIO its event's datasets, and the sink, which holds all of
a run's observations, derives the run's version and the job's validity intervals from them
(``sinks.graph``). A partial event (a RUNNING with a subset of the datasets, an event without
any) only adds to its run.

- **DatasetVersion** id = hash(dataset namespace, name, schema fields (name, type), and the
  producing run for an output). Any dataset that carries a schema facet makes one: an output
  (a write by its run), an input or a DatasetEvent (an observation of the schema, without run:
  the same id for every reader and DatasetEvent that saw that schema, so a dataset that is only
  read has a schema and its readers a version to have READ). An output without a schema makes
  one only when the run COMPLETEd, so neither a START nor a failed run adds an empty version.
  Whether an observation changes the schema at its time is the sink's to say
  (``sinks.graph``): it alone sees every version of the dataset.

>>> event = {"eventType": "COMPLETE", "eventTime": "2024-05-01T10:00:00Z",
...          "run": {"runId": "3f0a3b5e-8a0e-4c5b-9d1e-0f6a7b8c9d0e"},
...          "job": {"namespace": "etl", "name": "daily"},
...          "inputs": [{"namespace": "pg", "name": "a"}],
...          "outputs": [{"namespace": "pg", "name": "b"}],
...          "producer": "p", "schemaURL": "s"}
>>> sorted({kind for _key, (kind, _body) in (c.key_and_payload() for c in changes_for(event))})
['Dataset', 'DatasetVersion', 'Job', 'JobLineage', 'Run', 'RunIO']
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec

from core.cache import BoundedCache
from core.content import canonical_json, content_id
from schemas.codec import ChangeRecord, micros

DEFINING_JOB_FACETS = ("sql", "sourceCode", "sourceCodeLocation", "jobType")

_encoder = msgspec.json.Encoder(order="sorted")

__all__ = ["Change", "Prepared", "canonical_json", "changes_for", "content_id",
           "event_content_id", "to_micros"]


@lru_cache(maxsize=1024)
def to_micros(timestamp: str) -> int:
    """RFC 3339 time to microseconds since the epoch (UTC); finer digits are truncated.

    Accepts what the validator accepts: a lower-case ``t``/``z`` and surrounding white space.
    Recent times are remembered: the pipeline asks for each event's time more than once.

    >>> to_micros("1970-01-01t00:00:01.5z\\n")
    1500000
    """
    parsed = datetime.fromisoformat(timestamp.strip().upper())
    return micros(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class Change:
    """One change record with the Kafka key it is sent under (the node it belongs to).

    ``body`` may share parts (schema fields, column edges, dataset references) with the changes
    of other events with the same content: read it, do not change it. ``content`` is the content
    id under which the processor's state records this observation (see
    ``stream_processor.pipeline.state_key``) for the kinds recorded by content (job lineage, run
    state, run IO, columns, symlinks): that of the whole body; None when it was not worked out
    along the way (a node's or a version's entry is keyed by the node or the version id).
    """

    key: str
    kind: str
    body: dict[str, Any]
    event_time: int
    content: str | None = field(default=None, compare=False, repr=False)

    def key_and_payload(self) -> tuple[str, tuple[str, dict[str, Any]]]:
        return self.key, (self.kind, self.body)

    def record(self, ingested_at: int) -> ChangeRecord:
        """The Avro record (see ``schemas/codec.py``)."""
        return {"eventTime": self.event_time, "ingestedAt": ingested_at,
                "payload": (self.kind, self.body)}


def job_key(namespace: str, name: str) -> str:
    return f"job:{namespace}/{name}"


def dataset_key(namespace: str, name: str) -> str:
    return f"dataset:{namespace}/{name}"


def _facets_json(facets: Any) -> str | None:
    if not facets:
        return None
    return canonical_json(facets) if type(facets) is dict or isinstance(facets, Mapping) else None


def _without_meta(facet: Any) -> Any:
    """A facet without the keys that name its producer rather than its content."""
    if isinstance(facet, Mapping):
        return {k: v for k, v in facet.items() if k not in ("_producer", "_schemaURL")}
    return facet


def schema_fields(dataset: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The dataset's schema facet fields, nested ones flattened as ``parent.child``.

    The result is shared between calls for equal schemas: read it, do not change it.
    """
    return _schema_fields_of(dataset.get("facets") or {})


def _schema_fields_of(facets: Any) -> list[dict[str, Any]]:
    schema = facets.get("schema")
    fields = schema.get("fields") if isinstance(schema, Mapping) else None
    if not isinstance(fields, list) or not fields:
        return []
    # The same schema arrives again and again (every run, every reader of a dataset): flatten
    # it once per distinct content, keyed by its JSON bytes.
    return _flatten_fields(_plain_encoder.encode(fields))


_plain_encoder = msgspec.json.Encoder()


@lru_cache(maxsize=8192)
def _flatten_fields(raw: bytes) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def walk(items: Any, prefix: str) -> None:
        # Freshly decoded JSON: its objects are exactly dicts, its arrays lists, its texts strs.
        for item in items if type(items) is list else ():
            if type(item) is not dict or type(item.get("name")) is not str:
                continue
            name = prefix + item["name"]
            kind, description = item.get("type"), item.get("description")
            out.append({"name": name, "type": kind if type(kind) is str else None,
                        "description": description if type(description) is str else None,
                        "ordinal": len(out)})
            walk(item.get("fields"), name + ".")

    walk(msgspec.json.decode(raw), "")
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if type(value) is dict or isinstance(value, Mapping) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def dataset_version_id(namespace: str, name: str, fields: list[dict[str, Any]],
                       producing_run: str | None) -> str:
    """Content address of a dataset version (see the module docstring)."""
    return content_id({"namespace": namespace, "name": name, "run": producing_run,
                       "fields": [[f["name"], f["type"]] for f in fields]})


# ---------------------------------------------------------------------------------------------
# What is worked out once per distinct content. A job's runs carry the same job facets, inputs
# and outputs again and again, and a dataset the same facets in every event that reads it: the
# records and content ids they imply are pure functions of that content, remembered in bounded
# memos (core.cache.BoundedCache) keyed by the content's JSON bytes (msgspec's encoding of the
# decoded value, which tells apart all that the records could tell apart: key order, 1 and 1.0,
# true and 1).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _JobContent:
    """What a job's facets imply, whatever the run."""

    facets_json: str | None
    definition: dict[str, Any]
    definition_json: str | None


@dataclass(frozen=True, slots=True)
class _JobLineage:
    """What a job's datasets imply: its lineage edges."""

    inputs: list[dict[str, str]]
    outputs: list[dict[str, str]]
    lineage_id: str


@dataclass(frozen=True, slots=True)
class _DatasetContent:
    """What a dataset's namespace, name and facets imply, whatever the event."""

    facets_json: str | None
    facets_canonical: bytes
    """The canonical JSON of the facets (``{}`` when there are none)."""
    fields: list[dict[str, Any]]
    version_prefix: bytes
    """The canonical JSON of the version content up to the producing run (see version_id)."""
    read_version_id: str | None
    """The version id without producing run (that of an input); None without fields."""
    symlinks: list[tuple[dict[str, Any], str]]
    column_lineage: tuple[dict[str, Any], str] | None

    def version_id(self, producing_run: str | None) -> str:
        """``dataset_version_id(namespace, name, fields, producing_run)``, from the prefix."""
        if producing_run is None and self.read_version_id is not None:
            return self.read_version_id
        raw = self.version_prefix + _encoder.encode(producing_run) + b"}"
        return hashlib.sha256(raw).hexdigest()[:32]


# Sizes are estimates of the bytes an entry holds: its key and what was worked out (a dataset's
# canonical facets and records take about four times its JSON, shared schema fields aside).
_jobs: BoundedCache[tuple[str, str, bytes], _JobContent] = BoundedCache(16_384, 32 << 20)
_LineageKey = tuple[str, str, bytes, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]
_lineages: BoundedCache[_LineageKey, _JobLineage] = BoundedCache(16_384, 32 << 20)
_DatasetKey = tuple[str, str, tuple[tuple[str, bytes], ...]]
_datasets: BoundedCache[_DatasetKey, _DatasetContent] = BoundedCache(65_536, 128 << 20)


def clear_memos() -> None:
    """Forget everything remembered per content (tests; nothing else needs to)."""
    for memo in (_jobs, _lineages, _datasets):
        memo.clear()
    _flatten_fields.cache_clear()


def _content_key(facets: Any) -> bytes | None:
    """The JSON bytes of a facet map, or None if it cannot be a memo key."""
    if type(facets) is not dict:
        return None
    try:
        return _plain_encoder.encode(facets)
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None


def _job_content(namespace: str, name: str, facets: dict[str, Any], raw: bytes) -> _JobContent:
    key = (namespace, name, raw)
    found = _jobs.get(key)
    if found is not None:
        return found
    facets_json = _facets_json(facets)
    definition = {k: _without_meta(facets[k]) for k in DEFINING_JOB_FACETS if k in facets}
    return _jobs.put(key, _JobContent(
        facets_json, definition,
        canonical_json(definition) if definition else None), 3 * len(raw) + 256)


def _job_lineage(namespace: str, name: str, raw: bytes,
                 in_refs: tuple[tuple[str, str], ...],
                 out_refs: tuple[tuple[str, str], ...]) -> _JobLineage:
    key: _LineageKey | None = (namespace, name, raw, in_refs, out_refs)
    found = None
    try:
        found = _lineages.get((namespace, name, raw, in_refs, out_refs))
    except TypeError:  # a reference that is no string pair: worked out, not remembered
        key = None
    if found is not None:
        return found
    inputs, outputs = _pairs_refs(in_refs), _pairs_refs(out_refs)
    lineage_id = content_id({"jobNamespace": namespace, "jobName": name,
                             "inputs": inputs, "outputs": outputs})
    lineage = _JobLineage(inputs, outputs, lineage_id)
    if key is None:
        return lineage
    return _lineages.put(key, lineage, len(raw) + 256 * (len(in_refs) + len(out_refs)) + 256)


def _dataset_content(namespace: str, name: str, facets: dict[str, Any],
                     known: Callable[[Any], bytes | None]) -> _DatasetContent:
    """The content of a dataset, remembered per distinct (namespace, name, facets)."""
    pairs = _facet_pairs(facets, known)
    if pairs is None:
        return _work_out_dataset(namespace, name, facets)
    key = (namespace, name, pairs)
    found = _datasets.get(key)
    if found is not None:
        return found
    size = 5 * sum(len(raw) for _, raw in pairs) + 256
    return _datasets.put(key, _work_out_dataset(namespace, name, facets), size)


def _facet_pairs(facets: dict[str, Any], known: Callable[[Any], bytes | None]
                 ) -> tuple[tuple[str, bytes], ...] | None:
    """The facets as (key, JSON bytes) pairs, in order: a memo key as telling as the facets'
    JSON. ``known`` gives the encodings made already, if any (the validator's)."""
    try:
        return tuple((key, known(value) or _plain_encoder.encode(value))
                     for key, value in facets.items())
    except (TypeError, ValueError, OverflowError, RecursionError):
        return None


def _work_out_dataset(namespace: str, name: str, facets: dict[str, Any]) -> _DatasetContent:
    canonical = _encoder.encode(facets)
    facets_json = canonical.decode() if facets else None
    fields = _schema_fields_of(facets)
    dkey = dataset_key(namespace, name)
    # The canonical JSON of {"namespace", "name", "run", "fields"} has its keys in the order
    # fields, name, namespace, run: everything but the run is known here.
    head = _encoder.encode({"fields": [[f["name"], f["type"]] for f in fields], "name": name,
                            "namespace": namespace})
    prefix = head[:-1] + b',"run":'
    content = _DatasetContent(
        facets_json, canonical, fields, prefix, None,
        [(change.body, content_id(change.body))
         for change in _symlinks(facets, namespace, name, dkey, 0)],
        next(((change.body, content_id(change.body))
              for change in _column_lineage(facets, namespace, name, dkey, 0)), None))
    if fields:
        content = _DatasetContent(
            content.facets_json, canonical, fields, prefix,
            content.version_id(None), content.symlinks, content.column_lineage)
    return content


def _unknown(_facet: Any) -> None:
    return None


class Prepared:
    """What versioning works out from one event's datasets, shared between the event's content
    id (``event_content_id``) and its change records (``changes_for``).

    ``known`` gives the JSON bytes of facets encoded already (the pipeline passes the
    ``facet_json`` of the event's validation result; the event must not change in between).
    """

    __slots__ = ("contents", "known")

    def __init__(self, known: Callable[[Any], bytes | None] = _unknown) -> None:
        self.contents: dict[int, tuple[Any, _DatasetContent | None]] = {}
        self.known = known

    def dataset(self, dataset: Any) -> _DatasetContent | None:
        """The content of a dataset dict of the event; None if it cannot be worked out."""
        found = self.contents.get(id(dataset))
        if found is not None and found[0] is dataset:
            return found[1]
        content = None
        if type(dataset) is dict:
            ns, name = dataset.get("namespace"), dataset.get("name")
            facets = dataset.get("facets") or {}
            if type(ns) is str and type(name) is str and type(facets) is dict:
                with contextlib.suppress(TypeError, ValueError, OverflowError, RecursionError):
                    content = _dataset_content(ns, name, facets, self.known)
        self.contents[id(dataset)] = (dataset, content)  # holds the dataset, so its id stays
        return content


def event_content_id(content: Mapping[str, Any], prepared: Prepared | None = None) -> str:
    """``content_id(content)`` for an event-shaped dict, the datasets' facets taken from what
    ``prepared`` worked out (their canonical JSON is the bulk of an event's)."""
    prepared = prepared or Prepared()
    pieces = [b"{"]
    for key in sorted(content):
        if len(pieces) > 1:
            pieces.append(b",")
        pieces += (_encoder.encode(key), b":")
        value = content[key]
        if key in ("inputs", "outputs") and type(value) is list and value:
            pieces.append(b"[")
            for index, dataset in enumerate(value):
                if index:
                    pieces.append(b",")
                _canonical_dataset(dataset, prepared, pieces)
            pieces.append(b"]")
        elif key == "dataset":
            _canonical_dataset(value, prepared, pieces)
        else:
            pieces.append(_encoder.encode(value))
    pieces.append(b"}")
    return hashlib.sha256(b"".join(pieces)).hexdigest()[:32]


def _canonical_dataset(dataset: Any, prepared: Prepared, pieces: list[bytes]) -> None:
    content = prepared.dataset(dataset)
    if content is None or type(dataset.get("facets")) is not dict:
        pieces.append(_encoder.encode(dataset))
        return
    pieces.append(b"{")
    for index, key in enumerate(sorted(dataset)):
        if index:
            pieces.append(b",")
        pieces += (_encoder.encode(key), b":")
        pieces.append(content.facets_canonical if key == "facets"
                      else _encoder.encode(dataset[key]))
    pieces.append(b"}")


def _pairs_refs(refs: tuple[tuple[str, str], ...]) -> list[dict[str, str]]:
    return [{"namespace": ns, "name": n} for ns, n in sorted(set(refs))]


# ---------------------------------------------------------------------------------------------


def changes_for(event: Mapping[str, Any], repairs: tuple[str, ...] = (),
                prepared: Prepared | None = None) -> list[Change]:
    """Every change record ``event`` (already validated) implies.

    ``prepared`` holds what was worked out from the event's datasets already (for its content
    id); without it, it is worked out here.
    """
    out: list[Change] = []
    _changes(event, repairs, prepared or Prepared(), out)
    return out


def _is_mapping(value: Any) -> bool:
    return type(value) is dict or isinstance(value, Mapping)


def _changes(event: Mapping[str, Any], repairs: tuple[str, ...], prepared: Prepared,
             out: list[Change]) -> None:
    time = to_micros(event["eventTime"])
    job: Mapping[str, Any] = event.get("job") or {}
    run: Mapping[str, Any] = event.get("run") or {}
    inputs = _datasets_of(event.get("inputs"))
    outputs = _datasets_of(event.get("outputs"))
    event_type = event.get("eventType") or "OTHER"
    run_id = run_id_of(run)

    # A DatasetEvent has no job; a RunEvent or JobEvent may still carry a stray "dataset".
    if _is_mapping(event.get("dataset")) and not _is_mapping(event.get("job")):
        _dataset_changes(event["dataset"], time, None, None, None, prepared, out)
        return

    job_ns, job_name = job["namespace"], job["name"]
    jkey = job_key(job_ns, job_name)
    job_facets = job.get("facets") or {}
    raw = _content_key(job_facets) if type(job_ns) is str and type(job_name) is str else None
    if raw is None:
        out += _job_changes_slowly(job_ns, job_name, jkey, job_facets, inputs, outputs,
                                   run, run_id, event_type, repairs, time)
    else:
        content = _job_content(job_ns, job_name, job_facets, raw)
        out.append(Change(jkey, "Job", {"namespace": job_ns, "name": job_name,
                                        "facets": content.facets_json}, time))
        lineage = None
        if inputs or outputs:
            in_refs = tuple((d["namespace"], d["name"]) for d in inputs)
            out_refs = tuple((d["namespace"], d["name"]) for d in outputs)
            lineage = _job_lineage(job_ns, job_name, raw, in_refs, out_refs)
        if run_id is not None:
            out.append(Change(f"run:{run_id}", "Run", _run_body(
                run, run_id, job_ns, job_name, event_type, content.definition_json, repairs),
                time))
        if lineage is None:
            return
        out.append(Change(jkey, "JobLineage", {
            "jobNamespace": job_ns, "jobName": job_name,
            "inputs": lineage.inputs, "outputs": lineage.outputs}, time, lineage.lineage_id))
    _io_changes(inputs, outputs, event_type, run_id, time, prepared, out)


def _job_changes_slowly(job_ns: Any, job_name: Any, jkey: str, job_facets: Any,
                        inputs: list[Mapping[str, Any]], outputs: list[Mapping[str, Any]],
                        run: Mapping[str, Any], run_id: str | None, event_type: str,
                        repairs: tuple[str, ...], time: int) -> Iterator[Change]:
    """The job's records, worked out without memos (for facets that cannot be a memo key)."""
    yield Change(jkey, "Job", {"namespace": job_ns, "name": job_name,
                               "facets": _facets_json(job_facets)}, time)
    if run_id is not None:
        definition = {k: _without_meta(job_facets[k])
                      for k in DEFINING_JOB_FACETS if k in job_facets}
        yield Change(f"run:{run_id}", "Run", _run_body(
            run, run_id, job_ns, job_name, event_type,
            canonical_json(definition) if definition else None, repairs), time)
    if not (inputs or outputs):
        return
    yield Change(jkey, "JobLineage", {
        "jobNamespace": job_ns, "jobName": job_name,
        "inputs": _refs(inputs), "outputs": _refs(outputs)}, time)


def _io_changes(inputs: list[Mapping[str, Any]], outputs: list[Mapping[str, Any]],
                event_type: str, run_id: str | None, time: int, prepared: Prepared,
                out: list[Change]) -> None:
    """The records of the datasets an event read and wrote, and the run's RunIO."""
    if not (inputs or outputs):
        return
    # Only a completed run wrote something: a failed or aborted one makes no schema-less version.
    terminal = event_type == "COMPLETE"
    run_io: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
    for direction, datasets in (("INPUT", inputs), ("OUTPUT", outputs)):
        side = run_io["inputs" if direction == "INPUT" else "outputs"]
        for dataset in datasets:
            first = len(out)
            _dataset_changes(dataset, time, terminal, run_id, direction, prepared, out)
            versions = [c.body["id"] for c in out[first:] if c.kind == "DatasetVersion"]
            io_facets = dataset.get("inputFacets" if direction == "INPUT" else "outputFacets")
            side.append({
                "namespace": dataset["namespace"], "name": dataset["name"],
                "versionId": versions[0] if versions else None,
                "facets": _facets_json(io_facets)})
    if run_id is not None:
        out.append(Change(f"run:{run_id}", "RunIO", {"runId": run_id, **run_io}, time))


def _refs(datasets: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Sorted, distinct (namespace, name) references."""
    return [{"namespace": ns, "name": n}
            for ns, n in sorted({(d["namespace"], d["name"]) for d in datasets})]


def _datasets_of(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [d for d in value if type(d) is dict or isinstance(d, Mapping)]


def run_id_of(run: Mapping[str, Any]) -> str | None:
    """A run's id in canonical form: a UUID in lower case (RFC 9562 compares them without
    case), so a START and a COMPLETE that spell it differently are one run.

    >>> run_id_of({"runId": "3F0A3B5E-8A0E-4C5B-9D1E-0F6A7B8C9D0E"})
    '3f0a3b5e-8a0e-4c5b-9d1e-0f6a7b8c9d0e'
    """
    value = run.get("runId")
    return value.lower() if isinstance(value, str) else None


def _run_body(run: Mapping[str, Any], run_id: str, job_ns: str, job_name: str, event_type: str,
              definition: str | None, repairs: tuple[str, ...]) -> dict[str, Any]:
    facets = run.get("facets") or {}
    parent = _mapping(facets.get("parent"))
    root = _mapping(parent.get("root"))

    def ref(node: Mapping[str, Any], part: str, field: str) -> str | None:
        inner = node.get(part)
        if type(inner) is dict or isinstance(inner, Mapping):
            return _str_or_none(inner.get(field))
        return None

    return {
        "runId": run_id, "jobNamespace": job_ns, "jobName": job_name,
        "eventType": event_type, "facets": _facets_json(facets), "jobVersionId": None,
        "definition": definition,
        "parentRunId": run_id_of(_mapping(parent.get("run"))),
        "parentJobNamespace": ref(parent, "job", "namespace"),
        "parentJobName": ref(parent, "job", "name"),
        "rootRunId": run_id_of(_mapping(root.get("run"))),
        "rootJobNamespace": ref(root, "job", "namespace"),
        "rootJobName": ref(root, "job", "name"),
        "repairs": list(repairs),
    }


def _dataset_changes(dataset: Mapping[str, Any], time: int, terminal: bool | None,
                     run_id: str | None, direction: str | None, prepared: Prepared,
                     out: list[Change]) -> None:
    ns, name = dataset["namespace"], dataset["name"]
    content = prepared.dataset(dataset)
    if content is None:
        facets = dataset.get("facets") or {}
        out += _dataset_changes_slowly(ns, name, facets, time, terminal, run_id, direction)
        return
    dkey = dataset_key(ns, name)
    out.append(Change(dkey, "Dataset", {"namespace": ns, "name": name,
                                        "facets": content.facets_json}, time))
    producing_run = run_id if direction == "OUTPUT" else None
    if content.fields or (direction == "OUTPUT" and terminal):
        version_id = content.version_id(producing_run)
        out.append(Change(dkey, "DatasetVersion", {
            "id": version_id, "datasetNamespace": ns, "datasetName": name,
            "fields": content.fields, "producingRunId": producing_run,
        }, time, version_id))
    for body, body_id in content.symlinks:
        out.append(Change(dkey, "Symlink", body, time, body_id))
    if content.column_lineage is not None:
        body, body_id = content.column_lineage
        if run_id is not None:  # the run's column lineage: a body of its own
            body = {**body, "runId": run_id}
            body_id = content_id(body)
        out.append(Change(dkey, "ColumnLineage", body, time, body_id))


def _dataset_changes_slowly(ns: Any, name: Any, facets: Any, time: int, terminal: bool | None,
                            run_id: str | None, direction: str | None) -> Iterator[Change]:
    """A dataset's records, worked out without memos (for what cannot be a memo key)."""
    dkey = dataset_key(ns, name)
    yield Change(dkey, "Dataset", {"namespace": ns, "name": name,
                                   "facets": _facets_json(facets)}, time)
    fields = _schema_fields_of(facets)
    producing_run = run_id if direction == "OUTPUT" else None
    if fields or (direction == "OUTPUT" and terminal):
        version_id = dataset_version_id(ns, name, fields, producing_run)
        yield Change(dkey, "DatasetVersion", {
            "id": version_id, "datasetNamespace": ns, "datasetName": name,
            "fields": fields, "producingRunId": producing_run,
        }, time)
    yield from _symlinks(facets, ns, name, dkey, time)
    yield from _column_lineage(facets, ns, name, dkey, time, run_id)


def _symlinks(facets: Mapping[str, Any], ns: str, name: str, dkey: str,
              time: int) -> Iterator[Change]:
    symlinks = facets.get("symlinks")
    identifiers = symlinks.get("identifiers") if isinstance(symlinks, Mapping) else None
    for ident in identifiers if isinstance(identifiers, list) else ():
        if isinstance(ident, Mapping) and (ident.get("namespace"), ident.get("name")) != (ns, name):
            yield Change(dkey, "Symlink", {
                "aliasNamespace": ident["namespace"], "aliasName": ident["name"],
                "datasetNamespace": ns, "datasetName": name,
                "type": _str_or_none(ident.get("type")),
            }, time)


def _column_lineage(facets: Mapping[str, Any], ns: str, name: str, dkey: str,
                    time: int, run_id: str | None = None) -> Iterator[Change]:
    facet = facets.get("columnLineage")
    if not isinstance(facet, Mapping):
        return
    edges = _column_edges(facet)
    if edges:
        yield Change(dkey, "ColumnLineage", {"targetNamespace": ns, "targetDataset": name,
                                             "edges": edges, "runId": run_id}, time)


def _column_edges(facet: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The edges of a columnLineage facet (its ``fields`` and ``dataset`` parts).

    The facet is JSON as msgspec decodes it (its objects are exactly dicts, its arrays lists,
    its texts strs), so exact type tests stand for the isinstance tests of the spec's types.
    This runs for every new lineage facet, a few dozen edges each: hence the inlined loop.
    """
    edges: list[dict[str, Any]] = []
    fields = facet.get("fields")
    for target, spec in (fields.items() if type(fields) is dict else ()):
        if type(spec) is dict:
            _add_edges(edges, spec.get("inputFields"), target, spec)
    _add_edges(edges, facet.get("dataset"), None, None)
    return edges


def _add_edges(edges: list[dict[str, Any]], sources: Any, target: str | None,
               spec: dict[str, Any] | None) -> None:
    """The edges from ``sources`` (input fields) to ``target``: one per transformation, or one
    with the legacy ``transformationType``/``transformationDescription`` of ``spec`` (the
    target field's entry; None for the dataset part) when a source lists none."""
    if type(sources) is not list:
        return
    append = edges.append
    for source in sources:
        if type(source) is not dict:
            continue
        transformations = source.get("transformations")
        if type(transformations) is not list:
            transformations = [t for t in transformations or () if type(t) is dict]
        namespace, dataset, column = source["namespace"], source["name"], source["field"]
        described = False
        for t in transformations:
            if type(t) is not dict:
                continue
            described = True
            kind, subtype = t.get("type"), t.get("subtype")
            description, masking = t.get("description"), t.get("masking")
            append({
                "sourceNamespace": namespace, "sourceDataset": dataset, "sourceField": column,
                "targetField": target,
                "type": kind if type(kind) is str else None,
                "subtype": subtype if type(subtype) is str else None,
                "description": description if type(description) is str else None,
                "masking": masking if type(masking) is bool else None,
            })
        if not described:
            kind = description = None
            if spec is not None:
                kind, description = spec.get("transformationType"), spec.get(
                    "transformationDescription")
            append({
                "sourceNamespace": namespace, "sourceDataset": dataset, "sourceField": column,
                "targetField": target,
                "type": kind if type(kind) is str else None,
                "subtype": None,
                "description": description if type(description) is str else None,
                "masking": None,
            })
