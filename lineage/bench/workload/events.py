"""The parts every workload shape builds its OpenLineage events from.

Standard facets with this generator's ``_producer``, schemas of random columns, column lineage,
run ids drawn from a seeded generator, the START/end pair of one job run, and the (key, value)
encoding of the OpenLineage Kafka transport. Nothing here reads a clock or a global generator:
the same draws give the same bytes.

>>> import random
>>> rng = random.Random(1)
>>> columns = random_columns(rng, "mart.orders")
>>> columns[0]["name"], 10 <= len(columns) <= 40
('orders_c0', True)
>>> start, end = run_pair("ns", "load", run_id(rng), parent_facet("ns", run_id(rng), "dag"),
...                       ["raw.a"], ["mart.orders"], START, START)
>>> start["eventType"], start["inputs"], end["eventType"], "inputs" in end
('START', [{'namespace': 'ns', 'name': 'raw.a'}], 'COMPLETE', False)
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from producers.emitter import message_key

PRODUCER = "https://github.com/openlineage-stream/synthetic"
RUN_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_PRODUCER = {"_producer": PRODUCER}
START = datetime(2024, 1, 1, tzinfo=UTC)
TYPES = ("string", "bigint", "double", "timestamp", "boolean", "date", "decimal(18,2)")


def facet(spec: str, body: dict[str, Any]) -> dict[str, Any]:
    """A standard facet: ``body`` with this module's ``_producer`` and the ``_schemaURL`` of
    ``spec`` (a path under https://openlineage.io/spec/facets/)."""
    return {**FACET_PRODUCER,
            "_schemaURL": f"https://openlineage.io/spec/facets/{spec}", **body}


def random_columns(rng: random.Random, dataset: str) -> list[dict[str, str]]:
    """10-40 columns for ``dataset``, named after the last dotted part of its name."""
    return [{"name": f"{dataset.split('.')[-1]}_c{i}", "type": rng.choice(TYPES)}
            for i in range(rng.randint(10, 40))]


def run_id(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng``: the same seed, the same run ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def dataset(namespace: str, name: str, columns: list[dict[str, str]],
            lineage: dict[str, Any] | None = None) -> dict[str, Any]:
    """A dataset of an event with its ``schema`` facet (and ``columnLineage``, when given)."""
    facets: dict[str, Any] = {"schema": facet("1-1-1/SchemaDatasetFacet.json#/$defs/"
                                              "SchemaDatasetFacet", {"fields": columns})}
    if lineage:
        facets["columnLineage"] = lineage
    return {"namespace": namespace, "name": name, "facets": facets}


def column_lineage(rng: random.Random, columns: list[dict[str, str]],
                   inputs: Sequence[tuple[str, str, list[dict[str, str]]]]) -> dict[str, Any]:
    """A ``columnLineage`` facet feeding each of ``columns`` from 1-2 random input columns.

    ``inputs`` are (namespace, name, columns) of the datasets the columns may come from.
    """
    fields = {}
    for column in columns:
        sources = []
        for _ in range(rng.randint(1, 2)):
            namespace, name, cols = rng.choice(inputs)
            sources.append({"namespace": namespace, "name": name,
                            "field": rng.choice(cols)["name"],
                            "transformations": [{"type": "DIRECT", "subtype": rng.choice(
                                ("IDENTITY", "TRANSFORMATION", "AGGREGATION"))}]})
        fields[column["name"]] = {"inputFields": sources}
    return facet("1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet",
                 {"fields": fields})


def parent_facet(namespace: str, parent_run: str, parent_job: str) -> dict[str, Any]:
    """The ``parent`` run facet naming a scheduler's run ``parent_run`` of job ``parent_job``."""
    return facet("1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet", {
        "run": {"runId": parent_run}, "job": {"namespace": namespace, "name": parent_job}})


def run_pair(namespace: str, job: str, run: str, parent: dict[str, Any],
             inputs: Sequence[str], outputs: Sequence[str], started: datetime, ended: datetime,
             *, end_type: str = "COMPLETE", end_inputs: list[dict[str, Any]] | None = None,
             end_outputs: list[dict[str, Any]] | None = None,
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """The START and the end event of one run of ``job`` (with a ``sql`` facet).

    START names the datasets; the end event (``end_type``) carries ``end_inputs`` and
    ``end_outputs`` (datasets with their facets) when given, and no datasets otherwise.
    """
    base: dict[str, Any] = {
        "run": {"runId": run, "facets": {"parent": parent}},
        "job": {"namespace": namespace, "name": job, "facets": {
            "sql": facet("1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", {
                # Synthetic text for the sql facet; never executed anywhere.
                "query": f"INSERT INTO {outputs[0]} SELECT * FROM {inputs[0]}"}),  # noqa: S608
        }},
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA_URL,
    }
    start = {**base, "eventType": "START", "eventTime": started.isoformat(),
             "inputs": [{"namespace": namespace, "name": n} for n in inputs],
             "outputs": [{"namespace": namespace, "name": n} for n in outputs]}
    end: dict[str, Any] = {**base, "eventType": end_type, "eventTime": ended.isoformat()}
    if end_inputs is not None:
        end["inputs"] = end_inputs
    if end_outputs is not None:
        end["outputs"] = end_outputs
    return start, end


def transport_key(event: dict[str, Any]) -> bytes:
    """The key the OpenLineage Kafka transport gives ``event`` (see producers.emitter)."""
    return message_key(event).encode()


def encode_events(events: Iterator[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs as the OpenLineage Kafka transport writes them."""
    return [(transport_key(event), json.dumps(event, separators=(",", ":")).encode())
            for event in events]
