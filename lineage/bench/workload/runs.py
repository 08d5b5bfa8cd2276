"""The *runs* shape: every job of a small DAG run a few times, each run's events whole.

Jobs form a DAG over datasets: job ``j`` reads 2-5 datasets written by earlier jobs (or raw
sources) and writes 1-2 datasets of its own, each with a 10-40 column schema and column lineage
from its inputs. Every run emits START then COMPLETE (some FAIL, with the schemas and the column
lineage), carries a parent facet pointing at a scheduler run, and a share of events is repeated
verbatim (exact duplicates). The processor, sink and emitter benchmarks and the integration
tests use it: few runs per job is the hard case (most content is new), many runs per job the
steady state. The same seed always gives the same bytes.

>>> events = list(synthetic_events(jobs=3, runs_per_job=1, seed=7))
>>> len(events) >= 6, events[0]["eventType"]
(True, 'START')
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from lineage.bench.workload.events import (
    START,
    column_lineage,
    dataset,
    parent_facet,
    random_columns,
    run_id,
    run_pair,
)

NAMESPACE = "synthetic://warehouse"


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
        scheduler_run = run_id(rng)
        for job_name, inputs, sources, outputs in plans:
            run = run_id(rng)
            clock += timedelta(seconds=rng.randint(1, 30))
            started = clock
            clock += timedelta(seconds=rng.randint(5, 600))
            end_type = "FAIL" if rng.random() < fail_rate else "COMPLETE"
            events = run_pair(
                namespace, job_name, run,
                parent_facet(namespace, scheduler_run, f"scheduler.dag_{run_index}"),
                [n for n, _ in inputs], [n for n, _ in outputs], started, clock,
                end_type=end_type,
                end_inputs=[dataset(namespace, n, cols) for n, cols in inputs],
                end_outputs=[dataset(namespace, n, cols, column_lineage(rng, cols, sources))
                             for n, cols in outputs])
            for event in events:
                yield event
                if rng.random() < duplicate_rate:
                    yield json.loads(json.dumps(event))
