"""The watchdog's acts (consumer.watchdog) and its metrics (consumer.lag), with a fake probe and
clock: a stall is told in one line, shown on /readyz and /metrics until progress resumes, and
the limit is handed on once; a probe that fails stops the clock."""

from __future__ import annotations

import logging
import time

from kafka import TopicPartition
from kafka.errors import KafkaTimeoutError
from prometheus_client import CollectorRegistry, generate_latest

from consumer.health import Health
from consumer.lag import LagCollector
from consumer.stalls import Stalls
from consumer.watchdog import PROBLEM, Watchdog
from tests.integration.monitoring_helpers import sample_value

TP0, TP1 = TopicPartition("obs", 0), TopicPartition("obs", 1)


class FakeProbe:
    def __init__(self) -> None:
        self.end: dict[TopicPartition, int] = {}
        self.group: dict[TopicPartition, int] = {}
        self.failing = False
        self.committed_fails = False
        self.asked_committed: list[list[TopicPartition]] = []
        self.closed = False

    def ends(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        if self.failing:
            raise KafkaTimeoutError("no broker answered")
        return {tp: self.end[tp] for tp in partitions}

    def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        self.asked_committed.append(sorted(partitions))
        if self.committed_fails:
            raise KafkaTimeoutError("UNSTABLE_OFFSET_COMMIT until the timeout")
        return {tp: self.group.get(tp, 0) for tp in partitions}

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Dog:
    """A watchdog with its fakes, its limits 10 s and 30 s, probed every 1 s of fake time."""

    def __init__(self, limit_s: float = 30.0) -> None:
        self.probe, self.clock, self.health = FakeProbe(), Clock(), Health()
        self.limits: list[str] = []
        stalls = Stalls(10.0, limit_s, max_gap_s=3.0)
        self.dog = Watchdog(stalls, self.probe, self.health, self.limits.append, 1.0, self.clock)
        self.registry = CollectorRegistry()
        LagCollector(self.dog, self.registry)

    def run_for(self, seconds: float) -> None:
        for _ in range(int(seconds)):
            self.clock.now += 1.0
            self.dog.check()

    def metric(self, name: str, tp: TopicPartition | None = None) -> float | None:
        labels = {"topic": tp.topic, "partition": str(tp.partition)} if tp else {}
        return sample_value(generate_latest(self.registry).decode(), name, labels)


def started(d: Dog) -> Dog:
    """TP0 and TP1 assigned; the loop committed 10 on TP0 and read TP1 to its end (4)."""
    d.dog.on_assigned({TP0, TP1})
    d.dog.on_commit({TP0: 10})
    d.dog.on_read({TP1: 4})
    d.probe.end = {TP0: 17, TP1: 4}
    return d


def test_a_stall_is_told_once_shown_on_readyz_and_metrics(caplog) -> None:
    d = started(Dog())
    d.dog.on_activity("publishing 40 outputs")
    with caplog.at_level(logging.INFO, logger="consumer.watchdog"):
        d.run_for(9)
        assert PROBLEM not in d.health.problems
        assert d.metric("sunspot_consumer_stalled", TP0) == 0.0
        d.run_for(5)
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert lines == [
        "partition 0 of obs: no progress for 10 s with 7 records waiting (the loop is "
        "publishing 40 outputs)"
    ]
    assert d.health.problems[PROBLEM].startswith("partition 0 of obs (7 records waiting, ")
    assert "stalled=partition 0 of obs" in d.health.describe()
    assert d.metric("sunspot_consumer_lag", TP0) == 7.0
    assert d.metric("sunspot_consumer_lag", TP1) == 0.0
    assert d.metric("sunspot_consumer_stalled", TP0) == 1.0
    assert d.metric("sunspot_consumer_stalled", TP1) == 0.0
    assert d.metric("sunspot_consumer_stalls_total") == 1.0


def test_progress_clears_the_stall_everywhere(caplog) -> None:
    d = started(Dog())
    d.run_for(12)
    assert PROBLEM in d.health.problems
    d.dog.on_commit({TP0: 15})
    with caplog.at_level(logging.INFO, logger="consumer.watchdog"):
        d.run_for(1)
    assert "partition 0 of obs progresses again" in caplog.text
    assert PROBLEM not in d.health.problems
    assert d.metric("sunspot_consumer_stalled", TP0) == 0.0
    assert d.metric("sunspot_consumer_lag", TP0) == 2.0
    assert d.metric("sunspot_consumer_stalls_total") == 1.0  # a counter: the stall happened


def test_the_limit_is_handed_on_once_with_what_the_loop_was_doing() -> None:
    d = started(Dog())
    d.dog.on_activity("polling")
    d.run_for(60)
    assert d.limits == [
        "partition 0 of obs: no progress for 30 s with 7 records waiting while the loop was "
        "polling; stopping past the stall limit (30 s) so that a restart starts the loop afresh"
    ]


def test_the_limit_is_handed_on_once_for_the_whole_service() -> None:
    d = started(Dog())
    d.dog.on_read({TP1: 0})  # TP1 stalls too, at the same moments as TP0
    d.run_for(60)
    assert len(d.limits) == 1 and d.limits[0].startswith("partition 0 of obs")


def test_a_failing_probe_stops_the_clock_and_is_told_once(caplog) -> None:
    d = started(Dog())
    d.run_for(5)
    d.probe.failing = True
    with caplog.at_level(logging.INFO, logger="consumer.watchdog"):
        d.run_for(120)  # two minutes without an answer: no stall, no limit
    assert caplog.text.count("cannot ask the brokers") == 1
    assert PROBLEM not in d.health.problems and d.limits == []
    d.probe.failing = False
    d.run_for(5)
    assert PROBLEM not in d.health.problems  # 4 s counted before the outage, 4 after: not 10
    d.run_for(2)
    assert PROBLEM in d.health.problems


def test_a_partition_assigned_without_a_commit_is_asked_of_the_group_once() -> None:
    d = Dog()
    d.dog.on_assigned({TP0})
    d.probe.group = {TP0: 12}
    d.probe.end = {TP0: 20}
    d.run_for(3)
    assert d.probe.asked_committed == [[TP0]]
    assert d.metric("sunspot_consumer_lag", TP0) == 8.0


def test_a_group_offset_not_given_yet_is_asked_again_and_the_rest_goes_on() -> None:
    d = started(Dog())
    d.dog.on_assigned({TopicPartition("obs", 2)})
    d.probe.end[TopicPartition("obs", 2)] = 5
    d.probe.committed_fails = True  # a transaction of the group still open, say
    d.run_for(2)
    assert d.metric("sunspot_consumer_lag", TP0) == 7.0  # the others are measured meanwhile
    assert d.metric("sunspot_consumer_lag", TopicPartition("obs", 2)) is None
    d.probe.committed_fails = False
    d.run_for(1)
    assert d.metric("sunspot_consumer_lag", TopicPartition("obs", 2)) == 5.0
    assert len(d.probe.asked_committed) == 3


def test_a_revoked_partition_leaves_the_metrics_and_readyz() -> None:
    d = started(Dog())
    d.run_for(12)
    assert PROBLEM in d.health.problems
    d.dog.on_revoked({TP0})
    assert PROBLEM not in d.health.problems
    text = generate_latest(d.registry).decode()
    assert 'partition="0"' not in text and 'partition="1"' in text


def test_the_thread_probes_until_closed() -> None:
    d = started(Dog())
    d.dog.interval_s = 0.01
    d.dog.start()
    try:
        deadline = time.monotonic() + 5
        while d.metric("sunspot_consumer_lag", TP0) is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert d.metric("sunspot_consumer_lag", TP0) == 7.0
    finally:
        d.dog.close()
    assert d.probe.closed


def test_report_only_never_hands_on_a_limit() -> None:
    d = started(Dog(limit_s=0.0))
    d.run_for(600)
    assert d.limits == [] and PROBLEM in d.health.problems
