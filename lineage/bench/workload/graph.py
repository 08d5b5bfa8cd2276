"""The *graph* shape: a big layered lineage graph of an exact size, for the query benchmark.

:class:`GraphShape` says how many datasets, jobs and runs; :func:`plan_graph` wires them (a wide
DAG in layers, without any event) and :func:`graph_events` turns the plan into OpenLineage
events, round by round: a job's first run carries its outputs' schemas and column lineage, later
runs are what a scheduler repeats all day (START names the datasets, COMPLETE only ends the
run), so that a million runs load in about an hour.

>>> plan = plan_graph(GraphShape(datasets=40, jobs=12, runs=30, layers=3))
>>> len(plan.datasets), len(plan.jobs), sum(job.runs for job in plan.jobs)
(40, 12, 30)
>>> len(list(graph_events(plan, "test://graph")))
60
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from lineage.bench.workload.events import (
    START,
    column_lineage,
    dataset,
    parent_facet,
    run_id,
    run_pair,
)

#: The query benchmark's graph lives in a namespace of its own (see lineage.bench.query).
QUERY_NAMESPACE = "bench://query-graph"
RUN_TIME = timedelta(minutes=3)


@dataclass(frozen=True)
class GraphShape:
    """How big the query benchmark's graph is, and how it is wired.

    Jobs sit in ``layers`` layers (a wide DAG: 50k jobs in 10 layers are 5k side by side); a job
    of layer k reads 2-5 datasets, one of layer k-1 and the others mostly from k-1, some from
    any earlier layer, and writes 1-2 datasets of its own. Datasets that no job writes are raw
    sources (layer 0). Runs are spread evenly over jobs. Each output has ``columns`` columns,
    each fed by 1-2 columns of the job's inputs.
    """

    datasets: int = 100_000
    jobs: int = 50_000
    runs: int = 1_000_000
    layers: int = 10
    columns: tuple[int, int] = (3, 8)
    seed: int = 1

    def as_dict(self) -> dict[str, int]:
        return {"datasets": self.datasets, "jobs": self.jobs, "runs": self.runs,
                "layers": self.layers, "columnsMin": self.columns[0],
                "columnsMax": self.columns[1], "seed": self.seed}


@dataclass(frozen=True)
class PlannedJob:
    """One job of the plan: dataset indexes it reads and writes, its layer and run count."""

    name: str
    layer: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    runs: int


@dataclass(frozen=True)
class GraphPlan:
    """The datasets (name, layer, columns) and jobs the events will describe."""

    shape: GraphShape
    datasets: list[tuple[str, int, int]]
    jobs: list[PlannedJob]
    layer_datasets: list[list[int]] = field(repr=False)

    def outputs(self) -> list[int]:
        """Indexes of the datasets some job writes (those with upstream lineage)."""
        return [o for job in self.jobs for o in job.outputs]


def plan_graph(shape: GraphShape) -> GraphPlan:
    """The deterministic wiring of the graph (see :class:`GraphShape`), without any event.

    Exactly ``shape.datasets`` datasets, ``shape.jobs`` jobs and ``shape.runs`` runs; at least
    one source dataset, so ``datasets`` must exceed ``jobs``.
    """
    if shape.datasets <= shape.jobs:
        raise ValueError("datasets must exceed jobs (each job writes at least one dataset)")
    if shape.layers < 1 or shape.jobs < 1:
        raise ValueError("at least one layer and one job")
    rng = random.Random(f"lineage-bench-graph|{shape.seed}")  # noqa: S311
    # Every job writes one dataset; as many as leave a fifth (at least one) for sources write two.
    sources_min = max(1, shape.datasets // 5)
    doubles = set(rng.sample(range(shape.jobs),
                             max(0, min(shape.jobs, shape.datasets - shape.jobs - sources_min))))
    sources = shape.datasets - shape.jobs - len(doubles)
    datasets: list[tuple[str, int, int]] = []
    layer_datasets: list[list[int]] = [[] for _ in range(shape.layers + 1)]
    low, high = shape.columns
    for s in range(sources):
        layer_datasets[0].append(len(datasets))
        datasets.append((f"raw.source_{s}", 0, rng.randint(low, high)))
    wiring: list[tuple[int, set[int], list[int]]] = []
    per_layer = math.ceil(shape.jobs / shape.layers)
    base_runs, extra_runs = divmod(shape.runs, shape.jobs)
    for j in range(shape.jobs):
        layer = j // per_layer + 1
        wanted = rng.randint(2, 5)
        chosen = {rng.choice(layer_datasets[layer - 1])}
        for _ in range(wanted * 3):  # a few tries; small early layers may offer fewer
            if len(chosen) >= wanted:
                break
            from_layer = layer - 1 if layer == 1 or rng.random() < 0.6 else rng.randrange(layer)
            chosen.add(rng.choice(layer_datasets[from_layer]))
        outputs = []
        for o in range(2 if j in doubles else 1):
            outputs.append(len(datasets))
            layer_datasets[layer].append(len(datasets))
            datasets.append((f"mart.l{layer}.job{j}_out{o}", layer, rng.randint(low, high)))
        wiring.append((layer, chosen, outputs))
    # A source nobody reads would be in no event: give each such one a reader in layer 1.
    unread = set(layer_datasets[0]).difference(*(inputs for _, inputs, _ in wiring))
    first_layer = [w for w in wiring if w[0] == 1]
    for source in sorted(unread):
        reader = rng.choice(first_layer)
        for _ in range(20):  # prefer a job with room left among its 2-5 inputs
            if len(reader[1]) < 5:
                break
            reader = rng.choice(first_layer)
        reader[1].add(source)
    jobs = [PlannedJob(f"etl.l{layer}.job{j}", layer, tuple(sorted(inputs)), tuple(outputs),
                       base_runs + (j < extra_runs))
            for j, (layer, inputs, outputs) in enumerate(wiring)]
    return GraphPlan(shape, datasets, jobs, layer_datasets)


def column_names(dataset: str, columns: int) -> list[str]:
    """The column names of a dataset of the plan."""
    short = dataset.rsplit(".", 1)[-1]
    return [f"{short}_c{i}" for i in range(columns)]


def string_columns(dataset: str, columns: int) -> list[dict[str, str]]:
    """The schema of a dataset of the plan: its :func:`column_names`, all strings."""
    return [{"name": name, "type": "string"} for name in column_names(dataset, columns)]


def graph_events(plan: GraphPlan, namespace: str = QUERY_NAMESPACE) -> Iterator[dict[str, Any]]:
    """The plan's runs as OpenLineage events, round by round (a day each), jobs in layer order.

    Every run emits START (inputs and outputs by name) and COMPLETE. A job's first run is the
    full one: its COMPLETE carries the outputs' schema and column lineage (so the graph gets
    fields, dataset versions and FEEDS). Later runs share that content and are what a scheduler
    repeats all day: START names the datasets, COMPLETE only ends the run. Each run has a
    scheduler parent run, one per layer and round.
    """
    # Run ids depend on the namespace: the Run key is the run id alone, so two workloads with
    # the same ids would share (and their clean-ups delete) each other's runs.
    rng = random.Random(f"lineage-bench-events|{plan.shape.seed}|{namespace}")  # noqa: S311
    rounds = max((job.runs for job in plan.jobs), default=0)
    step = timedelta(days=1) / (len(plan.jobs) + 1)
    for r in range(rounds):
        clock = START + timedelta(days=r)
        parents: dict[int, str] = {}
        for job in plan.jobs:
            clock += step
            if job.runs <= r:
                continue
            if job.layer not in parents:
                parents[job.layer] = run_id(rng)
            run = run_id(rng)
            names = [plan.datasets[i][0] for i in job.inputs]
            outs = [plan.datasets[i][0] for i in job.outputs]
            parent = parent_facet(namespace, parents[job.layer], f"scheduler.layer_{job.layer}")
            if r:
                yield from run_pair(namespace, job.name, run, parent, names, outs, clock,
                                    clock + RUN_TIME)
                continue
            sources = [(namespace, name, string_columns(name, columns))
                       for name, _layer, columns in (plan.datasets[i] for i in job.inputs)]
            outputs = []
            for name, _layer, columns in (plan.datasets[o] for o in job.outputs):
                schema = string_columns(name, columns)
                outputs.append(dataset(namespace, name, schema,
                                       column_lineage(rng, schema, sources)))
            yield from run_pair(namespace, job.name, run, parent, names, outs, clock,
                                clock + RUN_TIME,
                                end_inputs=[{"namespace": namespace, "name": n} for n in names],
                                end_outputs=outputs)
