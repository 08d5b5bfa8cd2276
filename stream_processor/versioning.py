"""From one accepted OpenLineage event to the graph change records it implies.

Pure functions: no I/O, no state. The records follow ``schemas/lineage_change.v1.avsc``; each is
an idempotent merge, so the sink can apply any set of them in any order (DESIGN.md, guarantees 2
and 3). Which of them are worth sending is decided afterwards (:mod:`stream_processor.state`).

Versions are content-addressed:

- **JobVersion** id = hash(job namespace, name, sorted input keys, sorted output keys, the
  behaviour-defining job facets ``sql``, ``sourceCode``, ``sourceCodeLocation``, ``jobType``
  without their ``_producer``/``_schemaURL``). An event with neither inputs nor outputs makes no
  job version, so it can never make lineage look empty (guarantee 4).
- **DatasetVersion** id = hash(dataset namespace, name, schema fields (name, type), and the
  producing run for an output). An input makes a version only when it carries a schema; an output
  makes one when it carries a schema or the run has completed, so a START without a schema does
  not add an empty version before the real one.

>>> event = {"eventType": "COMPLETE", "eventTime": "2024-05-01T10:00:00Z",
...          "run": {"runId": "3f0a3b5e-8a0e-4c5b-9d1e-0f6a7b8c9d0e"},
...          "job": {"namespace": "etl", "name": "daily"},
...          "inputs": [{"namespace": "pg", "name": "a"}],
...          "outputs": [{"namespace": "pg", "name": "b"}],
...          "producer": "p", "schemaURL": "s"}
>>> sorted({kind for _key, (kind, _body) in (c.key_and_payload() for c in changes_for(event))})
['Dataset', 'DatasetVersion', 'Job', 'JobLineage', 'JobVersion', 'Run', 'RunIO']
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import msgspec

from schemas.codec import ChangeRecord, micros

DEFINING_JOB_FACETS = ("sql", "sourceCode", "sourceCodeLocation", "jobType")
TERMINAL_STATES = frozenset({"COMPLETE", "FAIL", "ABORT"})

_encoder = msgspec.json.Encoder(order="sorted")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal content, equal text."""
    return _encoder.encode(value).decode()


def content_id(value: Any) -> str:
    """A 128-bit content address (hex) of ``value``'s canonical JSON."""
    return hashlib.sha256(_encoder.encode(value)).hexdigest()[:32]


def to_micros(timestamp: str) -> int:
    """RFC 3339 time to microseconds since the epoch (UTC); finer digits are truncated.

    Accepts what the validator accepts: a lower-case ``t``/``z`` and surrounding white space.

    >>> to_micros("1970-01-01t00:00:01.5z\\n")
    1500000
    """
    parsed = datetime.fromisoformat(timestamp.strip().upper())
    return micros(parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC))


@dataclass(frozen=True, slots=True)
class Change:
    """One change record with the Kafka key it is sent under (the node it belongs to)."""

    key: str
    kind: str
    body: dict[str, Any]
    event_time: int

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
    return canonical_json(facets) if isinstance(facets, Mapping) and facets else None


def _without_meta(facet: Any) -> Any:
    """A facet without the keys that name its producer rather than its content."""
    if isinstance(facet, Mapping):
        return {k: v for k, v in facet.items() if k not in ("_producer", "_schemaURL")}
    return facet


def schema_fields(dataset: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The dataset's schema facet fields, nested ones flattened as ``parent.child``.

    The result is shared between calls for equal schemas: read it, do not change it.
    """
    schema = (dataset.get("facets") or {}).get("schema")
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
        for item in items if isinstance(items, list) else ():
            if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
                continue
            name = prefix + item["name"]
            out.append({"name": name, "type": _str_or_none(item.get("type")),
                        "description": _str_or_none(item.get("description")),
                        "ordinal": len(out)})
            walk(item.get("fields"), name + ".")

    walk(msgspec.json.decode(raw), "")
    return out


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def dataset_version_id(namespace: str, name: str, fields: list[dict[str, Any]],
                       producing_run: str | None) -> str:
    """Content address of a dataset version (see the module docstring)."""
    return content_id({"namespace": namespace, "name": name, "run": producing_run,
                       "fields": [[f["name"], f["type"]] for f in fields]})


def job_version_id(namespace: str, name: str, inputs: list[tuple[str, str]],
                   outputs: list[tuple[str, str]], definition: Mapping[str, Any]) -> str:
    """Content address of a job version (see the module docstring)."""
    # Pairs, not "ns/name" strings, so ("s3://b/x", "y") and ("s3://b", "x/y") differ; a set,
    # so a dataset listed twice is the same content as listed once.
    return content_id({"namespace": namespace, "name": name,
                       "inputs": sorted({(ns, n) for ns, n in inputs}),
                       "outputs": sorted({(ns, n) for ns, n in outputs}),
                       "definition": definition})


def changes_for(event: Mapping[str, Any], repairs: tuple[str, ...] = ()) -> list[Change]:
    """Every change record ``event`` (already validated) implies."""
    return list(_changes(event, repairs))


def _changes(event: Mapping[str, Any], repairs: tuple[str, ...]) -> Iterator[Change]:
    time = to_micros(event["eventTime"])
    job: Mapping[str, Any] = event.get("job") or {}
    run: Mapping[str, Any] = event.get("run") or {}
    inputs = _datasets(event.get("inputs"))
    outputs = _datasets(event.get("outputs"))
    event_type = event.get("eventType") or "OTHER"
    run_id: str | None = run.get("runId")

    if isinstance(event.get("dataset"), Mapping):  # a DatasetEvent
        yield from _dataset_changes(event["dataset"], time, None, run_id=None, direction=None)
        return

    job_ns, job_name = job["namespace"], job["name"]
    jkey = job_key(job_ns, job_name)
    job_facets = job.get("facets") or {}
    yield Change(jkey, "Job", {"namespace": job_ns, "name": job_name,
                               "facets": _facets_json(job_facets)}, time)

    version_id = None
    if inputs or outputs:
        definition = {k: _without_meta(job_facets[k])
                      for k in DEFINING_JOB_FACETS if k in job_facets}
        in_refs = [(d["namespace"], d["name"]) for d in inputs]
        out_refs = [(d["namespace"], d["name"]) for d in outputs]
        version_id = job_version_id(job_ns, job_name, in_refs, out_refs, definition)
        yield Change(jkey, "JobVersion", {
            "id": version_id, "jobNamespace": job_ns, "jobName": job_name,
            "inputs": _refs(inputs), "outputs": _refs(outputs),
            "definition": canonical_json(definition) if definition else None,
        }, time)

    if run_id is not None:
        yield Change(f"run:{run_id}", "Run", _run_body(run, job_ns, job_name, event_type,
                                                      version_id, repairs), time)
    if not (inputs or outputs):
        return
    yield Change(jkey, "JobLineage", {
        "jobNamespace": job_ns, "jobName": job_name,
        "inputs": _refs(inputs), "outputs": _refs(outputs)}, time)
    terminal = event_type in TERMINAL_STATES
    run_io: dict[str, list[dict[str, Any]]] = {"inputs": [], "outputs": []}
    for direction, datasets in (("INPUT", inputs), ("OUTPUT", outputs)):
        for dataset in datasets:
            changes = list(_dataset_changes(dataset, time, terminal, run_id, direction))
            yield from changes
            versions = [c.body["id"] for c in changes if c.kind == "DatasetVersion"]
            io_facets = dataset.get("inputFacets" if direction == "INPUT" else "outputFacets")
            run_io["inputs" if direction == "INPUT" else "outputs"].append({
                "namespace": dataset["namespace"], "name": dataset["name"],
                "versionId": versions[0] if versions else None,
                "facets": _facets_json(io_facets)})
    if run_id is not None:
        yield Change(f"run:{run_id}", "RunIO", {"runId": run_id, **run_io}, time)


def _refs(datasets: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Sorted, distinct (namespace, name) references."""
    return [{"namespace": ns, "name": n}
            for ns, n in sorted({(d["namespace"], d["name"]) for d in datasets})]


def _datasets(value: Any) -> list[Mapping[str, Any]]:
    return [d for d in value if isinstance(d, Mapping)] if isinstance(value, list) else []


def _run_body(run: Mapping[str, Any], job_ns: str, job_name: str, event_type: str,
              version_id: str | None, repairs: tuple[str, ...]) -> dict[str, Any]:
    facets = run.get("facets") or {}
    parent = _mapping(facets.get("parent"))
    root = _mapping(parent.get("root"))

    def ref(node: Mapping[str, Any], part: str, field: str) -> str | None:
        inner = node.get(part)
        return _str_or_none(inner.get(field)) if isinstance(inner, Mapping) else None

    return {
        "runId": run["runId"], "jobNamespace": job_ns, "jobName": job_name,
        "eventType": event_type, "facets": _facets_json(facets), "jobVersionId": version_id,
        "parentRunId": ref(parent, "run", "runId"),
        "parentJobNamespace": ref(parent, "job", "namespace"),
        "parentJobName": ref(parent, "job", "name"),
        "rootRunId": ref(root, "run", "runId"),
        "rootJobNamespace": ref(root, "job", "namespace"),
        "rootJobName": ref(root, "job", "name"),
        "repairs": list(repairs),
    }


def _dataset_changes(dataset: Mapping[str, Any], time: int, terminal: bool | None,
                     run_id: str | None, direction: str | None) -> Iterator[Change]:
    ns, name = dataset["namespace"], dataset["name"]
    dkey = dataset_key(ns, name)
    facets = dataset.get("facets") or {}
    yield Change(dkey, "Dataset", {"namespace": ns, "name": name,
                                   "facets": _facets_json(facets)}, time)

    fields = schema_fields(dataset)
    producing_run = run_id if direction == "OUTPUT" else None
    version_id = None
    if fields or (direction == "OUTPUT" and terminal):
        version_id = dataset_version_id(ns, name, fields, producing_run)
        yield Change(dkey, "DatasetVersion", {
            "id": version_id, "datasetNamespace": ns, "datasetName": name,
            "fields": fields, "producingRunId": producing_run,
        }, time)
    yield from _symlinks(facets, ns, name, dkey, time)
    yield from _column_lineage(facets, ns, name, dkey, time)


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
                    time: int) -> Iterator[Change]:
    facet = facets.get("columnLineage")
    if not isinstance(facet, Mapping):
        return
    edges = _column_edges(_plain_encoder.encode(
        {"fields": facet.get("fields"), "dataset": facet.get("dataset")}))
    if edges:
        yield Change(dkey, "ColumnLineage", {"targetNamespace": ns, "targetDataset": name,
                                             "edges": edges}, time)


@lru_cache(maxsize=4096)
def _column_edges(raw: bytes) -> list[dict[str, Any]]:
    """The edges of a columnLineage facet (its ``fields`` and ``dataset`` parts), once per
    distinct content; shared between calls, not to be changed."""
    facet = msgspec.json.decode(raw)
    edges: list[dict[str, Any]] = []
    fields = facet.get("fields")
    for target, spec in (fields.items() if isinstance(fields, Mapping) else ()):
        if isinstance(spec, Mapping):
            _add_edges(edges, spec.get("inputFields"), target,
                       legacy={"type": spec.get("transformationType"),
                               "description": spec.get("transformationDescription")})
    _add_edges(edges, facet.get("dataset"), None, legacy={})
    return edges


def _add_edges(edges: list[dict[str, Any]], sources: Any, target: str | None,
               legacy: Mapping[str, Any]) -> None:
    for source in sources if isinstance(sources, list) else ():
        if not isinstance(source, Mapping):
            continue
        transformations = [t for t in source.get("transformations") or () if isinstance(t, Mapping)]
        for t in transformations or [legacy]:
            masking = t.get("masking")
            edges.append({
                "sourceNamespace": source["namespace"], "sourceDataset": source["name"],
                "sourceField": source["field"], "targetField": target,
                "type": _str_or_none(t.get("type")), "subtype": _str_or_none(t.get("subtype")),
                "description": _str_or_none(t.get("description")),
                "masking": masking if isinstance(masking, bool) else None,
            })
