"""``lineage bench``: the benchmarks (lineage/bench/); figures go to docs/benchmarks.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from core.errors import LineageError
from core.settings import CommonSettings
from lineage.cli.common import friendly_errors

app = typer.Typer(help="Benchmarks (figures go to docs/benchmarks.md).",
                  no_args_is_help=True)


@app.command("processor")
@friendly_errors
def bench_processor(
    events: Annotated[int, typer.Option(help="about how many events")] = 20_000,
    kafka: Annotated[bool, typer.Option(help="through Kafka with a real worker")] = False,
    seed: Annotated[int, typer.Option(help="workload seed")] = 1,
    runs_per_job: Annotated[int, typer.Option(help="runs of each synthetic job")] = 2,
) -> None:
    """Events/s of parse + validate + dedup + version (in-process, or end to end on Kafka)."""
    from lineage.bench.processor import bench_in_process, bench_kafka, workload
    from stream_processor.settings import ProcessorSettings

    messages = workload(events, seed, runs_per_job)
    size = sum(len(v) for _, v in messages) / max(1, len(messages))
    typer.echo(f"workload: {len(messages)} events, {size:.0f} bytes on average")
    if kafka:
        result = bench_kafka(messages, ProcessorSettings(), log=typer.echo)
        typer.echo(f"through Kafka: {result.events} events in {result.seconds:.2f}s = "
                   f"{result.rate:,.0f} events/s")
    else:
        result = bench_in_process(messages)
        typer.echo(f"in-process: {result.events} events in {result.seconds:.2f}s = "
                   f"{result.rate:,.0f} events/s ({result.changes} change records, "
                   f"{result.duplicates} duplicates, {result.rejected} rejected)")


@app.command("sink")
@friendly_errors
def bench_sink(
    events: Annotated[int, typer.Option(help="about how many raw events make the records")
                      ] = 10_000,
    kafka: Annotated[bool, typer.Option(help="through Kafka with a real `lineage sink`")] = False,
    seed: Annotated[int, typer.Option(help="workload seed")] = 1,
    runs_per_job: Annotated[int, typer.Option(help="runs of each synthetic job")] = 2,
    batch_size: Annotated[int | None, typer.Option(
        help="records per transaction (default: the sink's setting)")] = None,
    keep: Annotated[bool, typer.Option(help="keep the written nodes (default: delete them)")
                    ] = False,
) -> None:
    """Change records/s written to Neo4j by the sink's code path (in-process or via Kafka).

    Example: ``lineage bench sink --events 10000 --kafka``, on a stack of its own.
    """
    from lineage.bench.neo4j_io import connect, delete_namespace
    from lineage.bench.sink import bench_sink_in_process, bench_sink_kafka, sink_workload
    from sinks.settings import SinkSettings

    settings = SinkSettings()
    size = batch_size or settings.sink.batch_size
    typer.echo(f"processing about {events} synthetic events into change records ...")
    workload = sink_workload(events, runs_per_job=runs_per_job, seed=seed)
    kinds = ", ".join(f"{k} {n}" for k, n in workload.kinds().most_common())
    typer.echo(f"workload: {workload.records} change records from {workload.events} events "
               f"in {workload.namespace} ({kinds})")
    try:
        if kafka:
            result = bench_sink_kafka(workload, settings, batch_size=batch_size, log=typer.echo)
            typer.echo(f"through Kafka, batches of up to {size}: {result.records} records in "
                       f"{result.seconds:.2f}s = {result.rate:,.0f} change records/s "
                       f"({result.event_rate:,.0f} events/s; {result.wall_seconds:.1f}s from "
                       "starting the sink to its last commit)")
        else:
            result = bench_sink_in_process(workload, settings, batch_size=batch_size)
            typer.echo(f"in-process, {result.batches} transactions of up to {size}: "
                       f"{result.records} records in {result.seconds:.2f}s = "
                       f"{result.rate:,.0f} change records/s ({result.event_rate:,.0f} events/s;"
                       f" rows() {result.row_seconds:.2f}s of it)")
    finally:
        if not keep:
            typer.echo(f"deleting {workload.namespace}")
            driver = connect(settings)
            try:
                delete_namespace(driver, workload.namespace, settings.neo4j.database)
            finally:
                driver.close()


@app.command("query")
@friendly_errors
def bench_query(
    datasets: Annotated[int, typer.Option(help="datasets in the graph")] = 100_000,
    jobs: Annotated[int, typer.Option(help="jobs in the graph")] = 50_000,
    runs: Annotated[int, typer.Option(help="runs in the graph")] = 1_000_000,
    layers: Annotated[int, typer.Option(help="layers of jobs in the DAG")] = 10,
    seed: Annotated[int, typer.Option(help="graph seed")] = 1,
    samples: Annotated[int, typer.Option(help="timed runs of each query")] = 200,
    warmup: Annotated[int, typer.Option(help="untimed runs of each query first")] = 20,
    query: Annotated[list[str] | None, typer.Option(
        help="a query to time (repeatable): upstream, upstream_bfs, upstream_shortest, "
             "upstream_as_of, upstream_as_of_qpp, recipe_upstream, recipe_upstream_ever, impact, "
             "columns")] = None,
    reload: Annotated[bool, typer.Option(help="delete and load the graph again")] = False,
    load_only: Annotated[bool, typer.Option(help="load the graph, time nothing")] = False,
    namespace: Annotated[str | None, typer.Option(
        help="the graph's namespace (default: bench://query-graph)")] = None,
) -> None:
    """p50/p99 latency of lineage questions on a big synthetic graph (loaded once, reused).

    Example: ``lineage bench query`` (the first run loads 1M runs, which takes an hour).
    """
    from lineage.bench.neo4j_io import connect
    from lineage.bench.query import (
        DEFAULT_QUERIES,
        QUERIES,
        bench_queries,
        graph_counts,
        load_graph,
    )
    from lineage.bench.workload import QUERY_NAMESPACE, GraphShape, plan_graph
    from sinks.settings import SinkSettings

    names = query or list(DEFAULT_QUERIES)
    unknown = [n for n in names if n not in QUERIES]
    if unknown:
        raise LineageError(f"unknown query {unknown[0]!r}", hint=f"use one of {', '.join(QUERIES)}")
    settings = SinkSettings()
    plan = plan_graph(GraphShape(datasets=datasets, jobs=jobs, runs=runs, layers=layers,
                                 seed=seed))
    graph_namespace = namespace or QUERY_NAMESPACE
    loaded, _seconds = load_graph(plan, settings, namespace=graph_namespace, reload=reload,
                                  log=typer.echo)
    driver = connect(settings)
    try:
        counts = graph_counts(driver, graph_namespace)
    finally:
        driver.close()
    typer.echo(f"graph {'loaded' if loaded else 'reused'}: {counts['datasets']:,} datasets, "
               f"{counts['jobs']:,} jobs, {counts['runs']:,} runs")
    if load_only:
        return
    results = bench_queries(plan, settings, names, samples=samples, warmup=warmup,
                            namespace=graph_namespace, log=typer.echo)
    typer.echo(f"{'query':<20} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8} "
               f"{'rows':>8}")
    for r in results:
        typer.echo(f"{r.name:<20} {r.p50:>8.1f} {r.p99:>8.1f} {r.mean:>8.1f} "
                   f"{max(r.millis):>8.1f} {r.mean_rows:>8.0f}")


@app.command("emitter")
@friendly_errors
def bench_emitter(
    events: Annotated[int, typer.Option(help="how many events")] = 50_000,
    compression: Annotated[str, typer.Option(help="lz4, zstd or none")] = "lz4",
) -> None:
    """Events/s from the emitter to an acknowledged topic (acks=all)."""
    from lineage.bench.emitter import bench_emitter as run

    if compression not in ("zstd", "lz4", "none"):
        raise typer.BadParameter("use zstd, lz4 or none", param_hint="--compression")
    result = run(CommonSettings().kafka, events,
                 compression=compression)  # type: ignore[arg-type]
    typer.echo(f"emitter ({compression}): {result.events} events ({result.megabytes:.0f} MB of "
               f"JSON) acknowledged in {result.seconds:.2f}s = {result.rate:,.0f} events/s")


@app.command("gateway")
@friendly_errors
def bench_gateway(
    url: Annotated[str, typer.Option(help="a gateway on this machine")] = "http://127.0.0.1:5000",
    seconds: Annotated[float, typer.Option(min=1, help="how long to measure")] = 30.0,
    slow_connections: Annotated[int, typer.Option(
        min=0, help="connections sending headers a byte at a time")] = 100,
    batches: Annotated[bool, typer.Option(help="send the 16 MB batches (--no-batches and "
                                               "--slow-connections 0: a quiet baseline)")] = True,
    pid: Annotated[int | None, typer.Option(help="the gateway's pid, for its peak RSS")] = None,
) -> None:
    """A normal POST's latency while other clients send 16 MB batches of tiny items and
    headers a byte at a time.

    Example: ``lineage bench gateway --pid $(pgrep -f 'lineage gateway')``
    """
    from lineage.bench.gateway import hostile_load

    result = hostile_load(url, seconds=seconds, slow_connections=slow_connections,
                          batches=batches, pid=pid)
    rss = "" if result.peak_rss_mb is None else f"; gateway peak RSS {result.peak_rss_mb:.0f} MB"
    typer.echo(f"normal POSTs: {len(result.latencies)}, statuses {result.statuses}, "
               f"p50 {result.p50 * 1000:.1f} ms, p99 {result.p99 * 1000:.1f} ms, "
               f"max {max(result.latencies) * 1000:.1f} ms; meanwhile {result.batches} "
               f"16 MB batches, {result.slow_closed} slow connections closed by the gateway{rss}")


@app.command("generate")
@friendly_errors
def bench_generate(
    out: Annotated[Path, typer.Argument(help="the NDJSON file to write (a manifest beside it)")],
    events: Annotated[int, typer.Option(help="lines to write, 1k to 10M")] = 10_000,
    jobs: Annotated[int, typer.Option(help="jobs in the DAG")] = 1_000,
    namespaces: Annotated[int | None, typer.Option(help="default: jobs/100, 1 to 50")] = None,
    max_depth: Annotated[int, typer.Option(help="longest job chain, up to 20")] = 20,
    seed: Annotated[int, typer.Option(help="the same seed writes the same bytes")] = 1,
) -> None:
    """Write a deterministic OpenLineage workload (DAG of jobs, runs, duplicates, noise).

    Example: ``lineage bench generate --events 30000 --jobs 10000 bench/work/10k.ndjson``
    """
    from lineage.bench.workload import WorkloadSpec, write_workload

    try:
        spec = WorkloadSpec(events=events, jobs=jobs, namespaces=namespaces,
                            max_depth=max_depth, seed=seed)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    out.parent.mkdir(parents=True, exist_ok=True)
    stats = write_workload(spec, out, progress=lambda n: typer.echo(f"  {n:,} lines"))
    typer.echo(f"wrote {stats.events:,} lines to {out}: {stats.valid:,} valid "
               f"({stats.duplicates:,} duplicates, {stats.out_of_order:,} out of order), "
               f"{stats.invalid:,} invalid; {stats.jobs:,} jobs, {stats.datasets:,} datasets, "
               f"depth {stats.depth}")


@app.command("e2e")
@friendly_errors
def bench_e2e(
    workload: Annotated[Path, typer.Argument(help="an NDJSON file from `lineage bench generate`")],
    runs: Annotated[int, typer.Option(help="runs at maximum rate, and as many at fixed load")] = 3,
    rate: Annotated[float | None, typer.Option(
        help="the fixed offered load, events/s (default: half the maximum runs' median)")] = None,
    fixed_events: Annotated[int, typer.Option(
        help="events of each fixed-load run (the workload's first ones)")] = 20_000,
    peer_url: Annotated[str | None, typer.Option(
        help="a server with Marquez's API (Marquez, or our gateway) to compare")] = None,
    peer_name: Annotated[str, typer.Option(help="the peer's name in the report")] = "Marquez",
    out: Annotated[Path | None, typer.Option(help="the JSON result file")] = None,
) -> None:
    """End to end: events/s from emit to Neo4j, freshness, ceilings, query latency, a peer.

    Runs on the configured Kafka and Neo4j (the local stack by default), on topics and groups of
    its own; it replaces the workload's namespaces in Neo4j.
    Example: ``lineage bench e2e bench/work/1k.ndjson --runs 3 --out bench/results/1k.json``
    """
    from lineage.bench.suite import run_suite

    if runs < 1:
        raise typer.BadParameter("at least one run", param_hint="--runs")
    result = run_suite(workload, CommonSettings(), runs=runs, fixed_rate=rate,
                       fixed_events=fixed_events, peer_url=peer_url, peer_name=peer_name,
                       log=typer.echo)
    e2e = result["e2e"]
    typer.echo(f"pipeline: {e2e['max_rate']['median']:,.0f} events/s (median of {runs}); "
               f"freshness p50 {e2e['freshness_p50']['median']}s, p99 "
               f"{e2e['freshness_p99']['median']}s at {e2e['fixed_rate']:,.0f} events/s")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        typer.echo(f"results: {out}")


PLOTS = Path("docs/img")


@app.command("report")
@friendly_errors
def bench_report(
    results: Annotated[list[Path], typer.Argument(help="JSON files from `lineage bench e2e`")],
    plots: Annotated[Path, typer.Option(help="where the PNG plots go")] = PLOTS,
) -> None:
    """The comparison table (markdown, on stdout) and the plots, from the JSON results.

    Example: ``lineage bench report bench/results/*.json --plots docs/img``
    """
    from lineage.bench.report import load, plot, resources, table

    docs = load(results)
    typer.echo(table(docs))
    typer.echo("")
    typer.echo(resources(docs))
    for path in plot(docs, plots):
        typer.echo(f"plot: {path}", err=True)


@app.command("dump")
@friendly_errors
def bench_dump(
    workload: Annotated[Path, typer.Argument(help="an NDJSON file from `lineage bench generate`")],
    out: Annotated[Path, typer.Argument(help="the dump: one sorted line per node, relationship "
                                             "and dead letter")],
    code: Annotated[Path | None, typer.Option(
        help="run the processor and the sink from this checkout (to compare two versions)")] = None,
) -> None:
    """Replay a workload through the pipeline and write a canonical dump of what it made.

    It replaces the workload's namespaces in Neo4j. Two dumps are equal exactly when the code
    made the same graph and the same dead letters.
    Example: ``lineage bench dump bench/work/20k.ndjson after.txt && cmp before.txt after.txt``
    """
    from lineage.bench.graph_dump import replay_and_dump

    if code is not None and not (code / "lineage" / "__main__.py").is_file():
        raise typer.BadParameter(f"{code} is not a checkout of this project", param_hint="--code")
    lines = replay_and_dump(workload, CommonSettings(), code=code, log=typer.echo)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    kinds = {k: sum(1 for line in lines if line[0] == k) for k in "NRD"}
    typer.echo(f"{out}: {kinds['N']:,} nodes, {kinds['R']:,} relationships, "
               f"{kinds['D']:,} dead letters")
