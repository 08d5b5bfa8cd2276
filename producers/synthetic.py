"""A deterministic synthetic OpenLineage workload, for tests and benchmarks.

Jobs form a DAG over datasets: job ``j`` reads 2-5 datasets written by earlier jobs (or raw
sources) and writes 1-2 datasets of its own, each with a 10-40 column schema and column lineage
from its inputs. Every run emits START then COMPLETE (some FAIL), carries a parent facet pointing
at a scheduler run, and a share of events is repeated verbatim (exact duplicates). The same seed
always gives the same bytes.

>>> events = list(synthetic_events(jobs=3, runs_per_job=1, seed=7))
>>> len(events) >= 6, events[0]["eventType"]
(True, 'START')
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from producers.emitter import message_key

PRODUCER = "https://github.com/openlineage-stream/synthetic"
RUN_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACET_PRODUCER = {"_producer": PRODUCER}
NAMESPACE = "synthetic://warehouse"
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


def synthetic_events(
    jobs: int = 100, runs_per_job: int = 2, seed: int = 1,
    duplicate_rate: float = 0.05, fail_rate: float = 0.05, namespace: str = NAMESPACE,
) -> Iterator[dict[str, Any]]:
    """The workload's events in eventTime order (duplicates follow their original).

    Another ``namespace`` gives a workload of its own: other names and other run ids, so that
    several can share one Kafka and one Neo4j without touching each other.
    """
    # The default namespace keeps the historical seed, so its bytes never change.
    rng = random.Random(seed if namespace == NAMESPACE else f"{seed}|{namespace}")  # noqa: S311
    datasets: list[tuple[str, list[dict[str, str]]]] = []
    for source in range(5):
        name = f"raw.source_{source}"
        datasets.append((name, random_columns(rng, name)))
    plans = []
    for j in range(jobs):
        inputs = rng.sample(datasets, k=min(len(datasets), rng.randint(2, 5)))
        outputs = []
        for o in range(rng.randint(1, 2)):
            name = f"mart.job{j}_out{o}"
            outputs.append((name, random_columns(rng, name)))
        datasets.extend(outputs)
        sources = [(namespace, name, columns) for name, columns in inputs]
        plans.append((f"job_{j}", inputs, sources, outputs))

    clock = START
    for run_index in range(runs_per_job):
        scheduler_run = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        for job_name, inputs, sources, outputs in plans:
            run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            clock += timedelta(seconds=rng.randint(1, 30))
            parent = facet("1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet", {
                "run": {"runId": scheduler_run},
                "job": {"namespace": namespace, "name": f"scheduler.dag_{run_index}"},
            })
            base = {
                "run": {"runId": run_id, "facets": {"parent": parent}},
                "job": {"namespace": namespace, "name": job_name, "facets": {
                    "sql": facet("1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", {
                        # Synthetic text for the sql facet; never executed anywhere.
                        "query": f"INSERT INTO {outputs[0][0]} SELECT * "  # noqa: S608
                                 f"FROM {inputs[0][0]}"}),
                }},
                "producer": PRODUCER,
                "schemaURL": RUN_SCHEMA_URL,
            }
            start = {**base, "eventType": "START", "eventTime": clock.isoformat(),
                     "inputs": [{"namespace": namespace, "name": n} for n, _ in inputs],
                     "outputs": [{"namespace": namespace, "name": n} for n, _ in outputs]}
            clock += timedelta(seconds=rng.randint(5, 600))
            end_type = "FAIL" if rng.random() < fail_rate else "COMPLETE"
            end = {**base, "eventType": end_type, "eventTime": clock.isoformat(),
                   "inputs": [dataset(namespace, n, cols) for n, cols in inputs],
                   "outputs": [dataset(namespace, n, cols, column_lineage(rng, cols, sources))
                               for n, cols in outputs]}
            for event in (start, end):
                yield event
                if rng.random() < duplicate_rate:
                    yield json.loads(json.dumps(event))


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


def transport_key(event: dict[str, Any]) -> bytes:
    """The key the OpenLineage Kafka transport gives ``event`` (see producers.emitter)."""
    return message_key(event).encode()


def encode_events(events: Iterator[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs as the OpenLineage Kafka transport writes them."""
    return [(transport_key(event), json.dumps(event, separators=(",", ":")).encode())
            for event in events]
