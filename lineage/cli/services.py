"""The pipeline's services as top-level commands: check, process, sink, rebuild, gateway, emit,
demo."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from core import quiet_logs
from core.errors import LineageError
from core.settings import CommonSettings
from lineage.cli.common import friendly_errors
from lineage.stack.settings import StackSettings

# Added to the main command without a name: these commands sit at its top level.
app = typer.Typer()


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
            kafka_round_trip(settings.kafka, timeout=10)
            neo4j_ping(settings.neo4j, timeout=10)
        except LineageError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(2)
        else:
            break
    typer.echo(f"kafka {settings.kafka.bootstrap_servers} ({settings.kafka.security_protocol}): "
               "ok (produce/consume round trip)")
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
    quiet_logs.install()
    # The driver's INFO lines are server notifications such as "constraint already exists".
    logging.getLogger("neo4j").setLevel(max(logging.WARNING, logging.getLogger().level))
    run_sink(SinkSettings())


@app.command("rebuild")
@friendly_errors
def rebuild(
    repair: Annotated[bool, typer.Option(
        help="repair known harmless deviations (as the processor was run)")] = False,
    batch_size: Annotated[int, typer.Option(min=1, help="change records per transaction")] = 2000,
) -> None:
    """Rebuild the graph from every event the raw topic retains, with a fresh processor state.

    For a graph that lost data (a wipe, an old backup, a graph-contract change): replaying the
    raw topic through the live processor cannot do it, its state drops what it has already sent.
    Idempotent, and safe while the pipeline runs. Example: ``lineage rebuild``.
    """
    from lineage.rebuild import rebuild as run_rebuild
    from stream_processor.settings import ProcessorSettings

    settings = ProcessorSettings(processor={"repair": True}) if repair else ProcessorSettings()
    typer.echo(run_rebuild(settings, batch_size=batch_size, log=typer.echo).summary())


@app.command("gateway")
@friendly_errors
def gateway(
    loglevel: Annotated[str, typer.Option(help="log level (info adds an access log)")] = "warning",
) -> None:
    """Run the HTTP gateway: OpenLineage's HTTP transport in, the raw topic out.

    Example: ``lineage gateway``, then ``OPENLINEAGE_URL=http://127.0.0.1:5000`` in a pipeline.
    """
    import logging

    from lineage.read_api import create_app
    from producers.gateway.app import run_gateway
    from producers.gateway.settings import GatewaySettings

    logging.basicConfig(level=loglevel.upper(), format="%(asctime)s %(levelname)s %(message)s")
    quiet_logs.install()
    settings = GatewaySettings()
    # The stage's ingest app with Marquez's lineage read (from Neo4j) added on top.
    run_gateway(settings, app=create_app(settings), loglevel=loglevel, echo=typer.echo)


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


@app.command("demo")
@friendly_errors
def demo() -> None:
    """Bring the stack up and run the end-to-end demo."""
    from lineage.demo import run_demo

    run_demo(StackSettings())
