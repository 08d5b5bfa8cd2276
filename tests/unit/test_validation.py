"""Unit tests of the processor's validator (DESIGN.md "Validation policy"; docs/validation.md).

The differential test (test_validation_differential.py) checks the decisions against the
official schema at scale; these tests pin the behaviour one rule at a time, with its reasons.
"""

from __future__ import annotations

import copy
import doctest
import json
from typing import Any
from uuid import uuid5

import msgspec
import pytest

import schemas.validation as validation
from schemas.limits import MAX_KEY_BYTES
from schemas.validation import (
    REPAIRS_FACET,
    RUN_ID_NAMESPACE,
    STANDARD_FACETS,
    ValidationResult,
    validate,
)
from schemas.validation.spec import SPEC as COMPILED_SPEC
from schemas.validation.verdicts import MEMO_ENTRIES, MEMO_FACET_BYTES, VERDICTS

pytestmark = pytest.mark.unit

RUN_ID = "3f1d3a8e-9b2c-4c1e-8a7b-1234567890ab"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.9.0/client/python"
SPEC = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def facet(**fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": f"{SPEC}#/$defs/BaseFacet", **fields}


def run_event(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T12:00:00.123+02:00",
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/RunEvent",
        "run": {
            "runId": RUN_ID,
            "facets": {"nominalTime": facet(nominalStartTime="2024-05-01T00:00:00Z")},
        },
        "job": {"namespace": "etl", "name": "daily", "facets": {"sql": facet(query="SELECT 1")}},
        "inputs": [{"namespace": "pg", "name": "public.orders", "facets": {}, "inputFacets": {}}],
        "outputs": [{"namespace": "s3", "name": "bucket/out", "facets": {}, "outputFacets": {}}],
    }
    event.update(changes)
    return event


def job_event() -> dict[str, Any]:
    event = run_event()
    del event["run"], event["eventType"]
    event["schemaURL"] = f"{SPEC}#/$defs/JobEvent"
    return event


def dataset_event() -> dict[str, Any]:
    return {
        "eventTime": "2024-05-01T12:00:00Z",
        "producer": PRODUCER,
        "schemaURL": f"{SPEC}#/$defs/DatasetEvent",
        "dataset": {"namespace": "pg", "name": "public.orders", "facets": {}},
    }


def check(event: Any, **options: Any) -> ValidationResult:
    return validate(msgspec.json.encode(event), **options)


def codes(result: ValidationResult) -> list[tuple[str, str]]:
    return [(reason.code, reason.pointer) for reason in result.reasons]


def dropped(result: ValidationResult) -> dict[str, list[tuple[str, str]]]:
    return {
        facet.pointer: [(reason.code, reason.pointer) for reason in facet.reasons]
        for facet in result.dropped_facets
    }


def at(event: dict[str, Any], *path: str | int) -> Any:
    for token in path:
        event = event[token]  # type: ignore[index]
    return event


# --------------------------------------------------------------------------------------------
# Entry point: size, JSON, object
# --------------------------------------------------------------------------------------------


def test_the_module_docstring_examples_run() -> None:
    assert doctest.testmod(validation).failed == 0


def test_a_valid_run_event_is_accepted_as_it_was_sent() -> None:
    event = run_event()
    result = check(event)
    assert (result.ok, result.kind, result.reasons, result.dropped_facets) == (True, "run", (), ())
    assert result.event == event
    assert result.repairs == ()


def test_a_message_over_the_size_limit_is_refused_before_it_is_parsed() -> None:
    result = validate(b"not even json", max_bytes=5)
    assert codes(result) == [("too_large", "")]
    assert "13 bytes" in result.reasons[0].message and "5" in result.reasons[0].message


def test_a_message_exactly_at_the_size_limit_is_checked() -> None:
    raw = msgspec.json.encode(run_event())
    assert validate(raw, max_bytes=len(raw)).ok


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"\xff", b'{"a": NaN}', b'{"a": 1e400}', b'{"a": "\\ud800"}', b'{"a": "\xff"}'],
    ids=["empty", "truncated", "binary", "NaN", "out of range", "lone surrogate", "bad UTF-8"],
)
def test_bytes_that_are_not_json_are_refused_as_not_json(raw: bytes) -> None:
    result = validate(raw)
    assert codes(result) == [("not_json", "")]
    assert result.event is None and result.kind is None


@pytest.mark.parametrize("value", [[], "event", 1, None])
def test_json_that_is_not_an_object_is_refused_as_not_object(value: Any) -> None:
    assert codes(check(value)) == [("not_object", "")]


def test_json_nested_too_deeply_to_decode_is_refused_as_too_deep() -> None:
    assert codes(validate(b'{"a":' * 5000 + b"1" + b"}" * 5000)) == [("too_deep", "")]


# --------------------------------------------------------------------------------------------
# The core
# --------------------------------------------------------------------------------------------


def test_an_event_without_run_id_is_rejected_with_a_pointer() -> None:
    event = run_event()
    del event["run"]["runId"]
    result = check(event)
    assert not result.ok
    assert codes(result) == [("missing_field", "/run/runId")]
    assert result.reasons[0].message == "required field 'runId' is missing"


@pytest.mark.parametrize(
    "path",
    [
        ("eventTime",),
        ("producer",),
        ("schemaURL",),
        ("job",),
        ("job", "namespace"),
        ("job", "name"),
        ("inputs", 0, "namespace"),
        ("outputs", 0, "name"),
    ],
)
def test_every_missing_required_field_is_reported_at_its_pointer(path: tuple[str | int]) -> None:
    event = run_event()
    del at(event, *path[:-1])[path[-1]]
    assert codes(check(event)) == [("missing_field", "".join(f"/{token}" for token in path))]


def test_a_field_of_the_wrong_type_is_refused_with_what_was_expected_and_found() -> None:
    result = check(run_event(eventTime=1714564800))
    assert codes(result) == [("wrong_type", "/eventTime")]
    assert result.reasons[0].message == "expected a string, found an integer (1714564800)"


def test_an_event_time_without_offset_is_refused_and_the_message_says_so() -> None:
    result = check(run_event(eventTime="2020-12-28T19:51:01.641499"))
    assert codes(result) == [("bad_time", "/eventTime")]
    assert "which has no UTC offset" in result.reasons[0].message


@pytest.mark.parametrize(
    ("event_time", "accepted"),
    [
        ("2024-05-01T12:00:00Z", True),
        ("2024-05-01T12:00:00.123456789-05:30", True),
        ("2024-05-01t12:00:00z", True),  # RFC 3339 allows lower case
        ("2020-02-29T00:00:00Z", True),
        ("2021-02-29T00:00:00Z", False),
        ("1900-02-29T00:00:00Z", False),
        ("0000-01-01T00:00:00Z", False),
        ("2024-05-01T23:59:60Z", False),  # the official checker has no leap seconds
        ("2024-05-01 12:00:00Z", False),
        ("2024-05-01T12:00:00+0200", False),
        ("2024-05-01", False),
    ],
)
def test_event_times_are_rfc_3339_date_times_as_the_official_schema_checks_them(
    event_time: str, accepted: bool
) -> None:
    assert check(run_event(eventTime=event_time)).ok is accepted


@pytest.mark.parametrize(
    ("run_id", "accepted"),
    [
        (RUN_ID, True),
        (RUN_ID.upper(), True),
        (RUN_ID[:30] + "-" + RUN_ID[30:], True),  # uuid.UUID, the official check, ignores it
        ("{" + RUN_ID + "}", False),
        ("urn:uuid:" + RUN_ID, False),
        (RUN_ID.replace("-", ""), False),
        ("fake_run_id", False),
    ],
)
def test_run_ids_are_uuids_as_the_official_schema_checks_them(run_id: str, accepted: bool) -> None:
    result = check(run_event(run={"runId": run_id}))
    assert result.ok is accepted
    assert accepted or codes(result) == [("bad_uuid", "/run/runId")]


def test_an_unknown_event_type_is_refused_as_bad_enum() -> None:
    result = check(run_event(eventType="FINISHED"))
    assert codes(result) == [("bad_enum", "/eventType")]
    assert "START, RUNNING, COMPLETE, ABORT, FAIL, OTHER" in result.reasons[0].message


def test_a_run_event_may_leave_out_its_event_type() -> None:
    event = run_event()
    del event["eventType"]
    assert check(event).ok


@pytest.mark.parametrize("uri", ["github.com/OpenLineage", "/relative", "https://x/a b", ""])
def test_a_producer_that_is_not_an_absolute_uri_is_refused_as_bad_uri(uri: str) -> None:
    assert codes(check(run_event(producer=uri))) == [("bad_uri", "/producer")]


@pytest.mark.parametrize(
    ("producer", "accepted"),
    [("https://x/" + "a" * 600, True), ("https://x/" + "a" * 600 + " b", False)],
    ids=["valid", "invalid"],
)
def test_long_uris_are_checked_like_short_ones(producer: str, accepted: bool) -> None:
    # Short URIs are cached; long ones take another path.
    assert check(run_event(producer=producer)).ok is accepted


@pytest.mark.parametrize(
    "schema_url",
    [
        "https://openlineage.io/spec/1-0-5/OpenLineage.json#/definitions/RunEvent",
        "https://openlineage.io/spec/2-0-0/OpenLineage.json#/$defs/RunEvent",
        "https://openlineage.io/spec/0-0-1/OpenLineage.json",
        "urn:example:any-uri-will-do",
    ],
)
def test_any_schema_url_that_is_a_uri_is_accepted(schema_url: str) -> None:
    assert check(run_event(schemaURL=schema_url)).ok


@pytest.mark.parametrize(
    ("keys", "kind"),
    [
        ({"run", "job"}, "run"),
        ({"run", "job", "dataset"}, "run"),
        ({"job"}, "job"),
        ({"dataset"}, "dataset"),
        ({"dataset", "run"}, "dataset"),  # a run alone does not stop it being a DatasetEvent
    ],
)
def test_the_kind_is_decided_as_the_specs_one_of_decides_it(keys: set[str], kind: str) -> None:
    event = run_event(dataset={"namespace": "pg", "name": "t"})
    del event["eventType"]
    for key in {"run", "job", "dataset"} - keys:
        del event[key]
    if kind == "dataset":
        del event["inputs"], event["outputs"]
    assert check(event).kind == kind


def test_an_event_with_none_of_run_job_and_dataset_is_refused_as_unknown_event_type() -> None:
    event = run_event()
    del event["run"], event["job"]
    assert codes(check(event)) == [("unknown_event_type", "")]


def test_a_job_event_that_is_also_a_valid_dataset_event_is_refused_as_ambiguous() -> None:
    event = job_event()
    event["dataset"] = {"namespace": "pg", "name": "t"}
    assert codes(check(event)) == [("ambiguous_event_type", "")]


def test_a_job_event_that_is_an_invalid_dataset_event_is_a_job_event() -> None:
    event = job_event()
    event["dataset"] = {"namespace": "pg"}
    assert check(event).kind == "job"


def test_a_refused_event_gets_the_reasons_of_the_kind_it_comes_closest_to() -> None:
    event = job_event()
    del event["job"]["name"]
    event["dataset"] = {"facets": {}}
    assert codes(check(event)) == [("missing_field", "/job/name")]
    event["job"] = {}
    event["dataset"] = {"name": "t"}
    assert codes(check(event)) == [("missing_field", "/dataset/namespace")]


def test_a_job_event_is_not_held_to_the_run_event_types() -> None:
    # JobEvent does not define eventType, so the official schema lets any value through.
    event = job_event()
    event["eventType"] = "ANYTHING"
    assert check(event).ok


def test_a_run_event_reports_the_problems_of_a_run_event() -> None:
    event = run_event(run={"runId": "nope"}, job={"name": "daily"})
    assert codes(check(event)) == [("bad_uuid", "/run/runId"), ("missing_field", "/job/namespace")]


def test_inputs_must_be_an_array_of_datasets() -> None:
    assert codes(check(run_event(inputs={"namespace": "pg"}))) == [("wrong_type", "/inputs")]
    assert codes(check(run_event(outputs=["s3://bucket/out"]))) == [("wrong_type", "/outputs/0")]


@pytest.mark.parametrize("facets", [None, [], "schema"])
def test_a_facet_map_must_be_an_object(facets: Any) -> None:
    event = run_event()
    event["job"]["facets"] = facets
    assert codes(check(event)) == [("wrong_type", "/job/facets")]


# --------------------------------------------------------------------------------------------
# Facets
# --------------------------------------------------------------------------------------------


def test_a_standard_facet_that_breaks_its_schema_is_dropped_and_the_event_kept() -> None:
    event = run_event()
    bad = facet(nominalStartTime="yesterday")
    event["run"]["facets"]["nominalTime"] = bad
    event["run"]["facets"]["spark_version"] = facet(version="3.5")
    result = check(event)
    assert result.ok
    assert dropped(result) == {
        "/run/facets/nominalTime": [("bad_time", "/run/facets/nominalTime/nominalStartTime")]
    }
    (dropped_facet,) = result.dropped_facets
    assert (dropped_facet.key, dropped_facet.value) == ("nominalTime", bad)
    assert result.event is not None
    assert result.event["run"]["facets"] == {"spark_version": facet(version="3.5")}
    assert result.event["job"] == event["job"]


def test_a_custom_facet_passes_through_untouched() -> None:
    custom = facet(plan={"nodes": [1, "two", None]}, _deleted="not checked here")
    event = run_event()
    event["run"]["facets"]["spark.logicalPlan"] = custom
    result = check(event)
    assert result.ok and result.event is not None
    assert result.event["run"]["facets"]["spark.logicalPlan"] == custom


@pytest.mark.parametrize(
    ("custom", "expected"),
    [
        ({"_schemaURL": SPEC}, [("missing_field", "/run/facets/custom/_producer")]),
        (facet(_producer="my laptop"), [("bad_uri", "/run/facets/custom/_producer")]),
        ("a string", [("wrong_type", "/run/facets/custom")]),
    ],
)
def test_a_custom_facet_that_is_not_a_facet_rejects_the_event(
    custom: Any, expected: list[tuple[str, str]]
) -> None:
    # The core schema requires every facet to be an object with _producer and _schemaURL URIs.
    event = run_event()
    event["run"]["facets"]["custom"] = custom
    assert codes(check(event)) == expected


def test_a_job_or_dataset_facet_must_mark_deletion_with_a_boolean() -> None:
    event = run_event()
    event["job"]["facets"]["custom"] = facet(_deleted="yes")
    assert codes(check(event)) == [("wrong_type", "/job/facets/custom/_deleted")]


def test_a_standard_facet_key_at_another_place_is_a_custom_facet() -> None:
    event = run_event()
    event["run"]["facets"]["sql"] = facet(query=42)  # sql is a job facet
    event["inputs"][0]["inputFacets"]["schema"] = facet(fields="none")  # schema: dataset facets
    result = check(event)
    assert result.ok and result.dropped_facets == ()


def test_damage_inside_a_nested_facet_drops_the_enclosing_standard_facet() -> None:
    event = run_event()
    event["run"]["facets"]["parent"] = facet(
        run={"runId": RUN_ID, "facets": {"forwarded": {"_schemaURL": SPEC}}},
        job={"namespace": "airflow", "name": "dag"},
    )
    result = check(event)
    assert result.ok
    assert dropped(result) == {
        "/run/facets/parent": [
            ("missing_field", "/run/facets/parent/run/facets/forwarded/_producer")
        ]
    }


def test_input_and_output_facets_are_checked_against_their_own_schemas() -> None:
    event = run_event()
    event["inputs"][0]["inputFacets"]["dataQualityMetrics"] = facet(rowCount=10)
    event["inputs"][0]["facets"]["dataQualityMetrics"] = facet(columnMetrics={})
    event["outputs"][0]["outputFacets"]["outputStatistics"] = facet(rowCount="ten")
    result = check(event)
    assert result.ok
    assert dropped(result) == {
        "/inputs/0/inputFacets/dataQualityMetrics": [
            ("missing_field", "/inputs/0/inputFacets/dataQualityMetrics/columnMetrics")
        ],
        "/outputs/0/outputFacets/outputStatistics": [
            ("wrong_type", "/outputs/0/outputFacets/outputStatistics/rowCount")
        ],
    }


def test_facet_keys_are_escaped_in_pointers() -> None:
    event = run_event()
    event["run"]["facets"]["a/b~c"] = {"_schemaURL": SPEC}
    assert codes(check(event)) == [("missing_field", "/run/facets/a~1b~0c/_producer")]


def test_a_refused_event_still_lists_its_bad_standard_facets() -> None:
    event = run_event(eventType="FINISHED")
    event["job"]["facets"]["sql"] = facet()
    result = check(event)
    assert codes(result) == [("bad_enum", "/eventType")]
    assert dropped(result) == {"/job/facets/sql": [("missing_field", "/job/facets/sql/query")]}


def test_a_facet_nested_too_deeply_to_check_is_dropped_as_too_deep() -> None:
    leaf = {"type": "location", "locations": []}
    condition: dict[str, Any] = leaf
    for _ in range(400):
        condition = {"type": "binary", "operator": "AND", "left": condition, "right": leaf}
    event = run_event()
    event["inputs"][0]["inputFacets"]["subset"] = facet(inputCondition=condition)
    result = check(event)
    assert result.ok
    pointer = "/inputs/0/inputFacets/subset"
    assert dropped(result) == {pointer: [("too_deep", pointer)]}


def lineage_from_job(**source: Any) -> dict[str, Any]:
    return facet(inputs=[{"type": "JOB", **source}])


LOCATION = {"type": "location", "locations": ["s3://bucket/day=1"]}


@pytest.mark.parametrize(
    ("place", "key", "value", "expected"),
    [
        pytest.param(
            ("outputs", 0, "facets"),
            "lineage",
            lineage_from_job(namespace="airflow", name="dag"),
            [],
            id="lineage: namespace with name",
        ),
        pytest.param(
            ("outputs", 0, "facets"),
            "lineage",
            lineage_from_job(namespace="airflow"),
            [("no_match", "")],
            id="lineage: namespace without name (dependentRequired)",
        ),
        pytest.param(
            ("outputs", 0, "facets"),
            "lineage",
            lineage_from_job(type="job"),
            [("no_match", "")],
            id="lineage: enum is case-sensitive",
        ),
        pytest.param(
            ("inputs", 0, "inputFacets"),
            "subset",
            facet(inputCondition=LOCATION),
            [],
            id="subset: one alternative",
        ),
        pytest.param(
            ("inputs", 0, "inputFacets"),
            "subset",
            facet(inputCondition=LOCATION, outputCondition=LOCATION),
            [("ambiguous_match", "")],
            id="subset: two alternatives of a oneOf",
        ),
        pytest.param(
            ("job", "facets"),
            "jobType",
            facet(
                processingType="STREAMING",
                integration="FLINK",
                emissionPattern={
                    "eventTrigger": "PERIODIC",
                    "eventContentMode": "COMPLETE_SNAPSHOT",
                    "windowDuration": 0,
                },
            ),
            [("out_of_range", "/emissionPattern/windowDuration")],
            id="jobType: minimum",
        ),
        pytest.param(
            ("run", "facets"),
            "executionParameters",
            facet(parameters=[{"key": "timeout", "unit": "s"}]),
            [("unexpected_field", "/parameters/0/unit")],
            id="executionParameters: additionalProperties false",
        ),
        pytest.param(
            ("outputs", 0, "outputFacets"),
            "outputStatistics",
            facet(rowCount=2.0),
            [],
            id="outputStatistics: 2.0 is an integer",
        ),
        pytest.param(
            ("outputs", 0, "outputFacets"),
            "outputStatistics",
            facet(rowCount=True),
            [("wrong_type", "/rowCount")],
            id="outputStatistics: true is not an integer",
        ),
    ],
)
def test_standard_facets_follow_every_rule_of_their_schema(
    place: tuple[str | int, ...], key: str, value: Any, expected: list[tuple[str, str]]
) -> None:
    event = run_event()
    at(event, *place)[key] = value
    result = check(event)
    assert result.ok
    pointer = "".join(f"/{token}" for token in (*place, key))
    reasons = [(code, pointer + inner) for code, inner in expected]
    assert dropped(result) == ({pointer: reasons} if reasons else {})


def test_a_reason_for_no_match_names_each_alternatives_first_problem() -> None:
    event = run_event()
    event["outputs"][0]["facets"]["lineage"] = lineage_from_job(namespace="airflow")
    (reason,) = check(event).dropped_facets[0].reasons
    assert reason.message.startswith(
        "matches none of the alternatives (LineageDatasetFacet: /inputs/0 matches none of the "
        "alternatives (LineageDatasetInput: "
    )
    assert "LineageJobFacet: /entries required field 'entries' is missing" in reason.message


def test_a_job_lineage_facet_is_only_held_to_what_the_spec_enforces() -> None:
    # The spec's lineage facet is anyOf(LineageDatasetFacet, LineageJobFacet), and the dataset
    # variant requires nothing but the base fields: at the job place any facet passes.
    event = run_event()
    event["job"]["facets"]["lineage"] = facet(entries=[{"type": "job"}])
    assert check(event).dropped_facets == ()


def test_the_standard_facets_are_those_of_the_spec_at_their_places() -> None:
    assert STANDARD_FACETS["run"] >= {"parent", "nominalTime", "errorMessage", "processing_engine"}
    assert STANDARD_FACETS["job"] >= {"sql", "jobType", "sourceCodeLocation", "lineage"}
    assert STANDARD_FACETS["dataset"] >= {"schema", "columnLineage", "symlinks", "lineage"}
    assert STANDARD_FACETS["input"] == {
        "dataQualityAssertions",
        "dataQualityMetrics",
        "inputStatistics",
        "subset",
    }
    assert STANDARD_FACETS["output"] == {"outputStatistics", "subset"}
    assert sum(map(len, STANDARD_FACETS.values())) == 40


def test_each_standard_facets_checker_names_the_schema_it_enforces() -> None:
    for place, checks in COMPILED_SPEC.standard.items():
        for key, checker in checks.items():
            document_id, _, fragment = COMPILED_SPEC.schema_of[checker].partition("#")
            assert fragment == f"/properties/{key}", place
            assert document_id.startswith("https://openlineage.io/spec/facets/")


# --------------------------------------------------------------------------------------------
# Repair mode
# --------------------------------------------------------------------------------------------


def without_schema_url(event: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(event)
    del event["schemaURL"]
    return event


def test_repair_mode_is_off_by_default() -> None:
    assert codes(check(without_schema_url(run_event()))) == [("missing_field", "/schemaURL")]


@pytest.mark.parametrize(
    ("event", "kind", "definition"),
    [
        (run_event(), "run", "RunEvent"),
        (job_event(), "job", "JobEvent"),
        (dataset_event(), "dataset", "DatasetEvent"),
    ],
    ids=["run", "job", "dataset"],
)
def test_a_missing_schema_url_is_filled_with_the_2_0_2_url_of_the_events_kind(
    event: dict[str, Any], kind: str, definition: str
) -> None:
    result = check(without_schema_url(event), repair=True)
    assert result.ok and result.event is not None
    assert result.event["schemaURL"] == f"{SPEC}#/$defs/{definition}"
    assert result.repairs == ("missing_schema_url",)
    marker = result.event[kind]["facets"][REPAIRS_FACET]
    assert marker["_schemaURL"] == f"{SPEC}#/$defs/{kind.capitalize()}Facet"
    assert marker["originals"] == {"/schemaURL": None}


def test_an_event_time_without_offset_is_read_as_utc() -> None:
    result = check(run_event(eventTime="2020-12-28T19:51:01.641499"), repair=True)
    assert result.ok and result.event is not None
    assert result.event["eventTime"] == "2020-12-28T19:51:01.641499Z"
    assert result.repairs == ("event_time_without_offset",)


def test_a_time_that_is_not_a_date_time_even_without_offset_is_not_repaired() -> None:
    result = check(run_event(eventTime="2020-02-30T19:51:01"), repair=True)
    assert codes(result) == [("bad_time", "/eventTime")] and result.repairs == ()


def test_a_non_uuid_run_id_becomes_a_name_based_uuid() -> None:
    result = check(run_event(run={"runId": "fake_run_id"}), repair=True)
    assert result.ok and result.event is not None
    assert str(RUN_ID_NAMESPACE) == "81fb7c6a-b4ee-5dd1-8cf0-a232821282c1"
    assert result.event["run"]["runId"] == str(uuid5(RUN_ID_NAMESPACE, "fake_run_id"))
    assert result.repairs == ("non_uuid_run_id",)


def test_a_parent_run_id_is_repaired_to_the_id_its_own_events_get() -> None:
    child = run_event()
    child["run"]["facets"]["parent"] = facet(
        run={"runId": "scheduler-run-7"},
        job={"namespace": "airflow", "name": "dag"},
        root={"run": {"runId": "scheduler-run-1"}, "job": {"namespace": "airflow", "name": "dag"}},
    )
    parent = run_event(run={"runId": "scheduler-run-7"})
    repaired_child = check(child, repair=True)
    repaired_parent = check(parent, repair=True)
    assert repaired_child.ok and repaired_child.event is not None
    assert repaired_parent.event is not None
    parent_facet = repaired_child.event["run"]["facets"]["parent"]
    assert parent_facet["run"]["runId"] == repaired_parent.event["run"]["runId"]
    assert parent_facet["root"]["run"]["runId"] == str(uuid5(RUN_ID_NAMESPACE, "scheduler-run-1"))
    assert repaired_child.repairs == ("non_uuid_parent_run_id",)
    assert repaired_child.dropped_facets == ()


def test_repairs_are_marked_in_a_custom_facet_with_the_original_values() -> None:
    event = without_schema_url(run_event(eventTime="2024-05-01T12:00:00", run={"runId": "r-1"}))
    result = check(event, repair=True)
    assert result.ok and result.event is not None
    assert result.event["run"]["facets"][REPAIRS_FACET] == {
        "_producer": validation.PRODUCER,
        "_schemaURL": f"{SPEC}#/$defs/RunFacet",
        "repairs": ["missing_schema_url", "event_time_without_offset", "non_uuid_run_id"],
        "originals": {"/schemaURL": None, "/eventTime": "2024-05-01T12:00:00", "/run/runId": "r-1"},
    }


def test_a_repaired_event_is_valid_as_it_stands() -> None:
    event = without_schema_url(run_event(eventTime="2024-05-01T12:00:00", run={"runId": "r-1"}))
    repaired = check(event, repair=True)
    again = check(repaired.event)
    assert again.ok and again.event == repaired.event


def test_an_event_that_needs_no_repair_is_left_untouched_in_repair_mode() -> None:
    event = run_event()
    result = check(event, repair=True)
    assert result.ok and result.event == event and result.repairs == ()


def test_repairs_do_not_hide_other_problems() -> None:
    result = check(without_schema_url(run_event(producer="my laptop")), repair=True)
    assert codes(result) == [("bad_uri", "/producer")]
    assert result.repairs == ("missing_schema_url",)


# --------------------------------------------------------------------------------------------
# Serialisation (the DLQ carries reasons and dropped facets as JSON)
# --------------------------------------------------------------------------------------------


def test_reasons_and_dropped_facets_serialise_to_json() -> None:
    event = run_event(eventType="FINISHED")
    event["job"]["facets"]["sql"] = facet()
    result = check(event)
    as_json = json.loads(json.dumps([reason.as_dict() for reason in result.reasons]))
    assert as_json == [
        {"code": "bad_enum", "pointer": "/eventType", "message": result.reasons[0].message}
    ]
    dropped_facet = json.loads(json.dumps(result.dropped_facets[0].as_dict()))
    assert dropped_facet["key"] == "sql" and dropped_facet["value"] == facet()
    assert dropped_facet["reasons"][0]["code"] == "missing_field"
    assert msgspec.json.decode(msgspec.json.encode(result))["reasons"] == as_json


# --------------------------------------------------------------------------------------------
# What the result hands on to versioning: the JSON of the standard facets it checked
# --------------------------------------------------------------------------------------------


def test_the_result_holds_the_json_bytes_of_each_standard_facet_it_checked() -> None:
    event = run_event()
    event["inputs"][0]["facets"] = {"schema": facet(fields=[{"name": "id", "type": "int"}]),
                                    "custom": facet(anything=1)}
    result = check(event)
    assert result.ok and result.event is not None
    facets = result.event["inputs"][0]["facets"]
    assert result.facet_json(facets["schema"]) == msgspec.json.encode(facets["schema"])
    assert result.facet_json(result.event["job"]["facets"]["sql"]) is not None
    assert result.facet_json(facets["custom"]) is None, "custom facets are not encoded"
    assert result.facet_json(copy.deepcopy(facets["schema"])) is None, "by identity, not value"


def test_a_later_validation_leaves_an_earlier_results_facet_json_as_it_was() -> None:
    first = check(run_event())
    assert first.event is not None
    sql = first.event["job"]["facets"]["sql"]
    before = first.facet_json(sql)
    second = check(run_event())
    assert first.facet_json(sql) == before is not None
    assert second.event is not None and second.facet_json(sql) is None


def test_the_facet_json_is_neither_part_of_the_results_json_nor_of_its_equality() -> None:
    result = check(run_event())
    assert msgspec.json.decode(msgspec.json.encode(result))["facet_json"] == {}
    assert result == ValidationResult(ok=True, event=result.event, kind="run")


# --------------------------------------------------------------------------------------------
# The verdict memo: a facet seen again gets the verdict a fresh check would give
# --------------------------------------------------------------------------------------------


def _bad_schema() -> dict[str, Any]:
    return facet(fields=[{"name": "id", "type": 1}, {"name": "x", "fields": "no"}])


def test_a_remembered_verdict_is_reported_at_the_pointer_of_its_new_place() -> None:
    VERDICTS.clear()
    event = run_event()
    event["inputs"] = [{"namespace": "pg", "name": f"t{i}", "facets": {"schema": _bad_schema()}}
                       for i in range(3)]
    event["outputs"] = [{"namespace": "pg", "name": "o", "facets": {"schema": _bad_schema()}}]
    result = check(event)
    assert result.ok
    assert sorted(dropped(result)) == [
        "/inputs/0/facets/schema", "/inputs/1/facets/schema", "/inputs/2/facets/schema",
        "/outputs/0/facets/schema"]
    for pointer, reasons in dropped(result).items():
        assert [code for code, _ in reasons] == ["wrong_type", "wrong_type"]
        assert [where for _, where in reasons] == [
            f"{pointer}/fields/0/type", f"{pointer}/fields/1/fields"]
    assert [d.reasons for d in check(event).dropped_facets] == [
        d.reasons for d in result.dropped_facets]


def test_remembered_and_fresh_verdicts_agree_on_key_order_and_number_types() -> None:
    cases = [facet(fields=[{"name": "a", "type": "int"}]),
             {"fields": [{"name": "a", "type": "int"}], **facet()},
             facet(fields=[{"name": "a", "type": "int", "description": 1}]),
             facet(fields=[{"name": "a", "type": "int", "description": 1.0}]),
             facet(fields=[{"name": "a", "type": "int", "description": True}])]
    fresh = []
    for value in cases:
        VERDICTS.clear()
        fresh.append(dropped(check(run_event(inputs=[
            {"namespace": "pg", "name": "a", "facets": {"schema": value}}]))))
    VERDICTS.clear()
    for _round in range(2):
        remembered = [dropped(check(run_event(inputs=[
            {"namespace": "pg", "name": "a", "facets": {"schema": value}}]))) for value in cases]
        assert remembered == fresh


def test_deep_facets_of_recursive_schemas_are_not_remembered() -> None:
    VERDICTS.clear()
    leaf = {"type": "location", "locations": []}
    condition: dict[str, Any] = leaf
    for _ in range(60):
        condition = {"type": "binary", "operator": "AND", "left": condition, "right": leaf}
    shallow: dict[str, Any] = {"type": "binary", "operator": "AND", "left": leaf, "right": leaf}
    for value in (condition, shallow):
        event = run_event()
        event["inputs"][0]["inputFacets"] = {"subset": facet(inputCondition=value)}
        check(event)
    subset = COMPILED_SPEC.standard["input"]["subset"]
    remembered = [raw for check_, raw in (*VERDICTS.new, *VERDICTS.kept)
                  if check_ is subset]
    assert len(remembered) == 1 and remembered[0].count(b"{") < 10


def test_the_verdict_memo_stays_within_its_bounds() -> None:
    VERDICTS.clear()
    check_ = COMPILED_SPEC.standard["job"]["sql"]
    for i in range(MEMO_ENTRIES + 100):
        raw = b'{"q":%d}' % i
        VERDICTS.put((check_, raw), (), len(raw))
        if i % 3 == 0:
            VERDICTS.get((check_, raw))
    assert len(VERDICTS.new) <= MEMO_ENTRIES // 2
    assert len(VERDICTS.kept) <= MEMO_ENTRIES // 2
    assert VERDICTS.new_size == sum(len(raw) for _, raw in VERDICTS.new)
    assert VERDICTS.kept_size == sum(len(raw) for _, raw in VERDICTS.kept)
    huge = b"x" * (MEMO_FACET_BYTES + 1)
    VERDICTS.put((check_, huge), (), len(huge))
    assert (check_, huge) not in VERDICTS.new
    VERDICTS.clear()


@pytest.mark.parametrize("event_time", [
    "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T00:00:00Z"])
def test_an_event_time_the_graph_cannot_store_is_refused_with_its_reason(event_time: str) -> None:
    """Issue #14, item 6: these passed and were then lost in the sink."""
    result = check(run_event(eventTime=event_time))
    assert not result.ok
    assert [(r.code, r.pointer) for r in result.reasons] == [("time_out_of_range", "/eventTime")]


@pytest.mark.parametrize("event_time", ["0001-01-01T00:00:00Z", "9999-12-30T23:59:59.999999Z"])
def test_the_extreme_event_times_the_graph_can_store_are_accepted(event_time: str) -> None:
    assert check(run_event(eventTime=event_time)).ok


@pytest.mark.parametrize(("where", "size", "ok"), [
    ("job", MAX_KEY_BYTES, True), ("job", MAX_KEY_BYTES + 1, False),
    ("inputs", MAX_KEY_BYTES + 1, False), ("outputs", MAX_KEY_BYTES + 1, False)])
def test_a_name_longer_than_a_node_key_can_hold_is_refused(where: str, size: int,
                                                           ok: bool) -> None:
    """Issue #14, item 1: a 9.3 KB name passed validation and then stalled the sink."""
    name = "é" * ((size - 2) // 2) + "x" * ((size - 2) % 2)  # 2-byte characters count twice
    node = {"namespace": "ns", "name": name}
    event = run_event(job=node) if where == "job" else run_event(**{where: [node]})
    result = check(event)
    assert result.ok is ok
    if not ok:
        pointer = "/job" if where == "job" else f"/{where}/0"
        assert [(r.code, r.pointer) for r in result.reasons] == [("name_too_long", pointer)]
