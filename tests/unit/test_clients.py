"""The producers' partitioner places every key where kafka-python's default would."""

from __future__ import annotations

import pytest
from kafka.partitioner import DefaultPartitioner

from consumer.clients import KeyPartitioner

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
