"""Reading to the end (`sunspots.kafka.reading.read_until`) on a fake consumer: it stops at
the end offsets it was given, and past its deadline it names what it read and the bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from kafka import TopicPartition

from sunspots.kafka.reading import read_until
from sunspots.process.deadline import Deadline

pytestmark = pytest.mark.unit

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)


@dataclass
class FakeConsumer:
    """Two partitions whose positions move by the records each poll hands out."""

    polls: list[dict[TopicPartition, list[int]]]

    def __post_init__(self) -> None:
        self.positions = {TP0: 0, TP1: 0}
        self.polled = 0

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]:
        self.polled += 1
        batch = self.polls.pop(0) if self.polls else {}
        for tp, records in batch.items():
            self.positions[tp] += len(records)
        return batch

    def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]


def test_reads_every_partition_to_its_end_and_no_further() -> None:
    consumer = FakeConsumer([{TP0: [1, 2]}, {TP1: [3]}, {TP0: [4]}, {TP1: [5]}])
    batches = list(read_until(consumer, {TP0: 3, TP1: 1}, Deadline(60), "t"))
    assert batches == [(TP0, [1, 2]), (TP1, [3]), (TP0, [4])]
    assert consumer.polled == 3


def test_nothing_is_polled_when_already_at_the_end() -> None:
    consumer = FakeConsumer([{TP0: [1]}])
    assert list(read_until(consumer, {TP0: 0, TP1: 0}, Deadline(60), "t")) == []
    assert consumer.polled == 0


def test_past_the_deadline_the_error_names_what_and_the_bound() -> None:
    now = [0.0]
    deadline = Deadline(5.0, lambda: now[0])
    consumer = FakeConsumer([{TP0: [1]}])
    reading = read_until(consumer, {TP0: 2}, deadline, "changelog t", error=TimeoutError)
    assert next(reading) == (TP0, [1])
    now[0] = 6.0
    with pytest.raises(TimeoutError, match=r"^changelog t not read to its end in 5 s$"):
        next(reading)
