"""core.delivery.Delivery: what it does when Kafka does not acknowledge (no broker at all)."""

from __future__ import annotations

import time

import pytest

from core.delivery import Delivery, OutMessage
from core.errors import ServiceUnavailable
from core.settings import KafkaSettings

NOBODY = KafkaSettings(bootstrap_servers="127.0.0.1:9")  # the discard port: connections refused


def test_a_bounded_send_gives_up_after_its_rounds_with_an_error_that_says_how_many() -> None:
    delivery = Delivery(NOBODY, retry_seconds=0.1, what="letters", **{
        "message.timeout.ms": 300, "log_level": 0})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match="did not acknowledge 2 of 2 letters") as err:
        delivery.send_all([OutMessage("t", None, b"a"), OutMessage("t", b"k", b"b")], rounds=2)
    assert err.value.retryable and "run the same command again" in str(err.value)
    assert time.monotonic() - started < 10  # two rounds of 0.3 s timeouts, not forever


def test_sending_nothing_needs_no_broker() -> None:
    Delivery(NOBODY, retry_seconds=0.1).send_all([], rounds=1)
