"""The Faust worker: raw topic -> :func:`~stream_processor.pipeline.process` -> DLQ / changes topic.

Processing guarantee: at least once, with an idempotent downstream (Faust's ``exactly_once`` is
not used; see faust-streaming issues #517 and #323). Each batch goes:

1. process every message against the state (dedup + suppression), in memory;
2. send its dead letters and change records, and wait until Kafka acknowledged *all* of them
   (a failed send is retried, never skipped);
3. only then write the batch's state entries to the table (changelog-backed), and let Faust
   commit the batch's offsets.

A SIGKILL between 2 and 3 re-sends records on restart (the sink absorbs them); it can never lose
one, since state that says "sent" is only written after the send was acknowledged.

Example::

    $ lineage process                     # one worker; start more to share the partitions
    $ LINEAGE_PROCESSOR__WORKER_ID=1 lineage process
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import KafkaException, NewTopic
from faust.streams import _current_event

from lineage.errors import ServiceUnavailable
from schemas.codec import encode
from stream_processor import metrics
from stream_processor.pipeline import DeadLetter, Outcome, process
from stream_processor.settings import ProcessorSettings
from stream_processor.state import Plan, Span, stale_keys

log = logging.getLogger("lineage.processor")

SEND_RETRY_SECONDS = 2.0


def ensure_topics(settings: ProcessorSettings) -> int:
    """Create the raw, DLQ and changes topics when missing; returns the raw topic's partitions."""
    kafka, opts = settings.kafka, settings.processor
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    wanted = {
        kafka.raw_topic: opts.raw_partitions,
        kafka.dlq_topic: opts.raw_partitions,
        kafka.changes_topic: opts.changes_partitions,
    }
    try:
        existing = admin.list_topics(timeout=30).topics
    except KafkaException as exc:
        raise ServiceUnavailable(f"Kafka at {kafka.bootstrap_servers} did not answer: {exc}",
                                 hint="is the stack up? `lineage stack status`") from exc
    missing = [NewTopic(name, count, 1) for name, count in wanted.items() if name not in existing]
    for name, future in (admin.create_topics(missing) if missing else {}).items():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise ServiceUnavailable(f"cannot create topic {name}: {exc}") from exc
    topics = admin.list_topics(topic=kafka.raw_topic, timeout=30).topics
    return len(topics[kafka.raw_topic].partitions)


class _Overlay(MutableMapping[str, Span]):
    """The table as seen by one batch: the batch's own decisions first, then the table."""

    def __init__(self, table: Mapping[str, Span]) -> None:
        self.table = table
        self.local: dict[str, Span] = {}

    def __getitem__(self, key: str) -> Span:
        if key in self.local:
            return self.local[key]
        value = self.table.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: Span) -> None:
        self.local[key] = value

    def __delitem__(self, key: str) -> None:
        del self.local[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.local)

    def __len__(self) -> int:
        return len(self.local)


@contextlib.contextmanager
def _as_current(event: Any) -> Iterator[None]:
    # Faust writes a table entry to the changelog partition of the "current event"; inside a
    # batch that must be the event the entry belongs to, not the batch's last one.
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


def _dead_letter_headers(letter: DeadLetter, message: Any, app_id: str) -> list[tuple[str, bytes]]:
    envelope = {
        "kind": letter.kind,
        "reasons": list(letter.reasons),
        "source": {"topic": message.topic, "partition": message.partition,
                   "offset": message.offset, "timestamp": message.timestamp},
        "deadAt": datetime.now(UTC).isoformat(),
        "processor": app_id,
    }
    codes = ",".join(dict.fromkeys(str(r["code"]) for r in letter.reasons))
    return [
        ("lineage.dlq.kind", letter.kind.encode()),
        ("lineage.dlq.reasons", codes.encode()),
        ("lineage.dlq.envelope", json.dumps(envelope).encode()),
    ]


class ProcessorWorker:
    """Builds the Faust app and handles batches of raw messages."""

    def __init__(self, settings: ProcessorSettings) -> None:
        self.settings = settings
        opts = settings.processor
        partitions = ensure_topics(settings)
        data_dir = opts.data_dir or settings.state_dir / "processor" / f"worker-{opts.worker_id}"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            opts.app_id,
            broker=";".join(f"kafka://{s}" for s in settings.kafka.bootstrap_servers.split(",")),
            store=f"{opts.store}://",
            datadir=str(data_dir),
            topic_partitions=partitions,
            topic_replication_factor=1,
            processing_guarantee="at_least_once",
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            # A killed worker's partitions move to the others after this long without heartbeats.
            broker_session_timeout=15.0,
            broker_heartbeat_interval=3.0,
            producer_linger_ms=5,
            producer_max_request_size=8_388_608,  # the broker's message.max.bytes
            web_enabled=False,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.raw = self.app.topic(settings.kafka.raw_topic, partitions=partitions)
        self.dlq = self.app.topic(settings.kafka.dlq_topic)
        self.changes = self.app.topic(settings.kafka.changes_topic)
        self.table = self.app.Table(
            "state", partitions=partitions,
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
        )
        self.watermark = 0
        self.next_expiry = time.monotonic() + opts.expiry_interval_seconds
        self.app.agent(self.raw, name="process")(self._agent)

    async def _agent(self, stream: Any) -> None:
        opts = self.settings.processor
        # noack_take, not take_events: take_events acks its buffer in a `finally`, so a batch
        # interrupted by a rebalance or a crash would have its offsets committed unprocessed.
        # Here an event is acked only once its records are acknowledged and its state written.
        async for events in stream.noack_take(opts.batch_size, within=opts.batch_seconds):
            try:
                await self.handle_batch(events)
            except Exception as exc:
                # Unacked events block the commit; stop the worker so that a restart (or another
                # worker of the group) processes them again from the last commit.
                log.exception("batch failed; stopping the worker")
                await self.app.crash(exc)
                raise
            for event in events:
                await stream.ack(event)

    async def handle_batch(self, events: Sequence[Any]) -> None:
        """Process, send and wait for acks, then record state (see the module docstring)."""
        opts = self.settings.processor
        overlay = _Overlay(self.table)
        work: list[tuple[Any, Outcome, dict[str, Span]]] = []
        for event in events:
            message = event.message
            outcome = process(event.value or b"", Plan(overlay),
                              ingested_at=int(message.timestamp * 1_000_000),
                              repair=opts.repair, max_bytes=opts.max_event_bytes)
            work.append((event, outcome, outcome.plan.commit()))
        await self._send_all(work)
        now = time.time()
        latest: dict[int, Any] = {}
        for event, outcome, entries in work:
            message = event.message
            latest[message.partition] = event
            with _as_current(event):
                for key, span in entries.items():
                    self.table[key] = [span[0], span[1], message.partition]
            self._observe(outcome, now, message)
        metrics.BATCH_SIZE.observe(len(events))
        self._update_lag(latest)
        if time.monotonic() >= self.next_expiry:
            self.next_expiry = time.monotonic() + opts.expiry_interval_seconds
            self.expire(latest)

    async def _send_all(self, work: list[tuple[Any, Outcome, dict[str, Span]]]) -> None:
        pending: list[tuple[Any, dict[str, Any]]] = []
        app_id = self.settings.processor.app_id
        for event, outcome, _ in work:
            message = event.message
            ingested = int(message.timestamp * 1_000_000)
            for letter in outcome.dead_letters:
                pending.append((self.dlq, {
                    "key": message.key, "value": message.value,
                    "headers": _dead_letter_headers(letter, message, app_id)}))
            for change in outcome.changes:
                pending.append((self.changes, {"key": change.key.encode(),
                                               "value": encode(change.record(ingested))}))
        while pending:
            futures = [await topic.send(**kwargs) for topic, kwargs in pending]
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [item for item, result in zip(pending, results, strict=True)
                      if isinstance(result, BaseException)]
            if failed:
                log.warning("%d of %d sends failed; retrying in %.0fs", len(failed),
                            len(pending), SEND_RETRY_SECONDS)
                await asyncio.sleep(SEND_RETRY_SECONDS)
            pending = failed

    def _observe(self, outcome: Outcome, now: float, message: Any) -> None:
        metrics.EVENTS_CONSUMED.inc()
        for letter in outcome.dead_letters:
            if letter.kind == "event":
                metrics.EVENTS_REJECTED.labels(letter.reasons[0]["code"]).inc()
            else:
                metrics.FACETS_DROPPED.labels(letter.reasons[0].get("facet", "?")).inc()
        if not outcome.accepted:
            return
        metrics.EVENTS_ACCEPTED.inc()
        for repair in outcome.repairs:
            metrics.REPAIRS.labels(repair).inc()
        if outcome.duplicate:
            metrics.DUPLICATES.inc()
        for change in outcome.changes:
            metrics.CHANGES.labels(change.kind).inc()
        metrics.CHANGES_SUPPRESSED.inc(outcome.suppressed)
        metrics.PROCESSING_LATENCY.observe(max(0.0, now - message.timestamp))
        if outcome.event_time is not None:
            self.watermark = max(self.watermark, outcome.event_time)
            metrics.EVENT_AGE.observe(max(0.0, now - outcome.event_time / 1_000_000))

    def _update_lag(self, latest: dict[int, Any]) -> None:
        consumer = self.app.consumer
        for partition, event in latest.items():
            with contextlib.suppress(Exception):  # highwater is unknown right after assignment
                highwater = consumer.highwater(event.message.tp)
                metrics.CONSUMER_LAG.labels(str(partition)).set(
                    max(0, highwater - event.message.offset - 1))

    def expire(self, latest: dict[int, Any]) -> int:
        """Delete state entries older than the retention, for the partitions in this batch."""
        retention = int(self.settings.processor.retention_days * 86_400 * 1_000_000)
        # Entries are [first, last, partition]; only partitions with an event in this batch
        # can be written to (Faust needs that event as the changelog partition).
        local = ((key, value) for key, value in self.table.items() if value[2] in latest)
        stale = stale_keys(local, self.watermark, retention)
        for key in stale:
            with _as_current(latest[self.table[key][2]]):
                del self.table[key]
        metrics.STATE_EXPIRED.inc(len(stale))
        return len(stale)


def run_worker(settings: ProcessorSettings, loglevel: str = "warning") -> None:
    """Run one processor worker until SIGTERM/SIGINT (blocks)."""
    opts = settings.processor
    if opts.metrics_port:
        from prometheus_client import start_http_server

        start_http_server(opts.metrics_port, addr=opts.metrics_host)
    worker = ProcessorWorker(settings)
    faust.Worker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
