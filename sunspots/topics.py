"""Topic set-up: create the service's topics with the right partitions, replicas and configs.

Which topics there are and how each is created is declared once, in `sunspots.settings.Topics`.
The forecaster's state changelog must have as many partitions as the observations topic
(changelog partition p holds the windows of source partition p) and is compacted, so only the
last state of each series is kept.

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

from sunspots.cli import EXIT_USAGE, Parser, env_flag, positive_int
from sunspots.logs import add_logging_flags, setup_logging
from sunspots.refusal import of_failure, preflight
from sunspots.settings import KafkaSettings, Topics, add_kafka_flags, kafka_settings_from_args

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


def create_topics(
    kafka: KafkaSettings, partitions: int = 1, replication: Replication = Replication()
) -> list[str]:
    """Create any of the service's topics that do not exist yet; return the ones created."""
    t = kafka.topics
    # A short bootstrap timeout: callers retry, and a service asked to stop is not held up.
    admin = KafkaAdminClient(**kafka.client_kwargs(), bootstrap_timeout_ms=5000)
    try:
        existing = set(admin.list_topics())
        if t.observations in existing:
            # The changelog mirrors the observations topic, however many partitions it has.
            partitions = _partitions(admin, t.observations) or partitions
        wanted = _wanted(t, partitions, replication)
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            # Another instance may win the race to create them; that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        admin.close()


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


def _partitions(admin: KafkaAdminClient, topic: str) -> int | None:
    described = admin.describe_topics([topic])
    if not described or described[0].get("error_code", 0) != 0:
        return None
    return len(described[0]["partitions"])


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="sunspots-topics", description=__doc__)
    env_flag(parser, "--partitions", 1, "partitions per data topic", type=positive_int)
    add_replication_flags(parser)
    add_kafka_flags(parser)
    add_logging_flags(parser)
    args = parser.parse_args(argv)
    setup_logging(args, service="topics")
    kafka = kafka_settings_from_args(args)
    refusal = preflight(kafka)
    try:
        if refusal is None:
            created = create_topics(kafka, args.partitions, replication_from_args(args))
    except KafkaError as exc:
        refusal = of_failure(exc, kafka)
        if refusal is None:  # the brokers refused the request itself (a replication factor...)
            log.error("cannot create the topics on %s: %s", kafka.bootstrap_servers, exc)
            return EXIT_USAGE
    if refusal is not None:
        log.error("cannot create the topics: %s", refusal.line)
        return refusal.exit_code
    log.info("created %s", ", ".join(created) if created else "nothing: all topics exist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
