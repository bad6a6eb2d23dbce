"""Where a restarted replay picks up: the last date each of its series has on the topic.

`--resume` sends, per series, only the days after the last one already on the observations
topic, so a replay stopped by an outage continues without re-sending days that the forecaster
would dead-letter as duplicates. The topic is the truth here, not the stopped run's account: a
record may have reached it after the producer gave up on it.

How it is read: a series' records lie in the partition its key maps to (the key is the series
id, and the producer's default partitioner is murmur2 of the key, as Java's). Each partition
that holds one of the replay's series is read backwards from its end as a read_committed reader
sees it, in chunks that double in size, until each of its series is found or the partition's
start is reached. Partitions added to the topic move keys: a series' later records go to its
new partition, its earlier ones stay where they were. So a series not found on the partition
it maps to now is looked for on the others, and its latest date there counts. A record counts when its key is one of the series and its value decodes as an
observation of that series; anything else on a shared topic (other series, bad input) is
passed over. A series with no record is replayed from the start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date

from sunspots.kafka.clients import make_reader, partition_of
from sunspots.kafka.errors import KafkaTimeoutError
from sunspots.kafka.reading import read_until
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.types import KafkaConsumer, TopicPartition
from sunspots.process.deadline import Deadline
from sunspots.wire.schemas import SchemaError, decode_observation

log = logging.getLogger(__name__)

FIRST_CHUNK = 1000  # records read back from a partition's end at first


def last_dates(
    kafka: KafkaSettings, series: Iterable[str], timeout: float = 60.0
) -> dict[str, date]:
    """Series id -> the date of its last record on the observations topic (absent: none yet).
    KafkaTimeoutError when the topic cannot be read within `timeout` seconds."""
    wanted = set(series)
    topic = kafka.topics.observations
    consumer = make_reader(kafka)
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return {}
        by_partition: dict[int, set[str]] = {}
        for name in wanted:
            by_partition.setdefault(partition_of(name, len(partitions)), set()).add(name)
        deadline = Deadline(timeout)
        found: dict[str, date] = {}
        for partition, names in sorted(by_partition.items()):
            found |= _read_back(consumer, TopicPartition(topic, partition), names, deadline)
        missing = wanted - set(found)
        for partition in sorted(partitions) if missing and len(partitions) > 1 else ():
            # Sent before partitions were added: on the partition the key mapped to then.
            elsewhere = {n for n in missing if partition_of(n, len(partitions)) != partition}
            before = _read_back(consumer, TopicPartition(topic, partition), elsewhere, deadline)
            found |= {n: max(d, found.get(n, d)) for n, d in before.items()}
        return found
    finally:
        consumer.close()


def _read_back(
    consumer: KafkaConsumer, tp: TopicPartition, names: set[str], deadline: Deadline
) -> dict[str, date]:
    """The last date of each of `names` in partition `tp`, reading back from its end."""
    consumer.assign([tp])
    start = consumer.beginning_offsets([tp])[tp]
    upper = consumer.end_offsets([tp])[tp]
    found: dict[str, date] = {}
    chunk = FIRST_CHUNK
    while upper > start and not names <= set(found):
        lower = max(start, upper - chunk)
        for name, day in _last_in(consumer, tp, lower, upper, names, deadline).items():
            found.setdefault(name, day)  # a later chunk is older: keep the newer date
        upper, chunk = lower, chunk * 2
    return found


def _last_in(
    consumer: KafkaConsumer,
    tp: TopicPartition,
    lower: int,
    upper: int,
    names: set[str],
    deadline: Deadline,
) -> dict[str, date]:
    """The last date of each of `names` among the offsets [lower, upper) of `tp`."""
    consumer.seek(tp, lower)
    last: dict[str, date] = {}
    what = f"{tp.topic} (back to where to resume)"
    for _, batch in read_until(consumer, {tp: upper}, deadline, what, 500, KafkaTimeoutError):
        for record in batch:
            if record.offset >= upper or record.key is None:
                continue
            name = record.key.decode(errors="replace")
            if name not in names:
                continue
            try:
                day = decode_observation(record.value, record.key).date
            except SchemaError:
                continue
            # The forecaster applies a series' dates in order and rejects earlier ones.
            last[name] = max(day, last.get(name, day))
    return last
