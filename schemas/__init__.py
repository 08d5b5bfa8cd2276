"""Avro schemas (*.avsc) of the change records on lineage.changes, and their codec."""
