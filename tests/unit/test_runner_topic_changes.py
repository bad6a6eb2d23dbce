"""The consumer loop's side of topic changes, through `Runner.run()` with the scripted fakes of
tests.unit.test_runner_paths and a scripted topic watch: a stop decided in a restore ends the
loop with its line (not retried, not swallowed by kafka-python's listener call); a source
topic created again rewinds to its beginning; a changelog that lost the states keeps the
states held over a rewind; a processor that owes outputs publishes them without records."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka.errors import KafkaError, KafkaTimeoutError, MessageSizeTooLargeError
from kafka.structs import OffsetAndMetadata

from consumer.health import Health
from consumer.output import Output
from consumer.publishing import AcknowledgedPublisher, StaleMetadata, TransactionalPublisher
from consumer.recovery import RESTORE_PROBLEM
from consumer.runner import Runner
from consumer.stops import EXIT_INPUT, ServiceStop
from sunspots.kafka import transactions
from tests.unit.test_runner_paths import (
    CONFIG,
    TP0,
    TP1,
    Answered,
    Fake,
    FakeClients,
    FakeConsumer,
    FakeProducer,
    FakePublisher,
    Future,
    RecordingProcessor,
    assign,
    batch,
)


@dataclass
class ScriptedWatch:
    """The runner's view of consumer.topic_watch.TopicWatch."""

    stop_on_restore: ServiceStop | None = None
    lacks_state: bool = False
    source_recreated: bool = False
    owes: list[bool] = field(default_factory=list)  # what each `between` answers
    restored: list[list[int]] = field(default_factory=list)
    undos: int = 0

    def before_restore(self, partitions: list[int]) -> None:
        self.restored.append(partitions)
        if self.stop_on_restore is not None:
            raise self.stop_on_restore

    def changelog_lacks_state(self) -> bool:
        return self.lacks_state

    def undo(self) -> None:
        self.undos += 1

    def attach(self, consumer: object) -> None:
        pass

    def between(self) -> bool:
        return self.owes.pop(0) if self.owes else False


class OwingProcessor(RecordingProcessor):
    """Owes a state record once: what a forecaster does after its changelog was recreated."""

    def __init__(self) -> None:
        super().__init__()
        self.owed = True

    def process(self, records: list) -> list[Output]:
        if not records and self.owed:
            self.owed = False
            return [Output("state", b"snapshot", b"s", partition=0)]
        return super().process(records)


def run(script, watch: ScriptedWatch, publisher=None, processor=None):
    stop = threading.Event()
    health = Health()
    health.model_loaded = True
    consumer = FakeConsumer(stop, script)
    publisher = publisher or FakePublisher()
    clients = FakeClients(consumer, publisher)
    processor = processor or RecordingProcessor()
    runner = Runner(clients, CONFIG, processor, health, stop, watch.between, watch=watch)
    return runner, consumer, publisher, processor, health


def test_a_stop_decided_in_a_restore_ends_the_loop_with_its_line() -> None:
    line = "topic t has 3 partitions but its state changelog s has 1: ..."
    watch = ScriptedWatch(stop_on_restore=ServiceStop(line, EXIT_INPUT))
    runner, consumer, publisher, processor, _ = run(
        [assign(TP0, fetched=batch(TP0, 0)), batch(TP0, 0)], watch
    )
    with pytest.raises(ServiceStop) as stopped:
        runner.run()
    assert stopped.value.line == line
    assert processor.processed == [] and publisher.published == []  # nothing without state
    assert consumer.closed


def test_a_restore_that_fails_names_the_partitions_and_the_cause_on_readyz() -> None:
    seen: list[str] = []
    stop = threading.Event()
    health = Health()
    health.model_loaded = True
    consumer = FakeConsumer(stop, [assign(TP0, TP1), {}])
    clients = FakeClients(consumer, FakePublisher(), changelog_failures=2)
    # Before each read of the changelog: the first fails, the rewind's reads follow.
    clients.on_changelog = lambda _: seen.append(health.problems.get(RESTORE_PROBLEM, ""))
    runner = Runner(clients, CONFIG, RecordingProcessor(), health, stop)
    runner.run()
    assert seen[0] == ""
    assert (
        "the state of partitions [0, 1] is not restored (KafkaError: changelog unreadable)"
        in seen[1]
    )
    assert RESTORE_PROBLEM not in health.problems  # the rewind restored it


def test_a_source_topic_created_again_rewinds_its_partitions_to_their_beginning() -> None:
    watch = ScriptedWatch()
    script = [assign(TP0), lambda c: setattr(watch, "source_recreated", True) or batch(TP0, 9)]
    runner, consumer, _, processor, _ = run([*script, batch(TP0, 0)], watch)
    consumer.committed_offsets[TP0] = 9  # committed while it read the old topic
    runner.run()
    assert (TP0, None) in consumer.seeks  # the beginning, not the committed offset
    assert processor.revoked == [{0}] and processor.processed == [[(0, 0)]]
    assert not watch.source_recreated


def test_a_changelog_that_lost_the_states_keeps_them_over_a_rewind() -> None:
    watch = ScriptedWatch(lacks_state=True)
    publisher = FakePublisher([KafkaTimeoutError("commit not acknowledged")])
    runner, consumer, _, processor, _ = run(
        [assign(TP0), batch(TP0, 0, 1), batch(TP0, 0, 1)], watch, publisher
    )
    runner.run()
    assert watch.undos == 1
    assert processor.revoked == [] and processor.restored == [0]  # only the assignment's
    assert consumer.seeks == [(TP0, None)] and len(publisher.published) == 1


def test_outputs_owed_without_records_are_published_with_no_offsets() -> None:
    watch = ScriptedWatch(owes=[False, True])
    processor = OwingProcessor()
    runner, _, publisher, _, _ = run([assign(TP0), {}], watch, processor=processor)
    runner.run()
    ((outputs, offsets),) = publisher.published
    assert [o.value for o in outputs] == [b"snapshot"] and offsets == {}


# --- the publisher, when a topic changed under its producer -------------------------------


class StaleProducer(FakeProducer):
    """Knows the changelog as it was before partitions were added to it."""

    def send(self, topic: str, **kwargs: Any) -> Future:
        if kwargs.get("partition") not in (None, 0):
            raise ValueError(f"Unrecognized partition {kwargs['partition']} for topic {topic}")
        return super().send(topic, **kwargs)


@pytest.fixture
def answered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every transaction step answers at once; the steps begun, in order."""
    begun: list[str] = []

    def start(producer: Any, step: str, *args: Any) -> Answered:
        begun.append(step)
        return Answered()

    monkeypatch.setattr(transactions, "start_transaction_step", start)
    return begun


def test_a_producer_that_does_not_know_a_new_partition_is_replaced(answered) -> None:
    made: list[FakeProducer] = []

    def make() -> FakeProducer:
        made.append(StaleProducer() if not made else FakeProducer())
        return made[-1]

    publisher = TransactionalPublisher(make, threading.Event(), Health(), 1.0)
    outputs = [Output("state", b"v", b"k", partition=2)]
    offsets = {TP0: OffsetAndMetadata(1, "", -1)}
    with pytest.raises(StaleMetadata) as stale:
        publisher.publish(outputs, offsets, Fake())
    assert "state partition 2" in str(stale.value)
    publisher.abort()  # as the runner does after a failed publish
    assert len(made) == 2 and "close" in made[0].calls  # a new producer asks afresh
    publisher.publish(outputs, offsets, Fake())
    assert len(made[1].sent) == 1 and answered[-1] == "commit_transaction"

    acked: list[FakeProducer] = []
    at_least_once = AcknowledgedPublisher(lambda: acked.append(StaleProducer()) or acked[-1])
    with pytest.raises(StaleMetadata):
        at_least_once.publish(outputs, offsets, Fake())
    at_least_once.abort()
    assert len(acked) == 2


def test_a_publish_without_offsets_sends_its_outputs_alone(answered) -> None:
    producer = FakeProducer()
    publisher = TransactionalPublisher(lambda: producer, threading.Event(), Health(), 1.0)
    publisher.publish([Output("state", b"v", b"k")], {}, Fake())
    assert answered == ["commit_transaction"] and len(producer.sent) == 1
    publisher.publish([], {}, Fake())  # nothing at all: no transaction
    assert producer.calls.count("begin") == 1
    consumer = Fake()
    AcknowledgedPublisher(FakeProducer).publish([Output("state", b"v", b"k")], {}, consumer)
    assert consumer.commits == []


class TooLargeProducer(FakeProducer):
    """The brokers refuse every record sent as too large: the topic's limit was lowered."""

    def send(self, topic: str, **kwargs: Any) -> Future:
        super().send(topic, **kwargs)
        self.futures[-1] = Future(MessageSizeTooLargeError())
        return self.futures[-1]


class Aborted:
    def wait(self, timeout_ms: int | None = None) -> bool:
        raise KafkaError("the transaction is aborted: a record failed")


def test_a_record_a_topic_refuses_as_too_large_stops_the_service(monkeypatch) -> None:
    monkeypatch.setattr(transactions, "start_transaction_step", lambda *args: Aborted())
    outputs = [Output("dead-letters", b"v" * 1000, b"k")]
    offsets = {TP0: OffsetAndMetadata(1, "", -1)}
    publisher = TransactionalPublisher(TooLargeProducer, threading.Event(), Health(), 1.0)
    with pytest.raises(ServiceStop) as stop:
        publisher.publish(outputs, offsets, Fake())
    assert stop.value.exit_code == EXIT_INPUT
    assert "topic dead-letters refused a record of 1001 bytes as too large" in stop.value.line
    with pytest.raises(ServiceStop):
        AcknowledgedPublisher(TooLargeProducer).publish(outputs, offsets, Fake())
    # Any other failure is the usual one: the loop rewinds and tries again.
    publisher = TransactionalPublisher(FakeProducer, threading.Event(), Health(), 1.0)
    with pytest.raises(KafkaError):
        publisher.publish(outputs, offsets, Fake())
