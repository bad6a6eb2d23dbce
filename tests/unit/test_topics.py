"""The topic set is declared once (`Topics`); the flags, the environment and topic creation
follow it."""

from __future__ import annotations

from sunspots.kafka.settings import (
    CHANGELOG_CONFIGS,
    MODELS_CONFIGS,
    TOPIC_ENV,
    Topics,
    add_kafka_flags,
    kafka_settings_from_args,
)
from sunspots.kafka.topics import Replication, _wanted, grow_topics
from sunspots.process.cli import Parser


def test_creation_follows_each_topics_spec() -> None:
    topics = Topics()
    wanted = {t.name: t for t in _wanted(topics, 4, Replication())}
    assert set(wanted) == {name for name, _ in topics.named()}
    # Replicas as many as the cluster's default.replication.factor: never a hard-coded 1.
    assert all(t.replication_factor == -1 for t in wanted.values())
    single = {topics.dead_letter, topics.models}
    assert all(wanted[name].num_partitions == 1 for name in single)
    others = set(wanted) - single
    assert all(wanted[name].num_partitions == 4 for name in others)
    assert wanted[topics.state].topic_configs == CHANGELOG_CONFIGS
    # The models topic is compacted (the last record of each role) and takes 1 MiB records.
    assert wanted[topics.models].topic_configs == MODELS_CONFIGS
    assert MODELS_CONFIGS["cleanup.policy"] == "compact"
    assert int(MODELS_CONFIGS["max.message.bytes"]) > 1024 * 1024
    plain = others - {topics.state}
    assert all(not wanted[name].topic_configs for name in plain)


def test_every_topic_has_its_own_flag_and_environment_variable(monkeypatch) -> None:
    assert list(TOPIC_ENV) == list(Topics.specs())
    assert len(set(TOPIC_ENV.values())) == len(TOPIC_ENV)
    assert TOPIC_ENV["state"] == "SUNSPOTS_TOPIC_STATE"
    monkeypatch.setenv("SUNSPOTS_TOPIC_STATE", "from-env")
    parser = Parser()
    add_kafka_flags(parser)
    args = parser.parse_args(["--topic-dead-letter", "from-flag"])
    topics = kafka_settings_from_args(args).topics
    assert topics == Topics(state="from-env", dead_letter="from-flag")


def test_replication_can_be_set_for_every_topic() -> None:
    topics = Topics()
    wanted = {t.name: t for t in _wanted(topics, 1, Replication(3, 2))}
    assert all(t.replication_factor == 3 for t in wanted.values())
    assert all(t.topic_configs["min.insync.replicas"] == "2" for t in wanted.values())
    assert wanted[topics.state].topic_configs == {**CHANGELOG_CONFIGS, "min.insync.replicas": "2"}


class GrowingAdmin:
    """Records the partitions an admin client is asked to add."""

    def __init__(self) -> None:
        self.asked: list[dict[str, int]] = []

    def create_partitions(self, counts: dict[str, int]) -> None:
        self.asked.append(counts)


def test_growing_takes_the_changelog_first_and_leaves_one_partition_topics_alone() -> None:
    """The changelog before the observations, so a running forecaster never sees its input
    ahead of its changelog; the dead letters and the models keep their one partition; a topic
    with as many or more partitions, or none yet, is left alone."""
    topics = Topics()
    counts = {name: 1 for name, _ in topics.named()}
    counts[topics.forecasts] = 8
    del counts[topics.evaluations]
    admin = GrowingAdmin()
    grown = grow_topics(admin, topics, counts, dict.fromkeys((n for n, _ in topics.named()), 3))
    assert admin.asked[0] == {topics.state: 3}
    assert topics.observations in {name for name, _, _ in grown}
    untouched = {topics.dead_letter, topics.models, topics.forecasts, topics.evaluations}
    assert not untouched & {name for ask in admin.asked for name in ask}
    assert all(before == 1 and after == 3 for _, before, after in grown)
