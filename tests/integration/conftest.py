"""Real-broker fixtures: one local Apache Kafka for the session, fresh topics and groups per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from sunspots.broker import LocalBroker


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[LocalBroker | None]:
    """The session's broker; SUNSPOTS_TEST_BOOTSTRAP points the tests at an external one."""
    if os.environ.get("SUNSPOTS_TEST_BOOTSTRAP"):
        yield None
        return
    broker = LocalBroker().start()
    try:
        yield broker
    finally:
        broker.cleanup()


@pytest.fixture(scope="session")
def bootstrap_servers(kafka_broker: LocalBroker | None) -> str:
    if kafka_broker is None:
        return os.environ["SUNSPOTS_TEST_BOOTSTRAP"]
    return kafka_broker.bootstrap_servers


@pytest.fixture
def unique() -> str:
    """A short token that makes this test's topic and group names its own."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def create_topics(bootstrap_servers: str) -> Iterator:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    made: list[str] = []

    def create(*names: str, partitions: int = 1, **configs: str) -> None:
        admin.create_topics([NewTopic(n, partitions, 1, topic_configs=configs) for n in names])
        made.extend(names)

    yield create
    if made:
        admin.delete_topics(made)
    admin.close()
