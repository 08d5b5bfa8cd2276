"""The Faust worker: raw topic -> :func:`~stream_processor.pipeline.process` -> DLQ / changes topic.

Processing guarantee: at least once, with an idempotent downstream (Faust's ``exactly_once`` is
not used; see faust-streaming issues #517 and #323). Each batch goes:

1. process every message against the state (dedup + suppression), in memory;
2. send its dead letters and change records, and wait until Kafka acknowledged *all* of them
   (:mod:`stream_processor.output`; a failed send is retried, never skipped);
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
import logging
import time
import weakref
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from functools import partial
from typing import Any

import faust
from faust.streams import _current_event

from core import quiet_logs, topics
from core.dead_letters import dead_letter, shrink
from core.delivery import OutMessage
from core.errors import Interrupted
from core.kafka_config import broker_credentials, broker_urls
from core.metrics import serve_metrics
from schemas.codec import encode
from stream_processor import metrics
from stream_processor.output import output
from stream_processor.pipeline import Outcome, process
from stream_processor.settings import ProcessorSettings
from stream_processor.state import Plan, Span, stale_keys

log = logging.getLogger("lineage.processor")

SEND_RETRY_SECONDS = 2.0


def ensure_topics(settings: ProcessorSettings) -> int:
    """Create the raw, DLQ and changes topics when missing; returns the raw topic's partitions."""
    kafka = settings.kafka
    counts = topics.ensure_topics(kafka, {
        kafka.raw_topic: kafka.raw_partitions,
        kafka.dlq_topic: kafka.raw_partitions,
        kafka.changes_topic: kafka.changes_partitions,
    })
    return counts[kafka.raw_topic]


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


class StallGuard:
    """Finds raw partitions whose committed offset stopped moving while events remain.

    faust-streaming 0.15 has a rebalance race: its fetch loop can finish a batch fetched before
    the rebalance *after* the seek to the committed offsets, leaving the partition's read offset
    ahead of the commit. The messages in between are then dropped as "already read" although the
    stream never got them, and the commit can never pass them (docs/processor.md). Re-reading
    such a partition from its commit is always safe: what was processed is deduplicated.

    >>> guard = StallGuard(stall_seconds=30)
    >>> guard.stalled({"p0": 5}, {"p0": 9}, now=0.0), guard.stalled({"p0": 5}, {"p0": 9}, now=31.0)
    ([], ['p0'])
    >>> guard.stalled({"p0": 9}, {"p0": 9}, now=70.0)  # caught up: no lag, no stall
    []
    """

    def __init__(self, stall_seconds: float) -> None:
        self.stall_seconds = stall_seconds
        self.since: dict[Any, tuple[int | None, float]] = {}

    def hold(self, now: float) -> None:
        """Restart every clock: a batch is in flight, so commits are legitimately waiting."""
        self.since = {tp: (offset, now) for tp, (offset, _) in self.since.items()}

    def stalled(self, committed: Mapping[Any, int | None], ends: Mapping[Any, int],
                now: float) -> list[Any]:
        """Partitions with events to go whose commit has not moved for ``stall_seconds``."""
        since: dict[Any, tuple[int | None, float]] = {}
        stalled = []
        for tp, end in ends.items():
            offset = committed.get(tp)
            previous = self.since.get(tp)
            start = previous[1] if previous is not None and previous[0] == offset else now
            if (offset or 0) >= end:
                start = now
            elif now - start >= self.stall_seconds:
                stalled.append(tp)
                start = now  # give the re-read a full period before judging it again
            since[tp] = (offset, start)
        self.since = since
        return stalled


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
            broker=broker_urls(settings.kafka),
            broker_credentials=broker_credentials(settings.kafka),
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
            # A stop does not wait for the events in flight: unacked, their offsets are not
            # committed, and whoever reads the partition next processes them again.
            stream_wait_empty=False,
            key_serializer="raw",
            value_serializer="raw",
        )
        self.raw = self.app.topic(settings.kafka.raw_topic, partitions=partitions)
        self.output = output(settings.kafka, retry_seconds=SEND_RETRY_SECONDS)
        self.table = self.app.Table(
            "state", partitions=partitions,
            schema=faust.Schema(key_serializer="json", value_serializer="json"),
        )
        self.watermark = 0
        self.next_expiry = time.monotonic() + opts.expiry_interval_seconds
        self.guard = StallGuard(opts.stall_seconds)
        self.in_flight = False
        self.app.agent(self.raw, name="process")(self._agent)
        self.app.timer(interval=min(5.0, opts.stall_seconds / 3))(self.reread_stalled)

    async def _agent(self, stream: Any) -> None:
        opts = self.settings.processor
        # Faust leaves aiokafka's and its own loggers at DEBUG whatever the worker's log level,
        # and they format every record they send (7% of the worker's CPU in a py-spy profile).
        level = max(logging.getLogger().getEffectiveLevel(), logging.INFO)
        for name in ("aiokafka", "faust", "mode"):
            logging.getLogger(name).setLevel(level)
        # noack_take, not take_events: take_events acks its buffer in a `finally`, so a batch
        # interrupted by a rebalance or a crash would have its offsets committed unprocessed.
        # Here an event is acked only once its records are acknowledged and its state written.
        async for events in stream.noack_take(opts.batch_size, within=opts.batch_seconds):
            self.in_flight = True
            try:
                await self.handle_batch(events)
            except Interrupted:  # stopping: unacked, the batch is processed again after a restart
                log.warning("stopping with a batch not acknowledged by Kafka; it will be "
                            "processed again")
                return
            except Exception as exc:
                # Unacked events block the commit; stop the worker so that a restart (or another
                # worker of the group) processes them again from the last commit.
                log.exception("batch failed; stopping the worker")
                await self.app.crash(exc)
                raise
            finally:
                self.in_flight = False
            for event in events:
                await stream.ack(event)

    async def handle_batch(self, events: Sequence[Any]) -> None:
        """Process, send and wait for acks, then record state (see the module docstring)."""
        opts = self.settings.processor
        # State is per partition: the table looks a key up in the store of the *current
        # event's* partition, and the batch's own decisions must not cross partitions either,
        # or what a worker sends would depend on how batches happen to mix partitions.
        overlays: dict[int, _Overlay] = {}
        work: list[tuple[Any, Outcome, dict[str, Span]]] = []
        for event in events:
            message = event.message
            overlay = overlays.setdefault(message.partition, _Overlay(self.table))
            with _as_current(event):
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
        metrics.BATCH_EVENTS.observe(len(events))
        self._update_lag(latest)
        if time.monotonic() >= self.next_expiry:
            self.next_expiry = time.monotonic() + opts.expiry_interval_seconds
            self.expire(latest)

    async def _send_all(self, work: list[tuple[Any, Outcome, dict[str, Span]]]) -> None:
        kafka, app_id = self.settings.kafka, self.settings.processor.app_id
        messages: list[OutMessage] = []
        for event, outcome, _ in work:
            message = event.message
            ingested = int(message.timestamp * 1_000_000)
            for letter in outcome.dead_letters:
                value, letter_headers = dead_letter(
                    message.value, letter.kind, letter.reasons, topic=message.topic,
                    partition=message.partition, offset=message.offset,
                    timestamp=message.timestamp, by=app_id, max_bytes=kafka.max_dead_letter_bytes)
                messages.append(OutMessage(kafka.dlq_topic, message.key, value, letter_headers))
            messages += [OutMessage(kafka.changes_topic, change.key.encode(),
                                    encode(change.record(ingested)))
                         for change in outcome.changes]
        await asyncio.get_running_loop().run_in_executor(
            None, partial(self.output.send_all, messages, shrink=shrink))

    def _observe(self, outcome: Outcome, now: float, message: Any) -> None:
        metrics.EVENTS_CONSUMED.labels(topics.ingest_path(message.headers)).inc()
        for letter in outcome.dead_letters:
            metrics.DEAD_LETTERS.labels(letter.kind).inc()
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
        group = self.settings.processor.app_id
        for partition, event in latest.items():
            with contextlib.suppress(Exception):  # highwater is unknown right after assignment
                highwater = consumer.highwater(event.message.tp)
                metrics.CONSUMER_LAG.labels(group, str(partition)).set(
                    max(0, highwater - event.message.offset - 1))

    async def reread_stalled(self) -> None:
        """Seek stalled raw partitions back to their commit (see :class:`StallGuard`)."""
        consumer = self.app.consumer
        now = time.monotonic()
        if self.in_flight:
            self.guard.hold(now)
            return
        raw_topic = self.settings.kafka.raw_topic
        tps = [tp for tp in consumer.assignment() if tp.topic == raw_topic]
        if not tps:
            return
        try:
            ends = await consumer.highwaters(*tps)
        except Exception as exc:  # during a rebalance; the next tick will see
            log.debug("no end offsets for the stall check: %r", exc)
            return
        # Faust keeps no public view of its own commits; this is the one it commits from.
        own: Mapping[Any, int | None] = consumer._committed_offset  # type: ignore[attr-defined]
        committed = {tp: own.get(tp) for tp in tps}
        for tp in self.guard.stalled(committed, ends, now):
            offset = committed[tp] or 0
            log.warning("%s[%d]: the commit stayed at %s for %.0fs with events up to %d to go; "
                        "re-reading from it", tp.topic, tp.partition, committed[tp],
                        self.guard.stall_seconds, ends[tp])
            metrics.PARTITIONS_REREAD.inc()
            await consumer.seek(tp, offset)

    def expire(self, latest: dict[int, Any]) -> int:
        """Delete state entries older than the retention, for the partitions in this batch."""
        retention = int(self.settings.processor.retention_days * 86_400 * 1_000_000)
        # Entries are [first, last, partition]; only partitions with an event in this batch
        # can be written to (Faust needs that event as the changelog partition).
        # The same key may live in several partitions' state; each entry says which it is in.
        local = (((key, value[2]), value) for key, value in self.table.items()
                 if value[2] in latest)
        stale = stale_keys(local, self.watermark, retention)
        for key, partition in stale:
            with _as_current(latest[partition]):
                self.table.pop(key, None)
        metrics.STATE_EXPIRED.inc(len(stale))
        return len(stale)


def run_worker(settings: ProcessorSettings, loglevel: str = "warning") -> None:
    """Run one processor worker until SIGTERM/SIGINT (blocks)."""
    opts = settings.processor
    serve_metrics(opts.metrics_port, opts.metrics_host, "LINEAGE_PROCESSOR__METRICS_PORT")
    worker = ProcessorWorker(settings)
    _Worker(worker, loglevel=loglevel, quiet=True).execute_from_commandline()


class _Worker(faust.Worker):
    """Faust's worker, with repeated warnings rate-limited (:mod:`core.quiet_logs`) once it has
    set up the root logger's handlers, and a shutdown that does not wait for Kafka: a SIGTERM
    or SIGINT first tells the output to stop retrying (:attr:`core.delivery.Delivery.stopping`).
    """

    def __init__(self, processor: ProcessorWorker, **options: Any) -> None:
        super().__init__(processor.app, **options)
        self.processor = processor

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        quiet_logs.install()

    def _schedule_shutdown(self, signal: Any) -> None:
        self.processor.output.stopping.set()
        super()._schedule_shutdown(signal)
