"""Session fixtures: the real local Kafka and Neo4j, started once for the whole run.

A stack that was already running (a developer's) is used and left running; one the suite started
is stopped at the end.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic
from neo4j import Driver, GraphDatabase

from lineage.stack import LocalStack
from lineage.stack.settings import StackSettings


@pytest.fixture(scope="session")
def stack() -> Iterator[StackSettings]:
    """A running, healthy local stack; yields settings that point at it."""
    local = LocalStack(StackSettings(), log=lambda line: print(f"[stack] {line}"))
    was_running = local.is_running()
    local.up()
    yield StackSettings()  # re-read: `up` writes the connection file the settings pick up
    if not was_running:
        local.down()


@pytest.fixture
def topic(stack: StackSettings) -> Iterator[str]:
    """A fresh topic with a unique name, deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap_servers})
    admin.create_topics([NewTopic(name, 3, 1)])[name].result(timeout=30)
    yield name
    admin.delete_topics([name])[name].result(timeout=30)


@pytest.fixture
def neo4j_driver(stack: StackSettings) -> Iterator[Driver]:
    """An authenticated driver to the stack's Neo4j."""
    with GraphDatabase.driver(stack.neo4j.uri, auth=stack.neo4j.auth()) as driver:
        yield driver
