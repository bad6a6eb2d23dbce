"""The kafka-python internals the compatibility shims rely on are still there.

Each test builds a real client (no broker needed: kafka-python connects lazily) and fails
loudly, naming the attribute, when a kafka-python release removes or renames it. The fallback
tests prove what the shims do then.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.errors import IllegalStateError, KafkaTimeoutError, UnsupportedCodecError
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder

from sunspots.kafka import compat as kafka_compat

NOWHERE = "127.0.0.1:1"  # nothing listens: the clients never get a connection


@pytest.fixture
def consumer() -> Iterator[KafkaConsumer]:
    client = KafkaConsumer(bootstrap_servers=NOWHERE, api_version=(3, 9))
    yield client
    client.close()


@pytest.fixture
def producer() -> Iterator[KafkaProducer]:
    client = KafkaProducer(
        bootstrap_servers=NOWHERE, api_version=(3, 9), transactional_id="compat-test"
    )
    yield client
    client.close(timeout=0)


def test_consumer_network_client_is_still_there(consumer) -> None:
    net = getattr(consumer, "_client", None)
    assert net is not None, "KafkaConsumer._client is gone: update sunspots.kafka.compat"
    assert callable(getattr(net, "connected", None)), "_client.connected() is gone"
    assert callable(getattr(net.cluster, "brokers", None)), "_client.cluster.brokers() is gone"


def test_unconnected_client_reads_as_not_connected(consumer) -> None:
    assert kafka_compat.broker_connected(consumer) is False


def test_transaction_manager_and_sender_are_still_there(producer) -> None:
    manager = getattr(producer, "_transaction_manager", None)
    assert manager is not None, "KafkaProducer._transaction_manager is gone"
    for name in ("send_offsets_to_transaction", "begin_commit", "begin_abort"):
        assert callable(getattr(manager, name, None)), f"_transaction_manager.{name} is gone"
    assert callable(getattr(getattr(producer, "_sender", None), "wakeup", None)), (
        "KafkaProducer._sender.wakeup() is gone"
    )


def test_group_coordinator_can_still_be_asked_to_rejoin(consumer) -> None:
    coordinator = getattr(consumer, "_coordinator", None)
    assert coordinator is not None, "KafkaConsumer._coordinator is gone"
    assert callable(getattr(coordinator, "request_rejoin", None)), (
        "_coordinator.request_rejoin() is gone"
    )
    assert kafka_compat.request_rejoin(consumer) is True
    assert coordinator.rejoin_needed is True


class _Bare:
    """A client of a kafka-python release without the internals."""

    def commit_transaction(self) -> None:
        self.committed = True


def test_fallbacks_when_the_internals_are_gone() -> None:
    assert kafka_compat.broker_connected(_Bare()) is True
    assert kafka_compat.start_transaction_step(_Bare(), "commit_transaction") is None
    assert kafka_compat.request_rejoin(_Bare()) is False
    assert kafka_compat.fetch_position(_Bare()) is None


def _gzip_batch(offset: int) -> bytes:
    """A real gzip-compressed record batch of three records from `offset`."""
    builder = MemoryRecordsBuilder(magic=2, compression_type=1, batch_size=1 << 20, offset=offset)
    for _ in range(3):
        # Values that compress: the builder keeps a batch uncompressed when gzip would not help.
        builder.append(timestamp=int(time.time() * 1000), key=b"k", value=b"v" * 1000, headers=[])
    builder.close()
    return bytes(builder.buffer())


def test_a_batch_that_cannot_be_decoded_is_located_where_it_begins(consumer, monkeypatch) -> None:
    fetcher = getattr(consumer, "_fetcher", None)
    assert fetcher is not None, "KafkaConsumer._fetcher is gone: update sunspots.kafka.compat"
    assert hasattr(fetcher, "_next_partition_records"), "_fetcher._next_partition_records is gone"
    # A codec this installation lacks, as the fetcher meets it: taking records raises.
    batch = _gzip_batch(40)
    monkeypatch.setattr("kafka.codec.has_gzip", lambda: False)
    tp = TopicPartition("observations", 3)
    records = Fetcher.PartitionRecords(40, tp, MemoryRecords(batch))
    with pytest.raises(UnsupportedCodecError, match="gzip"):
        records.take(10)
    fetcher._next_partition_records = records  # where fetched_records keeps them
    assert kafka_compat.fetch_position(consumer) == (tp, 40)
    # Why the service stops at the first error: the records stay next in line, yield nothing
    # and read as not drained, so fetched_records would take from them again and again.
    assert records.take(10) == [] and bool(records)


def test_no_position_when_no_records_are_being_taken(consumer) -> None:
    assert kafka_compat.fetch_position(consumer) is None  # nothing fetched yet
    records = Fetcher.PartitionRecords(7, TopicPartition("observations", 0), MemoryRecords(b""))
    records.drain()  # drained records: an error of a later step, not of these
    consumer._fetcher._next_partition_records = records
    assert kafka_compat.fetch_position(consumer) is None

    assert kafka_compat.no_auto_create(_Bare()) is False


def test_the_client_setting_alone_does_not_reach_the_metadata_requests() -> None:
    """Why the shim exists; when this fails, kafka-python passes the setting on itself and
    `no_auto_create` can go."""
    client = KafkaConsumer(
        bootstrap_servers=NOWHERE, api_version=(3, 9), allow_auto_create_topics=False
    )
    try:
        request = client._client.cluster.metadata_request()
        assert request.allow_auto_topic_creation is True
    finally:
        client.close()


def test_clients_can_still_be_kept_from_creating_topics(consumer, producer) -> None:
    """kafka-python 3.0.12 drops `allow_auto_create_topics` on its way to the metadata that
    builds the requests; the shim sets it there, and the requests then ask for no creation."""
    clusters = {
        "KafkaConsumer._client.cluster": getattr(
            getattr(consumer, "_client", None), "cluster", None
        ),
        "KafkaProducer._metadata": getattr(producer, "_metadata", None),
    }
    for client, (where, cluster) in zip((consumer, producer), clusters.items(), strict=True):
        assert isinstance(getattr(cluster, "config", None), dict), f"{where}.config is gone"
        assert cluster.metadata_request().allow_auto_topic_creation is True, where
        assert kafka_compat.no_auto_create(client) is True, where
        assert cluster.metadata_request().allow_auto_topic_creation is False, where


def test_only_transaction_steps_can_be_started() -> None:
    with pytest.raises(ValueError, match="not a transaction step"):
        kafka_compat.start_transaction_step(_Bare(), "send")


def test_producer_sender_can_still_be_force_closed() -> None:
    client = KafkaProducer(bootstrap_servers=NOWHERE, api_version=(3, 9))
    sender = getattr(client, "_sender", None)
    assert callable(getattr(sender, "force_close", None)), "_sender.force_close() is gone"
    assert callable(getattr(sender, "join", None)), "_sender.join() is gone"
    started = time.monotonic()
    kafka_compat.close_now(client, 5.0)
    assert time.monotonic() - started < 5.0
    assert not sender.is_alive()
    with pytest.raises(IllegalStateError):
        client.send("t", b"closed")


class _Closable:
    """A producer of a kafka-python release without a sender thread."""

    def __init__(self, flush_times_out: bool) -> None:
        self.flush_times_out = flush_times_out
        self.closed_with: float | None = None

    def close(self, timeout: float | None = None) -> None:
        self.closed_with = timeout
        if self.flush_times_out:
            raise KafkaTimeoutError("Timeout waiting for future")


@pytest.mark.parametrize("flush_times_out", [False, True])
def test_close_now_falls_back_to_the_public_close(flush_times_out: bool) -> None:
    producer = _Closable(flush_times_out)
    kafka_compat.close_now(producer, 2.5)
    assert producer.closed_with == 2.5
