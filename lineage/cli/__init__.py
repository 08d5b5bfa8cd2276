"""The ``lineage`` command: one entry point in front of every component.

Each command group lives in a module of its own (stack, services, dlq, bench, harvest, query);
this module puts them together in the order ``lineage --help`` lists them.

>>> from typer.main import get_command
>>> list(get_command(app).commands)  # doctest: +NORMALIZE_WHITESPACE
['check', 'process', 'sink', 'rebuild', 'gateway', 'emit', 'demo', 'stack', 'bench', 'dlq',
 'query', 'harvest']
"""

from __future__ import annotations

import typer

from lineage.cli import bench, dlq, harvest, query, services, stack

app = typer.Typer(
    help="OpenLineage events -> Kafka -> stream processor -> versioned lineage graph in Neo4j.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(services.app)
app.add_typer(stack.app, name="stack")
app.add_typer(bench.app, name="bench")
app.add_typer(dlq.app, name="dlq")
app.add_typer(query.app, name="query")
app.add_typer(harvest.app, name="harvest")
