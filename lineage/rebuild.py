"""``lineage rebuild``: the graph made again from the events the raw topic retains.

When the graph lost what it held (a wipe, a restore from an old backup, a change of the graph
contract), replaying the raw topic through the live processor does not bring it back: the
processor's state says it has seen and sent those events, so it drops them as duplicates and
suppresses the records the graph no longer has. The rebuild leaves that state alone and does
what a brand-new processor and sink would do, in one process:

1. read every partition of the raw topic from its first retained offset to the end offset it had
   when the rebuild started (later events are the live pipeline's), with a consumer group of its
   own that never commits, so neither the processor's group nor its state is touched;
2. run each event through the processor's own logic (:func:`stream_processor.pipeline.process`)
   against a *fresh* state per partition, exactly as a worker with an empty table would;
3. write the change records it makes with the sink's own statements (:mod:`sinks.graph`), after
   the Avro round trip the sink's records take, in transactions of ``batch_size``.

Every write is an idempotent merge, so the rebuild adds only what the graph lacks, a second run
changes nothing, and the live pipeline may keep running meanwhile. Events the processor refuses
are counted, not dead-lettered again (the DLQ has them from the first time); records the graph
contract or Neo4j refuses are counted and skipped, as the sink dead-letters them.

A graph can be rebuilt only from what the raw topic still holds: it is created with
``retention.ms=-1`` (``LINEAGE_KAFKA__RAW_RETENTION_MS``), and the rebuild says when a partition
no longer starts at offset 0 (docs/runbook.md, "Rebuilding the graph").

Example::

    $ lineage rebuild
    raw topic openlineage.events: 48,112 events in 6 partitions, retention forever
    read 20,000 of 48,112 events (41%); 131,405 change records written
    rebuilt from 48,112 events (47,950 accepted, 2,301 duplicates, 162 refused): 301,877 change
    records in 151 transactions, 0 refused by the graph, in 41.2 s

>>> replay = Replay()
>>> raw = (b'{"eventType": "START", "eventTime": "2024-05-01T12:00:00Z",'
...        b' "producer": "https://example.com/etl", "schemaURL": "https://openlineage.io/spec/'
...        b'2-0-2/OpenLineage.json#/$defs/RunEvent",'
...        b' "run": {"runId": "0190b6d2-3c1a-7d1e-9f00-1a2b3c4d5e6f"},'
...        b' "job": {"namespace": "etl", "name": "daily"}}')
>>> [c.kind for c in replay.feed(raw).changes], replay.feed(raw).duplicate
(['Job', 'Run'], True)
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from neo4j import Driver
from neo4j.exceptions import AuthError, ClientError, DriverError, Neo4jError

from core.errors import ConfigError, ContractViolation, NotFound, ServiceUnavailable
from core.kafka_config import admin_client, consumer_config
from core.neo4j_driver import driver as neo4j_driver
from core.settings import KafkaSettings
from schemas.codec import ChangeRecord, decode, encode
from sinks import graph
from sinks.neo4j_sink import OWN_FAULTS
from stream_processor.pipeline import DEFAULT_MAX_BYTES, Outcome, process
from stream_processor.settings import ProcessorSettings
from stream_processor.state import Plan, stale_keys

Log = Callable[[str], None]

#: The rebuild's consumer group: never the processor's; it assigns partitions and never commits.
GROUP = "lineage-rebuild"
#: How often the state is swept for entries past the retention, in events (as a worker would).
EXPIRE_EVERY = 200_000
PROGRESS_SECONDS = 5.0
#: How long the raw topic may send nothing while events remain before the rebuild gives up.
STALL_SECONDS = 60.0


class Replay:
    """The processor's logic over one partition's events, with a dict as its state.

    What a worker with an empty table does with the same events in the same order: the records
    it makes are the records a worker would send. With ``retention_days``, entries that far
    behind the newest eventTime are expired every :data:`EXPIRE_EVERY` events, to bound memory
    (expiring only lets a record be made again, which the idempotent graph absorbs).
    """

    def __init__(self, *, repair: bool = False, max_bytes: int = DEFAULT_MAX_BYTES,
                 retention_days: float | None = None) -> None:
        self.state: dict[str, list[int]] = {}
        self.repair, self.max_bytes = repair, max_bytes
        self.retention_micros = None if retention_days is None else int(
            retention_days * 86_400_000_000)
        self.events = 0
        self.newest = 0

    def feed(self, value: bytes, ingested_at: int = 0) -> Outcome:
        """Process one raw message and remember what it sent (nothing can fail to be sent)."""
        outcome = process(value, Plan(self.state), ingested_at=ingested_at, repair=self.repair,
                          max_bytes=self.max_bytes)
        outcome.plan.commit()
        self.events += 1
        self.newest = max(self.newest, outcome.event_time or 0)
        if self.retention_micros is not None and self.events % EXPIRE_EVERY == 0:
            for key in stale_keys(list(self.state.items()), self.newest, self.retention_micros):
                del self.state[key]
        return outcome


Refused = Callable[[ChangeRecord, str], None]


def write_records(driver: Driver, records: Iterable[ChangeRecord], *, batch_size: int,
                  database: str | None = None, refused: Refused | None = None,
                  stats: Counter[str] | None = None) -> tuple[int, int, float]:
    """Write decoded records as the sink does; returns (records, batches, seconds in rows()).

    One transaction per ``batch_size`` consecutive records, rows grouped by kind in arrival
    order, exactly like ``Neo4jSink._transaction``. Without ``refused`` a record the contract or
    Neo4j refuses raises; with it, the record and the reason go to ``refused`` and the others
    are written, as the sink dead-letters such a record and carries on. ``stats["records"]``
    counts the records of the transactions committed so far.
    """
    count = batches = 0
    row_seconds = 0.0
    batch: list[ChangeRecord] = []

    def transaction(rows: list[tuple[str, dict[str, Any], ChangeRecord]]) -> None:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for kind, row, _record in rows:
            grouped[kind].append(row)
        with driver.session(database=database) as session:
            session.execute_write(graph.write_batch, grouped)

    def flush() -> None:
        nonlocal batches, row_seconds
        started = time.perf_counter()
        rows: list[tuple[str, dict[str, Any], ChangeRecord]] = []
        for record in batch:
            kind = record["payload"][0]
            try:
                rows.append((kind, graph.row(kind, record), record))
            except ContractViolation as exc:
                if refused is None:
                    raise
                refused(record, f"contract: {exc}")
        row_seconds += time.perf_counter() - started
        try:
            transaction(rows)
        except ClientError as exc:
            if refused is None or exc.code in OWN_FAULTS or len(rows) == 1:
                raise
            # Find the record Neo4j refuses, as the sink does; the rest are written.
            for one in rows:
                try:
                    transaction([one])
                except ClientError as single:
                    if single.code in OWN_FAULTS:
                        raise
                    refused(one[2], f"neo4j_refused: {single.code}: {single.message}")
        batches += 1
        if stats is not None:
            stats["records"] += len(batch)
        batch.clear()

    for record in records:
        batch.append(record)
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    return count, batches, row_seconds


@dataclass(frozen=True)
class Extent:
    """What the raw topic holds: per partition, its first retained and its end offset."""

    topic: str
    offsets: dict[int, tuple[int, int]]
    retention_ms: int | None

    @property
    def events(self) -> int:
        """How many events the rebuild reads."""
        return sum(end - low for low, end in self.offsets.values())

    @property
    def trimmed(self) -> dict[int, int]:
        """Partitions whose first events are gone (deleted by retention), with the first offset."""
        return {p: low for p, (low, _end) in sorted(self.offsets.items()) if low > 0}

    def describe(self) -> str:
        """One line: the topic, its events and partitions, its retention.

        >>> Extent("raw", {0: (0, 5), 1: (3, 9)}, 604_800_000).describe()
        'raw topic raw: 11 events in 2 partitions, retention 7 days (partition 1 starts at 3)'
        """
        trimmed = ", ".join(f"partition {p} starts at {low}" for p, low in self.trimmed.items())
        return (f"raw topic {self.topic}: {self.events:,} events in {len(self.offsets)} "
                f"partitions, retention {retention_text(self.retention_ms)}"
                + (f" ({trimmed})" if trimmed else ""))


def retention_text(retention_ms: int | None) -> str:
    """A topic's ``retention.ms`` for people.

    >>> retention_text(-1), retention_text(86_400_000), retention_text(90_000), retention_text(None)
    ('forever', '1 day', '1.5 minutes', 'unknown')
    """
    if retention_ms is None:
        return "unknown"
    if retention_ms < 0:
        return "forever"
    for unit, ms in (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000)):
        if retention_ms >= ms:
            amount = retention_ms / ms
            text = f"{amount:g}" if amount == int(amount) else f"{amount:.1f}"
            return f"{text} {unit}{'' if amount == 1 else 's'}"
    return f"{retention_ms} ms"


def topic_retention(kafka: KafkaSettings, topic: str) -> int | None:
    """The ``retention.ms`` the topic has now (its own or the broker's default), if readable."""
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    resource = ConfigResource("topic", topic)
    admin = admin_client(kafka)  # kept until the future is done
    try:
        configs = admin.describe_configs([resource])[resource].result(timeout=30)
        return int(configs["retention.ms"].value)
    except Exception:  # a user without DescribeConfigs may still rebuild; say "unknown"
        return None


@dataclass(frozen=True)
class RebuildResult:
    """What one rebuild read and wrote."""

    events: int
    accepted: int
    duplicates: int
    refused_events: int
    records: int
    transactions: int
    refused_records: int
    seconds: float

    def summary(self) -> str:
        """The final line ``lineage rebuild`` prints.

        >>> print(RebuildResult(10, 9, 2, 1, 40, 1, 0, 1.25).summary())
        ... # doctest: +NORMALIZE_WHITESPACE
        rebuilt from 10 events (9 accepted, 2 duplicates, 1 refused): 40 change records in
        1 transactions, 0 refused by the graph, in 1.2 s
        """
        return (f"rebuilt from {self.events:,} events ({self.accepted:,} accepted, "
                f"{self.duplicates:,} duplicates, {self.refused_events:,} refused): "
                f"{self.records:,} change records in {self.transactions:,} transactions, "
                f"{self.refused_records:,} refused by the graph, in {self.seconds:.1f} s")


def rebuild(settings: ProcessorSettings, *, batch_size: int = 2000, log: Log = print,
            progress_seconds: float = PROGRESS_SECONDS) -> RebuildResult:
    """Rebuild the graph from the raw topic (see the module docstring); blocks until done."""
    from confluent_kafka import Consumer, KafkaException

    started = time.monotonic()
    kafka, opts = settings.kafka, settings.processor
    try:
        consumer = Consumer(consumer_config(kafka, GROUP, **{"auto.offset.reset": "earliest"}))
    except KafkaException as exc:
        raise ConfigError(f"cannot make a Kafka consumer: {exc}",
                          hint="check the LINEAGE_KAFKA__ settings") from exc
    try:
        extent = _extent(consumer, kafka)
        log(extent.describe())
        if extent.trimmed:
            log("events before those offsets were deleted by the topic's retention: what they "
                "alone brought cannot be rebuilt (docs/runbook.md, 'Rebuilding the graph')")
        stats: Counter[str] = Counter()
        refused: list[str] = []
        with neo4j_driver(settings.neo4j) as driver:
            try:
                graph.migrate(driver, settings.neo4j.database)
                records = _records(consumer, extent, stats, log, progress_seconds, lambda: Replay(
                    repair=opts.repair, max_bytes=opts.max_event_bytes,
                    retention_days=opts.retention_days))
                written, transactions, _ = write_records(
                    driver, records, batch_size=batch_size, database=settings.neo4j.database,
                    refused=lambda _record, reason: refused.append(reason), stats=stats)
            except AuthError as exc:
                raise ConfigError(f"Neo4j refused the credentials: {exc.message}",
                                  hint="check LINEAGE_NEO4J__USER / LINEAGE_NEO4J__PASSWORD"
                                  ) from exc
            except (Neo4jError, DriverError, OSError) as exc:
                raise ServiceUnavailable(
                    f"Neo4j at {settings.neo4j.uri} failed during the rebuild: "
                    f"{getattr(exc, 'message', None) or exc}",
                    hint="run `lineage rebuild` again once Neo4j answers (`lineage check`): "
                    "it only adds what the graph lacks") from exc
    finally:
        consumer.close()
    for reason in refused[:5]:
        log(f"refused by the graph: {reason[:300]}")
    return RebuildResult(stats["events"], stats["accepted"], stats["duplicates"],
                         stats["refused"], written - len(refused), transactions, len(refused),
                         time.monotonic() - started)


def _extent(consumer: Any, kafka: KafkaSettings) -> Extent:
    from confluent_kafka import KafkaException, TopicPartition

    topic = kafka.raw_topic
    try:
        meta = consumer.list_topics(topic, timeout=30).topics.get(topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise NotFound(f"the raw topic {topic} does not exist on {kafka.bootstrap_servers}",
                           hint="set LINEAGE_KAFKA__RAW_TOPIC to the topic the producers write to")
        offsets = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
                   for p in sorted(meta.partitions)}
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka at {kafka.bootstrap_servers} did not answer: {exc}",
                                 hint="is Kafka up? `lineage check`") from exc
    return Extent(topic, offsets, topic_retention(kafka, topic))


def _records(consumer: Any, extent: Extent, stats: Counter[str], log: Log,
             progress_seconds: float, fresh: Callable[[], Replay]) -> Iterator[ChangeRecord]:
    """The change records of every event of ``extent``, each partition with a state of its own."""
    from confluent_kafka import TopicPartition

    # State is per partition in the worker too: a fresh worker's records for a partition depend
    # on that partition's events only, so the rebuild makes exactly the records it would.
    replays = {p: fresh() for p in extent.offsets}
    remaining = {p: end for p, (low, end) in extent.offsets.items() if end > low}
    consumer.assign([TopicPartition(extent.topic, p, extent.offsets[p][0]) for p in remaining])
    total = extent.events
    next_progress = time.monotonic() + progress_seconds
    last_message = time.monotonic()
    while remaining:
        now = time.monotonic()
        if now >= next_progress:
            next_progress = now + progress_seconds
            share = f" ({100 * stats['events'] // total}%)" if total else ""
            log(f"read {stats['events']:,} of {total:,} events{share}; "
                f"{stats['records']:,} change records written")
        messages = consumer.consume(500, timeout=1.0)
        if not messages:
            _drop_finished(consumer, extent.topic, remaining)
            if remaining and time.monotonic() - last_message > STALL_SECONDS:
                raise ServiceUnavailable(
                    f"the raw topic {extent.topic} sent nothing for {STALL_SECONDS:.0f} s with "
                    f"{len(remaining)} partitions still to read",
                    hint="is Kafka up? `lineage check`; then run `lineage rebuild` again")
            continue
        last_message = time.monotonic()
        for message in messages:
            partition = message.partition()
            end = remaining.get(partition)
            if message.error() is not None or end is None or message.offset() >= end:
                continue
            if message.offset() + 1 >= end:
                del remaining[partition]
            ingested = int(message.timestamp()[1] * 1000)  # ms -> µs, as the worker's
            outcome = replays[partition].feed(message.value() or b"", ingested)
            stats["events"] += 1
            stats["accepted"] += outcome.accepted
            stats["duplicates"] += outcome.duplicate
            stats["refused"] += not outcome.accepted
            for change in outcome.changes:
                # Through Avro and back, as every record the sink writes has come.
                yield decode(encode(change.record(ingested)))


def _drop_finished(consumer: Any, topic: str, remaining: dict[int, int]) -> None:
    """Forget partitions read to their end whose last offsets hold no message (a gap)."""
    from confluent_kafka import TopicPartition

    positions = consumer.position([TopicPartition(topic, p) for p in remaining])
    for tp in positions:
        if tp.offset >= remaining.get(tp.partition, 0):
            remaining.pop(tp.partition, None)
