"""The client settings real-time latency rests on (docs/performance.md, "Latency"), as the
factories hand them to kafka-python: no broker, the producer class replaced by one that
records its settings.

The transactional producer retries a transaction request the coordinator turned away after
5 ms (kafka-python's 100 ms default was most of the services' p99 latency) while every other
producer keeps the default; the services' producers hold their output topics' metadata before
the first batch; a paced replay sends each observation at once, a full-speed one fills its
batches for 10 ms.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, ClassVar

import pytest
from kafka.errors import KafkaTimeoutError

from consumer.modes import CLASSIFY, FORECAST
from producer import replay
from sunspots.kafka import clients
from sunspots.kafka.settings import KafkaSettings, Topics

pytestmark = pytest.mark.unit


class Recorded:
    """A KafkaProducer that keeps its settings and transacts with nobody."""

    made: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **settings: Any) -> None:
        Recorded.made.append(settings)
        self.asked: list[str] = []
        self.closed = False
        settings["producer"] = self

    def init_transactions(self) -> None:
        pass

    def partitions_for(self, topic: str) -> set[int]:
        if topic == "absent":
            raise KafkaTimeoutError("Failed to update metadata after 60.0 secs.")
        self.asked.append(topic)
        return {0}

    def close(self, timeout: float | None = None) -> None:
        self.closed = True


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    Recorded.made = []
    monkeypatch.setattr(clients, "KafkaProducer", Recorded)
    monkeypatch.setattr(replay, "KafkaProducer", Recorded)
    return Recorded.made


def test_only_the_transactional_producer_retries_quickly(made: list[dict[str, Any]]) -> None:
    kafka = KafkaSettings("broker:9092")
    clients.make_producer(kafka, "group-instance", 60_000)
    clients.make_producer(kafka)
    transactional, idempotent = made
    assert transactional["retry_backoff_ms"] == 5
    assert transactional["transactional_id"] == "group-instance"
    assert "retry_backoff_ms" not in idempotent  # kafka-python's default, 100 ms
    # The rest of the services' producer settings are the same for both.
    for key, value in clients.PRODUCER_CONFIG.items():
        assert transactional[key] == idempotent[key] == value


def test_the_output_topics_metadata_is_held_before_the_first_send(
    made: list[dict[str, Any]],
) -> None:
    kafka = KafkaSettings("broker:9092")
    clients.make_producer(kafka, "group-instance", 60_000, ("forecasts", "evaluations"))
    assert made[0]["producer"].asked == ["forecasts", "evaluations"]
    # A producer that cannot get there is closed, not left with its thread and sockets.
    with pytest.raises(KafkaTimeoutError):
        clients.make_producer(kafka, "group-instance", 60_000, ("forecasts", "absent"))
    assert made[1]["producer"].closed


def test_only_the_first_of_a_loops_producers_waits_for_the_output_topics(
    made: list[dict[str, Any]],
) -> None:
    """A replacement (after a failed publish) may write to a topic that went away and that the
    topic watch creates again between batches: it must not wait for that topic's metadata."""
    kafka = KafkaSettings("broker:9092")
    transactional = functools.partial(clients.make_producer, kafka, "group-instance", 60_000)
    maker = clients.ProducerMaker(transactional, ("forecasts", "evaluations"))
    maker()  # the service's start
    maker()  # a replacement
    first, replacement = (m["producer"] for m in made)
    assert first.asked == ["forecasts", "evaluations"] and replacement.asked == []
    assert made[1]["transactional_id"] == "group-instance"
    # Until one is made, each attempt at the start waits for every output topic.
    starting = clients.ProducerMaker(functools.partial(clients.make_producer, kafka), ("absent",))
    for _ in range(2):
        with pytest.raises(KafkaTimeoutError):
            starting()
    assert made[2]["producer"].closed and made[3]["producer"].closed


def test_each_service_names_the_topics_every_batch_writes() -> None:
    topics = Topics()
    assert FORECAST.outputs(topics) == (topics.forecasts, topics.evaluations, topics.state)
    assert CLASSIFY.outputs(topics) == (topics.classifier_predictions,)


def test_a_paced_replay_sends_at_once_and_a_full_speed_one_fills_batches(
    made: list[dict[str, Any]],
) -> None:
    kafka = KafkaSettings("broker:9092")
    replay.replay_producer(kafka, paced=True)
    replay.replay_producer(kafka)
    paced, full = made
    assert paced["linger_ms"] == 0 and full["linger_ms"] == replay.LINGER_MS == 10
    # The linger is taken out of the request timeout, which stays within the delivery timeout.
    assert paced["request_timeout_ms"] == full["request_timeout_ms"] == 30_000


def test_the_replayer_asks_for_the_paced_producer_when_it_has_a_speed(
    made: list[dict[str, Any]],
) -> None:
    kafka = KafkaSettings("broker:9092")
    for speed in (0.0, 100.0):
        config = replay.ReplayConfig(data="unused.csv", speed=speed)
        replay.Replayer(kafka, config, threading.Event())._producer()
    full, paced = made
    assert full["linger_ms"] == 10 and paced["linger_ms"] == 0
