"""The ground floor: what every stage stands on, importing no stage.

The error tree, the settings every service shares, the one Kafka client configuration, topic
creation and the ingest-path header, the dead-letter headers, metrics serving. The stages
(``producers``, ``stream_processor``, ``sinks``) import only this package and ``schemas``; the
command line, the local stack, the queries, the demo and the benchmarks (``lineage``) sit above
them.
"""
