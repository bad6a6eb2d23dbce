"""A test's or a run's own topics, how a service is told them, and reading them back.

Tests and benchmarks run the services on fresh topic names, so that no run sees another's
records, and read the results as a downstream consumer would: read_committed, from the start.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sunspots.kafka.clients import make_reader
from sunspots.kafka.reading import read_until
from sunspots.kafka.settings import KafkaSettings, Topics, topic_flag
from sunspots.kafka.types import ConsumerRecord, KafkaConsumer, TopicPartition
from sunspots.process.deadline import Deadline
from support.polling import retrying, wait_for


def unique_topics(token: str) -> Topics:
    """The service's topic names, each with `-<token>` appended."""
    defaults = Topics()
    return Topics(**{name: f"{getattr(defaults, name)}-{token}" for name in Topics.specs()})


def topic_flags(topics: Topics) -> list[str]:
    """The command-line flags that give a service these topics."""
    return [part for name in Topics.specs() for part in (topic_flag(name), getattr(topics, name))]


def topic_env(topics: Topics) -> dict[str, str]:
    """The environment variables that give a service these topics, as compose does."""
    return {spec.env: name for name, spec in topics.named()}


def reader(bootstrap: str, topic: str, wait: float = 30.0, **config: Any) -> KafkaConsumer:
    """A read_committed consumer with no group, at the start of every partition of `topic`.

    A metadata request can fail (a bootstrap node just killed, a leader moving): the topic's
    partitions are asked for again until known, for at most `wait` seconds, then TimeoutError,
    so that a failed lookup never reads as an empty topic. Asking never creates the topic (a
    test may have deleted it on purpose).
    """
    consumer = make_reader(KafkaSettings(bootstrap, security=tuple(config.items())))
    try:
        # An empty set is what a failed lookup gives: asked again, as None.
        known = wait_for(
            f"the partitions of {topic}",
            lambda: consumer.partitions_for_topic(topic) or None,
            wait,
            interval=0.5,
        )
    except TimeoutError:
        consumer.close()
        raise
    partitions = [TopicPartition(topic, p) for p in known]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    return consumer


def read_topic(
    bootstrap: str,
    topic: str,
    expected: int | None = None,
    timeout: float = 120.0,
    idle: float = 3.0,
    **config: Any,
) -> list[ConsumerRecord]:
    """All committed records of `topic`: until `expected` are read (then `idle` seconds more,
    to catch any extra), or until nothing new arrives for `idle` seconds when not given.
    What has arrived after `timeout` seconds is returned, however many it is. `config`: more
    client settings (a secured cluster's)."""
    consumer = reader(bootstrap, topic, **config)
    records: list[ConsumerRecord] = []
    deadline = Deadline(timeout)
    last_new = time.monotonic()
    try:
        while not deadline.expired():
            batch = consumer.poll(timeout_ms=250)
            for part in batch.values():
                records.extend(part)
            if batch:
                last_new = time.monotonic()
            enough = expected is None or len(records) >= expected
            if enough and time.monotonic() - last_new > idle:
                break
    finally:
        consumer.close()
    return records


def read_to_end(bootstrap: str, topic: str, timeout: float = 60.0) -> list[ConsumerRecord]:
    """Every committed record of `topic` up to the end it has now; TimeoutError if that takes
    longer than `timeout` seconds."""
    consumer = reader(bootstrap, topic)
    try:
        partitions = list(consumer.assignment())
        end = retrying(f"the end offsets of {topic}", lambda: consumer.end_offsets(partitions), 30)
        batches = read_until(consumer, end, Deadline(timeout), topic, 500, TimeoutError)
        return [record for _, batch in batches for record in batch]
    finally:
        consumer.close()


def read_results(bootstrap: str, topics: Topics) -> tuple[list[dict], list[dict]]:
    """Every committed forecast and evaluation, decoded. Read once the forecaster has finished
    its input (support.run_progress.Progress.wait_finished), this is all the run will commit."""
    return (
        values(read_to_end(bootstrap, topics.forecasts)),
        values(read_to_end(bootstrap, topics.evaluations)),
    )


def values(records: list[ConsumerRecord]) -> list[dict[str, Any]]:
    """The records' JSON values."""
    return [json.loads(r.value) for r in records]
