"""The seam between the Kafka loop and the services' logic: records in, outputs out.

A `Processor` never publishes and never sees a Kafka client: it turns a batch of consumed
`Record`s into `Output`s (results, dead letters, state changelog records) and keeps its state
per source partition, so it runs in unit tests without a broker. `DeadLetters` is the shared
way a processor rejects a record: counted by reason, logged, and wrapped with its source.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar

from prometheus_client import Counter

from consumer.output import Output, dead_letter
from sunspots.schemas import SchemaError

log = logging.getLogger(__name__)
T = TypeVar("T")


class Record(Protocol):
    """The fields of a consumed Kafka record that processors read."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


class Processor(Protocol):
    def process(self, records: list[Record]) -> list[Output]: ...

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None: ...

    def revoke(self, partitions: set[int]) -> None: ...


class DeadLetters:
    """Rejects records onto the dead-letter topic, counting each by reason."""

    def __init__(self, topic: str, counter: Counter) -> None:
        self.topic = topic
        self.counter = counter

    def reject(self, record: Record, reason: str, detail: str) -> Output:
        self.counter.labels(reason).inc()
        # Held back after the first of each reason for a while (sunspots.logs.RepeatFilter):
        # every one is on the dead-letter topic and in the counter.
        log.warning(
            "dead letter %s at %s/%s/%s: %s",
            reason,
            record.topic,
            record.partition,
            record.offset,
            detail,
            extra={
                "reason": reason,
                "partition": record.partition,
                "series": (record.key or b"").decode(errors="replace") or None,
            },
        )
        return dead_letter(self.topic, record, reason, detail)

    def decode(
        self, record: Record, decoder: Callable[[Record], T], into: list[Output]
    ) -> T | None:
        """`decoder(record)`, or None with the record's dead letter appended to `into`."""
        try:
            return decoder(record)
        except SchemaError as exc:
            into.append(self.reject(record, exc.reason, exc.detail))
            return None
