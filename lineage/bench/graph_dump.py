"""``lineage bench dump``: a workload through the real pipeline, and a canonical dump of the result.

The workload's exact bytes go through a processor and a sink on topics and groups of their own
(as in ``lineage bench e2e``), into the workload's namespaces, emptied first. Then one sorted
text line is written per node (its labels and every property), per relationship (its endpoints'
keys, its type and its properties) and per dead letter (the SHA-256 of the original bytes, its
kind and reasons). Element ids, offsets and the run's own topic and group names are left out, so
two dumps of one workload are equal exactly when the code made the same graph and refused the
same events for the same reasons. ``--code`` runs the services from another checkout, which
compares two versions of the code on one stack::

    $ lineage bench generate /tmp/wl.ndjson --events 20000 --jobs 2000
    $ git worktree add /tmp/old <commit>
    $ lineage bench dump /tmp/wl.ndjson before.txt --code /tmp/old
    $ lineage bench dump /tmp/wl.ndjson after.txt
    $ cmp before.txt after.txt

>>> node_line(["Job"], {"namespace": "ns", "name": "a"})
'N [["Job"], {"name": "a", "namespace": "ns"}]'
>>> relationship_line(["Job"], {"namespace": "ns", "name": "a"}, "HAS_RUN", {},
...                   ["Run"], {"runId": "r1", "state": "COMPLETE"})
'R ["Job:ns|a", "HAS_RUN", "Run:r1", {}]'
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from neo4j import Driver

from core.kafka_config import consumer_config
from core.neo4j_driver import driver as neo4j_driver
from core.settings import CommonSettings, KafkaSettings
from lineage.bench import e2e
from lineage.bench.neo4j_io import delete_namespace
from lineage.bench.suite import manifest

Log = Callable[[str], None]

#: The key properties that name a node in a relationship line, by label.
KEYS = {"Job": ("namespace", "name"), "Dataset": ("namespace", "name"), "Run": ("runId",),
        "JobVersion": ("id",), "DatasetVersion": ("id",),
        "Field": ("namespace", "dataset", "name")}

#: A namespace's subgraph: its nodes, the runs of its jobs, the versions of its jobs and datasets.
NODES = """
MATCH (n) WHERE n.namespace IN $namespaces OR n.jobNamespace IN $namespaces
RETURN elementId(n) AS id
UNION MATCH (j:Job)-[:HAS_RUN]->(n:Run) WHERE j.namespace IN $namespaces RETURN elementId(n) AS id
UNION MATCH (o)-[:HAS_VERSION]->(n) WHERE o.namespace IN $namespaces RETURN elementId(n) AS id
"""


def _plain(value: Any) -> Any:
    if hasattr(value, "iso_format"):  # neo4j temporal types
        return value.iso_format()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _properties(props: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(v) for k, v in props.items()}


def _identity(labels: Sequence[str], props: dict[str, Any]) -> str:
    label = next((x for x in labels if x in KEYS), sorted(labels)[0])
    return label + ":" + "|".join(str(props.get(k)) for k in KEYS.get(label, ()))


def node_line(labels: Sequence[str], props: dict[str, Any]) -> str:
    """A node as one canonical line."""
    return "N " + json.dumps([sorted(labels), _properties(props)], sort_keys=True)


def relationship_line(start_labels: Sequence[str], start: dict[str, Any], rel_type: str,
                      props: dict[str, Any], end_labels: Sequence[str],
                      end: dict[str, Any]) -> str:
    """A relationship as one canonical line: its endpoints by their keys."""
    return "R " + json.dumps([_identity(start_labels, start), rel_type,
                              _identity(end_labels, end), _properties(props)], sort_keys=True)


def graph_lines(driver: Driver, namespaces: Sequence[str], database: str) -> list[str]:
    """Every node and relationship of ``namespaces``' subgraph, as canonical lines."""
    ids = [r["id"] for r in driver.execute_query(
        NODES, namespaces=list(namespaces), database_=database, routing_="r")[0]]
    nodes, _, _ = driver.execute_query(
        "MATCH (n) WHERE elementId(n) IN $ids RETURN labels(n) AS l, properties(n) AS p",
        ids=ids, database_=database, routing_="r")
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) WHERE elementId(a) IN $ids AND elementId(b) IN $ids "
        "RETURN labels(a) AS la, properties(a) AS pa, type(r) AS t, properties(r) AS p, "
        "labels(b) AS lb, properties(b) AS pb", ids=ids, database_=database, routing_="r")
    return ([node_line(n["l"], n["p"]) for n in nodes]
            + [relationship_line(r["la"], r["pa"], r["t"], r["p"], r["lb"], r["pb"])
               for r in rels])


def dead_letter_lines(kafka: KafkaSettings, topic: str, expected: int) -> list[str]:
    """The ``expected`` dead letters of ``topic``, without what differs from run to run."""
    from confluent_kafka import Consumer, TopicPartition

    from core.dead_letters import Letter

    consumer = Consumer(consumer_config(kafka, f"{topic}-dump"))
    lines: list[str] = []
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        while len(lines) < expected:
            message = consumer.poll(10)
            if message is None:
                raise TimeoutError(f"read {len(lines)} of {expected} dead letters of {topic}")
            if message.error() is not None:
                continue
            raw = message.headers() or []
            pairs = raw.items() if isinstance(raw, dict) else raw
            letter = Letter({k: v for k, v in pairs if isinstance(v, bytes)})
            envelope = {k: v for k, v in letter.envelope.items()
                        if k not in ("deadAt", "processor", "source")}
            lines.append("D " + json.dumps([hashlib.sha256(message.value() or b"").hexdigest(),
                                            letter.kind, envelope], sort_keys=True))
    finally:
        consumer.close()
    return lines


def replay_and_dump(workload: Path, settings: CommonSettings, *, code: Path | None = None,
                    log: Log = print) -> list[str]:
    """Run ``workload`` through the pipeline (see the module docstring); its sorted dump."""
    from lineage.bench.measure import message_count
    from sinks.graph import migrate

    namespaces = manifest(workload)["stats"]["namespace_names"]
    messages = e2e.load_messages(workload)
    with neo4j_driver(settings.neo4j) as driver:
        migrate(driver, settings.neo4j.database)
        for namespace in namespaces:
            delete_namespace(driver, namespace, settings.neo4j.database)
        with tempfile.TemporaryDirectory(prefix="lineage-bench-dump-") as workdir:
            pipeline = e2e.PipelineUnderTest(settings, Path(workdir), code=code)
            try:
                pipeline.start()
                e2e.emit(messages, pipeline.kafka, pipeline.raw, None)
                log(f"emitted {len(messages):,} events; waiting for the sink's last commit")
                pipeline.wait_committed(log)
                dead = message_count(pipeline.kafka, pipeline.dlq)
                lines = graph_lines(driver, namespaces, settings.neo4j.database)
                lines += dead_letter_lines(pipeline.kafka, pipeline.dlq, dead)
            finally:
                pipeline.stop()
    return sorted(lines)
