"""The worker's output: change records and dead letters, sent until Kafka acknowledged them all.

It is a :class:`core.delivery.Delivery` (the send-until-acknowledged loop and its contract) with
the processor's producer settings. The worker writes its state only after
:meth:`~core.delivery.Delivery.send_all` returned, which is what makes a crash repeat records but
never lose one (see :mod:`stream_processor.worker`).

Why not Faust's ``topic.send``: the records of a batch are the bulk of the worker's Kafka traffic,
and aiokafka builds every message in Python on the event loop's core. confluent-kafka hands them to
librdkafka, whose threads batch, compress and send them off that core; the worker waits for the
acks in a thread, so the event loop keeps heartbeating meanwhile.

>>> from core.settings import KafkaSettings
>>> output(KafkaSettings(bootstrap_servers="127.0.0.1:9"), retry_seconds=1).config["linger.ms"]
5
"""

from __future__ import annotations

from core.delivery import Delivery
from core.settings import KafkaSettings


def output(kafka: KafkaSettings, *, retry_seconds: float = 2.0,
           max_message_bytes: int = 8_388_608) -> Delivery:
    """The processor's producer for the changes and DLQ topics."""
    return Delivery(kafka, retry_seconds=retry_seconds, what="records", **{
        "linger.ms": 5,
        "compression.type": "lz4",  # change records are repetitive JSON-ish Avro
        "message.max.bytes": max_message_bytes,
        "delivery.timeout.ms": 60_000,
    })
