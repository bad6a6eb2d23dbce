"""Reading a topic to the end it has now: the one loop behind the state restore (changelog),
the model feed's start, training from the observations topic, the tests' and benchmarks'
result readers and the replay's resume point.

A reader is read_committed (`clients.make_reader`), so the end it reads to is the last stable
offset: a promotion or a batch's outputs are seen whole or not at all, and an open transaction
of a crashed instance holds the end back until it is aborted or times out. Every read has a
bound (`Deadline`); past it the error names the topic and the bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from sunspots.kafka.clients import make_reader
from sunspots.kafka.settings import KafkaSettings
from sunspots.process.deadline import Deadline

Batch = tuple[TopicPartition, list[ConsumerRecord]]


class Positioned(Protocol):
    """What reading needs of a consumer already assigned to the partitions it reads."""

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]: ...

    def position(self, partition: TopicPartition) -> int: ...


def read_until(
    consumer: Positioned,
    ends: Mapping[TopicPartition, int],
    deadline: Deadline,
    what: str,
    poll_ms: int = 200,
    error: type[Exception] = KafkaError,
) -> Iterator[Batch]:
    """The batches of each partition from the consumer's position until it reaches `ends`
    (records at or past an end may come with the last batch: the caller keeps or drops them);
    `error` "<what> not read to its end in <n> s" once `deadline` has passed."""
    while any(consumer.position(tp) < end for tp, end in ends.items()):
        if deadline.expired():
            raise error(f"{what} not read to its end in {deadline.seconds:g} s")
        yield from consumer.poll(timeout_ms=poll_ms).items()


def partitions_of(consumer: KafkaConsumer, topic: str) -> list[TopicPartition]:
    """Every partition of `topic`; KafkaError when it does not exist (or cannot be seen)."""
    partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
    if not partitions:
        raise KafkaError(f"topic {topic} does not exist")
    return partitions


def from_beginning(consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
    """Assign `partitions` to the consumer and move it to their beginnings."""
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)


def read_topic(
    kafka: KafkaSettings,
    topic: str,
    partitions: list[int] | None = None,
    timeout_s: float = 60.0,
    what: str | None = None,
    poll_ms: int = 200,
) -> Iterator[Batch]:
    """The committed records of `topic` (of `partitions`, or of all it has) from the beginning
    to the end it has now, batch by batch; KafkaError when the topic does not exist or the end
    is not reached in `timeout_s` (naming `what`, the topic by default). The reader is closed
    when the iteration ends."""
    deadline = Deadline(timeout_s)
    reader = make_reader(kafka)
    try:
        if partitions is None:
            tps = partitions_of(reader, topic)
        else:
            tps = [TopicPartition(topic, p) for p in partitions]
        from_beginning(reader, tps)
        ends = reader.end_offsets(tps, timeout_ms=max(1, deadline.remaining_ms()))
        yield from read_until(reader, ends, deadline, what or topic, poll_ms)
    finally:
        reader.close()
