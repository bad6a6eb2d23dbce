"""The producers' partitioner places every key where kafka-python's default would; the group
member never moves its position without saying so."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import NoOffsetForPartitionError, OffsetOutOfRangeError
from kafka.partitioner import DefaultPartitioner

from sunspots.kafka.clients import GroupConsumer, KeyPartitioner, Moved

pytestmark = pytest.mark.unit


class Cluster:
    """The two questions a partitioner asks of kafka-python's cluster metadata."""

    def __init__(self, partitions: int) -> None:
        self.partitions = partitions

    def topics(self) -> set[str]:
        return {"t"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return set(range(self.partitions))


KEYS = [
    b"",
    b"silso",
    b"s-2",
    "\u00e9t\u00e9".encode(),
    b"x" * 256,
    *(b"k%d" % i for i in range(200)),
]


def test_every_key_goes_where_the_default_partitioner_puts_it() -> None:
    keyed, default = KeyPartitioner(), DefaultPartitioner()
    for partitions in (1, 2, 3, 12):
        cluster = Cluster(partitions)
        for key in KEYS * 2:  # the second time from what it remembers
            assert keyed.partition("t", key, key, b"v", b"v", cluster) == default.partition(
                "t", key, key, b"v", b"v", cluster
            )


def test_a_new_partition_count_places_the_keys_again() -> None:
    keyed, cluster = KeyPartitioner(), Cluster(1)
    assert keyed.partition("t", b"k7", b"k7", None, b"v", cluster) == 0
    cluster.partitions = 12
    expected = DefaultPartitioner().partition("t", b"k7", b"k7", None, b"v", cluster)
    assert expected != 0 and keyed.partition("t", b"k7", b"k7", None, b"v", cluster) == expected


def test_keyless_records_are_not_remembered() -> None:
    keyed, cluster = KeyPartitioner(), Cluster(4)
    assert {keyed.partition("t", None, None, b"v", b"v", cluster) for _ in range(200)} <= set(
        range(4)
    )
    assert keyed.placed == {}


TP = TopicPartition("t", 0)


@pytest.fixture
def member(monkeypatch: pytest.MonkeyPatch) -> Iterator[GroupConsumer]:
    """A group member whose broker answers are scripted: the partition's log runs 5000..9000."""
    client = GroupConsumer(bootstrap_servers="127.0.0.1:1", api_version=(3, 9))
    client.seeks = []  # type: ignore[attr-defined]
    monkeypatch.setattr(client, "beginning_offsets", lambda tps: dict.fromkeys(tps, 5000))
    monkeypatch.setattr(client, "end_offsets", lambda tps: dict.fromkeys(tps, 9000))
    monkeypatch.setattr(client, "seek", lambda tp, offset: client.seeks.append((tp, offset)))
    monkeypatch.setattr(
        client, "seek_to_beginning", lambda *tps: client.seeks.extend((tp, None) for tp in tps)
    )
    yield client
    client.close()


def poll_raising(monkeypatch: pytest.MonkeyPatch, error: Exception) -> None:
    def poll(self: KafkaConsumer, *args: object, **kwargs: object) -> dict:
        raise error

    monkeypatch.setattr(KafkaConsumer, "poll", poll)


def test_records_deleted_before_they_were_read_move_the_member_to_the_log_start_told(
    member, monkeypatch
) -> None:
    told: list[Moved] = []
    member.moved = told.append
    poll_raising(monkeypatch, OffsetOutOfRangeError({TP: 1200}))
    assert member.poll(timeout_ms=0) == {}
    assert member.seeks == [(TP, 5000)]
    assert told == [Moved(TP, 1200, 5000, 9000)] and told[0].unread == 3800


def test_a_partition_the_group_never_committed_starts_at_its_beginning_untold(
    member, monkeypatch
) -> None:
    told: list[Moved] = []
    member.moved = told.append
    poll_raising(monkeypatch, NoOffsetForPartitionError({TP}))
    assert member.poll(timeout_ms=0) == {}
    assert member.seeks == [(TP, None)] and told == []
