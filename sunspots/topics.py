"""Topic set-up: create the service's topics with the right partitions and configs.

Which topics there are and how each is created is declared once, in `sunspots.settings.Topics`.
The forecaster's state changelog must have as many partitions as the observations topic
(changelog partition p holds the windows of source partition p) and is compacted, so only the
last state of each series is kept.
"""

from __future__ import annotations

import contextlib
import logging
import sys

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from sunspots.cli import EXIT_USAGE, Parser, env_flag, positive_int
from sunspots.logs import add_logging_flags, setup_logging
from sunspots.settings import KafkaSettings, Topics, add_kafka_flags, kafka_settings_from_args

log = logging.getLogger(__name__)

REPLICATION_FACTOR = 1


def create_topics(kafka: KafkaSettings, partitions: int = 1) -> list[str]:
    """Create any of the service's topics that do not exist yet; return the ones created."""
    t = kafka.topics
    # A short bootstrap timeout: callers retry, and a service asked to stop is not held up.
    admin = KafkaAdminClient(**kafka.client_kwargs(), bootstrap_timeout_ms=5000)
    try:
        existing = set(admin.list_topics())
        if t.observations in existing:
            # The changelog mirrors the observations topic, however many partitions it has.
            partitions = _partitions(admin, t.observations) or partitions
        wanted = _wanted(t, partitions)
        missing = [topic for topic in wanted if topic.name not in existing]
        if missing:
            # Another instance may win the race to create them; that is fine.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        admin.close()


def _wanted(topics: Topics, partitions: int) -> list[NewTopic]:
    """Every topic of the set, as its `TopicSpec` says it is created."""
    return [
        NewTopic(
            name,
            partitions if spec.partitioned else 1,
            REPLICATION_FACTOR,
            topic_configs=dict(spec.configs),
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
    add_kafka_flags(parser)
    add_logging_flags(parser)
    args = parser.parse_args(argv)
    setup_logging(args, service="topics")
    kafka = kafka_settings_from_args(args)
    try:
        created = create_topics(kafka, args.partitions)
    except KafkaError as exc:
        log.error("cannot create the topics on %s: %s", kafka.bootstrap_servers, exc)
        return EXIT_USAGE
    log.info("created %s", ", ".join(created) if created else "nothing: all topics exist")
    return 0


if __name__ == "__main__":
    sys.exit(main())
