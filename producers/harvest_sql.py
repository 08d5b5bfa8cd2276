"""``lineage harvest sql``: lineage from SQL query history, one job per statement.

Modelled on lineage harvested from a warehouse's query history (Amazon DataZone reads Redshift's):
the statements come from a file (split at each ``;`` outside quotes, dollar quotes and comments)
or from a live PostgreSQL's ``pg_stat_statements`` view. Each statement is parsed by
``openlineage-sql`` (OpenLineage's own SQL parser, in Rust) into the tables it reads and writes
and its column lineage, and becomes one COMPLETE RunEvent:

- **inputs / outputs**: datasets named as OpenLineage names PostgreSQL tables, namespace
  ``postgres://host:port``, name ``database.schema.table``; unqualified tables get
  ``--database`` and ``--default-schema`` (``public``); unquoted names are folded to lower case
  as PostgreSQL (and Redshift) do;
- **columnLineage** facet on each output, from the parser's column lineage;
- **schema** facet on each output, when the live database can tell (``information_schema``);
- **sql** job facet with the statement, and its dialect.

Which statements: those that write a table (INSERT, UPDATE, MERGE, CREATE TABLE AS, ...). DDL
without a source (``CREATE TABLE t (...)``, ``DROP``) and statements on the system catalogs are
skipped; read-only statements too, unless ``--reads``.

Job names: ``--job NAME`` (a file of several statements gives ``NAME.1``, ``NAME.2``, ... in
order), else ``<database>.sql_<hash>``, the hash of the *normalized* statement (comments dropped,
literals and parameters replaced by ``?``, whitespace and the case of unquoted words folded), so
the same statement with other values is one job with several runs:

>>> job_name("INSERT INTO t SELECT * FROM s WHERE d = '2024-05-01'", "retail")
'retail.sql_0758c6e01a17'
>>> job_name("insert into T select *  from s where d = $1 -- nightly", "retail")
'retail.sql_0758c6e01a17'
>>> [s.text for s in split_statements("SELECT ';'; /* ; */ SELECT $$;$$;")]
["SELECT ';'", 'SELECT $$;$$']

From pg_stat_statements: every statement the server recorded, in every database (the view is
cluster-wide; its query texts have their constants replaced by ``$n``, which is all lineage
needs). The state file ``<state_dir>/harvest/sql-<namespace>.json`` remembers each entry's
``calls``: a re-run sends a new run only for statements executed again since, with a run id
derived from (entry, calls), so a repeat is the same event, which the processor drops.

Examples::

    lineage harvest sql etl/nightly.sql --namespace postgres://db.example.com:5432 \\
        --database retail --job nightly_load
    lineage harvest sql --dsn 'postgresql://lineage@db.example.com/postgres'
    lineage harvest sql --dsn 'host=/var/run/postgresql dbname=postgres' --reads --dry-run
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError, LineageError, ServiceUnavailable
from producers.harvest_common import PRODUCER, RUN_SCHEMA_URL, EventSink, Report, StateFile

FACETS = "https://openlineage.io/spec/facets"
SQL_FACET = f"{FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet"
COLUMN_LINEAGE_FACET = f"{FACETS}/1-2-0/ColumnLineageDatasetFacet.json#/$defs/" \
                       "ColumnLineageDatasetFacet"
SCHEMA_FACET = f"{FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet"
RUN_NAMESPACE = uuid.UUID("5b1f3c8e-6a0d-4c57-9f0e-0d6c1a0a9e21")  # run ids of harvested runs
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
DDL = frozenset({"create", "alter", "drop", "truncate", "comment", "grant", "revoke"})
LOWER_CASE_DIALECTS = frozenset({"postgres", "postgresql", "redshift"})
MARKER = "/* lineage harvest sql */"

# Splitting and normalizing share one lexer: these are the tokens whose insides never split a
# statement. A string or comment left open runs to the end of the text.
_LEXER = re.compile(r"""
    (?P<comment>--[^\n]*|/\*)
  | (?P<string>(?<![\w$])[Ee]'(?:[^'\\]|\\.|'')*(?:'|\Z)|'(?:[^']|'')*(?:'|\Z))
  | (?P<dollar>(?<![\w$])\$(?P<tag>(?:[A-Za-z_]\w*)?)\$)
  | (?P<ident>"(?:[^"]|"")*(?:"|\Z))
  | (?P<semicolon>;)
""", re.X | re.S)
_NUMBER_OR_PARAM = re.compile(r"(?<![\w$])(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|\$\d+")
_SPACE_AROUND = re.compile(r"\s*([(),;=<>+\-*/|:\[\]!%^~])\s*")


def _block_comment_end(text: str, start: int) -> int:
    """The index past the ``*/`` closing the (nestable) comment opened at ``start``."""
    depth, i = 0, start
    while i < len(text):
        if text.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif text.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(text)


def _tokens(text: str) -> Iterator[tuple[str, int, int]]:
    """(kind, start, end) of each comment, string, dollar-quoted body, quoted name and ``;``."""
    pos = 0
    while True:
        match = _LEXER.search(text, pos)
        if match is None:
            return
        kind = match.lastgroup or ""
        start, end = match.start(), match.end()
        if kind == "comment" and match.group() == "/*":
            end = _block_comment_end(text, start)
        elif kind == "dollar":
            close = text.find(match.group("dollar"), end)
            end = len(text) if close < 0 else close + len(match.group("dollar"))
        yield kind, start, end
        pos = end


def _skip_noise(text: str, pos: int) -> int:
    """The index of the first character at or after ``pos`` outside blanks and comments."""
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
        elif text.startswith("--", pos):
            newline = text.find("\n", pos)
            pos = len(text) if newline < 0 else newline + 1
        elif text.startswith("/*", pos):
            pos = _block_comment_end(text, pos)
        else:
            break
    return pos


@dataclass(frozen=True)
class Statement:
    """One statement: its text (no trailing ``;``) and the line it starts on."""

    text: str
    line: int


def split_statements(sql: str) -> list[Statement]:
    """The statements of a SQL script, split at each ``;`` outside strings, quoted names,
    dollar quotes and comments; empty ones (only blanks and comments) are dropped."""
    cuts = [start for kind, start, _ in _tokens(sql) if kind == "semicolon"]
    statements, begin = [], 0
    for cut in [*cuts, len(sql)]:
        first = min(_skip_noise(sql, begin), cut)
        text = sql[first:cut].strip()
        if text:
            statements.append(Statement(text, sql.count("\n", 0, first) + 1))
        begin = cut + 1
    return statements


def normalize(statement: str) -> str:
    """The statement with comments dropped, literals and ``$n`` parameters as ``?``, blanks
    collapsed and unquoted words in lower case.

    >>> normalize("SELECT  a, 'x' -- why\\nFROM \\"My\\".T WHERE n = 42;")
    'select a,? from "My".t where n=?'
    """
    pieces: list[str] = []
    quoted: list[str] = []
    pos = 0

    def plain(chunk: str) -> str:
        return _NUMBER_OR_PARAM.sub("?", chunk).lower()

    for kind, start, end in _tokens(statement):
        pieces.append(plain(statement[pos:start]))
        if kind == "comment":
            pieces.append(" ")
        elif kind in ("string", "dollar"):
            pieces.append("?")
        elif kind == "ident":
            quoted.append(statement[start:end])
            pieces.append(f"\x00{len(quoted) - 1}\x00")
        pos = end  # a ``;`` is dropped
    pieces.append(plain(statement[pos:]))
    text = _SPACE_AROUND.sub(r"\1", re.sub(r"\s+", " ", "".join(pieces))).strip()
    return re.sub("\x00(\\d+)\x00", lambda m: quoted[int(m.group(1))], text)


def statement_hash(statement: str) -> str:
    """12 hex digits of the SHA-256 of :func:`normalize` (statement)."""
    return hashlib.sha256(normalize(statement).encode()).hexdigest()[:12]


def job_name(statement: str, database: str, job: str | None = None, index: int = 1,
             count: int = 1) -> str:
    """``job`` for a single statement, ``job.<index>`` for one of several, else
    ``<database>.sql_<hash of the normalized statement>``."""
    if job:
        return job if count == 1 else f"{job}.{index}"
    return f"{database}.sql_{statement_hash(statement)}"


@dataclass(frozen=True)
class Naming:
    """How tables become OpenLineage datasets.

    >>> Naming("postgres://db:5432", "retail").dataset_name(None, "Market", "Sales")
    'retail.market.sales'
    >>> Naming("postgres://db:5432", "retail").dataset_name(None, '"', "T", quoted_name=True)
    'retail.public.T'
    """

    namespace: str
    database: str
    default_schema: str = "public"
    dialect: str = "postgres"

    def _fold(self, part: str, quoted: bool) -> str:
        return part.lower() if self.dialect in LOWER_CASE_DIALECTS and not quoted else part

    def dataset_name(self, database: str | None, schema: str | None, name: str, *,
                     quoted_database: bool = False, quoted_schema: bool = False,
                     quoted_name: bool = False) -> str:
        schema = None if schema == '"' else schema  # the parser's quote marker, not a schema
        return ".".join((
            self._fold(database, quoted_database) if database else self.database,
            self._fold(schema, quoted_schema) if schema else self.default_schema,
            self._fold(name, quoted_name)))

    def table(self, meta: Any) -> str:
        """The dataset name of an ``openlineage_sql.DbTableMeta``."""
        quotes = meta.quote_style
        return self.dataset_name(
            meta.database, meta.schema, str(meta.name),
            quoted_database=bool(quotes and quotes.database),
            quoted_schema=bool(quotes and quotes.schema),
            quoted_name=bool(quotes and quotes.name))

    def column(self, name: str) -> str:
        return self._fold(name, False)


@dataclass
class Parsed:
    """What ``openlineage-sql`` found in one statement, as dataset names and column lineage."""

    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    # output dataset -> output column -> [(input dataset, input column)]
    columns: dict[str, dict[str, list[tuple[str, str]]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def kind(self, statement: str) -> str:
        """``write``, ``read``, ``ddl`` (writes from no source), ``system`` or ``none``."""
        tables = self.inputs + self.outputs
        if not tables:
            return "none"
        if all(t.split(".")[-2] in SYSTEM_SCHEMAS for t in tables):
            return "system"
        if self.outputs:
            first = normalize(statement).split(" ", 1)[0].split("(", 1)[0]
            if not self.inputs and first in DDL:
                return "ddl"
            return "write"
        return "read"


def parse(statement: str, naming: Naming) -> Parsed:
    """Tables and column lineage of ``statement`` by ``openlineage-sql``."""
    import openlineage_sql  # type: ignore[import-untyped]  # ships no type information

    meta = openlineage_sql.parse([statement], dialect=naming.dialect)
    parsed = Parsed(inputs=sorted({naming.table(t) for t in meta.in_tables}),
                    outputs=sorted({naming.table(t) for t in meta.out_tables}),
                    errors=[str(e.message) for e in meta.errors])
    for lineage in meta.column_lineage:
        target = lineage.descendant
        if target.origin is not None:
            output = naming.table(target.origin)
        elif len(parsed.outputs) == 1:
            output = parsed.outputs[0]
        else:
            continue  # several outputs and the parser did not say which
        sources = []
        for source in lineage.lineage:
            if source.origin is not None:
                sources.append((naming.table(source.origin), naming.column(str(source.name))))
            elif len(parsed.inputs) == 1:
                sources.append((parsed.inputs[0], naming.column(str(source.name))))
        if sources and output in parsed.outputs:
            parsed.columns.setdefault(output, {})[naming.column(str(target.name))] = sorted(
                set(sources))
    return parsed


def _facet(schema_url: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **body}


def statement_event(statement: str, parsed: Parsed, naming: Naming, *, job_namespace: str,
                    job: str, run_id: str, event_time: datetime,
                    schemas: Mapping[str, Sequence[tuple[str, str]]] | None = None,
                    ) -> dict[str, Any]:
    """The COMPLETE RunEvent of one statement (see the module doc)."""
    outputs = []
    for name in parsed.outputs:
        facets: dict[str, Any] = {}
        if (schemas or {}).get(name):
            facets["schema"] = _facet(SCHEMA_FACET, {"fields": [
                {"name": column, "type": type_} for column, type_ in (schemas or {})[name]]})
        if parsed.columns.get(name):
            facets["columnLineage"] = _facet(COLUMN_LINEAGE_FACET, {"fields": {
                column: {"inputFields": [
                    {"namespace": naming.namespace, "name": dataset, "field": source}
                    for dataset, source in sources]}
                for column, sources in sorted(parsed.columns[name].items())}})
        outputs.append({"namespace": naming.namespace, "name": name,
                        **({"facets": facets} if facets else {})})
    return {
        "eventType": "COMPLETE",
        "eventTime": event_time.astimezone(UTC).isoformat(timespec="milliseconds"),
        "run": {"runId": run_id},
        "job": {"namespace": job_namespace, "name": job, "facets": {
            "sql": _facet(SQL_FACET, {"query": statement, "dialect": naming.dialect})}},
        "inputs": [{"namespace": naming.namespace, "name": name} for name in parsed.inputs],
        "outputs": outputs,
        "producer": PRODUCER,
        "schemaURL": RUN_SCHEMA_URL,
    }


def run_id(*parts: object) -> str:
    """A run id derived from ``parts``: the same statement execution gives the same id.

    >>> run_id("a", 1) == run_id("a", 1) != run_id("a", 2)
    True
    """
    return str(uuid.uuid5(RUN_NAMESPACE, json.dumps([str(p) for p in parts])))


@dataclass
class Options:
    """What ``lineage harvest sql`` was asked (see the CLI for each option's meaning)."""

    naming: Naming
    job_namespace: str | None = None
    job: str | None = None
    reads: bool = False

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset({"write", "read"} if self.reads else {"write"})


class _Counter:
    """Statements seen per outcome, for the report's note."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def add(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def note(self) -> str:
        total = sum(self.counts.values())
        parts = ", ".join(f"{n} {what}" for what, n in sorted(self.counts.items()))
        return f"{total} statements: {parts}" if total else "no statements"


def _consider(statement: str, naming: Naming, options: Options, counter: _Counter,
              report: Report, where: str, line: int | None) -> Parsed | None:
    """The parse of a statement to send, or None (counted, and reported when unparsable)."""
    try:
        parsed = parse(statement, naming)
    except Exception as exc:  # the parser's own errors (a Rust panic, ...) are not typed
        parsed = Parsed(errors=[f"{type(exc).__name__}: {exc}"])
    kind = parsed.kind(statement)
    if kind == "none" and parsed.errors:
        counter.add("not parsed")
        report.problem(where, line, f"openlineage-sql could not parse the statement: "
                                    f"{parsed.errors[0]}")
        return None
    if kind not in options.kinds:
        counter.add({"read": "read-only (see --reads)", "ddl": "DDL without a source",
                     "system": "on system catalogs", "none": "without tables"}.get(kind, kind))
        return None
    counter.add("with lineage")
    return parsed


def harvest_sql_text(sql: str, source: str, sink: EventSink, options: Options, *,
                     event_time: datetime, log: Callable[[str], None] = print) -> Report:
    """Send the lineage of each statement of a SQL script (see the module doc)."""
    report = Report("sql")
    report.files = 1
    naming = options.naming
    statements = split_statements(sql)
    digest = hashlib.sha256(sql.encode()).hexdigest()[:16]
    counter = _Counter()
    for index, statement in enumerate(statements, 1):
        parsed = _consider(statement.text, naming, options, counter, report, source,
                           statement.line)
        if parsed is None:
            continue
        name = job_name(statement.text, naming.database, options.job, index, len(statements))
        namespace = options.job_namespace or naming.namespace
        sink.emit(statement_event(statement.text, parsed, naming, job_namespace=namespace,
                                  job=name, run_id=run_id(namespace, name, digest, index),
                                  event_time=event_time))
        report.found += 1
        report.sent += 1
        log(f"{source}:{statement.line}: {name}: {', '.join(parsed.inputs) or '-'} -> "
            f"{', '.join(parsed.outputs) or '-'}")
    sink.flush()
    report.notes.append(counter.note())
    return report


HISTORY_QUERY = MARKER + """
SELECT s.dbid::text || ':' || s.userid::text || ':' || s.queryid::text, d.datname,
       coalesce(r.rolname, s.userid::text), s.query, s.calls
FROM pg_stat_statements s
JOIN pg_database d ON d.oid = s.dbid
LEFT JOIN pg_roles r ON r.oid = s.userid
WHERE s.queryid IS NOT NULL
ORDER BY d.datname, s.queryid
"""
COLUMNS_QUERY = MARKER + """
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position
"""


@dataclass(frozen=True)
class HistoryEntry:
    """One row of pg_stat_statements: a normalized statement per database and user."""

    key: str
    database: str
    user: str
    query: str
    calls: int


def _connect(conninfo: str) -> Any:
    import psycopg

    try:
        return psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ServiceUnavailable(
            f"cannot connect to PostgreSQL: {first}",
            hint="check --dsn (a libpq conninfo or postgresql:// URI; the password comes "
                 "from PGPASSWORD or ~/.pgpass)") from exc


def read_history(conn: Any) -> list[HistoryEntry]:
    """Every pg_stat_statements entry the connection may see."""
    import psycopg

    try:
        rows = conn.execute(HISTORY_QUERY).fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.ObjectNotInPrerequisiteState) as exc:
        database = conn.info.dbname
        raise ConfigError(
            f"pg_stat_statements is not available in database {database!r}: "
            f"{str(exc).strip().splitlines()[0]}",
            hint="set shared_preload_libraries = 'pg_stat_statements' in postgresql.conf, "
                 f"restart, and run CREATE EXTENSION pg_stat_statements in {database!r} (or "
                 "point --dsn at the database that has it)") from exc
    return [HistoryEntry(str(key), str(db), str(user), str(query), int(calls))
            for key, db, user, query, calls in rows]


def namespace_of(conn: Any) -> str:
    """OpenLineage's namespace of a PostgreSQL connection: ``postgres://host:port``."""
    host = str(conn.info.host)
    return f"postgres://{'localhost' if host.startswith('/') else host}:{conn.info.port}"


class _Schemas:
    """Column names and types of tables, read from ``information_schema`` of their database."""

    def __init__(self, conninfo: str, first: Any) -> None:
        self.conninfo = conninfo
        self.connections: dict[str, Any] = {str(first.info.dbname): first}
        self.failed: set[str] = set()

    def columns(self, dataset: str) -> list[tuple[str, str]]:
        database, schema, table = dataset.split(".", 2) if dataset.count(".") >= 2 else (
            "", "", dataset)
        conn = self._connection(database)
        if conn is None:
            return []
        import psycopg

        try:
            rows = conn.execute(COLUMNS_QUERY, (schema, table)).fetchall()
        except psycopg.Error:
            return []  # a nice-to-have: the lineage goes out without the schema facet
        return [(str(name), str(type_)) for name, type_ in rows]

    def _connection(self, database: str) -> Any:
        if database in self.connections or database in self.failed:
            return self.connections.get(database)
        from psycopg.conninfo import make_conninfo

        try:
            self.connections[database] = _connect(make_conninfo(self.conninfo, dbname=database))
        except LineageError:
            self.failed.add(database)  # no schema facets there: the lineage still goes out
        return self.connections.get(database)

    def close(self) -> None:
        for conn in self.connections.values():
            conn.close()


def harvest_postgres(conninfo: str, sink: EventSink, state_dir: Path | None, *,
                     job_namespace: str | None = None, namespace: str | None = None,
                     default_schema: str = "public", reads: bool = False,
                     now: datetime | None = None,
                     log: Callable[[str], None] = print) -> Report:
    """Send the lineage of the statements pg_stat_statements recorded since the last run
    (``state_dir`` None: no state is read or saved, as for a dry run)."""
    report = Report("sql", show_files=False)
    conn = _connect(conninfo)
    schemas = _Schemas(conninfo, conn)
    event_time = now or datetime.now(UTC)
    try:
        history = read_history(conn)
        dataset_namespace = namespace or namespace_of(conn)
        state = None if state_dir is None else StateFile(state_dir, state_name(dataset_namespace))
        seen = state.load() if state is not None else {}
        counter = _Counter()
        hidden = 0
        log(f"pg_stat_statements: {len(history)} entries on {dataset_namespace}")
        for entry in history:
            if entry.query.startswith(MARKER) or seen.get(entry.key) == entry.calls:
                continue
            if entry.query == "<insufficient privilege>":
                hidden += 1
                continue
            options = Options(Naming(dataset_namespace, entry.database, default_schema),
                              job_namespace, reads=reads)
            parsed = _consider(entry.query, options.naming, options, counter, report,
                               f"pg_stat_statements {entry.database}", None)
            if parsed is not None:
                name = job_name(entry.query, entry.database)
                event_namespace = job_namespace or dataset_namespace
                sink.emit(statement_event(
                    entry.query, parsed, options.naming, job_namespace=event_namespace,
                    job=name, run_id=run_id(dataset_namespace, entry.key, entry.calls),
                    event_time=event_time,
                    schemas={o: schemas.columns(o) for o in parsed.outputs}))
                report.found += 1
                report.sent += 1
                log(f"{entry.database} ({entry.user}, {entry.calls} calls): {name}: "
                    f"{', '.join(parsed.inputs) or '-'} -> {', '.join(parsed.outputs) or '-'}")
            seen[entry.key] = entry.calls
        sink.flush()
        if state is not None:
            state.save(seen)
    finally:
        schemas.close()
    report.notes.append(counter.note())
    if hidden:
        report.notes.append(f"{hidden} statements of other roles are hidden from this role: "
                            f"grant it pg_read_all_stats to harvest them")
    return report


def state_name(namespace: str) -> str:
    """The state file's name for a server.

    >>> state_name("postgres://127.0.0.1:5432")
    'sql-postgres-127.0.0.1-5432'
    """
    return "sql-" + re.sub(r"[^\w.]+", "-", namespace).strip("-")


def default_event_time(path: Path | None) -> datetime:
    """A file's modification time (so re-sending it gives the same events), else now."""
    if path is None:
        return datetime.now(UTC)
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)
