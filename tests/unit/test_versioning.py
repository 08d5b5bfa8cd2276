"""Unit tests of event -> change records and content-addressed versions (DESIGN.md "Versions").

The builders at the top make *valid* OpenLineage events; test_pipeline.py reuses them.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from sinks import graph, timeline
from stream_processor import versioning
from stream_processor.versioning import canonical_json, changes_for, content_id, to_micros

pytestmark = pytest.mark.unit

RUN_ID = "3f1d3a8e-9b2c-4c1e-8a7b-1234567890ab"
OTHER_RUN_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.9.0/client/python"
SPEC = "https://openlineage.io/spec"
T0 = "2024-05-01T12:00:00Z"
T0_MICROS = 1_714_564_800_000_000


def facet(spec: str = "2-0-2/OpenLineage.json#/$defs/BaseFacet", **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"{SPEC}/{spec}", **fields}


def dataset(name: str, namespace: str = "pg", columns: list[dict[str, Any]] | None = None,
            **facets: Any) -> dict[str, Any]:
    """A dataset; ``columns`` become its schema facet."""
    if columns is not None:
        facets["schema"] = facet("facets/1-1-1/SchemaDatasetFacet.json", fields=columns)
    return {"namespace": namespace, "name": name, "facets": facets}


def job_facets() -> dict[str, Any]:
    return {
        "sql": facet("facets/1-1-0/SQLJobFacet.json", query="INSERT INTO c SELECT * FROM a"),
        "sourceCode": facet("facets/1-0-1/SourceCodeJobFacet.json", language="python",
                            sourceCode="print(1)"),
        "sourceCodeLocation": facet("facets/1-0-1/SourceCodeLocationJobFacet.json", type="git",
                                    url="https://github.com/acme/etl/blob/main/daily.py"),
        "jobType": facet("facets/2-0-3/JobTypeJobFacet.json", processingType="BATCH",
                         integration="SPARK", jobType="QUERY"),
        "documentation": facet("facets/1-1-0/DocumentationJobFacet.json",
                               description="The daily load."),
    }


def run_event(event_type: str = "COMPLETE", *, inputs: list[dict[str, Any]] | None = None,
              outputs: list[dict[str, Any]] | None = None, run_id: str = RUN_ID,
              event_time: str = T0, run_facets: dict[str, Any] | None = None,
              facets_of_job: dict[str, Any] | None = None) -> dict[str, Any]:
    """A valid RunEvent: job etl/daily reading pg/a, pg/b and writing pg/c by default."""
    return {
        "eventType": event_type,
        "eventTime": event_time,
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": run_facets or {}},
        "job": {"namespace": "etl", "name": "daily",
                "facets": job_facets() if facets_of_job is None else facets_of_job},
        "inputs": [dataset("a"), dataset("b")] if inputs is None else inputs,
        "outputs": [dataset("c")] if outputs is None else outputs,
    }


def bodies(event: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [c.body for c in changes_for(event) if c.kind == kind]


def only(event: dict[str, Any], kind: str) -> dict[str, Any]:
    found = bodies(event, kind)
    assert len(found) == 1, f"expected one {kind}, found {found}"
    return found[0]


def run_version(event: dict[str, Any]) -> dict[str, Any] | None:
    """The JobVersion the sink derives (sinks.timeline) for a run made of this one event, from
    the event's Run and RunIO records; None when the run makes none."""
    run = only(event, "Run")
    row = graph.row("Run", {"eventTime": 0, "payload": ("Run", run)})
    io = bodies(event, "RunIO")
    return timeline.version_of(
        run["jobNamespace"], run["jobName"],
        [row[f"{k}Facet"] for k in timeline.DEFINING_JOB_FACETS],
        [(d["namespace"], d["name"]) for b in io for d in b["inputs"]],
        [(d["namespace"], d["name"]) for b in io for d in b["outputs"]])


def job_version_id(event: dict[str, Any]) -> str:
    version = run_version(event)
    assert version is not None, "the run makes no job version"
    return str(version["id"])


def version_of(event: dict[str, Any], name: str) -> dict[str, Any] | None:
    found = [b for b in bodies(event, "DatasetVersion") if b["datasetName"] == name]
    assert len(found) <= 1
    return found[0] if found else None


def run_io_version(event: dict[str, Any], name: str) -> str | None:
    """The dataset version the run's RunIO record says it read or wrote as dataset ``name``."""
    record = only(event, "RunIO")
    (entry,) = (d for side in ("inputs", "outputs") for d in record[side] if d["name"] == name)
    version: str | None = entry["versionId"]
    return version


def lineage_edges(event: dict[str, Any]) -> set[tuple[str, str]]:
    """(dataset name, "inputs" | "outputs") pairs of the event's job lineage records."""
    return {(ref["name"], side) for record in bodies(event, "JobLineage")
            for side in ("inputs", "outputs") for ref in record[side]}


# --- Job versions -------------------------------------------------------------------------------

Edit = Callable[[dict[str, Any]], None]


def _set_job_facet(key: str, **fields: Any) -> Edit:
    def edit(event: dict[str, Any]) -> None:
        event["job"]["facets"][key].update(fields)
    return edit


def _add_job_facet(key: str, value: dict[str, Any]) -> Edit:
    def edit(event: dict[str, Any]) -> None:
        event["job"]["facets"][key] = value
    return edit


def _drop_job_facet(key: str) -> Edit:
    def edit(event: dict[str, Any]) -> None:
        del event["job"]["facets"][key]
    return edit


def _append(side: str, item: dict[str, Any]) -> Edit:
    def edit(event: dict[str, Any]) -> None:
        event[side].append(item)
    return edit


def _pop(side: str) -> Edit:
    def edit(event: dict[str, Any]) -> None:
        event[side].pop()
    return edit


def _reverse_inputs(event: dict[str, Any]) -> None:
    event["inputs"].reverse()


def _repeat_first_input(event: dict[str, Any]) -> None:
    event["inputs"].append(copy.deepcopy(event["inputs"][0]))


def _other_run(event: dict[str, Any]) -> None:
    event["run"]["runId"] = OTHER_RUN_ID
    event["eventType"] = "START"
    event["eventTime"] = "2024-06-01T00:00:00Z"


def _split_names_differently(event: dict[str, Any]) -> None:
    # ("s3://bucket", "x/y") and ("s3://bucket/x", "y") are different datasets.
    event["inputs"] = [dataset("x/y", namespace="s3://bucket")]


JOB_VERSION_CHANGES: dict[str, Edit] = {
    "sql query": _set_job_facet("sql", query="INSERT INTO c SELECT id FROM a"),
    "source code": _set_job_facet("sourceCode", sourceCode="print(2)"),
    "source code location": _set_job_facet(
        "sourceCodeLocation", url="https://github.com/acme/etl/blob/v2/daily.py"),
    "job type": _set_job_facet("jobType", processingType="STREAMING"),
    "defining facet removed": _drop_job_facet("sql"),
    "input added": _append("inputs", dataset("d")),
    "input removed": _pop("inputs"),
    "output added": _append("outputs", dataset("e")),
    "output removed": _pop("outputs"),
    "input moved to another namespace": lambda e: e["inputs"][0].update(namespace="mysql"),
}

JOB_VERSION_KEEPS: dict[str, Edit] = {
    "input order": _reverse_inputs,
    "sql _producer": _set_job_facet("sql", _producer="https://example.com/other-producer"),
    "sourceCode _schemaURL": _set_job_facet(
        "sourceCode", _schemaURL=f"{SPEC}/facets/1-0-0/SourceCodeJobFacet.json"),
    "documentation": _set_job_facet("documentation", description="Rewritten docs."),
    "ownership added": _add_job_facet("ownership", facet(
        "facets/1-0-1/OwnershipJobFacet.json", owners=[{"name": "team:data", "type": "TEAM"}])),
    "a custom job facet": _add_job_facet("acme_cost", facet(cost=3)),
    "dataset facets": lambda e: e["inputs"][0].update(
        dataset("a", columns=[{"name": "id", "type": "int"}])),
    "another run of the job": _other_run,
}


@pytest.mark.parametrize("edit", JOB_VERSION_CHANGES.values(), ids=JOB_VERSION_CHANGES.keys())
def test_a_change_of_what_defines_a_job_makes_a_new_job_version(edit: Edit) -> None:
    event = run_event()
    changed = copy.deepcopy(event)
    edit(changed)
    assert job_version_id(changed) != job_version_id(event)


@pytest.mark.parametrize("edit", JOB_VERSION_KEEPS.values(), ids=JOB_VERSION_KEEPS.keys())
def test_what_does_not_define_a_job_keeps_its_job_version(edit: Edit) -> None:
    event = run_event()
    changed = copy.deepcopy(event)
    edit(changed)
    assert job_version_id(changed) == job_version_id(event)


def test_datasets_whose_namespace_and_name_only_join_alike_make_different_job_versions() -> None:
    event = run_event(inputs=[dataset("y", namespace="s3://bucket/x")])
    changed = copy.deepcopy(event)
    _split_names_differently(changed)
    assert job_version_id(changed) != job_version_id(event)


def test_an_input_listed_twice_makes_the_same_job_version_as_listed_once() -> None:
    event = run_event()
    twice = copy.deepcopy(event)
    _repeat_first_input(twice)
    assert run_version(twice) == run_version(event)


def test_a_job_version_lists_its_datasets_and_its_defining_facets_without_meta() -> None:
    version = run_version(run_event(inputs=[dataset("b"), dataset("a")]))
    assert version is not None
    assert version["inputs"] == [["pg", "a"], ["pg", "b"]]
    assert version["outputs"] == [["pg", "c"]]
    definition = canonical_json({k: {f: v for f, v in body.items() if not f.startswith("_")}
                                 for k, body in job_facets().items() if k != "documentation"})
    assert version["definition"] == definition


@pytest.mark.parametrize("event_type", ["START", "RUNNING", "COMPLETE"])
def test_an_event_without_inputs_or_outputs_makes_no_job_version(event_type: str) -> None:
    event = run_event(event_type, inputs=[], outputs=[])
    assert "JobVersion" not in {c.kind for c in changes_for(event)}
    assert lineage_edges(event) == set()
    assert run_version(event) is None


def test_the_processor_makes_no_job_version_the_run_record_carries_the_definition() -> None:
    event = run_event()
    assert "JobVersion" not in {c.kind for c in changes_for(event)}
    run = only(event, "Run")
    assert run["jobVersionId"] is None
    assert run["definition"] == canonical_json({
        k: {f: v for f, v in body.items() if not f.startswith("_")}
        for k, body in job_facets().items() if k != "documentation"})


def test_lineage_edges_follow_the_data_flow() -> None:
    assert lineage_edges(run_event()) == {("a", "inputs"), ("b", "inputs"), ("c", "outputs")}


# --- Dataset versions ---------------------------------------------------------------------------

COLUMNS = [{"name": "id", "type": "int", "description": "key"}, {"name": "v", "type": "string"}]


def _with_output_columns(columns: list[dict[str, Any]], run_id: str = RUN_ID) -> dict[str, Any]:
    return run_event(outputs=[dataset("c", columns=columns)], run_id=run_id)


def _output_version_id(event: dict[str, Any]) -> str:
    version = version_of(event, "c")
    assert version is not None
    return str(version["id"])


@pytest.mark.parametrize(("columns", "run_id", "changes"), [
    ([{"name": "id", "type": "int"}, {"name": "w", "type": "string"}], RUN_ID, True),
    ([{"name": "id", "type": "bigint"}, {"name": "v", "type": "string"}], RUN_ID, True),
    ([{"name": "id", "type": "int"}], RUN_ID, True),
    (COLUMNS, OTHER_RUN_ID, True),
    ([{"name": "id", "type": "int", "description": "changed"}, {"name": "v", "type": "string"}],
     RUN_ID, False),
], ids=["field renamed", "field type", "field removed", "other producing run", "description"])
def test_a_dataset_version_changes_with_its_fields_and_its_producing_run(
        columns: list[dict[str, Any]], run_id: str, changes: bool) -> None:
    before = _output_version_id(_with_output_columns(COLUMNS))
    after = _output_version_id(_with_output_columns(columns, run_id))
    assert (after != before) is changes


def test_an_output_version_names_its_producing_run() -> None:
    version = version_of(_with_output_columns(COLUMNS), "c")
    assert version is not None
    assert version["producingRunId"] == RUN_ID


@pytest.mark.parametrize("event_type", ["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"])
def test_reading_a_dataset_with_its_schema_makes_a_version_of_that_schema_the_run_read(
        event_type: str) -> None:
    event = run_event(event_type=event_type, inputs=[dataset("a", columns=COLUMNS)])
    version = version_of(event, "a")
    assert version is not None
    assert [(f["name"], f["type"]) for f in version["fields"]] == [
        (c["name"], c["type"]) for c in COLUMNS]
    assert version["producingRunId"] is None
    assert run_io_version(event, "a") == version["id"]


def test_every_reader_and_dataset_event_of_a_schema_share_its_version() -> None:
    read = run_event(inputs=[dataset("a", columns=COLUMNS)])
    other_reader = run_event("START", inputs=[dataset("a", columns=COLUMNS)],
                             run_id=OTHER_RUN_ID, event_time="2024-05-02T12:00:00Z")
    announced = {"eventTime": T0, "producer": PRODUCER,
                 "schemaURL": f"{SPEC}/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
                 "dataset": dataset("a", columns=COLUMNS)}
    ids = {str((version_of(e, "a") or {}).get("id")) for e in (read, other_reader, announced)}
    assert len(ids) == 1 and ids != {"None"}


def test_a_read_schema_and_a_write_of_it_are_different_versions() -> None:
    """The write is a version of its own (DESIGN.md: "or a write by a run"); whether the read
    changes the schema at its time is the sink's to say, from all the dataset's versions."""
    event = run_event(inputs=[dataset("c", columns=COLUMNS)],
                      outputs=[dataset("c", columns=COLUMNS)])
    versions = [b for b in bodies(event, "DatasetVersion") if b["datasetName"] == "c"]
    assert sorted(v["producingRunId"] or "" for v in versions) == ["", RUN_ID]
    assert len({v["id"] for v in versions}) == 2


def test_a_read_version_does_not_depend_on_the_time_or_the_order_of_its_reads() -> None:
    early = run_event(inputs=[dataset("a", columns=COLUMNS)], event_time=T0)
    late = run_event(inputs=[dataset("a", columns=COLUMNS)], run_id=OTHER_RUN_ID,
                     event_time="2024-06-01T12:00:00Z")
    changes = [c for e in (late, early) for c in changes_for(e)
               if c.kind == "DatasetVersion" and c.body["datasetName"] == "a"]
    assert len({c.body["id"] for c in changes}) == 1
    assert sorted(c.event_time for c in changes) == [T0_MICROS, to_micros(late["eventTime"])]


@pytest.mark.parametrize("event_type", ["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"])
def test_an_input_without_a_schema_makes_no_dataset_version(event_type: str) -> None:
    event = run_event(event_type)
    assert version_of(event, "a") is None
    assert run_io_version(event, "a") is None


@pytest.mark.parametrize(("event_type", "makes_version"), [
    ("START", False), ("RUNNING", False), ("OTHER", False),
    ("COMPLETE", True), ("FAIL", False), ("ABORT", False),
])
def test_an_output_without_a_schema_makes_a_version_only_when_its_run_completes(
        event_type: str, makes_version: bool) -> None:
    event = run_event(event_type)
    version = version_of(event, "c")
    assert (version is not None) is makes_version
    assert run_io_version(event, "c") == (version["id"] if version else None)


def test_an_output_with_a_schema_makes_a_version_at_start() -> None:
    event = run_event("START", outputs=[dataset("c", columns=COLUMNS)])
    assert run_io_version(event, "c") == _output_version_id(event)


def test_nested_schema_fields_are_flattened_as_parent_dot_child_with_ordinals() -> None:
    columns = [
        {"name": "id", "type": "int"},
        {"name": "address", "type": "struct", "fields": [
            {"name": "city", "type": "string"},
            {"name": "geo", "type": "struct", "fields": [{"name": "lat", "type": "double"}]},
        ]},
        {"name": "email", "type": "string", "description": "contact"},
    ]
    fields = only(run_event(outputs=[dataset("c", columns=columns)]), "DatasetVersion")["fields"]
    assert [(f["name"], f["type"]) for f in fields] == [
        ("id", "int"), ("address", "struct"), ("address.city", "string"),
        ("address.geo", "struct"), ("address.geo.lat", "double"), ("email", "string")]
    assert [f["ordinal"] for f in fields] == list(range(len(fields)))
    assert fields[-1]["description"] == "contact"


# --- Column lineage and symlinks ----------------------------------------------------------------

def _source(field: str, *transformations: dict[str, Any]) -> dict[str, Any]:
    source: dict[str, Any] = {"namespace": "pg", "name": "a", "field": field}
    if transformations:
        source["transformations"] = list(transformations)
    return source


def _column_lineage_of(**facet_fields: Any) -> list[dict[str, Any]]:
    """The column edges of a columnLineage facet on output pg/c, each with its target dataset."""
    lineage = facet("facets/1-2-0/ColumnLineageDatasetFacet.json", **facet_fields)
    event = run_event(outputs=[dataset("c", columnLineage=lineage)])
    edges = [{**edge, "targetNamespace": body["targetNamespace"],
              "targetDataset": body["targetDataset"]}
             for body in bodies(event, "ColumnLineage") for edge in body["edges"]]
    return sorted(edges, key=canonical_json)


def _edge(source_field: str, target_field: str | None, type_: str | None = None,
          subtype: str | None = None, description: str | None = None,
          masking: bool | None = None) -> dict[str, Any]:
    return {"sourceNamespace": "pg", "sourceDataset": "a", "sourceField": source_field,
            "targetNamespace": "pg", "targetDataset": "c", "targetField": target_field,
            "type": type_, "subtype": subtype, "description": description, "masking": masking}


def test_column_lineage_fields_feed_target_columns_with_their_transformations() -> None:
    records = _column_lineage_of(fields={
        "total": {"inputFields": [_source(
            "amount",
            {"type": "DIRECT", "subtype": "AGGREGATION", "description": "sum", "masking": False},
            {"type": "INDIRECT", "subtype": "GROUP_BY"},
        )]},
        "email_hash": {"inputFields": [_source(
            "email", {"type": "DIRECT", "subtype": "TRANSFORMATION", "masking": True})]},
    })
    assert records == sorted([
        _edge("email", "email_hash", "DIRECT", "TRANSFORMATION", masking=True),
        _edge("amount", "total", "DIRECT", "AGGREGATION", "sum", masking=False),
        _edge("amount", "total", "INDIRECT", "GROUP_BY"),
    ], key=canonical_json)


def test_column_lineage_dataset_dependencies_affect_the_whole_target() -> None:
    records = _column_lineage_of(fields={}, dataset=[
        _source("region", {"type": "INDIRECT", "subtype": "FILTER"})])
    assert records == [_edge("region", None, "INDIRECT", "FILTER")]


def test_legacy_transformation_fields_are_used_without_transformations() -> None:
    records = _column_lineage_of(fields={"total": {
        "inputFields": [_source("amount")],
        "transformationType": "SUM", "transformationDescription": "sum of amounts"}})
    assert records == [_edge("amount", "total", "SUM", None, "sum of amounts")]


def test_symlinks_point_from_each_alias_to_the_dataset_itself() -> None:
    symlinks = facet("facets/1-0-1/SymlinksDatasetFacet.json", identifiers=[
        {"namespace": "hive://metastore", "name": "warehouse.c", "type": "TABLE"},
        {"namespace": "pg", "name": "c", "type": "TABLE"},
    ])
    event = run_event(outputs=[dataset("c", symlinks=symlinks)])
    assert bodies(event, "Symlink") == [{
        "aliasNamespace": "hive://metastore", "aliasName": "warehouse.c",
        "datasetNamespace": "pg", "datasetName": "c", "type": "TABLE"}]


# --- Runs and other event kinds -----------------------------------------------------------------

PARENT = {"run": {"runId": OTHER_RUN_ID}, "job": {"namespace": "airflow", "name": "dag.task"}}
ROOT = {"run": {"runId": "0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"},
        "job": {"namespace": "airflow", "name": "dag"}}


@pytest.mark.parametrize(("parent", "root"), [
    (PARENT, None), ({**PARENT, "root": ROOT}, ROOT),
], ids=["parent", "parent with root"])
def test_the_parent_facet_links_a_run_to_its_parent_and_root(
        parent: dict[str, Any], root: dict[str, Any] | None) -> None:
    run = only(run_event(run_facets={
        "parent": facet("facets/1-1-0/ParentRunFacet.json", **parent)}), "Run")
    assert (run["parentRunId"], run["parentJobNamespace"], run["parentJobName"]) == (
        OTHER_RUN_ID, "airflow", "dag.task")
    expected_root = (root["run"]["runId"], "airflow", "dag") if root else (None, None, None)
    assert (run["rootRunId"], run["rootJobNamespace"], run["rootJobName"]) == expected_root


def test_a_run_without_a_parent_has_no_parent_fields() -> None:
    run = only(run_event(), "Run")
    assert run["runId"] == RUN_ID
    assert (run["jobNamespace"], run["jobName"], run["eventType"]) == ("etl", "daily", "COMPLETE")
    assert all(run[k] is None for k in ("parentRunId", "parentJobName", "rootRunId", "rootJobName"))


def test_a_dataset_event_describes_only_its_dataset() -> None:
    event = {"eventTime": T0, "producer": PRODUCER,
             "schemaURL": f"{SPEC}/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
             "dataset": dataset("c", columns=COLUMNS)}
    changes = changes_for(event)
    assert sorted(c.kind for c in changes) == ["Dataset", "DatasetVersion"]
    assert only(event, "DatasetVersion")["producingRunId"] is None
    assert {c.event_time for c in changes} == {T0_MICROS}


def test_a_job_event_describes_the_job_and_its_lineage_without_a_run() -> None:
    event = run_event()
    del event["run"], event["eventType"]
    kinds = {c.kind for c in changes_for(event)}
    assert {"Job", "JobLineage", "Dataset"} <= kinds
    # Without a run, no version: its pairs are lineage "ever", never "as of" a time.
    assert not {"Run", "RunIO", "JobVersion", "DatasetVersion"} & kinds
    assert lineage_edges(event) == lineage_edges(run_event())


def test_every_change_is_keyed_by_the_node_it_belongs_to() -> None:
    keys = {(c.kind, c.key) for c in changes_for(run_event())}
    assert ("Job", "job:etl/daily") in keys
    assert ("JobLineage", "job:etl/daily") in keys
    assert ("RunIO", f"run:{RUN_ID}") in keys
    assert ("Run", f"run:{RUN_ID}") in keys
    assert ("Dataset", "dataset:pg/c") in keys


# --- Times and content addresses ----------------------------------------------------------------

@pytest.mark.parametrize(("timestamp", "micros"), [
    ("2024-05-01T12:00:00Z", T0_MICROS),
    ("2024-05-01T14:00:00+02:00", T0_MICROS),
    ("2024-05-01T07:00:00-05:00", T0_MICROS),
    ("2024-05-01T12:00:00.123456Z", T0_MICROS + 123_456),
    ("2024-05-01T12:00:00.123456789Z", T0_MICROS + 123_456),
    ("2024-05-01T12:00:00.999999999+00:00", T0_MICROS + 999_999),
    ("1969-12-31T23:59:59.5Z", -500_000),
    # RFC 3339 (and docs/validation.md) allow lower-case t and z and one final newline.
    ("2024-05-01t12:00:00z", T0_MICROS),
    ("2024-05-01T12:00:00Z\n", T0_MICROS),
])
def test_to_micros_reads_rfc_3339_times_as_utc_microseconds(timestamp: str, micros: int) -> None:
    assert to_micros(timestamp) == micros


def test_canonical_json_and_content_id_ignore_key_order() -> None:
    one = {"b": {"y": 1, "x": [{"q": 1, "p": 2}]}, "a": None}
    other = {"a": None, "b": {"x": [{"p": 2, "q": 1}], "y": 1}}
    assert canonical_json(one) == canonical_json(other)
    assert canonical_json(one) == '{"a":null,"b":{"x":[{"p":2,"q":1}],"y":1}}'
    assert content_id(one) == content_id(other)
    assert content_id(one) != content_id({**other, "a": 0})


# --- what is remembered per content gives the records worked out afresh ------------------------

def _lineage_facet(*sources: str) -> dict[str, Any]:
    return facet("facets/1-2-0/ColumnLineageDatasetFacet.json", fields={
        "x": {"inputFields": [{"namespace": "pg", "name": s, "field": "id", "transformations": [
            {"type": "DIRECT", "subtype": "IDENTITY"}]} for s in sources]},
        "y": {"inputFields": [{"namespace": "pg", "name": "a", "field": "v"}],
              "transformationType": "IDENTITY"}},
        dataset=[{"namespace": "pg", "name": "a", "field": "k"}])


def _rich_event(run_id: str = RUN_ID, event_type: str = "COMPLETE") -> dict[str, Any]:
    symlinks = facet("facets/1-0-1/SymlinksDatasetFacet.json", identifiers=[
        {"namespace": "hive", "name": "db.c", "type": "TABLE"}])
    return run_event(event_type, run_id=run_id, inputs=[
        dataset("a", columns=COLUMNS), dataset("b", columns=COLUMNS)], outputs=[
        dataset("c", columns=COLUMNS, columnLineage=_lineage_facet("a", "b"), symlinks=symlinks),
        dataset("d")])


def _snapshot(changes: list[Any]) -> list[tuple[Any, ...]]:
    return [(c.key, c.kind, canonical_json(c.body), repr(c.body), c.event_time) for c in changes]


def test_records_from_the_memos_are_those_worked_out_afresh() -> None:
    versioning.clear_memos()
    events = [_rich_event(), _rich_event(OTHER_RUN_ID, "START"), _rich_event()]
    fresh = []
    for event in events:
        versioning.clear_memos()
        fresh.append(_snapshot(changes_for(copy.deepcopy(event))))
    versioning.clear_memos()
    for _ in range(2):
        assert [_snapshot(changes_for(copy.deepcopy(event))) for event in events] == fresh


def test_the_content_ids_worked_out_along_the_way_are_the_state_keys_ids() -> None:
    versioning.clear_memos()
    for event in (_rich_event(), _rich_event(), _rich_event(OTHER_RUN_ID, "START")):
        for change in changes_for(event):
            if change.content is None:
                continue
            if change.kind in ("Job", "Dataset"):
                assert change.content == content_id(change.body["facets"])
            elif change.kind in ("JobVersion", "DatasetVersion"):
                assert change.content == change.body["id"]
            else:
                assert change.content == content_id(change.body)


def test_an_output_version_id_from_the_memo_is_the_documented_hash() -> None:
    versioning.clear_memos()
    for run_id in (RUN_ID, OTHER_RUN_ID):
        (found,) = [c.body for c in changes_for(_rich_event(run_id))
                    if c.kind == "DatasetVersion" and c.body["datasetName"] == "c"]
        assert found["id"] == versioning.dataset_version_id("pg", "c", found["fields"], run_id)


@pytest.mark.parametrize("event", [
    _rich_event(),
    {**_rich_event(), "inputs": [1, "x", None, {"namespace": 1, "name": "a"}, {"facets": []}]},
    {**_rich_event(), "outputs": []},
    {**_rich_event(), "dataset": {"namespace": "pg", "name": "t", "facets": {}}},
    {**_rich_event(), "dataset": [1, 2], "a/b~c": {"é": 1.0, "\U0001f600": True}},
    {"inputs": [{"namespace": "n", "name": "m"}], "zz": None, "A": [], "_": {}},
], ids=["run event", "odd inputs", "no outputs", "a dataset", "odd keys", "no facets"])
def test_an_event_content_id_is_the_content_id_of_its_canonical_json(
        event: dict[str, Any]) -> None:
    versioning.clear_memos()
    for _ in range(2):
        assert versioning.event_content_id(event) == content_id(event)
