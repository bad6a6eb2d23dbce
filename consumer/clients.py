"""The consumer services' Kafka clients, configured in one place.

The loop, the changelog reader and the benchmarks that measure the bare Kafka ceiling all take
their client settings from here, so a tuning change reaches every one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.cluster import ClusterMetadata
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.partitioner import DefaultPartitioner

from sunspots.kafka_compat import close_now
from sunspots.settings import KafkaSettings

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
    }
    if transactional_id is not None:
        kwargs.update(TRANSACTIONAL_CONFIG)
        kwargs["transactional_id"] = transactional_id
        kwargs["transaction_timeout_ms"] = transaction_timeout_ms
    producer = KafkaProducer(**kwargs)
    try:
        if transactional_id is not None:
            producer.init_transactions()
        for topic in topics:
            producer.partitions_for(topic)
    except BaseException:
        close_now(producer, 1.0)  # a producer that cannot start holds no thread or socket
        raise
    return producer


def make_consumer(
    kafka: KafkaSettings,
    group_id: str,
    instance_id: str,
    max_poll_records: int,
) -> KafkaConsumer:
    """A group member that commits nothing by itself and reads committed records only."""
    return KafkaConsumer(
        **kafka.client_kwargs(),
        group_id=group_id,
        client_id=f"{group_id}-{instance_id}",
        # Static membership: a restarted instance takes its partitions straight back
        # instead of waiting for the dead member's session to expire.
        group_instance_id=instance_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_poll_records,
        partition_assignment_strategy=[CooperativeStickyAssignor],
        fetch_max_bytes=FETCH_MAX_BYTES,
        # A source topic that is created (or grows partitions) after the service joined is
        # noticed within seconds, not after kafka-python's default of five minutes.
        metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )


def make_reader(kafka: KafkaSettings, group_id: str | None = None) -> KafkaConsumer:
    """A consumer outside any group, for reading a topic from the beginning or asking for its
    end offsets. With `group_id`, it can also read that group's committed offsets; it never
    joins the group (it neither subscribes nor polls)."""
    return KafkaConsumer(
        **kafka.client_kwargs(),
        group_id=group_id,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_bytes=FETCH_MAX_BYTES,
    )
