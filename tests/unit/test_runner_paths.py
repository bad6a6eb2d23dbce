"""The consumer loop's error paths, driven through `Runner.run()` with fakes (no broker).

A scripted consumer (polls, rebalances, committed offsets, seeks), a scripted publisher and a
processor that records what it was asked to do stand in for Kafka and the forecaster, so each
path the fault tests exercise on a real broker also has a test that fails in a second: a failed
publish aborts and rewinds to the committed offsets and rebuilds the state; a failed restore
stops processing and readiness until a rewind restores it; a fencing stops the loop; a
transaction step the broker never answers is waited for in slices, reported as not connected,
and given up on half the grace period into a shutdown, which then stops with exit code 9 and
leaves the batch to the next start; a stop while connecting ends quietly.
"""

from __future__ import annotations

import gc
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import RecordTooLargeError
from kafka.errors import (
    CorruptRecordError,
    FencedInstanceIdError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerFencedError,
    TopicAuthorizationFailedError,
    UnsupportedCodecError,
)
from kafka.structs import OffsetAndMetadata

from consumer.fencing import Fenced
from consumer.health import Health
from consumer.output import Output
from consumer.publishing import (
    SENT_PRUNE_AT,
    AcknowledgedPublisher,
    Sent,
    TransactionalPublisher,
    _stop_if_too_large,
)
from consumer.runner import Runner, RunnerConfig
from consumer.sensors import Sensor
from consumer.stops import EXIT_INPUT, EXIT_STALLED, ServiceStop
from sunspots.kafka import transactions

TOPIC = "observations"
TP0, TP1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
# Tiny backoffs: every retry path runs in milliseconds.
CONFIG = RunnerConfig(
    source_topic=TOPIC,
    group_id="g",
    instance_id="i",
    state_topic="state",
    poll_timeout_ms=0,
    retry_backoff_s=0.001,
    retry_backoff_max_s=0.002,
    shutdown_grace_s=1.0,
    read_report_s=0.0,  # every poll tells the sensors where it read to
)


@dataclass(frozen=True)
class Rec:
    """The fields of a consumed record the loop and processors read."""

    topic: str
    partition: int
    offset: int
    key: bytes | None = b"s"
    value: bytes | None = b"v"


def batch(tp: TopicPartition, *offsets: int) -> dict[TopicPartition, list[Rec]]:
    return {tp: [Rec(tp.topic, tp.partition, o) for o in offsets]}


# A script step: what one poll returns, raises, or does (a rebalance, a probe of the health).
Step = dict | BaseException | Callable[["FakeConsumer"], dict]


class FakeConsumer:
    """Polls follow a script; when it runs out, the service is asked to stop."""

    def __init__(self, stop: threading.Event, script: Iterable[Step]) -> None:
        self.stop = stop
        self.script: deque[Step] = deque(script)
        self.owned: set[TopicPartition] = set()
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.seeks: list[tuple[TopicPartition, int | None]] = []  # None: to the beginning
        self.positions: dict[TopicPartition, int] = {}  # where a poll left each partition
        self.listener: Any = None
        self.closed = False

    def subscribe(self, topics: list[str], listener: Any = None) -> None:
        assert topics == [TOPIC]
        self.listener = listener

    def poll(self, timeout_ms: int = 0, max_records: int | None = None) -> dict:
        if not self.script:
            self.stop.set()
            return {}
        step = self.script.popleft()
        if isinstance(step, BaseException):
            raise step
        return step(self) if callable(step) else step

    def assignment(self) -> set[TopicPartition]:
        return set(self.owned)

    def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))

    def seek_to_beginning(self, *tps: TopicPartition) -> None:
        self.seeks.extend((tp, None) for tp in tps)

    def group_metadata(self) -> str:
        return "group-metadata"

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        self.committed_offsets.update({tp: o.offset for tp, o in offsets.items()})

    def position(self, tp: TopicPartition, timeout_ms: int | None = None) -> int | None:
        return self.positions.get(tp)

    def close(self, timeout_ms: int | None = None) -> None:
        self.closed = True


def assign(*tps: TopicPartition, fetched: dict | None = None) -> Callable[[FakeConsumer], dict]:
    """A rebalance inside a poll that assigns `tps`, as kafka-python runs its listener; the
    poll returns `fetched` (records fetched in the same poll), or nothing."""

    def step(consumer: FakeConsumer) -> dict:
        consumer.owned |= set(tps)
        consumer.listener.on_partitions_assigned(set(tps))
        return fetched or {}

    return step


def probe(into: list, read: Callable[[], Any]) -> Callable[[FakeConsumer], dict]:
    """A poll that returns nothing and records `read()`: the loop's state between turns."""

    def step(consumer: FakeConsumer) -> dict:
        into.append(read())
        return {}

    return step


class FakePublisher:
    """Publishes, or raises the next scripted failure; a success commits the offsets."""

    def __init__(self, failures: Iterable[BaseException | None] = (), abort_fails: int = 0):
        self.failures: deque[BaseException | None] = deque(failures)
        self.abort_fails = abort_fails
        self.published: list[tuple[list[Output], dict]] = []
        self.attempts = 0
        self.aborts = 0
        self.closed = False

    def publish(self, outputs: Iterable[Output], offsets: dict, consumer: Any) -> None:
        self.attempts += 1
        made = list(outputs)  # taken, and so processed, as a real publisher takes them
        failure = self.failures.popleft() if self.failures else None
        if failure is not None:
            raise failure
        self.published.append((made, offsets))
        consumer.commit(offsets)

    def abort(self) -> None:
        if self.abort_fails:
            self.abort_fails -= 1
            raise KafkaConnectionError("abort: broker gone")
        self.aborts += 1

    def close(self) -> None:
        self.closed = True


@dataclass
class RecordingProcessor:
    processed: list[list[tuple[int, int]]] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)
    revoked: list[set[int]] = field(default_factory=list)

    def process(self, records: list) -> list[Output]:
        self.processed.append([(r.partition, r.offset) for r in records])
        return [Output("out", r.value, r.key) for r in records]

    def changelog(self) -> list[Output]:
        return []

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        assert list(changelog) == [(b"s", b"state")]
        self.restored.append(partition)

    def revoke(self, partitions: set[int]) -> None:
        self.revoked.append(set(partitions))


class FakeClients:
    """The runner's `Clients`: the fakes above, connecting and reading changelogs as scripted."""

    def __init__(
        self,
        consumer: FakeConsumer,
        publisher: Any,
        changelog_failures: int = 0,
        connect_failures: int = 0,
    ) -> None:
        self._consumer = consumer
        self.the_publisher = publisher
        self.changelog_failures = changelog_failures
        self.connect_failures = connect_failures
        self.changelog_reads: list[list[int]] = []
        self.connects = 0
        self.consumers_made = 0
        # Called with the number of the attempt, before it: a test's view of the loop then.
        self.on_connect: Callable[[int], None] = lambda attempt: None
        self.on_changelog: Callable[[int], None] = lambda attempt: None

    def publisher(self, sensor: Sensor) -> Any:
        self.connects += 1
        self.on_connect(self.connects)
        if self.connect_failures:
            self.connect_failures -= 1
            raise KafkaConnectionError("no broker answered")
        return self.the_publisher

    def consumer(self) -> FakeConsumer:
        self.consumers_made += 1
        return self._consumer

    def changelog(self, partitions: list[int]) -> list[tuple[int, list]]:
        self.changelog_reads.append(list(partitions))
        self.on_changelog(len(self.changelog_reads))
        if self.changelog_failures:
            self.changelog_failures -= 1
            raise KafkaError("changelog unreadable")
        return [(p, [(b"s", b"state")]) for p in partitions]


@dataclass
class Loop:
    """One runner with its fakes, built the way the service builds it."""

    stop: threading.Event
    health: Health
    consumer: FakeConsumer
    publisher: Any
    clients: FakeClients
    processor: RecordingProcessor
    runner: Runner


def loop(
    script: Iterable[Step],
    publisher: Any = None,
    sensor: Sensor | None = None,
    between: Callable[[], bool | None] | None = None,
    **clients: int,
) -> Loop:
    stop = threading.Event()
    health = Health()
    health.model_loaded = True
    consumer = FakeConsumer(stop, script)
    publisher = publisher if publisher is not None else FakePublisher()
    fakes = FakeClients(consumer, publisher, **clients)
    processor = RecordingProcessor()
    runner = Runner(fakes, CONFIG, processor, health, stop, between, sensor)
    return Loop(stop, health, consumer, publisher, fakes, processor, runner)


# --- the path that works ------------------------------------------------------------------


def test_a_batch_is_processed_once_and_published_with_the_next_offsets() -> None:
    t = loop([assign(TP0), batch(TP0, 0, 1, 2)])
    t.runner.run()
    assert t.processor.processed == [[(0, 0), (0, 1), (0, 2)]]
    ((outputs, offsets),) = t.publisher.published
    assert len(outputs) == 3
    assert offsets == {TP0: OffsetAndMetadata(3, "", -1)}
    assert t.processor.restored == [0]  # the assignment restored the partition's state
    assert t.runner.batches == 1 and t.health.connected
    assert t.consumer.closed and t.publisher.closed and not t.health.assigned


def test_a_batch_is_processed_in_slices_each_handed_over_before_the_next_then_its_changelog() -> (
    None
):
    """A poll larger than a slice (one series, cut in order: consumer.slicing): the processor
    takes it a slice at a time, and each slice's outputs reach the publisher before the next
    slice is processed; the changelog's records come last, once, and the batch is one publish
    with the poll's offsets."""
    events: list[tuple[str, Any]] = []

    class Journal(RecordingProcessor):
        def process(self, records: list) -> list[Output]:
            events.append(("process", [r.offset for r in records]))
            return super().process(records)

        def changelog(self) -> list[Output]:
            events.append(("changelog", None))
            return [Output("state", b"snapshot", b"s", partition=0)]

    class Taker(FakePublisher):
        def publish(self, outputs: Iterable[Output], offsets: dict, consumer: Any) -> None:
            def taken() -> Iterable[Output]:
                for out in outputs:
                    events.append(("sent", out.value))
                    yield out

            super().publish(taken(), offsets, consumer)

    stop = threading.Event()
    records = [Rec(TP0.topic, 0, o, value=str(o).encode()) for o in range(5)]  # one series
    consumer = FakeConsumer(stop, [assign(TP0), {TP0: records}])
    publisher, processor = Taker(), Journal()
    config = replace(CONFIG, slice_records=2)
    Runner(FakeClients(consumer, publisher), config, processor, Health(), stop).run()
    assert events == [
        ("process", [0, 1]),
        ("sent", b"0"),
        ("sent", b"1"),
        ("process", [2, 3]),
        ("sent", b"2"),
        ("sent", b"3"),
        ("process", [4]),
        ("sent", b"4"),
        ("changelog", None),
        ("sent", b"snapshot"),
    ]
    ((outputs, offsets),) = publisher.published
    assert len(outputs) == 6 and offsets == {TP0: OffsetAndMetadata(5, "", -1)}


def timed_out_inside() -> bool:
    """A batch boundary's hook that does what kafka-python's poll without waiting does: an
    exception raised and kept where its own traceback reaches it, a reference cycle that holds
    the frames that called it (the turn's among them) until the collector finds it."""
    try:
        raise KafkaTimeoutError("Timed out after 0 ms")
    except KafkaTimeoutError as exc:
        kept = exc  # the frame holds the exception, whose traceback holds the frame
    return kept is None


def test_a_batch_is_freed_when_its_turn_ends_though_a_reference_cycle_holds_the_turn() -> None:
    records = batch(TP0, 0, 1, 2)
    alive = [weakref.ref(r) for r in records[TP0]]
    t = loop([assign(TP0), records], between=timed_out_inside)
    del records
    enabled = gc.isenabled()
    gc.disable()  # only reference counts free anything in this test
    try:
        t.runner.run()
        assert t.processor.processed == [[(0, 0), (0, 1), (0, 2)]]
        assert [ref() for ref in alive] == [None, None, None]
    finally:
        if enabled:
            gc.enable()
        gc.collect()


# --- a failed publish ---------------------------------------------------------------------


def test_a_failed_publish_aborts_rewinds_to_the_committed_offsets_and_processes_again() -> None:
    seen: list[tuple[bool, bool]] = []
    publisher = FakePublisher([KafkaTimeoutError("commit not acknowledged")])
    t = loop(
        [
            assign(TP0, TP1),
            batch(TP0, 5, 6) | batch(TP1, 0),
            probe(seen, lambda: (t.health.connected, t.health.ready)),
            batch(TP0, 5, 6) | batch(TP1, 0),
        ],
        publisher,
    )
    t.consumer.committed_offsets[TP0] = 5  # TP1 has no commit yet
    t.runner.run()
    assert publisher.aborts == 1
    # Back to the committed offsets: TP0 to 5, TP1 (never committed) to its beginning.
    assert sorted(t.consumer.seeks, key=str) == sorted([(TP0, 5), (TP1, None)], key=str)
    # The state of both partitions forgotten and rebuilt from the changelog.
    assert t.processor.revoked == [{0, 1}]
    assert sorted(t.processor.restored) == [0, 0, 1, 1]
    # The batch processed again; published once, with its offsets.
    assert t.processor.processed == [[(0, 5), (0, 6), (1, 0)]] * 2
    assert publisher.attempts == 2 and len(publisher.published) == 1
    assert publisher.published[0][1] == {
        TP0: OffsetAndMetadata(7, "", -1),
        TP1: OffsetAndMetadata(1, "", -1),
    }
    # Between the failure and the next poll the service reads as not connected, not ready;
    # the successful publish makes it connected again.
    assert seen == [(False, False)]
    assert t.health.connected
    assert t.runner.batches == 1


def test_an_abort_that_fails_is_retried_before_the_rewind() -> None:
    publisher = FakePublisher([KafkaTimeoutError("gone")], abort_fails=2)
    t = loop([assign(TP0), batch(TP0, 0, 1), batch(TP0, 0, 1)], publisher)
    t.runner.run()
    assert publisher.aborts == 1 and publisher.abort_fails == 0
    assert t.consumer.seeks == [(TP0, None)]
    assert len(publisher.published) == 1


# --- a failed restore ---------------------------------------------------------------------


def test_a_failed_restore_stops_processing_and_readiness_until_a_rewind_restores_it() -> None:
    at_reads: list[tuple[bool, bool]] = []  # (recovery pending, ready) as each read begins
    ready: list[bool] = []
    t = loop(
        [
            # The restore fails; the records fetched with the assignment are dropped, and the
            # turn rewinds (its restore fails once more, then works).
            assign(TP0, fetched=batch(TP0, 0, 1)),
            batch(TP0, 0, 1),  # processed from the restored state
            probe(ready, lambda: t.health.ready),
        ],
        changelog_failures=2,
    )
    t.clients.on_changelog = lambda _: at_reads.append((t.runner.recovery.pending, t.health.ready))
    t.runner.run()
    assert at_reads == [(False, False), (True, False), (True, False)]
    assert t.consumer.seeks == [(TP0, None), (TP0, None)]
    assert t.processor.restored == [0]  # only the restore that worked
    assert t.processor.processed == [[(0, 0), (0, 1)]]
    assert len(t.publisher.published) == 1
    assert not t.runner.recovery.pending and ready == [True]


def test_while_the_state_cannot_be_restored_nothing_is_processed() -> None:
    ready: list[bool] = []
    t = loop([assign(TP0), batch(TP0, 0), batch(TP0, 0)], changelog_failures=10**6)

    def watch(attempt: int) -> None:
        ready.append(t.health.ready)
        if attempt == 5:
            t.stop.set()  # the stop arrives while the rewind keeps failing

    t.clients.on_changelog = watch
    t.runner.run()  # Interrupted is handled: no exception
    assert len(ready) == 5
    assert ready[1:] == [False] * 4  # every retry of the rewind: not ready
    assert t.processor.processed == [] and t.publisher.published == []
    assert t.consumer.closed


# --- fencing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [ProducerFencedError(), KafkaError("Cannot commit", ProducerFencedError())],
    ids=["plain", "wrapped"],
)
def test_fenced_while_publishing_stops_the_loop(error: KafkaError) -> None:
    publisher = FakePublisher([error])
    t = loop([assign(TP0), batch(TP0, 0), batch(TP0, 0)], publisher)
    with pytest.raises(Fenced, match="fenced while publishing"):
        t.runner.run()
    assert publisher.aborts == 0 and t.consumer.seeks == []  # nothing retried
    assert t.consumer.closed and publisher.closed


def test_fenced_while_polling_stops_the_loop() -> None:
    t = loop([assign(TP0), FencedInstanceIdError(), batch(TP0, 0)])
    with pytest.raises(Fenced, match="fenced while polling"):
        t.runner.run()
    assert t.processor.processed == []
    assert t.consumer.closed and t.publisher.closed


def test_a_failed_poll_is_reported_and_the_loop_carries_on() -> None:
    seen: list[bool] = []
    t = loop(
        [
            assign(TP0),
            probe(seen, lambda: t.health.connected),
            KafkaConnectionError("broker gone"),
            probe(seen, lambda: t.health.connected),
            batch(TP0, 0),
        ]
    )
    t.runner.run()
    assert seen == [True, False]
    assert t.processor.processed == [[(0, 0)]] and len(t.publisher.published) == 1


def test_a_failed_poll_is_told_once_however_often_it_fails_again(caplog) -> None:
    gone = KafkaConnectionError("broker gone")
    t = loop([assign(TP0), gone, gone, gone, batch(TP0, 0)])
    with caplog.at_level(logging.INFO, logger="consumer.runner"):
        t.runner.run()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "poll failed: KafkaConnectionError: broker gone; polling again with backoff"
    ]
    assert any("polling again after 3 failed polls" in r.getMessage() for r in caplog.records)
    assert len(t.publisher.published) == 1


# --- a batch that cannot be read ----------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        UnsupportedCodecError("Libraries for snappy compression codec not found"),
        CorruptRecordError("Record batch for partition 0 at offset 12 failed crc check"),
        ValueError("a client's own fault while decoding"),
    ],
    ids=["codec", "corrupt", "not-kafka"],
)
def test_a_batch_that_cannot_be_read_stops_the_service_at_once(error: Exception) -> None:
    t = loop([assign(TP0), error, batch(TP0, 12)])
    t.consumer.positions[TP0] = 12
    with pytest.raises(ServiceStop) as stopped:
        t.runner.run()
    assert stopped.value.exit_code == EXIT_INPUT
    line = stopped.value.line
    # The fakes have no fetcher to ask where: the line names the assigned partitions' positions.
    assert line.startswith("cannot read an unknown partition")
    assert f"partition 0 of {TOPIC} at 12" in line and type(error).__name__ in line
    assert t.processor.processed == []  # never polled again
    assert t.consumer.closed and t.publisher.closed


def test_an_error_that_names_its_partition_is_told_there() -> None:
    error = RecordTooLargeError("too large for the fetch size", {TP1: 40})
    t = loop([assign(TP0, TP1), error])
    with pytest.raises(ServiceStop, match=f"cannot read partition 1 of {TOPIC} at offset 40: "):
        t.runner.run()


# --- what the sensors are told ------------------------------------------------------------


class RecordingSensor(Sensor):
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.activities: list[str] = []

    def on_assigned(self, partitions: Any) -> None:
        self.events.append(("assigned", sorted(tp.partition for tp in partitions)))

    def on_revoked(self, partitions: Any) -> None:
        self.events.append(("revoked", sorted(tp.partition for tp in partitions)))

    def on_commit(self, offsets: Any) -> None:
        self.events.append(("commit", {tp.partition: o for tp, o in offsets.items()}))

    def on_read(self, positions: Any) -> None:
        self.events.append(("read", {tp.partition: o for tp, o in positions.items()}))

    def on_rewind(self, cause: str) -> None:
        self.events.append(("rewind", cause))

    def on_activity(self, activity: str) -> None:
        if not self.activities or self.activities[-1] != activity:
            self.activities.append(activity)


def test_the_sensors_are_told_assignments_commits_reads_and_rewinds() -> None:
    sensor = RecordingSensor()
    publisher = FakePublisher([None, KafkaTimeoutError("commit not acknowledged")])
    t = loop([assign(TP0, TP1), batch(TP0, 0, 1), batch(TP0, 2), batch(TP0, 2)], publisher, sensor)
    t.consumer.positions[TP1] = 7  # TP1 holds nothing to read past 7 (a marker, say)
    t.runner.run()
    assert sensor.events == [
        ("assigned", [0, 1]),
        ("read", {1: 7}),  # the assigning poll returned nothing: TP0's position unknown yet
        ("read", {1: 7}),
        ("commit", {0: 2}),
        ("read", {1: 7}),  # the failed publish commits nothing
        ("rewind", "failed_publish"),
        ("read", {1: 7}),
        ("commit", {0: 3}),
        ("read", {1: 7}),  # the poll that ends the script
    ]


def test_the_loop_tells_what_it_is_doing() -> None:
    sensor = RecordingSensor()
    t = loop([assign(TP0), batch(TP0, 0, 1)], sensor=sensor)
    t.runner.run()
    assert sensor.activities == [
        "connecting the producer",
        "connecting the consumer",
        "polling",
        "restoring the state of partitions [0]",
        "polling",
        "processing and publishing a batch of 2 records",
        "committing a batch of 2 records",
        "polling",
        "closing the Kafka clients",
    ]


# --- stopping while a step keeps failing --------------------------------------------------


def test_a_stop_while_connecting_ends_the_run_quietly() -> None:
    t = loop([], connect_failures=10**6)

    def sigterm_at_the_third(attempt: int) -> None:
        if attempt == 3:
            t.stop.set()

    t.clients.on_connect = sigterm_at_the_third
    t.runner.run()  # Interrupted is handled: no exception
    assert t.clients.connects == 3
    assert t.clients.consumers_made == 0


def test_connecting_is_retried_until_the_broker_answers() -> None:
    t = loop([assign(TP0), batch(TP0, 0)], connect_failures=3)
    t.runner.run()
    assert t.clients.connect_failures == 0
    assert len(t.publisher.published) == 1


def test_a_publish_that_fails_while_stopping_is_left_to_the_next_start() -> None:
    """Once the service is stopping, a failed publish is neither aborted nor rewound (both
    would wait on the broker that failed it): the loop stops with EXIT_STALLED, and the batch
    is processed again after a restart."""

    class StopsDuringOutage(FakePublisher):
        def publish(self, outputs: list[Output], offsets: dict, consumer: Any) -> None:
            t.stop.set()  # SIGTERM arrives while the broker is away
            raise KafkaTimeoutError("commit not acknowledged")

    publisher = StopsDuringOutage(abort_fails=10**6)
    t = loop([assign(TP0), batch(TP0, 0)], publisher)
    with pytest.raises(ServiceStop, match="without committing the batch in hand") as stopped:
        t.runner.run()
    assert stopped.value.exit_code == EXIT_STALLED
    assert "processed again after a restart" in stopped.value.line
    assert publisher.aborts == 0 and t.consumer.seeks == []
    assert t.consumer.closed and publisher.closed


# --- the transactional publisher when the broker is gone mid-transaction -------------------


class NeverAnswered:
    """A transaction step in flight that the broker does not answer for `slices` waits
    (for ever if None); it records the service's health as each slice begins."""

    def __init__(self, health: Health, slices: int | None, on_wait: Callable[[], None]) -> None:
        self.health = health
        self.slices = slices
        self.on_wait = on_wait
        self.waits: list[tuple[bool, bool]] = []  # (alive, connected) after each slice

    def wait(self, timeout_ms: int | None = None) -> bool:
        self.waits.append((self.health.alive, self.health.connected))
        # A publisher that never gives up would hang the test: fail it instead.
        assert len(self.waits) <= 1000, "still waiting after 1000 slices: it never gives up"
        self.on_wait()
        return self.slices is not None and len(self.waits) > self.slices


class FakeProducer:
    """The public calls of a transactional KafkaProducer the publisher makes."""

    def __init__(
        self, abort_error: Exception | None = None, refused_topic: str | None = None
    ) -> None:
        self.calls: list[str] = []
        self.sent: list[Output] = []
        self.abort_error = abort_error
        self.refused_topic = refused_topic
        self.futures: list[Future] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send(self, topic: str, **kwargs: Any) -> Future:
        self.sent.append(Output(topic, kwargs["value"], kwargs["key"]))
        # As kafka-python answers a send to a topic the principal may not write: at once.
        refused = topic == self.refused_topic
        self.futures.append(Future(TopicAuthorizationFailedError({topic}) if refused else None))
        return self.futures[-1]

    def abort_transaction(self) -> None:
        self.calls.append("abort")
        if self.abort_error is not None:
            raise self.abort_error

    def flush(self, timeout: float | None = None) -> None:
        self.calls.append("flush")

    def close(self, timeout: float | None = None) -> None:
        self.calls.append("close")


@dataclass
class Steps:
    """The transaction steps the publisher begins, and what each returns in flight."""

    begun: list[tuple[str, tuple]] = field(default_factory=list)
    pending: dict[str, Any] = field(default_factory=dict)

    def start(self, producer: FakeProducer, step: str, *args: Any) -> Any:
        self.begun.append((step, args))
        producer.calls.append(step)
        return self.pending[step]


@pytest.fixture
def steps(monkeypatch: pytest.MonkeyPatch) -> Steps:
    """The publisher's steps begin here instead of in kafka-python's transaction manager
    (sunspots.kafka.compat's shim is tested on its own, in test_kafka_compat)."""
    fake = Steps()
    monkeypatch.setattr(transactions, "start_transaction_step", fake.start)
    return fake


class Answered:
    def wait(self, timeout_ms: int | None = None) -> bool:
        return True


def test_an_unanswered_step_is_waited_for_in_slices_as_not_connected(steps) -> None:
    health, stop = Health(), threading.Event()
    health.connected = True
    pending = NeverAnswered(health, slices=25, on_wait=lambda: None)
    steps.pending.update(send_offsets_to_transaction=pending, commit_transaction=Answered())
    producer = FakeProducer()
    publisher = TransactionalPublisher(lambda: producer, stop, health, shutdown_wait_s=1.0)
    publisher.publish([Output("out", b"v", b"k")], {TP0: OffsetAndMetadata(1, "", -1)}, Fake())
    # No stop asked: it waited as long as it took (25 slices), alive but not connected.
    assert len(pending.waits) == 26
    assert all(alive and not connected for alive, connected in pending.waits[1:])
    assert producer.calls == ["begin", "send_offsets_to_transaction", "commit_transaction"]
    assert steps.begun[0][1] == ({TP0: OffsetAndMetadata(1, "", -1)}, "group-metadata")


def test_a_topic_the_principal_may_not_write_is_a_refusal_at_once(steps) -> None:
    producer = FakeProducer(refused_topic="shadow")
    publisher = TransactionalPublisher(lambda: producer, threading.Event(), Health(), 1.0)
    outputs = [Output("out", b"v", b"k"), Output("shadow", b"v", b"k"), Output("out", b"w", b"k")]
    with pytest.raises(TopicAuthorizationFailedError):
        publisher.publish(outputs, {TP0: OffsetAndMetadata(1, "", -1)}, Fake())
    assert producer.calls == ["begin"] and len(producer.sent) == 2  # no commit, nothing more


def test_a_record_refused_while_a_step_waits_ends_the_wait_with_the_refusal(steps) -> None:
    health = Health()
    producer = FakeProducer()

    def refuse() -> None:
        producer.futures[0].error = TopicAuthorizationFailedError({"out"})

    pending = NeverAnswered(health, slices=None, on_wait=refuse)
    steps.pending.update(send_offsets_to_transaction=pending)
    publisher = TransactionalPublisher(lambda: producer, threading.Event(), health, 1.0)
    with pytest.raises(TopicAuthorizationFailedError):
        publisher.publish([Output("out", b"v", b"k")], {TP0: OffsetAndMetadata(1, "", -1)}, Fake())
    assert len(pending.waits) < 4  # told at the next slice, not after the step's timeout


def test_a_shutdown_gives_up_on_an_unanswered_step_after_the_grace_period(steps) -> None:
    health, stop = Health(), threading.Event()
    stop.set()
    pending = NeverAnswered(health, slices=None, on_wait=lambda: None)
    steps.pending.update(send_offsets_to_transaction=pending)
    publisher = TransactionalPublisher(FakeProducer, stop, health, shutdown_wait_s=2.0)
    with pytest.raises(KafkaTimeoutError, match="into shutdown"):
        publisher.publish([], {TP0: OffsetAndMetadata(1, "", -1)}, Fake())
    assert len(pending.waits) == 4  # 2 s of 0.5 s slices


def test_the_loop_survives_a_broker_gone_mid_transaction_and_stops_on_request(steps) -> None:
    """The commit is never answered; SIGTERM arrives meanwhile; half the grace later the
    publisher gives up, and the loop stops without aborting (the next start's
    init_transactions does) and closes its producer without flushing."""
    producer = FakeProducer()
    t = loop([assign(TP0), batch(TP0, 3, 4), batch(TP0, 3, 4)])
    t.consumer.committed_offsets[TP0] = 3

    def sigterm_in_the_first_slice() -> None:
        if len(commit.waits) == 1:
            t.stop.set()

    commit = NeverAnswered(t.health, slices=None, on_wait=sigterm_in_the_first_slice)
    steps.pending.update(
        send_offsets_to_transaction=Answered(),
        commit_transaction=commit,
        abort_transaction=Answered(),
    )
    t.clients.the_publisher = TransactionalPublisher(
        lambda: producer, t.stop, t.health, CONFIG.shutdown_grace_s / 2
    )
    with pytest.raises(ServiceStop, match="commit_transaction not acknowledged") as stopped:
        t.runner.run()
    assert stopped.value.exit_code == EXIT_STALLED
    # Half the grace period (1 s) is one 0.5 s slice of waiting: then the publisher gives up.
    assert len(commit.waits) == 1
    assert producer.calls == ["begin", "send_offsets_to_transaction", "commit_transaction", "close"]
    assert t.consumer.seeks == []
    assert t.processor.processed == [[(0, 3), (0, 4)]]  # the stop ended the loop: not again
    assert t.runner.batches == 0 and t.consumer.closed


class Fake:
    """A consumer as the publishers use it: its group metadata, and commits."""

    def __init__(self) -> None:
        self.commits: list[dict] = []

    def group_metadata(self) -> str:
        return "group-metadata"

    def commit(self, offsets: dict) -> None:
        self.commits.append(offsets)


def test_an_abort_that_fails_replaces_the_transactional_producer() -> None:
    made: list[FakeProducer] = []

    def make() -> FakeProducer:
        made.append(FakeProducer(abort_error=KafkaError("broker gone") if not made else None))
        return made[-1]

    publisher = TransactionalPublisher(make, threading.Event(), Health(), 1.0)
    publisher.abort()
    assert len(made) == 2 and publisher.producer is made[1]
    assert made[0].calls == ["abort", "close"]


def test_a_step_that_hangs_past_its_timeout_fails_and_its_producer_is_replaced(steps) -> None:
    """A client stuck on a dead coordinator is not asked to abort: a new producer for the same
    transactional id aborts the old transaction wherever it is coordinated now."""
    health, stop = Health(), threading.Event()
    made: list[FakeProducer] = []

    def make() -> FakeProducer:
        made.append(FakeProducer())
        return made[-1]

    hung = NeverAnswered(health, slices=None, on_wait=lambda: None)
    steps.pending.update(send_offsets_to_transaction=Answered(), commit_transaction=hung)
    publisher = TransactionalPublisher(make, stop, health, 10.0, step_timeout_s=2.0)
    with pytest.raises(KafkaTimeoutError, match="not acknowledged in 2 s"):
        publisher.publish([Output("out", b"v", b"k")], {TP0: OffsetAndMetadata(1, "", -1)}, Fake())
    assert len(hung.waits) == 4  # 2 s in 0.5 s slices, with no stop asked
    publisher.abort()
    assert made[0].calls == ["begin", "send_offsets_to_transaction", "commit_transaction", "close"]
    assert len(made) == 2 and publisher.producer is made[1] and made[1].calls == []


def test_an_abort_takes_the_open_transaction_back() -> None:
    producer = FakeProducer()
    publisher = TransactionalPublisher(lambda: producer, threading.Event(), Health(), 1.0)
    publisher.abort()
    assert producer.calls == ["abort"]


# --- at least once ------------------------------------------------------------------------


class Future:
    """A send's future, already answered: acknowledged, or failed with `error`."""

    is_done = True

    def __init__(self, error: Exception | None) -> None:
        self.error = error

    @property
    def exception(self) -> Exception | None:
        return self.error

    def failed(self) -> bool:
        return self.error is not None

    def succeeded(self) -> bool:
        return self.error is None

    def get(self, timeout: float | None = None) -> None:
        if self.error is not None:
            raise self.error


class AckingProducer:
    """Acknowledges each send, or fails the one numbered `fail_at`."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fail_at = fail_at
        self.sent = 0
        self.flushed = False

    def send(self, topic: str, **kwargs: Any) -> Future:
        self.sent += 1
        return Future(KafkaTimeoutError("not acknowledged") if self.sent == self.fail_at else None)

    def flush(self, timeout: float | None = None) -> None:
        self.flushed = True

    def close(self, timeout: float | None = None) -> None:
        pass


def test_at_least_once_commits_the_offsets_only_after_every_output_is_acknowledged() -> None:
    outputs = [Output("out", b"v", b"k")] * 3
    offsets = {TP0: OffsetAndMetadata(3, "", -1)}
    consumer = Fake()
    AcknowledgedPublisher(AckingProducer).publish(outputs, offsets, consumer)
    assert consumer.commits == [offsets]

    failing = AcknowledgedPublisher(lambda: AckingProducer(fail_at=2))
    with pytest.raises(KafkaTimeoutError):
        failing.publish(outputs, offsets, consumer)
    assert consumer.commits == [offsets]  # not committed again


class Pending(Future):
    """A send's future not answered yet."""

    is_done = False

    def __init__(self) -> None:
        super().__init__(None)

    def succeeded(self) -> bool:
        return False


def test_a_publish_lets_go_of_acknowledged_records_and_keeps_what_it_may_still_tell() -> None:
    """Of 5,000 records sent, `Sent` keeps those not acknowledged yet and the refused one (with
    its topic and size, for the line that stops the service), and lets go of the others as it
    goes, so a large batch's futures are not all held until its commit."""
    sent = Sent()
    pending = [Pending() for _ in range(3)]
    too_large = Future(MessageSizeTooLargeError("too large"))
    for i in range(5_000):
        future: Future = Future(None)
        if i in (10, 2_000, 4_999):
            future = pending[(10, 2_000, 4_999).index(i)]
        elif i == 3_000:
            future = too_large
        sent.add(future, Output("forecasts", b"x" * 100, b"key"))  # type: ignore[arg-type]
        assert len(sent.held) < SENT_PRUNE_AT  # pruned whenever it reaches the bound
    assert sent.count == 5_000
    held = sent.futures
    assert all(f in held for f in [*pending, too_large])
    assert len(held) < SENT_PRUNE_AT  # those four, and the acknowledged since the last prune
    assert sent.first_failure() is too_large.error
    with pytest.raises(ServiceStop, match="topic forecasts refused a record of 103 bytes"):
        _stop_if_too_large(sent)
