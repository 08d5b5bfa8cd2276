"""The real Kafka and Neo4j of the local stack do real work; Neo4j insists on authentication."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import AuthError

from lineage.stack.settings import StackSettings


def test_messages_produced_to_kafka_are_consumed_by_a_consumer_group(
    stack: StackSettings, topic: str
) -> None:
    bootstrap = stack.kafka.bootstrap_servers
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all",
                         "enable.idempotence": True})
    sent = {f"key-{i}".encode(): f"value-{i}".encode() for i in range(30)}
    for key, value in sent.items():
        producer.produce(topic, value, key=key)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    received: dict[bytes, bytes] = {}
    deadline = time.monotonic() + 60
    try:
        while len(received) < len(sent) and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                received[msg.key()] = msg.value()
    finally:
        consumer.close()
    assert received == sent


def test_a_write_transaction_is_read_back_with_authentication(neo4j_driver: Driver) -> None:
    marker = f"probe-{uuid.uuid4()}"

    def write(tx):  # type: ignore[no-untyped-def]
        tx.run("CREATE (:StackProbe {id: $id, n: $n})", id=marker, n=42)

    def read(tx):  # type: ignore[no-untyped-def]
        return tx.run("MATCH (p:StackProbe {id: $id}) RETURN p.n AS n", id=marker).single()["n"]

    with neo4j_driver.session() as session:
        session.execute_write(write)
        assert session.execute_read(read) == 42
        session.run("MATCH (p:StackProbe {id: $id}) DELETE p", id=marker).consume()


@pytest.mark.parametrize("auth", [None, ("neo4j", "wrong-password"), ("neo4j", "neo4j")],
                         ids=["no credentials", "a wrong password", "the factory default"])
def test_neo4j_refuses_a_bolt_connection_without_the_generated_password(
    stack: StackSettings, auth: tuple[str, str] | None
) -> None:
    with GraphDatabase.driver(stack.neo4j.uri, auth=auth) as driver, \
            pytest.raises(AuthError), driver.session() as session:
        session.run("RETURN 1").consume()
