"""sinks.graph.row: decoded change records -> parameter rows, checked against the contract."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import ContractViolation
from sinks.graph import row, to_datetime


def record(kind: str, body: dict[str, Any], time: int = 1_000_000) -> dict[str, Any]:
    return {"eventTime": time, "ingestedAt": 0, "payload": (kind, body)}


def run_body(event_type: str, facets: str | None = None) -> dict[str, Any]:
    return {"runId": "r1", "jobNamespace": "ns", "jobName": "job", "eventType": event_type,
            "facets": facets, "jobVersionId": None, "parentRunId": None,
            "parentJobNamespace": None, "parentJobName": None, "rootRunId": None,
            "rootJobNamespace": None, "rootJobName": None, "repairs": []}


def test_times_become_utc_datetimes_to_the_microsecond() -> None:
    assert row("Job", record("Job", {"namespace": "n", "name": "j", "facets": None},
                             time=1_700_000_000_123_456))["t"] == to_datetime(1_700_000_000_123_456)
    assert to_datetime(-1).isoformat() == "1969-12-31T23:59:59.999999+00:00"


def test_a_terminal_state_sorts_after_a_running_state_at_the_same_time() -> None:
    running = row("Run", record("Run", run_body("RUNNING")))
    complete = row("Run", record("Run", run_body("COMPLETE")))
    assert complete["order"] > running["order"]
    assert complete["terminal"] and not running["terminal"]


def test_a_later_event_sorts_after_an_earlier_terminal_one() -> None:
    early = row("Run", record("Run", run_body("COMPLETE"), time=5))
    late = row("Run", record("Run", run_body("RUNNING"), time=6))
    assert late["order"] > early["order"]


def test_times_before_1970_still_sort_by_time() -> None:
    before = row("Job", record("Job", {"namespace": "n", "name": "j", "facets": "{}"}, time=-10))
    after = row("Job", record("Job", {"namespace": "n", "name": "j", "facets": "{}"}, time=10))
    assert after["order"] > before["order"]


def test_the_documentation_facet_becomes_the_description() -> None:
    facets = '{"documentation": {"description": "daily sales"}}'
    assert row("Dataset", record("Dataset", {"namespace": "n", "name": "d",
                                             "facets": facets}))["description"] == "daily sales"


def test_the_sql_facet_query_becomes_the_version_sql() -> None:
    body = {"id": "v1", "jobNamespace": "n", "jobName": "j", "inputs": [], "outputs": [],
            "definition": '{"sql": {"query": "SELECT 1"}}'}
    assert row("JobVersion", record("JobVersion", body))["sql"] == "SELECT 1"


def _schema_of(*fields: tuple[str, str | None, str | None], run: str | None = None) -> Any:
    body = {"id": "v1", "datasetNamespace": "n", "datasetName": "d", "producingRunId": run,
            "fields": [{"name": name, "type": kind, "description": text, "ordinal": i}
                       for i, (name, kind, text) in enumerate(fields)]}
    return row("DatasetVersion", record("DatasetVersion", body))["schemaId"]


def test_a_dataset_version_is_known_by_its_schema_whoever_saw_it() -> None:
    """What the validTo of a dataset's versions compares: names and types in order."""
    schema = _schema_of(("id", "int", None), ("v", "string", None))
    assert schema == _schema_of(("id", "int", "the key"), ("v", "string", None), run="r1")
    assert len({schema, _schema_of(("v", "string", None), ("id", "int", None)),
                _schema_of(("id", "bigint", None), ("v", "string", None)),
                _schema_of(("id", "int", None))}) == 4


def test_a_dataset_version_without_fields_has_no_schema_to_equal() -> None:
    assert _schema_of() is None


def test_column_edges_are_keyed_by_their_transformation() -> None:
    edge = {"sourceNamespace": "n", "sourceDataset": "a", "sourceField": "x", "targetField": "y",
            "type": "DIRECT", "subtype": "AGGREGATION", "description": None, "masking": None}
    legacy = {**edge, "type": None, "subtype": None}
    body = {"targetNamespace": "n", "targetDataset": "b", "edges": [edge, legacy]}
    edges = row("ColumnLineage", record("ColumnLineage", body))["edges"]
    assert [e["transformation"] for e in edges] == ["DIRECT/AGGREGATION", "UNKNOWN"]


@pytest.mark.parametrize(("kind", "body", "words"), [
    ("Job", {"namespace": "n", "name": "", "facets": None}, "name must be a non-empty string"),
    ("Dataset", {"namespace": None, "name": "d", "facets": None}, "namespace must be"),
    ("Job", {"namespace": "n", "name": "j", "facets": "[1"}, "facets is not a JSON object"),
    ("Run", {**run_body("START"), "parentRunId": "p"}, "parentJobNamespace must be"),
    ("RunIO", {"runId": "r", "inputs": [{"namespace": "n", "name": ""}], "outputs": []},
     "name must be"),
    ("Payload", {}, "unknown record kind"),
])
def test_records_that_break_the_contract_are_refused_with_the_reason(
    kind: str, body: dict[str, Any], words: str,
) -> None:
    with pytest.raises(ContractViolation, match=words):
        row(kind, record(kind, body))
