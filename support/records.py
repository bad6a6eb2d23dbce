"""A consumed record as the runner hands it to a processor, for everything that drives a
processor without Kafka: the unit tests, the in-process benchmarks and the reference pages'
example workload. One definition, so the field order and defaults cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass

from sunspots.kafka.settings import Topics


@dataclass
class Record:
    """The fields of a Kafka record a processor reads (consumer.processor.Record)."""

    value: bytes | None
    key: bytes | None
    offset: int
    partition: int = 0
    topic: str = Topics().observations
