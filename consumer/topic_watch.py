"""The topic watch: a consumer service's eye on the topics it reads and writes while it runs.

Every couple of seconds, at a batch boundary, the watch describes the service's topics in one
request (their ids, partitions and, now and then, the settings that keep data whole) and acts
on what changed (consumer.topic_changes decides, sunspots.kafka.topic_admin talks to Kafka), each
change told in one line and counted in `sunspot_consumer_topic_changes_total`:

* the source topic gone: `/readyz` answers 503 with `source=topic X does not exist` while it
  lasts; the service waits, its group member idle. Back, or deleted and created again under
  the same name (a new topic id): its partitions are read from their beginning (the group's
  offsets went with the old topic) and the states of the old topic are dropped at restore
  (the snapshot's `topic_id`). Partitions added: the changelog grows to match
  (`--create-topics true`) or the service stops (exit 8) naming both topics, both counts and
  the command that fixes it;
* the state changelog gone or created again: it lost every state, so it is created again (or
  put right: partitions, compaction) and every series held is written to it again with the
  next batch, even one without records; a rewind meanwhile keeps the states held
  (`Forecaster.undo`) rather than read back a changelog that lost them;
* an output topic gone or created again: created again (or put right);
* the models topic the forecaster follows gone or created again: the models in place keep
  serving, and the follower reads the new topic from its beginning.

Without `--create-topics` a topic the service writes that is gone or not as its spec says
stops it (`ServiceStop`, exit 8) with a line that names the topic and what to do.

Before a restore (consumer.recovery) the watch makes sure the changelog has a partition for
each partition restored and hands the forecaster the source topic's id and end offsets. The
group member's position moves (records deleted before they were read, sunspots.kafka.clients.
GroupConsumer) are told here, one line per partition, and counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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
from sunspots.kafka import acls
from sunspots.kafka.clients import GroupConsumer, Moved
from sunspots.kafka.compat import request_rejoin
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.settings import Topics, TopicSpec
from sunspots.kafka.topic_admin import TopicAdmin
from sunspots.kafka.types import KafkaConsumer
from sunspots.process.logs import Outage

log = logging.getLogger(__name__)

SOURCE_PROBLEM = "source"
# After partitions are added to the source, the member asks its group for a new assignment
# this long after (once every member's metadata has caught up): kafka-python's group can leave
# an added partition unassigned until some other change makes it rebalance.
REJOIN_AFTER_S = 10.0
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
    def of(
        cls, service: str, topics: Topics, source: str, state: str | None, promotes: bool
    ) -> Watched:
        """From the grants the service needs (sunspots.kafka.acls): one list of what it uses."""
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
        admin: TopicAdmin,
        watched: Watched,
        create: bool,
        health: Health,
        metrics: TopicChangeMetrics,
        keeper: Keeper | None = None,
        follower: Follower | None = None,
        period_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.admin = admin
        self.watched = watched
        self.create = create
        self.health = health
        self.metrics = metrics
        self.keeper = keeper
        self.follower = follower
        self.period_s = period_s
        self.clock = clock
        self.known: dict[str, TopicFacts] = {}
        self.next_look = 0.0
        self.looks = 0
        self.describing = Outage(
            log,
            "describing the topics failed (%s); looking again later",
            "describing the topics again",
        )
        # The source topic was created again under the assignment: rewind from its beginning.
        self.source_recreated = False
        self.restored_id: str | None = None  # the source topic's id at the last restore
        self.consumer: KafkaConsumer | None = None  # the group member (consumer.recovery)
        self.rejoin_at: float | None = None

    def close(self) -> None:
        self.admin.close()

    def attach(self, consumer: KafkaConsumer) -> None:
        """The group member: its position moves are told here, and it is asked to rejoin its
        group after partitions are added."""
        self.consumer = consumer
        if isinstance(consumer, GroupConsumer):
            consumer.moved = self.moved

    # --- at each batch boundary -----------------------------------------------------------

    def between(self) -> bool:
        """Look at the topics when due and act; True when the processor owes outputs even
        without records (a changelog written again)."""
        if self.keeper is not None:
            self.keeper.checkpoint()
            self._tell_noted()
        if self.clock() >= self.next_look:
            self.look()
        if self.rejoin_at is not None and self.clock() >= self.rejoin_at:
            self.rejoin_at = None
            if self.consumer is not None and request_rejoin(self.consumer):
                log.info("asked the group for a new assignment, partitions having been added")
        return self.keeper is not None and self.keeper.owes

    def look(self) -> None:
        """Describe every topic once and act on what changed since the last look; a look the
        brokers do not answer is told once and tried again later."""
        self.next_look = self.clock() + self.period_s
        try:
            facts = self.admin.describe(self.watched.names, self.looks % CONFIGS_EVERY == 0)
        except KafkaError as exc:
            self.describing.failed(exc)
            return
        self.describing.over()
        self.looks += 1
        w = self.watched
        source = facts.get(w.source)
        try:
            if source is not None:
                self._source(source)
            for name in w.written:
                if name in facts and name not in (w.state, w.followed):
                    self._output(facts[name])
            if w.state in facts and source is not None:
                self._changelog(facts[w.state], source)
            if w.followed in facts:
                self._followed(facts[w.followed])
        except KafkaError as exc:  # a change not acted on is seen again at the next look
            log.warning("acting on a topic change failed (%s); trying again at the next look", exc)
            self.next_look = self.clock() + self.period_s

    # --- before a restore and in a rewind (consumer.recovery) --------------------------------

    def before_restore(self, partitions: list[int]) -> None:
        """Make sure the changelog holds a partition for each of `partitions`, and tell the
        forecaster which topic its states' offsets must belong to. Raises KafkaError when the
        brokers do not answer (the restore is tried again), ServiceStop when it cannot be."""
        w = self.watched
        facts = self.admin.describe([w.source, *filter(None, [w.state])], configs=True)
        source = facts.get(w.source)
        self.restored_id = source.topic_id if source is not None else None
        if source is None or w.state not in facts or self.keeper is None:
            return  # not allowed to describe them: the restore itself tells the refusal
        ends = self.admin.ends(source.name, partitions) if source.exists else {}
        self.keeper.source.follow(source.topic_id, ends)
        needed = max([source.partitions, *(p + 1 for p in partitions)])
        self._changelog(facts[w.state], source, needed)

    def changelog_lacks_state(self) -> bool:
        """Whether the changelog lost states the forecaster holds and has not written again
        yet: a rewind then keeps the states held (`undo`) instead of reading it back."""
        w = self.watched
        if w.state is None or self.keeper is None:
            return False
        facts = self.admin.describe([w.source, w.state], configs=False)
        if w.source in facts and w.state in facts:
            self._changelog(facts[w.state], facts[w.source])
        return self.keeper.rewrite

    def undo(self) -> None:
        if self.keeper is not None:
            self.keeper.undo()

    # --- the group member's position ------------------------------------------------------

    def moved(self, move: Moved) -> None:
        """A partition's position was gone (sunspots.kafka.clients.GroupConsumer): tell it."""
        tp = move.partition
        extra = {"partition": tp.partition}
        if move.position is None or move.position > move.end:
            at = "its position" if move.position is None else f"offset {move.position}"
            log.warning(
                "topic %s partition %d: %s is not in the partition, which ends at %d (the topic "
                "was deleted and created again, or truncated): reading it from %d",
                tp.topic,
                tp.partition,
                at,
                move.end,
                move.start,
                extra=extra,
            )
            self.next_look = 0.0  # look at once: the states held may be of the old topic
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

    # --- each kind of topic ---------------------------------------------------------------

    def _seen(self, now: TopicFacts) -> tuple[TopicFacts | None, Change]:
        """The topic as last seen, and what changed since; `_acted` records it as seen once
        the change is acted on (a failed action finds it again at the next look)."""
        before = self.known.get(now.name)
        return before, change(before, now)

    def _acted(self, now: TopicFacts, what: Change) -> None:
        self.known[now.name] = now
        if what is not Change.NONE:
            self._count(now.name, what)

    def _source(self, now: TopicFacts) -> None:
        before, what = self._seen(now)
        if not now.exists:
            if before is None or before.exists:
                log.warning(
                    "topic %s does not exist (deleted while the service ran?): waiting for it; "
                    "/readyz answers 503 until it is back",
                    now.name,
                )
            self.health.problem(SOURCE_PROBLEM, f"topic {now.name} does not exist")
        else:
            self.health.problem(SOURCE_PROBLEM, None)
        if what in (Change.BACK, Change.RECREATED):
            # Unless the partitions held were restored from the new topic already.
            self.source_recreated = self.restored_id != now.topic_id
            log.warning(
                "topic %s is %s (topic id %s): read from its beginning%s",
                now.name,
                "back" if what is Change.BACK else "deleted and created again",
                now.topic_id,
                "; states of the earlier topic are dropped" if self.keeper is not None else "",
            )
        elif what is Change.PARTITIONS_ADDED:
            assert before is not None
            self._partitions_added(before, now)
            self.rejoin_at = self.clock() + REJOIN_AFTER_S
        self._acted(now, what)

    def _partitions_added(self, before: TopicFacts, now: TopicFacts) -> None:
        if self.keeper is not None:
            self.keeper.source.added.update(range(before.partitions, now.partitions))
        log.warning(
            "topic %s grew from %d to %d partitions while the service ran: keys now map to "
            "other partitions, so a series' later records arrive on another partition; where "
            "this instance holds both its state follows the series, where another instance "
            "holds the new one the series starts afresh there",
            now.name,
            before.partitions,
            now.partitions,
        )

    def _changelog(self, now: TopicFacts, source: TopicFacts, needed: int | None = None) -> None:
        """The changelog exists as its spec says with a partition per source partition, and
        holds the states held (else they are written again); or the service stops."""
        assert self.keeper is not None
        before, what = self._seen(now)
        lost = not now.exists or what in (Change.BACK, Change.RECREATED)
        if lost and self.keeper.series:
            self.keeper.rewrite_state()  # first: owed even if putting it right fails now
        done: list[str] = []
        fixed = now
        if not now.exists:
            fixed = self._create(now, max(source.partitions, needed or 1), done)
        wanted = shortfall(source, fixed, needed or 0)
        if wanted is not None:
            fixed = self._grow(fixed, source, wanted, done)
        if lost or before is None or fixed.configs:
            self._put_right(fixed, done)
        if lost:
            self.metrics.rewritten.inc(len(self.keeper.series))
            log.warning(
                "the state changelog %s lost the states it held (deleted or created again "
                "while the service ran)%s; the %d series held are written to it again with "
                "the next batch",
                now.name,
                "".join(f"; {d}" for d in done),
                len(self.keeper.series),
            )
        elif done:
            log.warning("the state changelog %s: %s", now.name, "; ".join(done))
        self._acted(fixed, what)

    def _output(self, now: TopicFacts) -> None:
        before, what = self._seen(now)
        done: list[str] = []
        fixed = now
        if not now.exists:
            fixed = self._create(now, self._source_partitions(), done)
        elif what in (Change.BACK, Change.RECREATED):
            done.append(f"it was deleted and created again (topic id {now.topic_id})")
        if fixed.exists and (what is not Change.NONE or before is None or fixed.configs):
            self._put_right(fixed, done)
        if done:
            log.warning("topic %s: %s; carrying on", now.name, "; ".join(done))
        self._acted(fixed, what)

    def _followed(self, now: TopicFacts) -> None:
        before, what = self._seen(now)
        done: list[str] = []
        fixed, new = now, what in (Change.BACK, Change.RECREATED)
        if before is not None and not now.exists:
            if self.create or self._writes(now.name):
                fixed, new = self._create(now, 1, done), True
            elif before.exists:
                log.warning(
                    "the models topic %s does not exist (deleted while the service ran?): the "
                    "models in place keep serving",
                    now.name,
                )
        if what is Change.RECREATED:
            done.append(f"it was deleted and created again (topic id {now.topic_id})")
        if fixed.exists and (new or before is None or fixed.configs):
            self._put_right(fixed, done)
        if new:
            if self.follower is not None:
                self.follower.restart()
            log.warning(
                "the models topic %s: %s; the models in place keep serving until it names "
                "others, and it is followed from its beginning",
                now.name,
                "; ".join(done) or f"it exists again (topic id {now.topic_id})",
            )
        self._acted(fixed, what)

    # --- acting ---------------------------------------------------------------------------

    def _create(self, now: TopicFacts, partitions: int, done: list[str]) -> TopicFacts:
        """Create a topic the service uses that does not exist, as its spec says; without
        `--create-topics`, stop."""
        if not self.create:
            raise ServiceStop(
                f"topic {now.name} does not exist ({self._role(now.name)}; deleted while the "
                f"service ran?): create it again (`sunspots-topics --partitions "
                f"{max(partitions, 1)}` with this service's topic names) and start the service "
                "again, or run it with --create-topics true",
                EXIT_INPUT,
            )
        created = self.admin.create(now.name, max(partitions, 1))
        self._count(now.name, CREATED)
        done.append(
            f"it did not exist ({self._role(now.name)}; deleted while the service ran?): created "
            f"again with {created.partitions} partition{'s' if created.partitions > 1 else ''}"
        )
        return created

    def _grow(
        self, now: TopicFacts, source: TopicFacts, wanted: int, done: list[str]
    ) -> TopicFacts:
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
        grown = self.admin.grow(now.name, wanted)
        self._count(now.name, GROWN)
        done.append(
            f"grown from {now.partitions} to {wanted} partitions, one per partition of "
            f"{source.name}"
        )
        return grown

    def _put_right(self, now: TopicFacts, done: list[str]) -> None:
        """Set back the settings of the topic's spec that keep its data whole (compaction, the
        record size) if they differ; without `--create-topics`, stop."""
        spec = self.watched.specs.get(now.name)
        if spec is None or not spec.configs or not now.exists:
            return
        if not now.configs:
            now = self.admin.describe([now.name], configs=True).get(now.name, now)
        wrong = mismatch(now, {**spec.configs, **self.admin.replication.configs()})
        if not wrong:
            return
        if not self.create:
            settings = ",".join(f"{k}={v}" for k, v in wrong.items())
            raise ServiceStop(
                f"topic {now.name} has {describe_mismatch(now, wrong)}: set it back "
                f"(kafka-configs.sh --alter --entity-type topics --entity-name {now.name} "
                f"--add-config {settings}) and start the service again",
                EXIT_INPUT,
            )
        self.admin.set_configs(now.name, wrong)
        self._count(now.name, REPAIRED)
        done.append(f"{describe_mismatch(now, wrong)}: set back")

    # --- telling ----------------------------------------------------------------------------

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
                "started afresh here (their state stays with the instance that holds their "
                "old partition)",
                noted.moved,
                sorted(noted.added),
                self.watched.source,
            )
            noted.moved = 0

    def _count(self, topic: str, what: Change | str) -> None:
        label = what.value if isinstance(what, Change) else what
        self.metrics.changes.labels(topic, label).inc()

    def _role(self, name: str) -> str:
        if name == self.watched.state:
            return "its state changelog"
        return "a topic it writes" if self._writes(name) else "the models topic it follows"

    def _writes(self, name: str) -> bool:
        return name in self.watched.written

    def _source_partitions(self) -> int:
        known = self.known.get(self.watched.source)
        return known.partitions if known is not None and known.exists else 1
