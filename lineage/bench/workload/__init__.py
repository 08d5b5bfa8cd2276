"""The one workload generator of the benchmarks and the tests, in three shapes.

Every shape builds its events from the same parts (:mod:`lineage.bench.workload.events`: facets,
schemas, column lineage, run ids, a run's START and end, the transport's keys), from seeded
generators only, so the same options always give the same bytes. The shape is the option that
says what the events are for:

- **stream** (:class:`WorkloadSpec`, :func:`generate`, :func:`write_workload`): a scheduler's
  traffic as NDJSON lines, with orchestrator runs, RUNNING events, duplicates, lines out of
  order and invalid lines; ``lineage bench generate`` and ``lineage bench e2e``.
- **runs** (:func:`synthetic_events`): every job of a small DAG run a few times, each run's
  events whole; ``lineage bench processor``, ``sink`` and ``emitter``, and the tests.
- **graph** (:class:`GraphShape`, :func:`plan_graph`, :func:`graph_events`): a layered graph of
  an exact number of datasets, jobs and runs, later runs slim; ``lineage bench query``.

>>> lines = list(generate(WorkloadSpec(events=20, jobs=5)))
>>> len(lines), lines[0].startswith(b'{"eventType":"START"')
(20, True)
>>> sorted({e["eventType"] for e in synthetic_events(jobs=2, runs_per_job=1, fail_rate=0.0)})
['COMPLETE', 'START']
>>> plan = plan_graph(GraphShape(datasets=20, jobs=6, runs=12, layers=2))
>>> sum(1 for _ in graph_events(plan))
24
"""

from lineage.bench.workload.events import encode_events, transport_key
from lineage.bench.workload.graph import (
    QUERY_NAMESPACE,
    GraphPlan,
    GraphShape,
    column_names,
    graph_events,
    plan_graph,
)
from lineage.bench.workload.runs import NAMESPACE, synthetic_events
from lineage.bench.workload.stream import WorkloadSpec, WorkloadStats, generate, write_workload

__all__ = [
    "NAMESPACE",
    "QUERY_NAMESPACE",
    "GraphPlan",
    "GraphShape",
    "WorkloadSpec",
    "WorkloadStats",
    "column_names",
    "encode_events",
    "generate",
    "graph_events",
    "plan_graph",
    "synthetic_events",
    "transport_key",
    "write_workload",
]
