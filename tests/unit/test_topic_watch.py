"""What the topic watch decides for each change to a topic (consumer.topic_changes,
consumer.topic_watch), with a scripted admin in place of Kafka: carry on (and what it did),
or stop with exit code 8 and the line that says what to do."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from kafka import TopicPartition
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from consumer.health import Health
from consumer.stops import EXIT_INPUT, ServiceStop
from consumer.topic_changes import (
    Change,
    SourceTopic,
    TopicChangeMetrics,
    TopicFacts,
    change,
    mismatch,
    shortfall,
)
from consumer.topic_watch import REJOIN_AFTER_S, SOURCE_PROBLEM, TopicWatch, Watched
from sunspots.kafka import acls
from sunspots.kafka.clients import Moved
from sunspots.kafka.settings import CHANGELOG_CONFIGS, Topics
from sunspots.kafka.topics import Replication
from support.http import sample

T = Topics()
COMPACT = dict(CHANGELOG_CONFIGS)


def facts(name: str, partitions: int = 1, topic_id: str = "id-1", **configs: str) -> TopicFacts:
    return TopicFacts(
        name, topic_id, partitions, {k.replace("_", "."): v for k, v in configs.items()}
    )


# --- the pure decisions -------------------------------------------------------------------


def test_what_changed_between_two_looks() -> None:
    a = facts("t", 2, "A")
    assert change(None, a) is Change.NONE
    assert change(a, a) is Change.NONE
    assert change(a, TopicFacts("t")) is Change.DELETED
    assert change(TopicFacts("t"), TopicFacts("t")) is Change.NONE
    assert change(TopicFacts("t"), a) is Change.BACK
    assert change(a, facts("t", 2, "B")) is Change.RECREATED
    assert change(a, facts("t", 3, "A")) is Change.PARTITIONS_ADDED
    assert change(a, facts("t", 3, "B")) is Change.RECREATED  # an id change says more


def test_the_changelog_needs_a_partition_per_source_partition() -> None:
    assert shortfall(facts("src", 3), facts("log", 1)) == 3
    assert shortfall(facts("src", 3), facts("log", 3)) is None
    assert shortfall(facts("src", 3), facts("log", 4)) is None  # more is harmless
    assert shortfall(facts("src", 1), facts("log", 1), needed=3) == 3
    assert shortfall(facts("src", 3), TopicFacts("log")) is None  # missing: created, not grown


def test_only_settings_that_keep_data_whole_are_compared() -> None:
    spec = {**COMPACT, "max.message.bytes": "1114112"}
    wrong = facts("log", cleanup_policy="delete", max_message_bytes="1048588", segment_ms="1")
    assert mismatch(wrong, spec) == {"cleanup.policy": "compact", "max.message.bytes": "1114112"}
    assert mismatch(facts("log", cleanup_policy="compact"), COMPACT) == {}
    assert mismatch(facts("log"), COMPACT) == {}  # settings not described: nothing to say


def test_a_stale_state_is_one_of_another_topic_id_or_past_the_partitions_end() -> None:
    source = SourceTopic()
    source.follow("B", {0: 10})
    assert source.is_stale("A", 5, 0)
    assert not source.is_stale("B", 500, 0)  # same topic: its offset is its own
    assert source.is_stale(None, 11, 0) and not source.is_stale(None, 10, 0)
    assert not source.is_stale(None, 11, 1)  # no end known: kept
    source.drop(b"k", 0)
    source.drop(b"k", 0)  # met again by a second restore: told once
    assert source.stale[0] == 1 and source.tombstones == [(b"k", 0)]
    source.follow("C", {})
    source.drop(b"k", 0)
    assert source.stale[0] == 2


# --- the watch, with a scripted admin -------------------------------------------------------


@dataclass
class FakeAdmin:
    """Topics as the brokers would describe them; what the watch asked to change."""

    topics: dict[str, TopicFacts]
    replication: Replication = field(default_factory=Replication)
    calls: list[tuple] = field(default_factory=list)
    hidden: set[str] = field(default_factory=set)  # not allowed to describe them

    def describe(self, names, configs: bool) -> dict[str, TopicFacts]:
        return {n: self.topics.get(n, TopicFacts(n)) for n in names if n not in self.hidden}

    def ends(self, topic: str, partitions: list[int]) -> dict[int, int]:
        return dict.fromkeys(partitions, 0)

    def create(self, name: str, partitions: int) -> TopicFacts:
        self.calls.append(("create", name, partitions))
        configs = dict(T.specs()["state"].configs) if name == T.state else {}
        self.topics[name] = TopicFacts(name, f"new-{name}", partitions, configs)
        return self.topics[name]

    def grow(self, name: str, partitions: int) -> TopicFacts:
        self.calls.append(("grow", name, partitions))
        self.topics[name] = replace_partitions(self.topics[name], partitions)
        return self.topics[name]

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        self.calls.append(("set", name, configs))

    def close(self) -> None:
        pass


def replace_partitions(f: TopicFacts, n: int) -> TopicFacts:
    return TopicFacts(f.name, f.topic_id, n, f.configs)


@dataclass
class FakeKeeper:
    source: SourceTopic = field(default_factory=SourceTopic)
    series: dict = field(default_factory=lambda: {"s": object()})
    rewrite: bool = False
    checkpoints: int = 0

    @property
    def owes(self) -> bool:
        return self.rewrite

    def checkpoint(self) -> None:
        self.checkpoints += 1

    def undo(self) -> None:
        pass

    def rewrite_state(self) -> None:
        self.rewrite = True


class FakeFollower:
    def __init__(self) -> None:
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1


def all_topics(partitions: int = 1) -> dict[str, TopicFacts]:
    made = {name: facts(name, partitions if spec.partitioned else 1) for name, spec in T.named()}
    made[T.state] = facts(T.state, partitions, cleanup_policy="compact")
    return made


@dataclass
class Setup:
    watch: TopicWatch
    admin: FakeAdmin
    keeper: FakeKeeper
    follower: FakeFollower
    health: Health
    registry: CollectorRegistry


def watch(create: bool = True, partitions: int = 1) -> Setup:
    admin = FakeAdmin(all_topics(partitions))
    keeper, follower, health, registry = FakeKeeper(), FakeFollower(), Health(), CollectorRegistry()
    watched = Watched.of(acls.FORECASTER, T, T.observations, T.state, promotes=False)
    w = TopicWatch(
        admin, watched, create, health, TopicChangeMetrics(registry), keeper, follower, 0.0
    )
    w.look()  # the first look: how things are
    return Setup(w, admin, keeper, follower, health, registry)


def samples(registry: CollectorRegistry) -> dict:
    return {
        (x.name, tuple(sorted(x.labels.items()))): x.value
        for family in registry.collect()
        for x in family.samples
    }


def counted(s: Setup, topic: str, what: str) -> float:
    found = samples(s.registry)
    return sample(found, "sunspot_consumer_topic_changes_total", topic=topic, change=what)


def test_the_watched_topics_follow_the_services_grants() -> None:
    w = Watched.of(acls.FORECASTER, T, T.observations, T.state, promotes=False)
    assert w.source == T.observations and w.followed == T.models
    assert set(w.written) == {
        T.forecasts,
        T.evaluations,
        T.forecasts_shadow,
        T.evaluations_shadow,
        T.dead_letter,
        T.state,
    }
    assert T.models in Watched.of(acls.FORECASTER, T, T.observations, T.state, True).written
    c = Watched.of(acls.CLASSIFIER, T, T.classifier_requests, None, False)
    assert set(c.written) == {T.classifier_predictions, T.dead_letter} and c.followed is None


def test_partitions_added_to_the_source_grow_the_changelog(caplog) -> None:
    s = watch()
    s.admin.topics[T.observations] = facts(T.observations, 3)
    s.watch.look()
    assert ("grow", T.state, 3) in s.admin.calls
    assert s.keeper.source.added == {1, 2}
    assert counted(s, T.observations, "partitions_added") == 1
    assert counted(s, T.state, "grown") == 1
    s.watch.look()
    assert s.admin.calls.count(("grow", T.state, 3)) == 1  # once
    assert caplog.text.count("grew from 1 to 3 partitions") == 1


def test_without_create_topics_partitions_added_stop_naming_both_topics_and_the_fix() -> None:
    s = watch(create=False)
    s.admin.topics[T.observations] = facts(T.observations, 3)
    with pytest.raises(ServiceStop) as stop:
        s.watch.look()
    assert stop.value.exit_code == EXIT_INPUT
    line = stop.value.line
    assert (
        f"topic {T.observations} has 3 partitions but its state changelog {T.state} has 1" in line
    )
    assert "sunspots-topics --partitions 3" in line and "\n" not in line
    assert s.admin.calls == []


def test_a_restore_of_a_partition_the_changelog_lacks_grows_it_first() -> None:
    """Partitions added while the service was away: the first restore finds them."""
    s = watch()
    s.admin.topics[T.observations] = facts(T.observations, 4)
    s.watch.before_restore([2, 3])
    assert ("grow", T.state, 4) in s.admin.calls
    assert s.keeper.source.topic_id == "id-1" and s.keeper.source.ends == {2: 0, 3: 0}


def test_a_deleted_source_is_unready_with_the_reason_until_it_is_back(caplog) -> None:
    s = watch()
    del s.admin.topics[T.observations]
    for _ in range(3):
        s.watch.look()
    assert s.health.problems[SOURCE_PROBLEM] == f"topic {T.observations} does not exist"
    assert caplog.text.count(f"topic {T.observations} does not exist") == 1
    assert s.admin.calls == []  # never created by the service: it only reads it
    s.admin.topics[T.observations] = facts(T.observations, 1, "id-2")
    s.watch.look()
    assert SOURCE_PROBLEM not in s.health.problems
    assert s.watch.source_recreated  # its partitions held were of the old topic
    assert counted(s, T.observations, "deleted") == 1 and counted(s, T.observations, "back") == 1


def test_a_source_recreated_after_its_partitions_were_restored_from_it_needs_no_rewind() -> None:
    s = watch()
    s.admin.topics[T.observations] = facts(T.observations, 1, "id-2")
    s.watch.before_restore([0])  # the group saw the new topic first
    s.watch.look()
    assert not s.watch.source_recreated


@pytest.mark.parametrize("create", [True, False])
def test_a_deleted_output_is_created_again_or_stops_the_service(create: bool) -> None:
    s = watch(create=create, partitions=3)
    del s.admin.topics[T.evaluations]
    if create:
        s.watch.look()
        assert s.admin.calls == [("create", T.evaluations, 3)]
        assert counted(s, T.evaluations, "created") == 1
        return
    with pytest.raises(ServiceStop) as stop:
        s.watch.look()
    assert f"topic {T.evaluations} does not exist (a topic it writes" in stop.value.line


def test_a_deleted_changelog_is_created_again_and_every_state_owed_to_it() -> None:
    s = watch(partitions=2)
    del s.admin.topics[T.state]
    assert s.watch.between()  # the look found it: the states are owed at once
    assert s.admin.calls == [("create", T.state, 2)]
    assert s.keeper.rewrite and s.watch.changelog_lacks_state()


def test_a_changelog_created_again_by_another_client_is_put_right() -> None:
    """What a broker's auto-create makes of it: one partition, deleted rather than compacted."""
    s = watch(partitions=2)
    s.admin.topics[T.state] = facts(T.state, 1, "id-2", cleanup_policy="delete")
    s.watch.look()
    assert s.admin.calls == [("grow", T.state, 2), ("set", T.state, {"cleanup.policy": "compact"})]
    assert s.keeper.rewrite
    assert counted(s, T.state, "recreated") == 1 and counted(s, T.state, "repaired") == 1


def test_without_create_topics_a_changelog_no_longer_compacted_stops_the_service() -> None:
    s = watch(create=False)
    s.admin.topics[T.state] = facts(T.state, 1, "id-2", cleanup_policy="delete")
    with pytest.raises(ServiceStop) as stop:
        s.watch.look()
    assert "cleanup.policy=delete (wants compact)" in stop.value.line
    assert "kafka-configs.sh" in stop.value.line


def test_the_models_topic_recreated_is_followed_from_its_beginning() -> None:
    s = watch()
    s.admin.topics[T.models] = facts(T.models, 1, "id-2", **{"cleanup_policy": "compact"})
    s.watch.look()
    assert s.follower.restarts == 1
    del s.admin.topics[T.models]
    s.watch.look()  # created again (--create-topics true), and followed from its start
    assert s.follower.restarts == 2 and ("create", T.models, 1) in s.admin.calls


def test_without_create_topics_a_deleted_models_topic_leaves_the_models_serving(caplog) -> None:
    s = watch(create=False)
    del s.admin.topics[T.models]
    s.watch.look()
    s.watch.look()
    assert s.follower.restarts == 0 and s.admin.calls == []
    assert caplog.text.count(f"the models topic {T.models} does not exist") == 1


def test_records_deleted_before_they_were_read_are_told_and_counted(caplog) -> None:
    s = watch()
    tp = TopicPartition(T.observations, 0)
    s.watch.moved(Moved(tp, 1200, 5000, 9000))
    assert "3800 records were deleted before they were read" in caplog.text
    assert "the next offset to read was 1200, the partition now starts at 5000" in caplog.text
    unread = sample(
        samples(s.registry), "sunspot_consumer_unread_records_total", topic=T.observations
    )
    assert unread == 3800
    s.watch.next_look = 10**9
    s.watch.moved(Moved(tp, 9000, 0, 3))  # past the end: the topic is a new one
    assert "offset 9000 is not in the partition" in caplog.text and s.watch.next_look == 0.0


def test_a_changelog_no_longer_compacted_is_seen_at_the_next_look_at_settings() -> None:
    s = watch()
    s.admin.topics[T.state] = facts(T.state, 1, cleanup_policy="delete")  # same topic id
    s.watch.looks = 30  # settings are described every 30 looks
    s.watch.look()
    assert s.admin.calls == [("set", T.state, {"cleanup.policy": "compact"})]
    assert not s.keeper.rewrite  # the states are still there


def test_a_change_not_acted_on_is_seen_again_at_the_next_look(caplog) -> None:
    s = watch(partitions=2)
    del s.admin.topics[T.state]
    create = s.admin.create
    s.admin.create = lambda name, partitions: (_ for _ in ()).throw(KafkaError("no controller"))
    s.watch.look()
    assert "acting on a topic change failed" in caplog.text
    assert s.keeper.rewrite  # owed already
    s.admin.create = create
    s.watch.look()
    assert s.admin.calls == [("create", T.state, 2)]


def test_a_topic_it_may_not_describe_is_left_to_the_refusal_of_its_use() -> None:
    """On a secured cluster a topic without an ACL is not described: the service's use of it
    (a publish, a restore) tells the refusal (exit 6), not the watch (exit 8)."""
    s = watch(create=False)
    s.admin.hidden = {T.forecasts_shadow, T.state}
    s.watch.look()
    s.watch.before_restore([0])
    assert not s.watch.changelog_lacks_state()
    assert s.admin.calls == []


class Coordinator:
    def __init__(self) -> None:
        self.rejoins = 0

    def request_rejoin(self) -> None:
        self.rejoins += 1


class Member:
    """A group member as sunspots.kafka.compat.request_rejoin reaches it."""

    def __init__(self) -> None:
        self._coordinator = Coordinator()


def test_partitions_added_make_the_member_ask_for_a_new_assignment_once_later() -> None:
    """kafka-python's group was seen to leave an added partition unassigned for most of a
    minute: once every member's metadata has caught up, each asks for an assignment again."""
    now = [0.0]
    s = watch()
    s.watch.clock, s.watch.next_look = (lambda: now[0]), 0.0
    member = Member()
    s.watch.attach(member)  # type: ignore[arg-type]
    s.admin.topics[T.observations] = facts(T.observations, 3)
    s.watch.between()
    assert member._coordinator.rejoins == 0
    now[0] = REJOIN_AFTER_S + 1
    s.watch.between()
    s.watch.between()
    assert member._coordinator.rejoins == 1
