"""``python -m lineage`` runs the ``lineage`` command."""

from lineage.cli import app

app(prog_name="lineage")
