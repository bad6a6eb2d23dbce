"""The topic watch: a consumer service's eye on the topics it reads and writes while it runs.

Every couple of seconds, at a batch boundary, the watch describes the service's topics in one
request (their ids, partitions and, now and then, the settings that keep data whole) and acts
on what changed (consumer.topic_changes decides; this module talks to Kafka):

* the source topic gone: `/readyz` answers 503 with `source=topic X does not exist` while it
  lasts, told once; the service waits, its group member idle. Back, or deleted and created
  again under the same name (a new topic id): its partitions are read from their beginning
  (the group's offsets went with the old topic), and the states of the old topic are dropped
  at restore (the snapshot's `topic_id`). Partitions added: one summary line; the changelog
  grows to match (`--create-topics true`) or the service stops (exit 8) naming both topics,
  both counts and the command that fixes it;
* the state changelog gone or recreated: it lost every state, so it is created again (or put
  right: partitions, compaction) and every series held is written to it again with the next
  batch; a rewind meanwhile keeps the states held (`Forecaster.undo`) rather than read back an
  empty changelog. Without `--create-topics` the service stops instead;
* an output topic gone or recreated: created again (or put right), or the service stops;
* the models topic the forecaster follows gone or recreated: the models in place keep serving,
  one line, and the follower reads the new topic from its beginning.

Before a restore (consumer.recovery) the watch makes sure the changelog has a partition for
each partition restored, and hands the forecaster the source topic's id and end offsets. The
group member's position moves it cannot avoid (records deleted before they were read,
consumer.clients.GroupConsumer) are told here, one line per partition, and counted.

None of this asks a client to create a topic by naming it (consumer.clients): a topic comes
back only as its spec says, whatever the brokers' `auto.create.topics.enable`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, OffsetSpec
from kafka.errors import (
    ClusterAuthorizationFailedError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
)

from consumer.clients import Moved
from consumer.health import Health
from consumer.stops import EXIT_INPUT, ServiceStop
from consumer.topic_changes import (
    CREATED,
    GROWN,
    REPAIRED,
    Change,
    SourceTopic,
    TopicChangeMetrics,
    TopicFacts,
    change,
    describe_mismatch,
    mismatch,
    shortfall,
)
from sunspots import acls
from sunspots.settings import Topics, TopicSpec
from sunspots.topics import Replication, _wanted

log = logging.getLogger(__name__)

SOURCE_PROBLEM = "source"
# Settings are described every this many looks (about a minute), and whenever an id changes.
CONFIGS_EVERY = 30


class Keeper(Protocol):
    """What the watch needs of a processor that keeps state (the forecaster)."""

    source: SourceTopic
    series: dict
    rewrite: bool

    @property
    def owes(self) -> bool: ...

    def checkpoint(self) -> None: ...

    def undo(self) -> None: ...

    def rewrite_state(self) -> None: ...


class Follower(Protocol):
    """What the watch needs of the models follower (consumer.following)."""

    def restart(self) -> None: ...


@dataclass(frozen=True)
class Watched:
    """The topics a service reads and writes, each with its spec."""

    source: str
    state: str | None
    written: tuple[str, ...]  # outputs, the state changelog among them
    followed: str | None  # the models topic the forecaster follows
    specs: dict[str, TopicSpec]

    @classmethod
    def of(cls, service: str, topics: Topics, source: str, state: str | None, promotes: bool):
        """From the grants the service needs (sunspots.acls): one list of what it uses."""
        used = [g for g in acls.grants(service, topics, promotes=promotes) if g.resource == "topic"]
        written = tuple(dict.fromkeys(g.name for g in used if g.operation == "Write"))
        followed = topics.models if service == acls.FORECASTER else None
        return cls(source, state, written, followed, dict(topics.named()))

    @property
    def names(self) -> list[str]:
        return list(dict.fromkeys([self.source, *self.written, *filter(None, [self.followed])]))


class TopicWatch:
    """Looks at the topics between batches and before restores, and acts on their changes."""

    def __init__(
        self,
        make_admin: Callable[[], KafkaAdminClient],
        watched: Watched,
        topics: Topics,
        create: bool,
        replication: Replication,
        health: Health,
        metrics: TopicChangeMetrics,
        keeper: Keeper | None = None,
        follower: Follower | None = None,
        period_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_admin = make_admin
        self.watched = watched
        self.topics = topics
        self.create = create
        self.replication = replication
        self.health = health
        self.metrics = metrics
        self.keeper = keeper
        self.follower = follower
        self.period_s = period_s
        self.clock = clock
        self.admin: KafkaAdminClient | None = None
        self.known: dict[str, TopicFacts] = {}
        self.next_look = 0.0
        self.looks = 0
        self.failing = False
        self.configs_allowed = True  # DescribeConfigs granted (not implied by Read or Write)
        # The source topic was recreated under the assignment: rewind from its beginning.
        self.source_recreated = False
        self.restored_id: str | None = None  # the source topic's id at the last restore

    def close(self) -> None:
        if self.admin is not None:
            with contextlib.suppress(Exception):
                self.admin.close()

    # --- at each batch boundary -----------------------------------------------------------

    def between(self) -> bool:
        """Look at the topics when due and act; True when the processor owes outputs even
        without records (a changelog written again)."""
        if self.keeper is not None:
            self.keeper.checkpoint()
            self._tell_noted()
        if self.clock() >= self.next_look:
            self.look()
        return self.keeper is not None and self.keeper.owes

    def look(self) -> None:
        """Describe every topic once and act on what changed since the last look."""
        self.next_look = self.clock() + self.period_s
        facts = self._describe(self.watched.names, configs=self.looks % CONFIGS_EVERY == 0)
        if facts is None:
            return
        self.looks += 1
        w = self.watched
        self._source(facts[w.source])
        for name in w.written:
            if name not in (w.state, w.followed):
                self._output(facts[name])
        if w.state is not None:
            self._changelog(facts[w.state], facts[w.source])
        if w.followed is not None:
            self._followed(facts[w.followed])

    # --- before a restore (consumer.recovery) -----------------------------------------------

    def before_restore(self, partitions: list[int]) -> None:
        """Make sure the changelog holds a partition for each of `partitions`, and tell the
        forecaster which topic its states' offsets must belong to. Raises KafkaError when the
        brokers do not answer (the restore is tried again), ServiceStop when it cannot be."""
        w = self.watched
        names = [w.source] if w.state is None else [w.source, w.state]
        facts = self._describe(names, configs=w.state is not None, quiet=False)
        assert facts is not None
        source = facts[w.source]
        self.restored_id = source.topic_id
        if w.state is None or self.keeper is None:
            return
        changelog = facts[w.state]
        self.keeper.source.follow(source.topic_id, self._ends(source, partitions))
        needed = max([source.partitions, *(p + 1 for p in partitions)])
        self._changelog(changelog, source, needed)

    def changelog_lacks_state(self) -> bool:
        """Whether the changelog has lost states the forecaster holds and has not written
        again yet: a rewind then keeps the states held (`undo`) instead of reading it back."""
        w = self.watched
        if w.state is None or self.keeper is None:
            return False
        facts = self._describe([w.source, w.state], configs=False, quiet=False)
        assert facts is not None
        self._changelog(facts[w.state], facts[w.source])
        return self.keeper.rewrite

    def undo(self) -> None:
        if self.keeper is not None:
            self.keeper.undo()

    # --- the group member's position ------------------------------------------------------

    def moved(self, move: Moved) -> None:
        """A partition's position was gone (consumer.clients.GroupConsumer): tell it."""
        tp = move.partition
        extra = {"partition": tp.partition}
        if move.position is not None and move.position > move.end:
            log.warning(
                "topic %s partition %d: offset %d is past the partition's end %d (the topic was "
                "deleted and created again, or truncated): reading it from %d",
                tp.topic,
                tp.partition,
                move.position,
                move.end,
                move.start,
                extra=extra,
            )
            self.next_look = 0.0  # look at once: the states held may belong to the old topic
            return
        self.metrics.unread.labels(tp.topic).inc(move.unread)
        log.warning(
            "topic %s partition %d: %d records were deleted before they were read (retention "
            "or delete_records): the next offset to read was %s, the partition now starts at "
            "%d; reading on from there",
            tp.topic,
            tp.partition,
            move.unread,
            move.position,
            move.start,
            extra=extra,
        )

    # --- each kind of topic -------------------------------------------------------------------

    def _source(self, now: TopicFacts) -> None:
        before = self.known.get(now.name)
        what = change(before, now)
        self.known[now.name] = now
        if not now.exists:
            if before is None or before.exists:
                if before is not None:
                    self._count(now.name, Change.DELETED)
                log.warning(
                    "topic %s does not exist (deleted while the service ran?): waiting for it; "
                    "/readyz answers 503 until it is back",
                    now.name,
                )
            self.health.problem(SOURCE_PROBLEM, f"topic {now.name} does not exist")
            return
        self.health.problem(SOURCE_PROBLEM, None)
        if what in (Change.BACK, Change.RECREATED):
            self._count(now.name, what)
            # Unless the partitions held were restored from the new topic already.
            self.source_recreated = self.restored_id != now.topic_id
            log.warning(
                "topic %s is %s (topic id %s): reading it from its beginning; states of the "
                "earlier topic are dropped",
                now.name,
                "back" if what is Change.BACK else "deleted and created again",
                now.topic_id,
            )
        elif what is Change.PARTITIONS_ADDED:
            assert before is not None
            self._partitions_added(before, now)

    def _partitions_added(self, before: TopicFacts, now: TopicFacts) -> None:
        self._count(now.name, Change.PARTITIONS_ADDED)
        added = range(before.partitions, now.partitions)
        if self.keeper is not None:
            self.keeper.source.added.update(added)
        log.warning(
            "topic %s grew from %d to %d partitions while the service ran: keys now map to "
            "other partitions, so a series' later records arrive on another partition; where "
            "this instance holds both its state follows the series, where another instance "
            "holds the new one the series starts afresh there (sunspot_consumer_moved_series)",
            now.name,
            before.partitions,
            now.partitions,
        )

    def _changelog(self, now: TopicFacts, source: TopicFacts, needed: int | None = None) -> None:
        """The changelog exists with its spec and a partition per source partition, and holds
        the states held (else they are written again), or the service stops."""
        assert self.keeper is not None
        before = self.known.get(now.name)
        self.known[now.name] = now
        lost = not now.exists or change(before, now) in (Change.BACK, Change.RECREATED)
        if not now.exists:
            if before is not None:
                self._count(now.name, Change.DELETED)
            now = self._create_again(now, max(source.partitions, needed or 0))
        elif lost:
            self._count(now.name, change(before, now))
        wanted = (
            needed if needed is not None and needed > now.partitions else shortfall(source, now)
        )
        if wanted is not None:
            now = self._grow_changelog(now, source, wanted)
        if lost or before is None:
            self._put_right(now)
        if lost and self.keeper.series:
            self.keeper.rewrite_state()
            self.metrics.rewritten.inc(len(self.keeper.series))
            log.warning(
                "the state changelog %s lost the states it held (deleted or created again while "
                "the service ran): the %d series held are written to it again with the next batch",
                now.name,
                len(self.keeper.series),
            )

    def _grow_changelog(self, now: TopicFacts, source: TopicFacts, wanted: int) -> TopicFacts:
        if not self.create:
            raise ServiceStop(
                f"topic {source.name} has {source.partitions} partitions but its state "
                f"changelog {now.name} has {now.partitions}: the state of partitions "
                f"{now.partitions}..{wanted - 1} has nowhere to go; grow it with `sunspots-topics "
                f"--partitions {wanted} --topic-observations {source.name} --topic-state "
                f"{now.name}` (or kafka-topics.sh --alter --topic {now.name} --partitions "
                f"{wanted}) and start the service again",
                EXIT_INPUT,
            )
        self._admin().create_partitions({now.name: wanted})
        self._count(now.name, GROWN)
        log.warning(
            "the state changelog %s had %d partitions for the %d of %s: grown to %d",
            now.name,
            now.partitions,
            source.partitions,
            source.name,
            wanted,
        )
        return self._wait_for(now.name, lambda f: f.partitions >= wanted)

    def _output(self, now: TopicFacts) -> None:
        before = self.known.get(now.name)
        what = change(before, now)
        self.known[now.name] = now
        if not now.exists:
            if before is not None:
                self._count(now.name, Change.DELETED)
            self._create_again(now, self._source_partitions())
        elif what in (Change.BACK, Change.RECREATED):
            self._count(now.name, what)
            log.warning(
                "topic %s was deleted and created again (topic id %s)", now.name, now.topic_id
            )
            self._put_right(now)
        elif before is None:
            self._put_right(now)

    def _followed(self, now: TopicFacts) -> None:
        before = self.known.get(now.name)
        what = change(before, now)
        self.known[now.name] = now
        if not now.exists:
            if before is not None and before.exists:
                self._count(now.name, Change.DELETED)
                log.warning(
                    "the models topic %s does not exist (deleted while the service ran?): the "
                    "models in place keep serving",
                    now.name,
                )
            if self.create or now.name in self.watched.written:
                now = self._create_again(now, 1)
                what = Change.BACK
        if what in (Change.BACK, Change.RECREATED):
            if what is Change.RECREATED:
                self._count(now.name, what)
            self._put_right(now)
            if self.follower is not None:
                self.follower.restart()
            log.warning(
                "the models topic %s is a new topic (topic id %s): the models in place keep "
                "serving until it names others; following it from its beginning",
                now.name,
                now.topic_id,
            )
        elif before is None:
            self._put_right(now)

    # --- acting ---------------------------------------------------------------------------

    def _create_again(self, now: TopicFacts, partitions: int) -> TopicFacts:
        """Create a topic the service uses that does not exist, as its spec says; without
        `--create-topics`, stop."""
        role = "its state changelog" if now.name == self.watched.state else "a topic it writes"
        if not self.create:
            raise ServiceStop(
                f"topic {now.name} does not exist ({role}; deleted while the service ran?): "
                f"create it again (`sunspots-topics --partitions "
                f"{max(partitions, 1)}`, with this service's topic names) and start the "
                f"service again, or run it with --create-topics true",
                EXIT_INPUT,
            )
        new = [t for t in _wanted(self.topics, max(partitions, 1), self.replication)]
        with contextlib.suppress(TopicAlreadyExistsError):  # another instance was quicker
            self._admin().create_topics([t for t in new if t.name == now.name])
        self._count(now.name, CREATED)
        created = self._wait_for(now.name, lambda f: f.exists)
        log.warning(
            "topic %s did not exist (%s; deleted while the service ran?): created again with "
            "%d partitions",
            now.name,
            role,
            created.partitions,
        )
        self.known[now.name] = created
        return created

    def _put_right(self, now: TopicFacts) -> None:
        """Set back the settings of the topic's spec that keep its data whole (compaction, the
        record size) if they differ; without `--create-topics`, stop."""
        spec = self.watched.specs.get(now.name)
        if spec is None or not spec.configs or not now.exists:
            return
        if not now.configs and self.configs_allowed:
            described = self._describe([now.name], configs=True, quiet=False)
            assert described is not None
            now = described[now.name]
        wrong = mismatch(now, {**spec.configs, **self.replication.configs()})
        if not wrong:
            return
        if not self.create:
            raise ServiceStop(
                f"topic {now.name} has {describe_mismatch(now, wrong)}: set it back (kafka-"
                f"configs.sh --alter --entity-type topics --entity-name {now.name} --add-config "
                f"{','.join(f'{k}={v}' for k, v in wrong.items())}) and start the service again",
                EXIT_INPUT,
            )
        resource = ConfigResource(ConfigResourceType.TOPIC, now.name, configs=dict(wrong))
        self._admin().alter_configs([resource], raise_on_unknown=False)
        self._count(now.name, REPAIRED)
        log.warning("topic %s had %s: set back", now.name, describe_mismatch(now, wrong))

    # --- telling ------------------------------------------------------------------------------

    def _tell_noted(self) -> None:
        """Tell and count what the forecaster noted: stale states dropped, series moved."""
        assert self.keeper is not None
        noted = self.keeper.source
        if noted.stale:
            total = sum(noted.stale.values())
            self.metrics.stale.inc(total)
            log.warning(
                "%d series states on the changelog belonged to an earlier topic named %s "
                "(partitions %s), dropped: those series start afresh",
                total,
                self.watched.source,
                sorted(noted.stale),
            )
            noted.stale.clear()
        if noted.moved:
            self.metrics.moved.inc(noted.moved)
            log.warning(
                "%d series first seen on partitions %s of %s, added while the service ran, "
                "started afresh here (their state stays with the instance that holds their old "
                "partition)",
                noted.moved,
                sorted(noted.added),
                self.watched.source,
            )
            noted.moved = 0

    def _count(self, topic: str, what: Change | str) -> None:
        label = what.value if isinstance(what, Change) else what
        self.metrics.changes.labels(topic, label).inc()

    # --- Kafka ------------------------------------------------------------------------------

    def _admin(self) -> KafkaAdminClient:
        if self.admin is None:
            self.admin = self.make_admin()
        return self.admin

    def _describe(
        self, names: Iterable[str], configs: bool, quiet: bool = True
    ) -> dict[str, TopicFacts] | None:
        """The topics as the brokers describe them now. A failure is told once and gives None
        when `quiet`, else it is raised."""
        names = list(dict.fromkeys(names))
        try:
            described = {t["name"]: t for t in self._admin().describe_topics(names)}
            settings = (
                self._configs([n for n in names if _exists(described.get(n))]) if configs else {}
            )
        except KafkaError as exc:
            if not quiet:
                raise
            if not self.failing:
                log.warning("describing the topics failed (%s); looking again later", exc)
            self.failing = True
            return None
        if self.failing:
            log.info("describing the topics again")
            self.failing = False
        return {name: _facts(name, described.get(name), settings.get(name, {})) for name in names}

    def _configs(self, names: list[str]) -> dict[str, dict[str, str]]:
        """The settings `mismatch` compares, of each topic with a spec that has any."""
        keys = {"cleanup.policy": None, "max.message.bytes": None}
        wanted = [n for n in names if (spec := self.watched.specs.get(n)) and spec.configs]
        if not wanted or not self.configs_allowed:
            return {}
        resources = [
            ConfigResource(ConfigResourceType.TOPIC, n, configs=dict(keys)) for n in wanted
        ]
        try:
            found = self._admin().describe_configs(resources, config_filter="all").get("topic", {})
        except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError) as exc:
            log.info("not allowed to describe topic settings (%s): they are not checked", exc)
            self.configs_allowed = False
            return {}
        return {
            name: {key: str(entry.get("value")) for key, entry in found.get(name, {}).items()}
            for name in wanted
        }

    def _ends(self, source: TopicFacts, partitions: list[int]) -> dict[int, int]:
        """Each restored partition's end offset (read_committed), to judge old snapshots."""
        if not source.exists or not partitions:
            return {}
        specs = {TopicPartition(source.name, p): OffsetSpec.LATEST for p in partitions}
        found = self._admin().list_partition_offsets(specs, "read_committed")
        return {tp.partition: o.offset for tp, o in found.items()}

    def _source_partitions(self) -> int:
        known = self.known.get(self.watched.source)
        return known.partitions if known is not None and known.exists else 1

    def _wait_for(
        self, name: str, ready: Callable[[TopicFacts], bool], timeout_s: float = 10.0
    ) -> TopicFacts:
        """The topic once the brokers describe it as `ready` (a change is seen by every broker
        a moment after it is made); KafkaError past `timeout_s`."""
        deadline = self.clock() + timeout_s
        while True:
            described = self._describe([name], configs=False, quiet=False)
            assert described is not None
            if ready(described[name]):
                return described[name]
            if self.clock() > deadline:
                raise KafkaError(f"topic {name} not ready {timeout_s:g} s after it was changed")
            time.sleep(0.1)


def _exists(described: dict | None) -> bool:
    return bool(described) and described.get("error_code", 0) == 0 and bool(described["partitions"])


def _facts(name: str, described: dict | None, configs: dict[str, str]) -> TopicFacts:
    if not _exists(described):
        return TopicFacts(name)
    assert described is not None
    topic_id = described.get("topic_id")
    return TopicFacts(
        name, str(topic_id) if topic_id else None, len(described["partitions"]), configs
    )
