"""Kafka settings: bootstrap servers, security pass-through and topic names, read once.

Services build a `KafkaSettings` at their edge (flags with env fallback) and pass the frozen
object down; nothing below the edge reads the environment. `Topics` is the one list of topics:
each field carries its environment variable and how the topic is created (`TopicSpec`), and
the flags, `TOPIC_ENV` and `sunspots.topics` are derived from it.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from sunspots.cli import env_flag

DEFAULT_BOOTSTRAP = "localhost:9092"

# kafka-python keyword arguments that may come from the environment, for SASL/SSL clusters.
_SECURITY_ENV = {
    "security_protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl_mechanism": "KAFKA_SASL_MECHANISM",
    "sasl_plain_username": "KAFKA_SASL_USERNAME",
    "sasl_plain_password": "KAFKA_SASL_PASSWORD",
    "ssl_cafile": "KAFKA_SSL_CAFILE",
    "ssl_certfile": "KAFKA_SSL_CERTFILE",
    "ssl_keyfile": "KAFKA_SSL_KEYFILE",
}


# The forecaster's state changelog is compacted, so only the last state of each series is kept.
CHANGELOG_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": "60000",
    "min.cleanable.dirty.ratio": "0.1",
}


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is configured and created, beside its default name in `Topics`."""

    env: str  # the environment variable that names the topic (its flag: `topic_flag`)
    partitioned: bool  # False: one partition, whatever the data topics have
    configs: Mapping[str, str]  # topic configs at creation


def _topic(
    default: str, env: str, partitioned: bool = True, configs: Mapping[str, str] | None = None
) -> str:
    """A `Topics` field: its default name, with its `TopicSpec` in the field's metadata.
    (Typed as the field's value, as `dataclasses.field` is.)"""
    spec = TopicSpec(env, partitioned, MappingProxyType(dict(configs or {})))
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class Topics:
    """The service's topic names: the one list of topics that flags, environment variables
    and topic creation are all derived from."""

    observations: str = _topic("sunspots.observations", "TOPIC_OBSERVATIONS")
    forecasts: str = _topic("sunspots.forecasts", "TOPIC_FORECASTS")
    evaluations: str = _topic("sunspots.evaluations", "TOPIC_EVALUATIONS")
    dead_letter: str = _topic("sunspots.dead-letter", "TOPIC_DEAD_LETTER", partitioned=False)
    # Partition p of the changelog holds the windows of observations partition p.
    state: str = _topic(
        "sunspots.forecaster-state", "TOPIC_FORECASTER_STATE", configs=CHANGELOG_CONFIGS
    )
    classifier_requests: str = _topic("classifier.requests", "TOPIC_CLASSIFIER_REQUESTS")
    classifier_predictions: str = _topic("classifier.predictions", "TOPIC_CLASSIFIER_PREDICTIONS")

    @staticmethod
    def specs() -> dict[str, TopicSpec]:
        """Field name -> how that topic is configured and created, in declaration order."""
        return {f.name: f.metadata["spec"] for f in fields(Topics)}

    def named(self) -> list[tuple[str, TopicSpec]]:
        """(topic name, spec) for every topic of this set."""
        return [(getattr(self, name), spec) for name, spec in self.specs().items()]


# Field name -> environment variable, for the code that configures services by environment.
TOPIC_ENV = {name: spec.env for name, spec in Topics.specs().items()}


def topic_flag(name: str) -> str:
    """The command-line flag of the `Topics` field `name`: state -> --topic-state."""
    return f"--topic-{name.replace('_', '-')}"


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    topics: Topics = field(default_factory=Topics)
    security: tuple[tuple[str, str], ...] = ()

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by every kafka-python client."""
        return {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            # kafka-python backs off reconnects up to 30 s by default, so a service would sit
            # idle long after a broker bounce; a 1 s ceiling resumes promptly.
            "reconnect_backoff_max_ms": 1000,
            **dict(self.security),
        }


def add_kafka_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("kafka")
    env_flag(
        group,
        "--bootstrap-servers",
        "KAFKA_BOOTSTRAP_SERVERS",
        DEFAULT_BOOTSTRAP,
        "comma-separated Kafka brokers",
    )
    defaults = Topics()
    for name, spec in Topics.specs().items():
        env_flag(
            group,
            topic_flag(name),
            spec.env,
            getattr(defaults, name),
            f"topic for {name.replace('_', ' ')}",
        )


def kafka_settings_from_args(args: argparse.Namespace) -> KafkaSettings:
    topics = Topics(**{name: getattr(args, f"topic_{name}") for name in Topics.specs()})
    security = tuple(
        (kwarg, os.environ[env]) for kwarg, env in _SECURITY_ENV.items() if os.environ.get(env)
    )
    return KafkaSettings(args.bootstrap_servers, topics, security)
