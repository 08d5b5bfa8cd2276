"""The Neo4j sink: ``lineage.changes`` -> decode -> batch -> one write transaction -> commit.

Guarantees (DESIGN.md):

- Offsets are committed only after the Neo4j transaction holding the batch's records (and the
  batch's dead letters) were acknowledged, so a crash at any point re-applies records at most;
  every write is an idempotent merge (:mod:`sinks.graph`), so re-applying changes nothing.
- Neo4j down, restarting or answering with transient errors: the batch is retried with
  exponential backoff, forever, without committing; the sink carries on by itself once Neo4j is
  back. A wrong password is fatal (retrying cannot fix it).
- A record that cannot be decoded, breaks the graph contract (a key over Neo4j's index limit
  included), or that Neo4j refuses for good (a ClientError, or a DatabaseError that comes from
  the record's values; found by splitting a refused batch in halves until the record is alone)
  goes to ``lineage.changes.dlq`` with its reason; bad data never stops the sink.
- SIGTERM stops the sink within a second in every state, retry waits included; a batch not yet
  in Neo4j is left uncommitted, to be applied again by whoever reads its partition next.

Sinks scale out in one consumer group: each writes serial batches for its partitions.

Example::

    $ lineage sink                                   # runs until Ctrl-C / SIGTERM
    $ LINEAGE_SINK__BATCH_SIZE=5000 lineage sink
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from neo4j import Driver
from neo4j.exceptions import AuthError, ClientError, DriverError, Neo4jError

from core import topics
from core.dead_letters import DeadLetterReason, dead_letter, shrink
from core.delivery import Delivery, OutMessage
from core.errors import (
    ConfigError,
    ContractViolation,
    FatalError,
    Interrupted,
    UndecodableRecord,
)
from core.kafka_config import consumer_config
from core.metrics import serve_metrics
from core.neo4j_driver import driver
from schemas.codec import decode
from sinks import graph, metrics
from sinks.settings import SinkSettings

log = logging.getLogger("lineage.sink")


# Refusals that say the sink's own statements are wrong, not the record: stop, do not DLQ.
OWN_FAULTS = ("Neo.ClientError.Statement.SyntaxError", "Neo.ClientError.Statement.ParameterMissing",
              "Neo.ClientError.Procedure.ProcedureNotFound")
# Database errors that come from a record's values, e.g. "Property value is too large to index":
# the same record fails every time, so it is dead-lettered like a ClientError, never retried.
RECORD_FAULTS = ("Neo.DatabaseError.Statement.ExecutionFailed",)


def refused_for_good(exc: Exception) -> bool:
    """Whether Neo4j refused a write for a reason that retrying cannot mend (see above)."""
    return isinstance(exc, Neo4jError) and (
        (isinstance(exc, ClientError) and not exc.is_retryable()) or exc.code in RECORD_FAULTS)


@dataclass(frozen=True, slots=True)
class Item:
    """A decoded, contract-checked record and the message it came in."""

    message: Message
    kind: str
    row: dict[str, Any]
    event_time: int  # microseconds, for the freshness metrics
    ingested_at: int


class Neo4jSink:
    """Consumes change records and writes them to Neo4j (see the module docstring)."""

    def __init__(self, settings: SinkSettings) -> None:
        self.settings = settings
        opts = settings.sink
        self.driver: Driver = driver(settings.neo4j)
        self.consumer = Consumer(consumer_config(
            settings.kafka, opts.group_id, **{
                "auto.offset.reset": "earliest",
                # Neo4j may be down for a while; leaving the group then only moves partitions.
                "max.poll.interval.ms": 600_000}))
        self.dead_letters = Delivery(settings.kafka, retry_seconds=opts.retry_initial_seconds,
                                     what="dead letters", **{"linger.ms": 5})
        self.stopping = False
        self.next_gauges = 0.0

    # -- the loop ------------------------------------------------------------------------------

    def run(self, should_stop: Callable[[], bool] | None = None) -> None:
        """Migrate the schema, then consume and write until stopped."""
        kafka = self.settings.kafka
        topics.ensure_topics(kafka, {
            kafka.changes_topic: kafka.changes_partitions, kafka.changes_dlq_topic: 1})
        sizes = threading.Thread(target=self._refresh_graph_size, name="graph-size", daemon=True)
        try:
            self.migrate()
            self.consumer.subscribe([self.settings.kafka.changes_topic])
            sizes.start()
            self._consume(should_stop)
        except Interrupted:  # uncommitted: whoever reads the partition next redoes it
            log.warning("sink: stopped while waiting to retry Neo4j; nothing left half-done")
        finally:
            self.stopping = True
            if sizes.is_alive():
                sizes.join(timeout=30)
            self.consumer.close()
            self.dead_letters.flush(30)
            self.driver.close()

    def _consume(self, should_stop: Callable[[], bool] | None) -> None:
        """Consume and write batches until stopped."""
        opts = self.settings.sink
        while not self.stopping and not (should_stop and should_stop()):
            if time.monotonic() >= self.next_gauges:
                self.next_gauges = time.monotonic() + opts.gauge_seconds
                self._update_lag()
            messages = self.consumer.consume(opts.batch_size, timeout=opts.poll_seconds)
            batch = []
            for message in messages:
                error = message.error()
                if error is None:
                    batch.append(message)
                elif not error.retriable():
                    log.warning("consumer: %s", error)
            if batch:
                self.handle(batch)

    def handle(self, batch: Sequence[Message]) -> None:
        """Decode, write, dead-letter and commit one batch of messages."""
        items: list[Item] = []
        dead: list[tuple[Message, DeadLetterReason]] = []
        for message in batch:
            try:
                record = decode(message.value() or b"")
                kind = record["payload"][0]
                items.append(Item(message, kind, graph.row(kind, record), record["eventTime"],
                                  record["ingestedAt"]))
            except UndecodableRecord as exc:
                dead.append((message, {"code": "undecodable", "message": str(exc)}))
            except (ContractViolation, KeyError, TypeError, ValueError) as exc:
                dead.append((message, {"code": "contract", "message": str(exc)}))
        dead += self.write(items)
        if dead:
            self.dead_letter(dead)
        self.commit(batch)
        metrics.BATCH_RECORDS.observe(len(batch))

    # -- Neo4j ---------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the constraints and indexes (idempotent), waiting for Neo4j if needed."""
        self._retrying(lambda: graph.migrate(self.driver, self.settings.neo4j.database),
                       "schema migration")

    def write(self, items: list[Item]) -> list[tuple[Message, DeadLetterReason]]:
        """Write ``items`` in one transaction; returns those Neo4j refused, with the reason."""
        if not items:
            return []
        try:
            self._retrying(lambda: self._transaction(items), f"a batch of {len(items)}")
        except Neo4jError as exc:
            if exc.code in OWN_FAULTS:
                raise FatalError(f"Neo4j refused the sink's statement: {exc.code}: {exc.message}",
                                 hint="this is a bug in the sink; please report it") from exc
            if len(items) == 1:
                return [(items[0].message, {"code": "neo4j_refused",
                                            "message": f"{exc.code}: {exc.message}"})]
            half = len(items) // 2
            return self.write(items[:half]) + self.write(items[half:])
        now_micros = time.time() * 1_000_000
        for item in items:
            metrics.RECORDS_WRITTEN.labels(item.kind).inc()
            metrics.FRESHNESS.observe(max(0.0, now_micros - item.event_time) / 1_000_000)
            metrics.ARRIVAL_FRESHNESS.observe(max(0.0, now_micros - item.ingested_at) / 1_000_000)
        return []

    def _transaction(self, items: list[Item]) -> None:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for item in items:
            grouped[item.kind].append(item.row)
        timings: dict[str, float] = {}
        started = time.perf_counter()
        with self.driver.session(database=self.settings.neo4j.database) as session:
            session.execute_write(graph.write_batch, grouped, timings)
        metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
        for kind, seconds in timings.items():  # of the attempt that committed
            metrics.STATEMENT_SECONDS.labels(kind).observe(seconds)

    def _retrying(self, action: Callable[[], None], what: str) -> None:
        """Run ``action`` until it succeeds or fails for a reason retrying cannot fix."""
        opts = self.settings.sink
        delay = opts.retry_initial_seconds
        while True:
            try:
                action()
                return
            except AuthError as exc:
                raise ConfigError(f"Neo4j refused the credentials: {exc.message}",
                                  hint="check LINEAGE_NEO4J__USER / LINEAGE_NEO4J__PASSWORD"
                                  ) from exc
            except (Neo4jError, DriverError, OSError) as exc:
                if refused_for_good(exc):
                    raise
                log.warning("Neo4j: %s failed (%s); retrying in %.1fs", what,
                            getattr(exc, "message", None) or exc, delay)
                metrics.WRITE_RETRIES.inc()
                self._pause(delay)
                delay = min(delay * 2, opts.retry_max_seconds)

    def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or raise :class:`Interrupted` as soon as the sink is told to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))
        if self.stopping:
            raise Interrupted("the sink is stopping")

    def _refresh_graph_size(self) -> None:
        """Refresh the graph size gauges every ``gauge_seconds`` until the sink stops."""
        database = self.settings.neo4j.database
        while not self.stopping:
            try:
                nodes, relationships = graph.graph_size(self.driver, database)
            except (Neo4jError, DriverError, OSError) as exc:  # the writer's retries report it
                log.debug("graph size not refreshed: %s", exc)
            else:
                for label, count in nodes.items():
                    metrics.GRAPH_NODES.labels(label).set(count)
                for kind, count in relationships.items():
                    metrics.GRAPH_RELATIONSHIPS.labels(kind).set(count)
            deadline = time.monotonic() + self.settings.sink.gauge_seconds
            while not self.stopping and time.monotonic() < deadline:
                time.sleep(0.2)

    # -- Kafka ---------------------------------------------------------------------------------

    def _update_lag(self) -> None:
        """Set the lag gauge: records on the changes topic after the group's commit."""
        assigned = self.consumer.assignment()
        if not assigned:
            return
        group = self.settings.sink.group_id
        try:
            committed = self.consumer.committed(assigned, timeout=5)
            for tp in committed:
                _low, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
                metrics.CONSUMER_LAG.labels(group, str(tp.partition)).set(
                    max(0, high - max(tp.offset, 0)))
        except KafkaException as exc:  # a rebalance or Kafka away: the next refresh will tell
            log.debug("consumer lag not refreshed: %s", exc)

    def dead_letter(self, dead: list[tuple[Message, DeadLetterReason]]) -> None:
        """Send dead letters to the changes DLQ and wait until all are acknowledged."""
        kafka = self.settings.kafka
        letters = []
        for message, reason in dead:
            value, letter_headers = dead_letter(
                message.value() or b"", "record", [reason], topic=message.topic() or "",
                partition=message.partition() or 0, offset=message.offset() or 0,
                timestamp=message.timestamp()[1] / 1000, by=self.settings.sink.group_id,
                max_bytes=kafka.max_dead_letter_bytes)
            letters.append(OutMessage(kafka.changes_dlq_topic, message.key(), value,
                                      letter_headers))
        self.dead_letters.send_all(letters, shrink=shrink)
        for _, reason in dead:
            metrics.DEAD_LETTERS.labels(reason["code"]).inc()
            log.warning("dead letter: %s", reason["message"][:300])

    def commit(self, batch: Sequence[Message]) -> None:
        """Commit the offsets after ``batch`` (only called once it is in Neo4j)."""
        ends: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic() or "", message.partition() or 0)
            ends[key] = max(ends.get(key, 0), (message.offset() or 0) + 1)
        try:
            self.consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in ends.items()],
                                 asynchronous=False)
            metrics.LAST_COMMIT.set_to_current_time()
        except KafkaException as exc:
            # Typically a rebalance moved the partitions: their new owner re-applies the
            # records, which changes nothing.
            log.warning("offset commit failed (%s); the records will be applied again", exc)


def run_sink(settings: SinkSettings) -> None:
    """Run the sink until SIGTERM/SIGINT (blocks)."""
    opts = settings.sink
    serve_metrics(opts.metrics_port, opts.metrics_host, "LINEAGE_SINK__METRICS_PORT")
    sink = Neo4jSink(settings)

    def stop(_signum: int, _frame: Any) -> None:
        sink.stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.warning("sink: %s -> Neo4j %s (group %s)", settings.kafka.changes_topic,
                settings.neo4j.uri, opts.group_id)
    sink.run()
