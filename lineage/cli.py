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
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from pydantic import ValidationError

from lineage.errors import LineageError
from lineage.settings import ENV_PREFIX, CommonSettings, StackSettings

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
    from pathlib import Path

    from producers.emitter import Emitter, read_events

    settings = CommonSettings()
    target = topic or settings.kafka.raw_topic
    events = read_events(sys.stdin if source == "-" else Path(source))
    with Emitter(settings.kafka.bootstrap_servers, target) as emitter:
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


@bench_app.command("emitter")
@friendly_errors
def bench_emitter(
    events: Annotated[int, typer.Option(help="how many events")] = 50_000,
    compression: Annotated[str, typer.Option(help="zstd, lz4 or none")] = "zstd",
) -> None:
    """Events/s from the emitter to an acknowledged topic (acks=all)."""
    from producers.benchmark import bench_emitter as run

    if compression not in ("zstd", "lz4", "none"):
        raise typer.BadParameter("use zstd, lz4 or none", param_hint="--compression")
    result = run(CommonSettings().kafka.bootstrap_servers, events,
                 compression=compression)  # type: ignore[arg-type]
    typer.echo(f"emitter ({compression}): {result.events} events ({result.megabytes:.0f} MB of "
               f"JSON) acknowledged in {result.seconds:.2f}s = {result.rate:,.0f} events/s")


@app.command("demo")
@friendly_errors
def demo() -> None:
    """Bring the stack up and run the end-to-end demo."""
    from lineage.demo import run_demo

    run_demo(StackSettings())

