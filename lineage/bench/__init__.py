"""Every benchmark, in one place above the stages (the stages keep no benchmark code).

- :mod:`lineage.bench.workload`: the one workload generator (stream, runs and graph shapes);
- :mod:`lineage.bench.measure`: commit windows, topic sizes, percentiles, CPU and memory;
- :mod:`lineage.bench.neo4j_io`: benchmark graphs in Neo4j, written and wiped;
- :mod:`lineage.bench.processor`, :mod:`~lineage.bench.sink`, :mod:`~lineage.bench.query`,
  :mod:`~lineage.bench.emitter`: ``lineage bench processor``, ``sink``, ``query``, ``emitter``;
- :mod:`lineage.bench.e2e`, :mod:`~lineage.bench.ceilings`, :mod:`~lineage.bench.peer`,
  :mod:`~lineage.bench.suite`, :mod:`~lineage.bench.report`: ``lineage bench e2e`` (runs,
  ceilings, a peer baseline) and ``lineage bench report``.
"""
