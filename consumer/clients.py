"""The consumer services' Kafka clients, configured in one place.

The loop, the changelog reader and the benchmarks that measure the bare Kafka ceiling all take
their client settings from here, so a tuning change reaches every one of them.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor

from sunspots.settings import KafkaSettings

# Every output is acknowledged by all in-sync replicas, and retries never duplicate. Records
# are tiny, so a short linger fills large batches without adding visible latency.
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "compression_type": None,
}
FETCH_MAX_BYTES = 16 * 1024 * 1024
METADATA_MAX_AGE_MS = 5_000


def make_producer(
    kafka: KafkaSettings, transactional_id: str | None = None, transaction_timeout_ms: int = 0
) -> KafkaProducer:
    """An idempotent producer; with a `transactional_id`, a transactional one that has fenced
    any previous incarnation with that id and aborted its open transaction."""
    kwargs: dict[str, Any] = {**kafka.client_kwargs(), **PRODUCER_CONFIG}
    if transactional_id is not None:
        kwargs["transactional_id"] = transactional_id
        kwargs["transaction_timeout_ms"] = transaction_timeout_ms
    producer = KafkaProducer(**kwargs)
    if transactional_id is not None:
        producer.init_transactions()
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


def make_reader(kafka: KafkaSettings) -> KafkaConsumer:
    """A consumer outside any group, for reading a topic from the beginning."""
    return KafkaConsumer(
        **kafka.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_bytes=FETCH_MAX_BYTES,
    )
