"""The consumer services' Kafka clients, configured in one place.

The loop, the changelog reader, the topic watch and the benchmarks that measure the bare Kafka
ceiling all take their client settings from here, so a tuning change reaches every one of them.

No client of the services creates a topic by asking about it (`kafka_compat.no_auto_create`):
a topic deleted while a service runs stays deleted until the service's topic watch
(consumer.topic_watch) creates it again as its spec says, whatever the brokers'
`auto.create.topics.enable`. And the group member never moves its position silently
(`GroupConsumer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.cluster import ClusterMetadata
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import LogTruncationError, NoOffsetForPartitionError, OffsetOutOfRangeError
from kafka.partitioner import DefaultPartitioner, murmur2

from sunspots.kafka.compat import close_now, no_auto_create
from sunspots.kafka.settings import KafkaSettings

log = logging.getLogger(__name__)

# Every output is acknowledged by all in-sync replicas, and retries never duplicate. Records
# are tiny, so a short linger fills large batches without adding visible latency. The
# compression is the service's --compression-type (`KafkaSettings.producer_kwargs`).
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "batch_size": 256 * 1024,
}
# A transactional producer retries a transaction request the coordinator turned away after
# this long. The common case is CONCURRENT_TRANSACTIONS: the next transaction's first request
# reaches the coordinator while it still writes the previous one's commit markers (about a
# millisecond on a local broker). kafka-python waits its default 100 ms before asking again,
# and at 100 transactions a second that wait was most of the p99 latency; Kafka's Java client
# retries that case after 20 ms. The trade-off, latency for a little work while something is
# wrong: kafka-python uses the same setting as the least wait between this producer's metadata
# refreshes and before a failed batch is resent, so while a leader moves it may ask every 5 ms
# rather than every 100 ms; and its sender thread wakes every 5 ms while a transaction request
# is in flight. Idle, it costs nothing.
TRANSACTIONAL_CONFIG: dict[str, Any] = {"retry_backoff_ms": 5}
FETCH_MAX_BYTES = 16 * 1024 * 1024
METADATA_MAX_AGE_MS = 5_000


class KeyPartitioner(DefaultPartitioner):
    """kafka-python's default partitioner (murmur2 of the key, as the Java client does) that
    remembers where it put each key of each topic while the topic's partition count stays.

    The default sorts the topic's partitions and hashes the key in pure Python on every send,
    about a tenth of the forecaster's sending time; its keys are a few series ids. Keyless
    records go to the default (a random available partition).
    """

    MAX_KEYS = 100_000

    def __init__(self) -> None:
        self.placed: dict[tuple[str, bytes], tuple[int, int]] = {}

    def partition(
        self,
        topic: str,
        key: object,
        serialized_key: bytes | None,
        value: object,
        serialized_value: bytes | None,
        cluster: ClusterMetadata,
    ) -> int:
        """The key's partition, remembered while the topic's partition count stays."""
        if serialized_key is None:
            return super().partition(topic, key, None, value, serialized_value, cluster)
        count = len(cluster.partitions_for_topic(topic) or ())
        placed = self.placed.get((topic, serialized_key))
        if placed is not None and placed[0] == count:
            return placed[1]
        partition = super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        if len(self.placed) >= self.MAX_KEYS:
            self.placed = {}
        self.placed[(topic, serialized_key)] = (count, partition)
        return partition


def partition_of(series: str, partitions: int) -> int:
    """The partition the default partitioner gives a record keyed `series`."""
    return (murmur2(series.encode()) & 0x7FFFFFFF) % partitions


def make_producer(
    kafka: KafkaSettings,
    transactional_id: str | None = None,
    transaction_timeout_ms: int = 0,
    topics: Iterable[str] = (),
) -> KafkaProducer:
    """An idempotent producer; with a `transactional_id`, a transactional one that has fenced
    any previous incarnation with that id and aborted its open transaction. With `topics`, it
    holds their metadata before it is returned: kafka-python fetches a topic's metadata at the
    first send to it, which kept the first batch after every start waiting about 70 ms a topic
    (a service's first forecast took 0.3 s). Pass only topics that exist and are written
    anyway: an absent one is waited for (up to max_block_ms), as its first send would be."""
    kwargs: dict[str, Any] = {
        **kafka.producer_kwargs(),
        **PRODUCER_CONFIG,
        "partitioner": KeyPartitioner(),
        "allow_auto_create_topics": False,  # made to work by no_auto_create
        # A topic that gains partitions (the changelog, grown to follow its input) is known
        # within seconds, not after kafka-python's default of five minutes.
        "metadata_max_age_ms": METADATA_MAX_AGE_MS,
    }
    if transactional_id is not None:
        kwargs.update(TRANSACTIONAL_CONFIG)
        kwargs["transactional_id"] = transactional_id
        kwargs["transaction_timeout_ms"] = transaction_timeout_ms
    producer = KafkaProducer(**kwargs)
    no_auto_create(producer)
    try:
        if transactional_id is not None:
            producer.init_transactions()
        for topic in topics:
            producer.partitions_for(topic)
    except BaseException:
        close_now(producer, 1.0)  # a producer that cannot start holds no thread or socket
        raise
    return producer


class ProducerMaker:
    """Makes a loop's producers: the first holds the output topics' metadata before the service
    reports ready (its first batch does not wait for it); a replacement, made after a failed
    publish, does not, since a topic it writes may be the one that went away: the topic watch
    creates it again between batches, while a prefetch would wait for it up to max_block_ms,
    each time the loop tried again."""

    def __init__(self, make: Callable[..., KafkaProducer], topics: tuple[str, ...]) -> None:
        self.make = make
        self.topics = topics

    def __call__(self) -> KafkaProducer:
        producer = self.make(topics=self.topics)
        self.topics = ()  # held by the first producer made; replacements ask for none
        return producer


@dataclass(frozen=True)
class Moved:
    """A partition whose position was gone, and where the group member reads from now.

    `position` is the offset it was about to read; `start` and `end` the partition's log start
    and end when it looked. Below the start, the records in between were deleted (retention,
    `delete_records`) before they were read; past the end, the partition was truncated or its
    topic recreated."""

    partition: TopicPartition
    position: int | None
    start: int
    end: int

    @property
    def unread(self) -> int:
        """Offsets deleted before they were read (some may have been transaction markers)."""
        return max(0, self.start - self.position) if self.position is not None else 0


class GroupConsumer(KafkaConsumer):
    """A group member that never moves its position without saying so.

    With `auto_offset_reset="earliest"` kafka-python moves a position that is gone to the log
    start on its own, and records deleted before they were read are skipped without a word.
    This one is made with the policy "none", so kafka-python raises instead, and `poll` does
    the move itself: a partition the group never committed starts at its beginning (nothing
    to tell), any other goes to its log start and is handed to `moved` (set by whoever tells
    and counts it: consumer.topic_watch), then polling goes on.
    """

    moved: Callable[[Moved], None] | None = None

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None, update_offsets: bool = True
    ) -> dict:
        """kafka-python's poll, with a position that is gone moved to the log start and told (never
        silently)."""
        try:
            return super().poll(timeout_ms, max_records, update_offsets)
        except NoOffsetForPartitionError as exc:
            self.seek_to_beginning(*_partitions(exc.args[0] if exc.args else ()))
        except OffsetOutOfRangeError as exc:
            gone = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
            self._move({tp: offset for tp, offset in gone.items()})
        except LogTruncationError as exc:
            self._move({tp: None for tp in exc.divergent_offsets})
        return {}

    def _move(self, positions: dict[TopicPartition, int | None]) -> None:
        """Each partition to its log start, told to `moved`."""
        tps = list(positions)
        if not tps:
            return
        starts, ends = self.beginning_offsets(tps), self.end_offsets(tps)
        for tp in tps:
            self.seek(tp, starts[tp])
            move = Moved(tp, positions[tp], starts[tp], ends[tp])
            if self.moved is not None:
                self.moved(move)
            else:
                log.warning("%s: position %s gone; reading from %d", tp, move.position, move.start)


def _partitions(value: object) -> list[TopicPartition]:
    if isinstance(value, TopicPartition):
        return [value]
    return [tp for tp in value if isinstance(tp, TopicPartition)] if value else []


def make_consumer(
    kafka: KafkaSettings,
    group_id: str,
    instance_id: str,
    max_poll_records: int,
) -> GroupConsumer:
    """A group member that commits nothing by itself, reads committed records only and never
    moves its position silently (`GroupConsumer`)."""
    consumer = GroupConsumer(
        **kafka.client_kwargs(),
        group_id=group_id,
        client_id=f"{group_id}-{instance_id}",
        # Static membership: a restarted instance takes its partitions straight back
        # instead of waiting for the dead member's session to expire.
        group_instance_id=instance_id,
        enable_auto_commit=False,
        auto_offset_reset="none",
        allow_auto_create_topics=False,
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        partition_assignment_strategy=[CooperativeStickyAssignor],
        fetch_max_bytes=FETCH_MAX_BYTES,
        # A source topic that is created (or grows partitions) after the service joined is
        # noticed within seconds, not after kafka-python's default of five minutes.
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )
    no_auto_create(consumer)
    return consumer


def make_reader(
    kafka: KafkaSettings,
    group_id: str | None = None,
    fetch_bytes: int | None = None,
    from_earliest: bool = False,
    isolation: str = "read_committed",
) -> KafkaConsumer:
    """A consumer outside any group, for reading a topic from the beginning or asking for its
    end offsets. With `group_id`, it can also read that group's committed offsets; it never
    joins the group (it neither subscribes nor polls). `fetch_bytes`: the most fetched at a
    time, from a partition and in all (a topic of large records: the models); `from_earliest`:
    a position that is gone (a topic deleted and created again starts its offsets afresh)
    moves to the log start rather than the end. `isolation`: "read_uncommitted" to see what
    was written but not yet committed (a test's account of a transaction in flight)."""
    settings: dict[str, Any] = {"fetch_max_bytes": FETCH_MAX_BYTES}
    if fetch_bytes is not None:
        settings = {"max_partition_fetch_bytes": fetch_bytes, "fetch_max_bytes": fetch_bytes}
    if from_earliest:
        settings["auto_offset_reset"] = "earliest"
    reader = KafkaConsumer(
        **kafka.client_kwargs(),
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level=isolation,
        allow_auto_create_topics=False,
        **settings,
    )
    no_auto_create(reader)
    return reader


def make_sender(kafka: KafkaSettings, **tuning: Any) -> KafkaProducer:
    """A producer for a command's own sends (the replay, the classify command, the model
    publisher, a benchmark's load): the shared client settings and the command's compression,
    with the command's tuning (acks, linger, timeouts, a transactional id) on top."""
    return KafkaProducer(**{**kafka.producer_kwargs(), **tuning})


def make_lister(kafka: KafkaSettings, request_timeout_ms: int) -> KafkaConsumer:
    """A consumer that only lists the topics this principal may see (it reads nothing, and its
    metadata requests create no topic)."""
    return KafkaConsumer(
        **kafka.client_kwargs(),
        allow_auto_create_topics=False,
        request_timeout_ms=request_timeout_ms,
    )


def make_admin(kafka: KafkaSettings) -> KafkaAdminClient:
    """An admin client: topics described, created and grown (its metadata requests never
    create a topic). A short bootstrap timeout: callers retry, and a stop is not held up."""
    return KafkaAdminClient(**kafka.client_kwargs(), bootstrap_timeout_ms=5000)
