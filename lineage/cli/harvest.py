"""``lineage harvest``: events from logs, SQL query history and files (producers/harvest_*.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from core.errors import LineageError
from core.settings import CommonSettings
from lineage.cli.common import friendly_errors

app = typer.Typer(help="Harvest OpenLineage events from logs, SQL history and files.",
                  no_args_is_help=True)


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


@app.command("logs")
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


@app.command("sql")
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


@app.command("file")
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
