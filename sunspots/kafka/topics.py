"""Topic set-up: create the service's topics with the right partitions, replicas and configs,
and grow the ones that exist.

Which topics there are and how each is created is declared once, in `sunspots.kafka.settings.Topics`.
The forecaster's state changelog must have as many partitions as the observations topic
(changelog partition p holds the windows of source partition p) and is compacted, so only the
last state of each series is kept. So the set-up grows a changelog with fewer partitions than
the observations, always; `sunspots-topics --partitions N` also grows every partitioned topic
that has fewer than N (the changelog first, so a running forecaster never sees the
observations ahead of it). Partitions are never taken away: Kafka cannot.

Replication follows the cluster unless told otherwise: the replication factor defaults to the
cluster's `default.replication.factor` (asked for as -1) and `min.insync.replicas` to the
cluster's setting, so a three-node production cluster gets three replicas and a laptop broker
one. Creating topics is optional: against pre-created topics nothing is created, and the
services need no permission to create.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from sunspots.kafka.clients import make_admin
from sunspots.kafka.refusal import of_failure, preflight
from sunspots.kafka.settings import KafkaSettings, Topics, add_kafka_flags, kafka_settings_from_args
from sunspots.process.cli import EXIT_USAGE, Parser, env_flag, positive_int
from sunspots.process.logs import add_logging_flags, setup_logging

log = logging.getLogger(__name__)

CLUSTER_DEFAULT = -1


@dataclass(frozen=True)
class Replication:
    """Replicas per partition and the in-sync replicas a write needs; -1/None: the cluster's."""

    factor: int = CLUSTER_DEFAULT
    min_insync: int | None = None

    def configs(self) -> dict[str, str]:
        return {} if self.min_insync is None else {"min.insync.replicas": str(self.min_insync)}


def add_replication_flags(parser: argparse.ArgumentParser) -> None:
    """The replication flags (`--replication-factor`, `--min-insync-replicas`) of every command
    that creates topics."""
    env_flag(
        parser,
        "--replication-factor",
        CLUSTER_DEFAULT,
        "replicas of each topic the service creates; -1: the cluster's default.replication.factor",
        type=replication_factor,
    )
    env_flag(
        parser,
        "--min-insync-replicas",
        None,
        "min.insync.replicas of each topic the service creates; default: the cluster's",
        type=positive_int,
    )


def replication_factor(text: str) -> int:
    """-1 (the cluster's default) or a positive number of replicas."""
    value = int(text) if text.lstrip("-").isdigit() else 0
    if value != CLUSTER_DEFAULT and value < 1:
        raise argparse.ArgumentTypeError(f"not -1 or a positive integer: {text!r}")
    return value


def replication_from_args(args: argparse.Namespace) -> Replication:
    return Replication(args.replication_factor, args.min_insync_replicas)


@dataclass(frozen=True)
class SetUp:
    """What a set-up did: topics created, and topics grown (name, partitions before, after)."""

    created: list[str]
    grown: list[tuple[str, int, int]]

    def describe(self) -> str:
        parts = [f"created {', '.join(self.created)}"] if self.created else []
        parts += [f"grew {name} from {a} to {b} partitions" for name, a, b in self.grown]
        return "; ".join(parts)


def create_topics(
    kafka: KafkaSettings, partitions: int = 1, replication: Replication = Replication()
) -> list[str]:
    """Create any of the service's topics that do not exist yet; return the ones created."""
    return set_up_topics(kafka, partitions, replication).created


def set_up_topics(
    kafka: KafkaSettings,
    partitions: int = 1,
    replication: Replication = Replication(),
    grow: bool = False,
) -> SetUp:
    """Create the topics that do not exist yet, grow the changelog to the observations' count
    of partitions, and with `grow` every partitioned topic to at least `partitions`."""
    t = kafka.topics
    # A short bootstrap timeout: callers retry, and a service asked to stop is not held up.
    admin = make_admin(kafka)
    try:
        counts = partition_counts(admin, [name for name, _ in t.named()])
        source = counts.get(t.observations, 0)
        # The changelog mirrors the observations topic, however many partitions it has.
        partitions = max(partitions, source) if grow else (source or partitions)
        wanted = _wanted(t, partitions, replication)
        missing = [topic for topic in wanted if topic.name not in counts]
        if missing:
            # Another instance may win the race to create them; that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        growing = [name for name, _ in t.named()] if grow else [t.state]
        grown = grow_topics(admin, t, counts, dict.fromkeys(growing, partitions))
        return SetUp([topic.name for topic in missing], grown)
    finally:
        admin.close()


def grow_topics(
    admin: KafkaAdminClient, topics: Topics, counts: dict[str, int], wanted: dict[str, int]
) -> list[tuple[str, int, int]]:
    """Grow each existing partitioned topic of `wanted` to its count, the changelog first;
    return (name, partitions before, after) of those grown."""
    partitioned = {name for name, spec in topics.named() if spec.partitioned}
    order = sorted(wanted, key=lambda name: name != topics.state)
    grown = []
    for name in order:
        before = counts.get(name, 0)
        if name in partitioned and 0 < before < wanted[name]:
            admin.create_partitions({name: wanted[name]})
            grown.append((name, before, wanted[name]))
    return grown


def _wanted(topics: Topics, partitions: int, replication: Replication) -> list[NewTopic]:
    """Every topic of the set, as its `TopicSpec` says it is created."""
    return [
        NewTopic(
            name,
            partitions if spec.partitioned else 1,
            replication.factor,
            topic_configs={**spec.configs, **replication.configs()},
        )
        for name, spec in topics.named()
    ]


def partition_counts(admin: KafkaAdminClient, names: list[str]) -> dict[str, int]:
    """The partitions of each of `names` that exists, in one request."""
    return {
        topic["name"]: len(topic["partitions"])
        for topic in admin.describe_topics(names)
        if topic.get("error_code", 0) == 0 and topic["partitions"]
    }


def build_parser() -> Parser:
    """The command's flags, also read by the configuration reference (support/reference.py)."""
    parser = Parser(prog="sunspots-topics", description=__doc__)
    env_flag(
        parser,
        "--partitions",
        1,
        "partitions per data topic; existing ones with fewer are grown to it",
        type=positive_int,
    )
    add_replication_flags(parser)
    add_kafka_flags(parser)
    add_logging_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """`sunspots-topics`: create the service's topics as their specs say, and exit with the
    refusal's code when the brokers refuse."""
    args = build_parser().parse_args(argv)
    setup_logging(args, service="topics")
    kafka = kafka_settings_from_args(args)
    refusal = preflight(kafka)
    try:
        if refusal is None:
            done = set_up_topics(kafka, args.partitions, replication_from_args(args), grow=True)
    except KafkaError as exc:
        refusal = of_failure(exc, kafka)
        if refusal is None:  # the brokers refused the request itself (a replication factor...)
            log.error("cannot create the topics on %s: %s", kafka.bootstrap_servers, exc)
            return EXIT_USAGE
    if refusal is not None:
        log.error("cannot create the topics: %s", refusal.line)
        return refusal.exit_code
    log.info("%s", done.describe() or "nothing to do: all topics exist with enough partitions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
