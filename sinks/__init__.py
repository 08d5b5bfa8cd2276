"""Sinks: write the processor's change records into Neo4j as a versioned lineage graph."""
