"""The model feed: the models topic as a service reads it, the models now current and then
each change, every record verified (`sunspots.lifecycle.records`).

A service opens the feed at start: `current()` reads the topic to its end (read_committed, so
a promotion is seen whole or not at all) and gives the last verified model of each role. Then,
between batches, `poll()` returns the records that arrived since, at once and without waiting.

Policy: a record that is refused (`Refused`, with its reason) never replaces a model: the role
keeps the model it had, and the refusal is returned for the caller to log and count. A
tombstone (`Retired`) removes its role's model. A record of a role that is not the kind this
feed serves (a classifier on the forecaster's topic) is refused as `wrong_kind`.

This is the only module of the shared package that reads Kafka; it holds the consumer and
nothing else, so `ModelBoard` (the fold of records into current models) is tested without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sunspots.domain import artifact
from sunspots.kafka.clients import make_reader
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.reading import read_until
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.types import TopicPartition
from sunspots.lifecycle import records
from sunspots.lifecycle.records import Entry, Published, Refused, Retired
from sunspots.process.deadline import Deadline

# A record can be 1 MiB (`records.MAX_RECORD_BYTES`); fetch at least that at a time.
FETCH_BYTES = 2 * records.MAX_RECORD_BYTES


class RecordSource(Protocol):
    """What the feed needs of a Kafka consumer assigned to the models topic's one partition."""

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]: ...

    def position(self, partition: TopicPartition) -> int: ...

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    def topics(self) -> set[str]: ...

    def seek_to_beginning(self, *partitions: TopicPartition) -> None: ...

    def close(self) -> None: ...


@dataclass
class ModelBoard:
    """The current model of each role, from the records applied in topic order."""

    kind: str = artifact.FORECASTER_KIND
    models: dict[str, Published] = field(default_factory=dict)

    def apply(self, key: bytes | None, value: bytes | None) -> Entry:
        """What the record means (a refusal changes nothing), applied to the board."""
        entry = records.read_entry(key, value)
        if isinstance(entry, Published) and entry.kind != self.kind:
            entry = Refused(
                entry.role,
                artifact.WRONG_KIND,
                f"{entry.role} record {entry.model_version!r}: a {entry.kind!r}, "
                f"this service serves a {self.kind!r}",
            )
        if isinstance(entry, Published):
            self.models[entry.role] = entry
        elif isinstance(entry, Retired):
            self.models.pop(entry.role, None)
        return entry

    @property
    def champion(self) -> Published | None:
        return self.models.get(records.CHAMPION)

    @property
    def challenger(self) -> Published | None:
        return self.models.get(records.CHALLENGER)


class ModelFeed:
    """The models topic, read to its end once (`current`), then polled (`poll`)."""

    def __init__(self, source: RecordSource, topic: str, kind: str = artifact.FORECASTER_KIND):
        self.source = source
        self.partition = TopicPartition(topic, 0)
        self.board = ModelBoard(kind)

    @classmethod
    def connect(cls, kafka: KafkaSettings, kind: str = artifact.FORECASTER_KIND) -> ModelFeed:
        """A feed on `kafka.topics.models`, at its beginning (the topic must exist)."""
        # A topic deleted and created again starts its offsets afresh: read it whole. A record
        # can be 1 MiB: fetch at least that at a time.
        consumer = make_reader(kafka, fetch_bytes=FETCH_BYTES, from_earliest=True)
        feed = cls(consumer, kafka.topics.models, kind)
        consumer.assign([feed.partition])
        consumer.seek_to_beginning(feed.partition)
        return feed

    def current(self, timeout_s: float = 60.0) -> tuple[ModelBoard, list[Refused]]:
        """The models current at the topic's end now, and the refusals met on the way there;
        KafkaError if the end is not reached in `timeout_s`."""
        end = self.source.end_offsets([self.partition])
        what = f"models topic {self.partition.topic}"
        entries: list[Entry] = []
        for tp, batch in read_until(self.source, end, Deadline(timeout_s), what):
            if tp == self.partition:
                entries.extend(self.board.apply(r.key, r.value) for r in batch)
        return self.board, standing_refusals(entries)

    def exists(self) -> bool:
        """Whether the models topic exists and this principal may see it; KafkaError when
        the brokers' answer did not come (no topic listed at all)."""
        topics = self.source.topics()
        if not topics:
            raise KafkaError("the brokers listed no topics")
        return self.partition.topic in topics

    def poll(self) -> list[Entry]:
        """The records that arrived since the last call, applied to the board; never waits."""
        return self._read(timeout_ms=0)

    def restart(self) -> None:
        """Read the topic from its beginning again (it was deleted and created again); the
        board keeps its models until records of the new topic replace them."""
        self.source.seek_to_beginning(self.partition)

    def close(self) -> None:
        self.source.close()

    def _read(self, timeout_ms: int) -> list[Entry]:
        batch = self.source.poll(timeout_ms=timeout_ms)
        return [self.board.apply(r.key, r.value) for r in batch.get(self.partition, ())]


def standing_refusals(entries: list[Entry]) -> list[Refused]:
    """The refusals no later record of the same role superseded, in topic order."""
    later: set[str | None] = set()
    standing: list[Refused] = []
    for entry in reversed(entries):
        if isinstance(entry, Refused) and entry.role not in later:
            standing.append(entry)
        later.add(entry.role)
    return standing[::-1]
