"""Reading a processor's state changelog back, partition by partition.

The changelog is a compacted topic with one partition per source partition; its records are
written in the same transaction as the outputs and offsets they belong to, so reading the
committed records of a partition to its end gives the state at the committed offset.
"""

from __future__ import annotations

from collections.abc import Iterator

from sunspots.kafka.reading import read_topic
from sunspots.kafka.settings import KafkaSettings

Changelog = list[tuple[bytes, bytes | None]]


def read_changelog(
    kafka: KafkaSettings, topic: str, partitions: list[int], timeout_s: float = 60.0
) -> Iterator[tuple[int, Changelog]]:
    """Committed (key, value) records of each of `partitions`, from the beginning to the end,
    the latest of each key."""
    # The latest value of each key only (None: a tombstone), as compaction would leave it:
    # a changelog not compacted yet holds a record per series per batch, and keeping them
    # all would take memory in proportion to its length instead of the series.
    latest: dict[int, dict[bytes, bytes | None]] = {p: {} for p in partitions}
    # With read_committed the end offset is the last stable offset: a crashed instance's
    # open transaction holds it back until the transaction is aborted or times out.
    for tp, batch in read_topic(kafka, topic, partitions, timeout_s, what=f"changelog {topic}"):
        latest[tp.partition].update((r.key, r.value) for r in batch)
    for partition, values in latest.items():
        yield partition, list(values.items())
