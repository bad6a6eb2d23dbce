"""Changes to the topics a consumer service reads or writes while it runs, as facts and
decisions, with the counters that record them.

An operator may add partitions to a topic, delete one, delete it and create it again, or let
retention delete records before they were read. None of it may end in a silent skip or a
silent stall: the service either carries on correctly or stops with one line and exit code 8
(consumer.stops). What it does in each case is decided here, from facts the topic watch
(consumer.topic_watch, the Kafka side) gathers; no Kafka client is used here, so each decision
has a unit test.

* `TopicFacts` is one topic as the brokers describe it: its id (Kafka's topic id, new for a
  topic deleted and created again under the same name), its partitions and its settings.
* `change` compares two descriptions of a topic: deleted, back, recreated, partitions added.
* `shortfall` and `mismatch` say what keeps a topic from its spec (sunspots.kafka.settings.Topics):
  a changelog with fewer partitions than its input, a compacted topic no longer compacted.
* `SourceTopic` is what the forecaster knows of its source topic's incarnation (its id and
  end offsets at the last restore) and of the partitions added to it while it ran; the
  forecaster notes there what it dropped or started afresh, and the watch tells it and
  counts it (`TopicChangeMetrics`).

Keys move when partitions are added (murmur2 of the key modulo the count), so a series' later
records arrive on another partition. An instance that holds both partitions keeps the series'
state (it follows the series); where another instance holds the new partition the series starts
afresh there, counted once per series in `sunspot_consumer_moved_series_total` and told in one
summary line.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from prometheus_client import CollectorRegistry, Counter

from sunspots.kafka.topic_admin import TopicFacts

log = logging.getLogger(__name__)


class Change(Enum):
    """What happened to a topic between two looks at it."""

    NONE = "none"
    DELETED = "deleted"  # it was there, it is not
    BACK = "back"  # it was not there, it is (a new topic, whatever its id)
    RECREATED = "recreated"  # there both times, under another id: deleted and created again
    PARTITIONS_ADDED = "partitions_added"


# What the service itself did about a change, for `sunspot_consumer_topic_changes_total`.
CREATED, GROWN, REPAIRED = "created", "grown", "repaired"
CHANGE_LABELS = (*(c.value for c in Change if c is not Change.NONE), CREATED, GROWN, REPAIRED)


def change(before: TopicFacts | None, now: TopicFacts) -> Change:
    """What happened to a topic since `before` (None: never looked at, nothing to compare)."""
    if before is None:
        return Change.NONE
    if not now.exists:
        return Change.DELETED if before.exists else Change.NONE
    if not before.exists:
        return Change.BACK
    if before.topic_id and now.topic_id and before.topic_id != now.topic_id:
        return Change.RECREATED
    if now.partitions > before.partitions:
        return Change.PARTITIONS_ADDED
    return Change.NONE


def shortfall(source: TopicFacts, changelog: TopicFacts, needed: int = 0) -> int | None:
    """The partitions the changelog needs (one per source partition, and at least `needed`:
    one per partition about to be restored), or None if it has them."""
    wanted = max(source.partitions, needed)
    return wanted if changelog.exists and changelog.partitions < wanted else None


def mismatch(facts: TopicFacts, configs: Mapping[str, str]) -> dict[str, str]:
    """The settings of `configs` (a topic's spec) the topic has otherwise, as the spec wants
    them; only settings that keep data whole are compared (compaction, the record size)."""
    kept = {"cleanup.policy", "max.message.bytes"}
    return {
        key: want
        for key, want in configs.items()
        if key in kept and facts.configs.get(key) not in (None, want)
    }


def describe_mismatch(facts: TopicFacts, wanted: Mapping[str, str]) -> str:
    """`cleanup.policy=delete (wants compact)`, for a line."""
    return ", ".join(
        f"{key}={facts.configs.get(key)} (wants {want})" for key, want in wanted.items()
    )


# --- the forecaster's source topic --------------------------------------------------------


@dataclass
class SourceTopic:
    """The forecaster's source topic: the incarnation its state's offsets must belong to, and
    what the forecaster noted for the watch to tell and count.

    `topic_id` and `ends` (each partition's end offset, read_committed) are set before a
    restore. A snapshot written under another topic id belongs to an earlier topic of the same
    name; one written before snapshots carried an id is judged by its offset, which cannot
    lie past the partition's end in the same topic.
    """

    topic_id: str | None = None
    ends: dict[int, int] = field(default_factory=dict)
    added: set[int] = field(default_factory=set)  # partitions added while the service ran
    stale: collections.Counter[int] = field(
        default_factory=collections.Counter
    )  # stale states dropped, by partition
    moved: int = 0  # series first seen on an added partition, not told yet
    # Each (series, partition) counted as moved: a batch processed again after a failed publish
    # meets the series afresh once more (its state was never published), but it moved once.
    arrived: set[tuple[str, int]] = field(default_factory=set)
    tombstones: list[tuple[bytes, int]] = field(default_factory=list)  # stale keys to delete
    # Stale keys noted since the source's id last changed: a second restore before their
    # tombstones are written drops them again, but they are told and counted once.
    noted: set[tuple[bytes, int]] = field(default_factory=set)

    def is_stale(self, topic_id: str | None, offset: int, partition: int) -> bool:
        """Whether a state at `offset` of `partition`, written under `topic_id`, belongs to
        an earlier topic of this name."""
        if topic_id is not None and self.topic_id is not None:
            return topic_id != self.topic_id
        end = self.ends.get(partition)
        return topic_id is None and end is not None and offset > end

    def follow(self, topic_id: str | None, ends: dict[int, int]) -> None:
        """The source topic as it is now, before a restore."""
        if topic_id != self.topic_id:
            self.noted.clear()
            self.arrived.clear()
        self.topic_id, self.ends = topic_id, ends

    def moved_here(self, series: str, partition: int) -> None:
        """A series was first seen on `partition`, added while the service ran: counted once,
        however often its batch is processed."""
        if (series, partition) not in self.arrived:
            self.arrived.add((series, partition))
            self.moved += 1

    def drop(self, key: bytes, partition: int) -> None:
        """A stale state was dropped: its changelog record is to be deleted (a tombstone)."""
        if (key, partition) in self.noted:
            return
        self.noted.add((key, partition))
        self.stale[partition] += 1
        self.tombstones.append((key, partition))


class TopicChangeMetrics:
    """The counters of topic changes, registered once per service."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.changes = Counter(
            "sunspot_consumer_topic_changes",
            "Changes found on a topic the service reads or writes (deleted, back, recreated, "
            "partitions_added), and what the service did (created, grown, repaired).",
            ["topic", "change"],
            registry=registry,
        )
        self.unread = Counter(
            "sunspot_consumer_unread_records",
            "Offsets of the input deleted (retention, delete_records) before they were read.",
            ["topic"],
            registry=registry,
        )
        self.stale = Counter(
            "sunspot_consumer_stale_states",
            "Changelog states of an earlier topic of the input's name, dropped at restore.",
            registry=registry,
        )
        self.moved = Counter(
            "sunspot_consumer_moved_series",
            "Series first seen on a partition added to the input while the service ran: they "
            "started afresh (their state stays with the instance of their old partition).",
            registry=registry,
        )
        self.rewritten = Counter(
            "sunspot_consumer_rewritten_states",
            "Series states written again to a changelog that was deleted or recreated.",
            registry=registry,
        )
