"""The loop's metrics (consumer.loop_metrics) and the events they count (consumer.sensors).

The loop is driven through `Runner.run()` with the fakes of test_runner_paths (no broker), with
a `LoopMetrics` as its sensor, and the registry is read back: each rewind by its cause, each
abort, each restore with the changelog records it read, each batch committed, a fencing, and
the readiness gauge following /readyz. The transactional publisher tells each of its steps.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from kafka.errors import KafkaError, KafkaTimeoutError, ProducerFencedError
from kafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry

from consumer.fencing import Fenced
from consumer.health import Health
from consumer.loop_metrics import LoopMetrics
from consumer.output import Output
from consumer.publishing import AcknowledgedPublisher, TransactionalPublisher
from consumer.sensors import FAILED_PUBLISH, FAILED_RESTORE, PUBLISH_STEPS, Sensor, Sensors
from tests.unit.test_runner_paths import (
    TP0,
    TP1,
    Answered,
    Fake,
    FakeProducer,
    FakePublisher,
    assign,
    batch,
    loop,
    steps,  # noqa: F401 - the fixture, used by name
)

pytestmark = pytest.mark.unit


def metrics() -> tuple[LoopMetrics, CollectorRegistry, Health]:
    registry, health = CollectorRegistry(), Health()
    return LoopMetrics(registry, health), registry, health


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


class Recorder(Sensor):
    """The new events, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_restored(self, partitions: Any, records: int, seconds: float) -> None:
        assert seconds >= 0
        self.events.append(("restored", sorted(partitions), records))

    def on_batch(self, records: int, seconds: float) -> None:
        assert seconds >= 0
        self.events.append(("batch", records))

    def on_abort(self) -> None:
        self.events.append(("abort",))

    def on_fenced(self) -> None:
        self.events.append(("fenced",))

    def on_rewind(self, cause: str) -> None:
        self.events.append(("rewind", cause))


def test_every_cause_and_step_is_exported_from_the_start_at_zero() -> None:
    _, registry, _ = metrics()
    for cause in (FAILED_PUBLISH, FAILED_RESTORE):
        assert value(registry, "sunspot_consumer_rewinds_total", cause=cause) == 0
    for step in PUBLISH_STEPS:
        assert value(registry, "sunspot_consumer_publish_step_seconds_count", step=step) == 0
    assert value(registry, "sunspot_consumer_aborts_total") == 0
    assert value(registry, "sunspot_consumer_fenced_total") == 0
    assert value(registry, "sunspot_consumer_restore_seconds_count") == 0
    assert value(registry, "sunspot_consumer_ready") == 0  # nothing loaded, nothing assigned


def test_the_readiness_gauge_follows_readyz_at_each_scrape() -> None:
    _, registry, health = metrics()
    health.model_loaded = health.assigned = health.connected = True
    health.polled(connected=True)
    assert health.ready and value(registry, "sunspot_consumer_ready") == 1
    health.problem("stalled", "partition 0 of t (3 records waiting, 61 s without progress)")
    assert value(registry, "sunspot_consumer_ready") == 0
    health.problem("stalled", None)
    assert value(registry, "sunspot_consumer_ready") == 1


def test_a_failed_publish_counts_an_abort_a_rewind_and_the_restore_it_makes() -> None:
    recorder = Recorder()
    sensor, registry, _ = metrics()
    publisher = FakePublisher([None, KafkaTimeoutError("commit not acknowledged")])
    t = loop(
        [assign(TP0, TP1), batch(TP0, 0, 1), batch(TP0, 2), batch(TP0, 2)],
        publisher,
        Sensors([recorder, sensor]),
    )
    t.consumer.committed_offsets[TP0] = 2
    t.runner.run()
    # The fake changelog holds one record per partition.
    assert recorder.events == [
        ("restored", [0, 1], 2),
        ("batch", 2),
        ("abort",),
        ("restored", [0, 1], 2),
        ("rewind", FAILED_PUBLISH),
        ("batch", 1),
    ]
    assert value(registry, "sunspot_consumer_rewinds_total", cause=FAILED_PUBLISH) == 1
    assert value(registry, "sunspot_consumer_rewinds_total", cause=FAILED_RESTORE) == 0
    assert value(registry, "sunspot_consumer_aborts_total") == 1
    assert value(registry, "sunspot_consumer_restore_seconds_count") == 2
    assert value(registry, "sunspot_consumer_restored_records_total") == 4
    assert value(registry, "sunspot_consumer_batch_seconds_count") == 2


def test_a_failed_restore_rewinds_with_its_cause_until_the_state_is_back() -> None:
    recorder = Recorder()
    sensor, registry, _ = metrics()
    t = loop(
        [assign(TP0), batch(TP0, 0)],
        sensor=Sensors([recorder, sensor]),
        changelog_failures=1,
    )
    t.runner.run()
    # The failed restore tells nothing; the turn after it rewinds, and that restore is told.
    assert recorder.events == [
        ("restored", [0], 1),
        ("rewind", FAILED_RESTORE),
        ("batch", 1),
    ]
    assert value(registry, "sunspot_consumer_rewinds_total", cause=FAILED_RESTORE) == 1
    assert value(registry, "sunspot_consumer_aborts_total") == 0


@pytest.mark.parametrize("where", ["polling", "publishing"])
def test_a_fencing_is_counted_before_the_loop_stops(where: str) -> None:
    sensor, registry, _ = metrics()
    fenced = KafkaError("epoch", ProducerFencedError())
    script: list = [assign(TP0), fenced if where == "polling" else batch(TP0, 0)]
    t = loop(script, FakePublisher([fenced]), sensor)
    with pytest.raises(Fenced):
        t.runner.run()
    assert value(registry, "sunspot_consumer_fenced_total") == 1


def test_the_transactional_publisher_tells_each_step(steps) -> None:  # noqa: F811
    recorder: list[str] = []

    class Steps(Sensor):
        def on_transaction(self, step: str, seconds: float) -> None:
            assert seconds >= 0
            recorder.append(step)

    steps.pending.update(
        send_offsets_to_transaction=Answered(),
        commit_transaction=Answered(),
        abort_transaction=Answered(),
    )
    producer = FakeProducer()
    publisher = TransactionalPublisher(
        lambda: producer, threading.Event(), Health(), 1.0, sensor=Steps()
    )
    publisher.publish([Output("out", b"v", b"k")], {TP0: OffsetAndMetadata(1, "", -1)}, Fake())
    publisher.abort()
    assert recorder == ["send", "offsets", "commit", "abort"]


def test_a_step_that_fails_is_not_told_as_done(steps) -> None:  # noqa: F811
    sensor, registry, _ = metrics()

    class Fails:
        def wait(self, timeout_ms: int | None = None) -> bool:
            raise KafkaTimeoutError("coordinator gone")

    steps.pending.update(send_offsets_to_transaction=Answered(), commit_transaction=Fails())
    publisher = TransactionalPublisher(
        FakeProducer, threading.Event(), Health(), 1.0, sensor=sensor
    )
    with pytest.raises(KafkaTimeoutError):
        publisher.publish([], {TP0: OffsetAndMetadata(1, "", -1)}, Fake())
    counts = {
        step: value(registry, "sunspot_consumer_publish_step_seconds_count", step=step)
        for step in PUBLISH_STEPS
    }
    assert counts == {"send": 1, "offsets": 1, "commit": 0, "abort": 0}


def test_the_at_least_once_publisher_tells_its_send_and_commit() -> None:
    sensor, registry, _ = metrics()
    consumer = Fake()
    publisher = AcknowledgedPublisher(FakeProducer, sensor)
    publisher.publish([Output("out", b"v", b"k")], {TP0: OffsetAndMetadata(1, "", -1)}, consumer)
    assert consumer.commits
    for step, count in (("send", 1), ("offsets", 0), ("commit", 1)):
        assert value(registry, "sunspot_consumer_publish_step_seconds_count", step=step) == count
