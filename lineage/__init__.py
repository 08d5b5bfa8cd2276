"""Cross-cutting parts: the lineage command, settings, the error tree and the local stack."""
