"""The ``lineage`` command: one entry point in front of every component.

Errors the user can act on are printed as one line with a hint, never as a stack trace::

    $ lineage stack up
    kafka: started (pid 4242), waiting for it to answer
    ...
    $ LINEAGE_STACK__KAFKA_PORT=abc lineage stack up
    error: LINEAGE_STACK__KAFKA_PORT: Input should be a valid integer (got 'abc')
"""

from __future__ import annotations

import functools
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError

from core.errors import LineageError, NotFound
from core.settings import ENV_PREFIX, CommonSettings
from lineage.queries import MAX_HOPS
from lineage.stack.settings import StackSettings

if TYPE_CHECKING:
    from lineage.queries import Graph

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="OpenLineage events -> Kafka -> stream processor -> versioned lineage graph in Neo4j.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
stack_app = typer.Typer(help="The local Kafka + Neo4j stack (processes on loopback).",
                        no_args_is_help=True)
app.add_typer(stack_app, name="stack")
bench_app = typer.Typer(help="Benchmarks (figures go to docs/benchmarks.md).",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")
dlq_app = typer.Typer(help="Dead letters: list, show and replay refused events.",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
query_app = typer.Typer(
    help="Ask the lineage graph (read-only): trees and tables, or --json for scripts.\n\n"
         "Name a dataset or job as NS:NAME (split at a colon, the last one first; the split "
         "that exists is used), or as --namespace NS NAME (the name taken as it is: use it when "
         "a name holds a colon). A bare NAME works when exactly one namespace has it.\n\n"
         "Each subcommand runs recipes of docs/cypher-cookbook.md, with every value passed as "
         "a query parameter.",
    no_args_is_help=True)
app.add_typer(query_app, name="query")


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn the project's errors and invalid settings into a one-line message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except LineageError as exc:
            typer.echo(f"error: {exc.cause}", err=True)
            if exc.hint:
                typer.echo(f"hint: {exc.hint}", err=True)
        except ValidationError as exc:
            for err in exc.errors():
                name = ENV_PREFIX + "__".join(str(part) for part in err["loc"]).upper()
                typer.echo(f"error: {name}: {err['msg']} (got {err['input']!r})", err=True)
            typer.echo("hint: fix the environment variable or .env entry named above", err=True)
        raise typer.Exit(1)

    return wrapper


@stack_app.command("up")
@friendly_errors
def stack_up(
    with_prometheus: Annotated[
        bool, typer.Option("--with-prometheus", help="also run Prometheus (Debian package)")
    ] = False,
) -> None:
    """Start Kafka and Neo4j (idempotent) and wait until both do real work."""
    from lineage.stack import LocalStack

    settings = StackSettings(stack={"with_prometheus": True}) if with_prometheus else None
    seconds = LocalStack(settings or StackSettings()).up()
    typer.echo(f"stack is up ({seconds:.1f}s)")


@stack_app.command("down")
@friendly_errors
def stack_down() -> None:
    """Stop the processes the stack started (by pid file, never by name)."""
    from lineage.stack import LocalStack

    LocalStack(StackSettings()).down()


@stack_app.command("status")
@friendly_errors
def stack_status() -> None:
    """Show each service's ports, pid and a live health check; exit 1 when one is unhealthy."""
    from lineage.stack import LocalStack

    statuses = LocalStack(StackSettings()).status()
    typer.echo(f"{'service':<8} {'pid':>7}  {'ports':<28} health")
    for s in statuses:
        ports = ", ".join(f"{k} {v}" for k, v in s.ports.items())
        typer.echo(f"{s.name:<8} {s.pid or '-':>7}  {ports:<28} {s.detail}")
    if not all(s.healthy for s in statuses):
        raise typer.Exit(1)


@stack_app.command("logs")
@friendly_errors
def stack_logs(
    service: Annotated[str, typer.Argument(help="kafka, neo4j or prometheus")],
    lines: Annotated[int, typer.Option("--lines", "-n", help="lines to show")] = 50,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="keep printing")] = False,
) -> None:
    """Print the tail of a service's log."""
    from lineage.stack import LocalStack

    path = LocalStack(StackSettings()).log_path(service)
    if not path.is_file():
        typer.echo(f"no log yet at {path}", err=True)
        raise typer.Exit(1)
    argv = ["tail", "-n", str(lines), *(["-F"] if follow else []), str(path)]
    raise typer.Exit(subprocess.run(argv, check=False).returncode)


@stack_app.command("fetch")
@friendly_errors
def stack_fetch() -> None:
    """Find Java and resolve the Kafka and Neo4j jars from Maven Central (no start)."""
    from lineage.stack import LocalStack

    LocalStack(StackSettings()).fetch()


@app.command("check")
@friendly_errors
def check(
    wait: Annotated[float, typer.Option(help="keep trying for this many seconds")] = 0.0,
) -> None:
    """Check that the configured Kafka and Neo4j answer (any deployment, not only the stack).

    Example: ``lineage check --wait 60`` before starting the pipeline's services.
    """
    from lineage.stack.services import kafka_round_trip, neo4j_ping

    settings = CommonSettings()
    deadline = time.monotonic() + wait
    while True:
        try:
            kafka_round_trip(settings.kafka.bootstrap_servers, timeout=10)
            neo4j_ping(settings.neo4j.uri, settings.neo4j.auth(), timeout=10)
        except LineageError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(2)
        else:
            break
    typer.echo(f"kafka {settings.kafka.bootstrap_servers}: ok (produce/consume round trip)")
    typer.echo(f"neo4j {settings.neo4j.uri}: ok (authenticated RETURN 1)")


@app.command("process")
@friendly_errors
def process(
    repair: Annotated[bool, typer.Option(help="repair known harmless deviations")] = False,
    loglevel: Annotated[str, typer.Option(help="Faust log level")] = "warning",
) -> None:
    """Run a stream processor worker: validate, deduplicate and version raw events.

    Example: ``lineage process`` (start more to share the raw topic's partitions).
    """
    from stream_processor.settings import ProcessorSettings
    from stream_processor.worker import run_worker

    settings = ProcessorSettings(processor={"repair": True}) if repair else ProcessorSettings()
    run_worker(settings, loglevel=loglevel)


@app.command("sink")
@friendly_errors
def sink(
    loglevel: Annotated[str, typer.Option(help="log level")] = "warning",
) -> None:
    """Run the Neo4j sink: write change records into the lineage graph.

    Example: ``lineage sink`` (start more to share the changes topic's partitions).
    """
    import logging

    from sinks.neo4j_sink import run_sink
    from sinks.settings import SinkSettings

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    # The driver's INFO lines are server notifications such as "constraint already exists".
    logging.getLogger("neo4j").setLevel(max(logging.WARNING, logging.getLogger().level))
    run_sink(SinkSettings())


@app.command("gateway")
@friendly_errors
def gateway(
    loglevel: Annotated[str, typer.Option(help="log level (info adds an access log)")] = "warning",
) -> None:
    """Run the HTTP gateway: OpenLineage's HTTP transport in, the raw topic out.

    Example: ``lineage gateway``, then ``OPENLINEAGE_URL=http://127.0.0.1:5000`` in a pipeline.
    """
    import logging

    from producers.gateway import GatewaySettings, run_gateway

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    run_gateway(GatewaySettings(), loglevel=loglevel, echo=typer.echo)


@app.command("emit")
@friendly_errors
def emit(
    source: Annotated[str, typer.Argument(help="a JSON or NDJSON file of events; - for stdin")],
    topic: Annotated[str | None, typer.Option(help="default: the raw topic setting")] = None,
) -> None:
    """Send OpenLineage events from a file to Kafka, keyed like the standard transport.

    Example: ``lineage emit events.ndjson`` or ``cat events.json | lineage emit -``.
    """
    import sys

    from producers.emitter import Emitter, read_events

    settings = CommonSettings()
    target = topic or settings.kafka.raw_topic
    events = read_events(sys.stdin if source == "-" else Path(source))
    with Emitter(settings.kafka, target) as emitter:
        count = emitter.emit_all(events)
    typer.echo(f"sent {count} events to {target} (all acknowledged)")


def _dead_letters(kind: str | None, reason: str | None) -> list[Any]:
    from stream_processor.dlq import read_dead_letters

    return [d for d in read_dead_letters(CommonSettings())
            if (kind is None or d.kind == kind) and (reason is None or reason in d.codes)]


@dlq_app.command("list")
@friendly_errors
def dlq_list(
    kind: Annotated[str | None, typer.Option(help="event or facet")] = None,
    reason: Annotated[str | None, typer.Option(help="only this reason code")] = None,
) -> None:
    """One line per dead letter: where it is, its kind, its reasons."""
    letters = _dead_letters(kind, reason)
    for d in letters:
        first = (d.envelope.get("reasons") or [{}])[0]
        typer.echo(f"{d.ref:<10} {d.kind:<6} {','.join(d.codes):<28} "
                   f"{first.get('pointer', '')} {first.get('message', '')}"[:160])
    typer.echo(f"{len(letters)} dead letters")


@dlq_app.command("show")
@friendly_errors
def dlq_show(ref: Annotated[str, typer.Argument(help="partition:offset, from `dlq list`")]) -> None:
    """The envelope (reasons, source) and the original message of one dead letter."""
    for d in _dead_letters(None, None):
        if d.ref == ref:
            typer.echo(json.dumps(d.envelope, indent=2))
            typer.echo(f"key: {d.key!r}")
            typer.echo("original message:")
            typer.echo(d.value.decode("utf-8", errors="replace"))
            return
    raise LineageError(f"no dead letter at {ref}", hint="see `lineage dlq list`")


@dlq_app.command("replay")
@friendly_errors
def dlq_replay(
    refs: Annotated[list[str] | None, typer.Argument(help="partition:offset ...")] = None,
    all_: Annotated[bool, typer.Option("--all", help="every event dead letter")] = False,
    reason: Annotated[str | None, typer.Option(help="only this reason code")] = None,
    repair: Annotated[bool, typer.Option(help="apply repair mode before publishing")] = False,
) -> None:
    """Publish dead letters back to the raw topic for the processor to try again."""
    from stream_processor.dlq import replay

    if not refs and not all_:
        raise LineageError("name the dead letters to replay", hint="give partition:offset or --all")
    letters = [d for d in _dead_letters("event", reason) if all_ or d.ref in set(refs or ())]
    result = replay(CommonSettings(), letters, repair=repair)
    for ref, codes in result.still_invalid:
        typer.echo(f"{ref}: still invalid ({','.join(codes)}), not replayed")
    typer.echo(f"replayed {len(result.published)} of {len(letters)} dead letters")


@bench_app.command("processor")
@friendly_errors
def bench_processor(
    events: Annotated[int, typer.Option(help="about how many events")] = 20_000,
    kafka: Annotated[bool, typer.Option(help="through Kafka with a real worker")] = False,
    seed: Annotated[int, typer.Option(help="workload seed")] = 1,
    runs_per_job: Annotated[int, typer.Option(help="runs of each synthetic job")] = 2,
) -> None:
    """Events/s of parse + validate + dedup + version (in-process, or end to end on Kafka)."""
    from stream_processor.benchmark import bench_in_process, bench_kafka, workload
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


@bench_app.command("sink")
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
    from sinks.benchmark import (
        bench_sink_in_process,
        bench_sink_kafka,
        connect,
        delete_namespace,
        sink_workload,
    )
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


@bench_app.command("query")
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
             "impact, columns")] = None,
    reload: Annotated[bool, typer.Option(help="delete and load the graph again")] = False,
    load_only: Annotated[bool, typer.Option(help="load the graph, time nothing")] = False,
    namespace: Annotated[str | None, typer.Option(
        help="the graph's namespace (default: bench://query-graph)")] = None,
) -> None:
    """p50/p99 latency of lineage questions on a big synthetic graph (loaded once, reused).

    Example: ``lineage bench query`` (the first run loads 1M runs, which takes an hour).
    """
    from sinks.benchmark import (
        DEFAULT_QUERIES,
        QUERIES,
        QUERY_NAMESPACE,
        GraphShape,
        bench_queries,
        connect,
        graph_counts,
        load_graph,
        plan_graph,
    )
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
    typer.echo(f"{'query':<16} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8} {'max ms':>8} "
               f"{'rows':>8}")
    for r in results:
        typer.echo(f"{r.name:<16} {r.p50:>8.1f} {r.p99:>8.1f} {r.mean:>8.1f} "
                   f"{max(r.millis):>8.1f} {r.mean_rows:>8.0f}")


@bench_app.command("emitter")
@friendly_errors
def bench_emitter(
    events: Annotated[int, typer.Option(help="how many events")] = 50_000,
    compression: Annotated[str, typer.Option(help="lz4, zstd or none")] = "lz4",
) -> None:
    """Events/s from the emitter to an acknowledged topic (acks=all)."""
    from producers.benchmark import bench_emitter as run

    if compression not in ("zstd", "lz4", "none"):
        raise typer.BadParameter("use zstd, lz4 or none", param_hint="--compression")
    result = run(CommonSettings().kafka, events,
                 compression=compression)  # type: ignore[arg-type]
    typer.echo(f"emitter ({compression}): {result.events} events ({result.megabytes:.0f} MB of "
               f"JSON) acknowledged in {result.seconds:.2f}s = {result.rate:,.0f} events/s")


@bench_app.command("generate")
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


@bench_app.command("e2e")
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


@bench_app.command("report")
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


@app.command("demo")
@friendly_errors
def demo() -> None:
    """Bring the stack up and run the end-to-end demo."""
    from lineage.demo import run_demo

    run_demo(StackSettings())



# --- lineage harvest: events from logs, SQL query history and files (producers/harvest_*.py) ---

harvest_app = typer.Typer(help="Harvest OpenLineage events from logs, SQL history and files.",
                          no_args_is_help=True)
app.add_typer(harvest_app, name="harvest")


def _harvest_sink(dry_run: bool, topic: str | None) -> tuple[Any, Callable[[str], None]]:
    """The sink (an Emitter, or NDJSON on stdout for --dry-run) and where progress goes."""
    from producers.emitter import Emitter
    from producers.harvest_common import PrintSink

    if dry_run:
        return PrintSink(), lambda line: typer.echo(line, err=True)
    settings = CommonSettings()
    return (Emitter(settings.kafka, topic or settings.kafka.raw_topic,
                    path="harvest"), typer.echo)


def _finish(report: Any, echo: Callable[[str], None], dry_run: bool) -> None:
    """Print the report; exit 1 when it names problems."""
    summary = report.summary()
    echo(summary if not dry_run else summary.replace(" sent,", " printed,", 1))
    if report.problems:
        raise typer.Exit(1)


@harvest_app.command("logs")
@friendly_errors
def harvest_logs(
    paths: Annotated[list[str], typer.Argument(help="log files, folders or glob patterns")],
    pattern: Annotated[list[str] | None, typer.Option(
        "--pattern", help="in folders, only files whose name matches (repeatable)")] = None,
    follow: Annotated[bool, typer.Option(
        help="keep reading as the logs grow (Ctrl-C or SIGTERM stops)")] = False,
    interval: Annotated[float, typer.Option(help="seconds between passes with --follow")] = 2.0,
    topic: Annotated[str | None, typer.Option(help="default: the raw topic setting")] = None,
    dry_run: Annotated[bool, typer.Option(help="print the events; send nothing, save no state")
                       ] = False,
) -> None:
    """Publish the OpenLineage events in task and driver logs (console transport output).

    Resumable: remembers per file how far it read. Example: ``lineage harvest logs airflow/logs``.
    """
    from producers.harvest_common import StateFile
    from producers.harvest_logs import harvest_logs as run

    if follow:  # a service manager's stop ends it like Ctrl-C: state saved, report printed
        import signal
        from types import FrameType

        def stop(_signum: int, _frame: FrameType | None) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, stop)
    sink, echo = _harvest_sink(dry_run, topic)
    state = None if dry_run else StateFile(CommonSettings().state_dir, "logs")
    report = run(paths, sink, state, patterns=pattern or ("*",), follow=follow,
                 interval=interval, log=echo)
    _finish(report, echo, dry_run)


@harvest_app.command("sql")
@friendly_errors
def harvest_sql(
    source: Annotated[str | None, typer.Argument(
        help="a SQL file (statements end with ;), or - for stdin; omit it with --dsn")] = None,
    dsn: Annotated[str | None, typer.Option(
        help="read pg_stat_statements of this PostgreSQL (libpq conninfo or postgresql:// URI)")
                   ] = None,
    namespace: Annotated[str | None, typer.Option(
        help="the datasets' namespace, e.g. postgres://db.example.com:5432 (default with "
             "--dsn: the server's)")] = None,
    database: Annotated[str | None, typer.Option(
        help="the database of unqualified tables (with a file)")] = None,
    default_schema: Annotated[str, typer.Option(help="the schema of unqualified tables")
                              ] = "public",
    dialect: Annotated[str, typer.Option(help="openlineage-sql's dialect (with a file)")
                       ] = "postgres",
    job: Annotated[str | None, typer.Option(
        help="the job's name (with a file; several statements: NAME.1, NAME.2, ...)")] = None,
    job_namespace: Annotated[str | None, typer.Option(
        help="the jobs' namespace (default: the datasets' namespace)")] = None,
    reads: Annotated[bool, typer.Option(help="also read-only statements")] = False,
    event_time: Annotated[str | None, typer.Option(
        help="ISO time of a file's runs (default: the file's modification time)")] = None,
    topic: Annotated[str | None, typer.Option(help="default: the raw topic setting")] = None,
    dry_run: Annotated[bool, typer.Option(help="print the events; send nothing, save no state")
                       ] = False,
) -> None:
    """Publish lineage parsed from SQL statements: a file, or a PostgreSQL's query history.

    Example: ``lineage harvest sql --dsn postgresql://lineage@db/postgres``.
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    from producers import harvest_sql as h

    if (source is None) == (dsn is None):
        raise LineageError("give either a SQL file or --dsn", hint="see `lineage harvest sql "
                           "--help`")
    if dsn is not None:
        if job is not None:
            raise LineageError("--job names the statements of a file",
                               hint="statements from pg_stat_statements are named "
                                    "<database>.sql_<hash of the statement>")
        sink, echo = _harvest_sink(dry_run, topic)
        report = h.harvest_postgres(dsn, sink, None if dry_run else CommonSettings().state_dir,
                                    job_namespace=job_namespace, namespace=namespace,
                                    default_schema=default_schema, reads=reads, log=echo)
        _finish(report, echo, dry_run)
        return
    if namespace is None or database is None:
        raise LineageError("a SQL file needs --namespace and --database",
                           hint="e.g. --namespace postgres://db.example.com:5432 --database "
                                "retail (OpenLineage names tables database.schema.table)")
    path = None if source == "-" else Path(str(source))
    try:
        sql = sys.stdin.read() if path is None else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LineageError(f"cannot read {source}: {exc}", hint="give a UTF-8 SQL file") from exc
    if event_time is not None:
        try:
            when = datetime.fromisoformat(event_time)
        except ValueError as exc:
            raise LineageError(f"--event-time {event_time!r} is not an ISO time",
                               hint="e.g. 2024-05-01T12:00:00+00:00") from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    else:
        when = h.default_event_time(path)
    sink, echo = _harvest_sink(dry_run, topic)
    options = h.Options(h.Naming(namespace, database, default_schema, dialect),
                        job_namespace, job, reads)
    report = h.harvest_sql_text(sql, str(source), sink, options, event_time=when, log=echo)
    _finish(report, echo, dry_run)


@harvest_app.command("file")
@friendly_errors
def harvest_file(
    paths: Annotated[list[str], typer.Argument(help="JSON/NDJSON files, folders or globs")],
    pattern: Annotated[list[str] | None, typer.Option(
        "--pattern", help="in folders, only files whose name matches (repeatable; default "
                          "*.json, *.ndjson, *.jsonl)")] = None,
    topic: Annotated[str | None, typer.Option(help="default: the raw topic setting")] = None,
    dry_run: Annotated[bool, typer.Option(help="print the events; send nothing")] = False,
) -> None:
    """Replay files of OpenLineage events; a bad file is reported (file:line) and skipped.

    Example: ``lineage harvest file exports/``.
    """
    from producers.harvest_files import PATTERNS
    from producers.harvest_files import harvest_files as run

    sink, echo = _harvest_sink(dry_run, topic)
    report = run(paths, sink, patterns=pattern or PATTERNS, log=echo)
    _finish(report, echo, dry_run)


# ---------------------------------------------------------------------------------------------
# lineage query: the cookbook's recipes (lineage/queries.py) from the command line.
# ---------------------------------------------------------------------------------------------

Ref = Annotated[str, typer.Argument(
    metavar="NS:NAME", help="the dataset (or with --job the job): NS:NAME, or NAME with "
                            "--namespace")]
Namespace = Annotated[str | None, typer.Option(
    "--namespace", "-n", help="the namespace; NS:NAME is then read as a NAME, as it is")]
JobFlag = Annotated[bool, typer.Option("--job", help="name a job instead of a dataset")]
Hops = Annotated[int, typer.Option(min=1, max=MAX_HOPS, help=f"how many jobs away, 1-{MAX_HOPS}")]
Json = Annotated[bool, typer.Option("--json", help="print JSON for scripts")]


def _graph() -> Graph:
    from lineage.queries import Graph

    settings = CommonSettings()
    return Graph(settings.neo4j.uri, settings.neo4j.auth(), settings.neo4j.database)


def _resolve(graph: Graph, kind: str, ref: str, namespace: str | None) -> tuple[str, str]:
    """The (namespace, name) of the one dataset or job ``ref`` names (see ``query --help``)."""
    from lineage import queries

    if namespace is not None:
        candidates, shown = [(namespace, ref)], f"{namespace}:{ref}"
    else:
        candidates, shown = queries.reference_candidates(ref), ref
    names = sorted({name for _, name in candidates} | {ref})
    rows = graph.read(queries.FIND_JOBS if kind == "job" else queries.FIND_DATASETS, names=names)
    try:
        return queries.choose(kind, shown, candidates,
                              [(r["namespace"], r["name"]) for r in rows])
    except NotFound as missing:
        other = "dataset" if kind == "job" else "job"
        others = graph.read(queries.FIND_DATASETS if kind == "job" else queries.FIND_JOBS,
                            names=names)
        pairs = {(r["namespace"], r["name"]) for r in others}
        if pairs & set(candidates) or (not candidates and pairs):
            raise NotFound(missing.cause, hint=f"that is a {other}: "
                           + ("leave out --job" if kind == "job" else "add --job")) from None
        raise


def _check_field(graph: Graph, namespace: str, name: str, field: str) -> None:
    from lineage import queries

    fields = [r["field"] for r in graph.read(queries.DATASET_FIELDS, namespace=namespace,
                                             name=name)]
    if field not in fields:
        known = ", ".join(queries.display(f) for f in fields[:20]) + (
            ", ..." if len(fields) > 20 else "")
        raise NotFound(f"no column {queries.display(field)} in dataset "
                       f"{queries.display_ref(namespace, name)}",
                       hint=f"its columns: {known}" if fields else "the graph knows no column "
                                                                   "of that dataset")


def _emit(as_json: bool, question: str, recipes: list[str], parameters: dict[str, Any],
          rows: list[dict[str, Any]], text: Callable[[], list[str]]) -> None:
    from lineage.queries import plain

    if as_json:
        typer.echo(json.dumps({"question": question, "recipes": recipes,
                               "parameters": plain(parameters), "rows": plain(rows)},
                              ensure_ascii=False, indent=2))
    else:
        typer.echo("\n".join(text()))


def _count(rows: list[dict[str, Any]]) -> str:
    jobs = sum(1 for r in rows if r["kind"] == "Job")
    datasets = len(rows) - jobs
    return (f"{jobs} job{'s' if jobs != 1 else ''} and "
            f"{datasets} dataset{'s' if datasets != 1 else ''}")


def _lineage(direction: str, ref: str, namespace: str | None, job: bool, hops: int,
             as_json: bool) -> None:
    from lineage import queries

    kind = "job" if job else "dataset"
    recipe = f"{kind.upper()}_{direction.upper()}"
    with _graph() as graph:
        ns, name = _resolve(graph, kind, ref, namespace)
        parameters = {"namespace": ns, "name": name, "hops": hops}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        lines = queries.lineage_tree(("Job" if job else "Dataset", ns, name), rows)
        return [*lines, f"{_count(rows)} {direction} within {hops} hop{'s' if hops != 1 else ''}"]

    _emit(as_json, direction, [recipe], parameters, rows, text)


@query_app.command("upstream")
@friendly_errors
def query_upstream(ref: Ref, namespace: Namespace = None, job: JobFlag = False,
                   hops: Hops = 3, as_json: Json = False) -> None:
    """Where a dataset (or job) comes from, as a tree: the jobs and datasets upstream.

    Example: ``lineage query upstream 'postgres://db:5432:mart.revenue' --hops 2``
    """
    _lineage("upstream", ref, namespace, job, hops, as_json)


@query_app.command("downstream")
@friendly_errors
def query_downstream(ref: Ref, namespace: Namespace = None, job: JobFlag = False,
                     hops: Hops = 3, as_json: Json = False) -> None:
    """What is built from a dataset (or job), as a tree: the jobs and datasets downstream.

    Example: ``lineage query downstream --job 'airflow:etl.load_orders'``
    """
    _lineage("downstream", ref, namespace, job, hops, as_json)


@query_app.command("impact")
@friendly_errors
def query_impact(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the dataset")],
    namespace: Namespace = None,
    field: Annotated[str | None, typer.Option(
        "--field", "-f", help="a column of the dataset: its impact through column lineage")] = None,
    as_json: Json = False,
) -> None:
    """What breaks if a dataset (or one of its columns) changes: everything downstream, by hop.

    Example: ``lineage query impact 'postgres://db:5432:raw.orders' --field amount``
    """
    from lineage import queries

    with _graph() as graph:
        ns, name = _resolve(graph, "dataset", ref, namespace)
        if field is None:
            recipe, parameters = "DATASET_IMPACT", {"namespace": ns, "name": name}
        else:
            _check_field(graph, ns, name, field)
            recipe, parameters = "FIELD_IMPACT", {"namespace": ns, "dataset": name,
                                                  "field": field}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        if field is None:
            title = f"impact of dataset {queries.display_ref(ns, name)}"
            lines = queries.by_hops(title, rows, lambda r: (
                f"{'job' if r['kind'] == 'Job' else 'dataset'} "
                + (queries.display(r["name"]) if r["namespace"] == ns
                   else queries.display_ref(r["namespace"], r["name"]))))
            return [*lines, f"{_count(rows)} downstream"]
        title = f"impact of column {queries.field_label(ns, name, field, '')}"
        lines = queries.by_hops(title, rows, lambda r: queries.field_label(
            r["namespace"], r["dataset"], r["field"], ns))
        return [*lines, f"{len(rows)} column{'s' if len(rows) != 1 else ''} downstream"]

    _emit(as_json, "impact", [recipe], parameters, rows, text)


@query_app.command("columns")
@friendly_errors
def query_columns(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the dataset")],
    field: Annotated[str, typer.Option("--field", "-f", help="the column")],
    namespace: Namespace = None,
    as_json: Json = False,
) -> None:
    """Column lineage of one column: where it comes from and what it feeds, as two trees.

    Example: ``lineage query columns 'postgres://db:5432:mart.revenue' --field total``
    """
    from lineage import queries

    with _graph() as graph:
        ns, name = _resolve(graph, "dataset", ref, namespace)
        _check_field(graph, ns, name, field)
        parameters = {"namespace": ns, "dataset": name, "field": field}
        upstream = graph.read(queries.FIELD_UPSTREAM, **parameters)
        downstream = graph.read(queries.FIELD_DOWNSTREAM, **parameters)
    rows = ([{"direction": "upstream", **r} for r in upstream]
            + [{"direction": "downstream", **r} for r in downstream])

    def text() -> list[str]:
        lines = [f"column {queries.field_label(ns, name, field, '')}"]
        for title, part in (("upstream: where it comes from", upstream),
                            ("downstream: what it feeds", downstream)):
            tree = queries.column_tree((ns, name, field), part, title)
            lines += tree if part else [title, "    (none)"]
        return lines

    _emit(as_json, "columns", ["FIELD_UPSTREAM", "FIELD_DOWNSTREAM"], parameters, rows, text)


@query_app.command("history")
@friendly_errors
def query_history(ref: Ref, namespace: Namespace = None, job: JobFlag = False,
                  as_json: Json = False) -> None:
    """The versions of a dataset (schema changes) or of a job (SQL, inputs, outputs), as a table.

    Example: ``lineage query history 'postgres://db:5432:staging.orders'``
    """
    from lineage import queries

    kind = "job" if job else "dataset"
    recipe = "JOB_HISTORY" if job else "DATASET_HISTORY"
    with _graph() as graph:
        ns, name = _resolve(graph, kind, ref, namespace)
        parameters = {"namespace": ns, "name": name}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        title = (f"history of {kind} {queries.display_ref(ns, name)}: {len(rows)} "
                 f"version{'s' if len(rows) != 1 else ''}")
        if not rows:
            return [title]
        if job:
            table = queries.table(
                ["version", "valid from", "valid to", "runs", "reads", "writes", "sql"],
                [[r["version"], r["validFrom"], r["validTo"], r["runs"],
                  queries.relative(r["reads"], ns), queries.relative(r["writes"], ns), r["sql"]]
                 for r in rows])
        else:
            table = queries.table(
                ["version", "valid from", "valid to", "written by", "added", "removed",
                 "retyped"],
                [[r["version"], r["validFrom"], r["validTo"], r["writtenBy"], r["added"],
                  r["removed"], r["retyped"]] for r in rows])
        return [title, *table]

    _emit(as_json, "history", [recipe], parameters, rows, text)


@query_app.command("diff")
@friendly_errors
def query_diff(
    from_id: Annotated[str, typer.Argument(metavar="FROM", help="a version id (see history)")],
    to_id: Annotated[str, typer.Argument(metavar="TO", help="another version id")],
    as_json: Json = False,
) -> None:
    """What changed between two versions of a dataset (fields) or of a job (SQL, datasets).

    Example: ``lineage query diff 626312d5df81405737ed5e1b65e44511 091cef4ee92540...``
    """
    from lineage import queries

    parameters = {"from": from_id, "to": to_id}
    with _graph() as graph:
        recipe = "DATASET_VERSION_DIFF"
        rows = graph.read(queries.DATASET_VERSION_DIFF, **parameters)
        if not rows:
            recipe = "JOB_VERSION_DIFF"
            rows = graph.read(queries.JOB_VERSION_DIFF, **parameters)
    if not rows:
        raise NotFound(f"no two dataset versions or two job versions with ids "
                       f"{queries.display(from_id)} and {queries.display(to_id)}",
                       hint="take both ids from `lineage query history NS:NAME` "
                            "(add --job for a job's versions)")
    [diff] = rows

    def text() -> list[str]:
        before, after = diff["fromVersion"], diff["toVersion"]
        if recipe == "DATASET_VERSION_DIFF":
            changes = queries.dataset_diff_rows(diff)
            what = "dataset " + " -> ".join(dict.fromkeys(
                queries.display_ref(v["namespace"], v["name"]) for v in (before, after)))
            headers = ["change", "field", "before", "after"]
        else:
            changes = [[c[0], queries.relative([c[1]], after["jobNamespace"])[0]]
                       for c in queries.job_diff_rows(diff) if c[0] != "sql changed"]
            what = "job " + " -> ".join(dict.fromkeys(
                queries.display_ref(v["jobNamespace"], v["jobName"]) for v in (before, after)))
            headers = ["change", "dataset"]
        lines = [f"diff of {what}: {before['id']} ({queries.cell(before['validFrom'])}) -> "
                 f"{after['id']} ({queries.cell(after['validFrom'])})"]
        lines += queries.table(headers, changes) if changes else []
        if recipe == "JOB_VERSION_DIFF" and diff["sqlBefore"] != diff["sqlAfter"]:
            lines += [f"sql before: {queries.cell(diff['sqlBefore'])}",
                      f"sql after:  {queries.cell(diff['sqlAfter'])}"]
        return lines if len(lines) > 1 else [*lines, "no differences"]

    _emit(as_json, "diff", [recipe], parameters, rows, text)


@query_app.command("as-of")
@friendly_errors
def query_as_of(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the dataset")],
    at: Annotated[str, typer.Option("--at", help="the time: ISO 8601 (UTC without an offset)")],
    namespace: Namespace = None,
    downstream: Annotated[bool, typer.Option(
        "--downstream", help="what was built from it (default: where it came from)")] = False,
    hops: Hops = 3,
    as_json: Json = False,
) -> None:
    """The lineage of a dataset as it was at a time: the job versions valid then, as a table.

    Example: ``lineage query as-of 'postgres://db:5432:mart.revenue' --at 2024-03-01T12:00Z``
    """
    from lineage import queries

    recipe = "AS_OF_DOWNSTREAM" if downstream else "AS_OF_UPSTREAM"
    as_of = queries.parse_time(at)
    with _graph() as graph:
        ns, name = _resolve(graph, "dataset", ref, namespace)
        parameters = {"namespace": ns, "name": name, "asOf": as_of, "hops": hops}
        rows = graph.read(queries.RECIPES[recipe], **parameters)

    def text() -> list[str]:
        title = (f"{'downstream' if downstream else 'upstream'} of dataset "
                 f"{queries.display_ref(ns, name)} as of {queries.iso(as_of)}, within {hops} "
                 f"hop{'s' if hops != 1 else ''}: {_count(rows)}")
        return [title, *queries.table(
            ["hops", "kind", "name", "version", "valid from", "valid to"],
            [[r["hops"], "job" if r["kind"] == "Job" else "dataset",
              queries.relative([r], ns)[0], r["version"], r["validFrom"], r["validTo"]]
             for r in rows])] if rows else [title]

    _emit(as_json, "as-of", [recipe], parameters, rows, text)


@query_app.command("runs")
@friendly_errors
def query_runs(
    ref: Annotated[str, typer.Argument(metavar="NS:NAME", help="the job")],
    namespace: Namespace = None,
    limit: Annotated[int, typer.Option(min=1, help="the latest runs to show")] = 20,
    as_json: Json = False,
) -> None:
    """The latest runs of a job: state, start, end, duration, version and parent run.

    Example: ``lineage query runs 'airflow:etl.load_orders' --limit 5``
    """
    from lineage import queries

    with _graph() as graph:
        ns, name = _resolve(graph, "job", ref, namespace)
        parameters = {"namespace": ns, "name": name, "limit": limit}
        rows = graph.read(queries.JOB_RUNS, **parameters)

    def text() -> list[str]:
        title = f"runs of job {queries.display_ref(ns, name)}: the latest {len(rows)}"
        return [title] if not rows else [title, *queries.table(
            ["run", "state", "started", "ended", "duration", "version", "parent"],
            [[r["runId"], r["state"], r["startedAt"], r["endedAt"],
              queries.duration_text(r["seconds"]), r["versions"],
              None if r["parent"] is None else
              f"{queries.display(r['parent']['job'] or '?')} {r['parent']['runId']}"]
             for r in rows])]

    _emit(as_json, "runs", ["JOB_RUNS"], parameters, rows, text)
