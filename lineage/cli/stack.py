"""``lineage stack``: the local Kafka + Neo4j stack (lineage/stack/) from the command line."""

from __future__ import annotations

import subprocess
from typing import Annotated

import typer

from lineage.cli.common import friendly_errors
from lineage.stack.settings import StackSettings

app = typer.Typer(help="The local Kafka + Neo4j stack (processes on loopback).",
                  no_args_is_help=True)


@app.command("up")
@friendly_errors
def stack_up(
    with_prometheus: Annotated[
        bool, typer.Option("--with-prometheus", help="also run Prometheus (Debian package)")
    ] = False,
    secure: Annotated[
        bool, typer.Option("--secure", help="add Kafka's SASL_SSL listener and bolt over TLS "
                           "(generated CA, certificate and SCRAM password)")
    ] = False,
) -> None:
    """Start Kafka and Neo4j (idempotent) and wait until both do real work."""
    from lineage.stack import LocalStack

    asked = {k: True for k, on in (("with_prometheus", with_prometheus), ("secure", secure)) if on}
    seconds = LocalStack(StackSettings(stack=asked) if asked else StackSettings()).up()
    typer.echo(f"stack is up ({seconds:.1f}s)")


@app.command("down")
@friendly_errors
def stack_down() -> None:
    """Stop the processes the stack started (by pid file, never by name)."""
    from lineage.stack import LocalStack

    LocalStack(StackSettings()).down()


@app.command("status")
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


@app.command("logs")
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


@app.command("fetch")
@friendly_errors
def stack_fetch() -> None:
    """Find Java and resolve the Kafka and Neo4j jars from Maven Central (no start)."""
    from lineage.stack import LocalStack

    LocalStack(StackSettings()).fetch()
