"""Real-broker fixtures: one local Apache Kafka for the session, fresh topics and groups per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from kafka.admin import KafkaAdminClient

from devtools.broker import LocalBroker
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.kafka.topics import create_topics as create_service_topics


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
def create_topics(bootstrap_servers: str) -> Iterator[Callable[..., Topics]]:
    """Create a set of topics as the services create theirs; delete them after the test."""
    made: list[str] = []

    def create(topics: Topics, partitions: int = 1) -> Topics:
        made.extend(create_service_topics(KafkaSettings(bootstrap_servers, topics), partitions))
        return topics

    yield create
    if made:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
        admin.delete_topics(made, raise_errors=False)  # a test may have deleted some itself
        admin.close()
