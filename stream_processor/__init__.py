"""The stream processor: parse, validate, deduplicate and version OpenLineage events (Faust)."""
