"""Kafka settings: bootstrap servers, security pass-through and topic names, read once.

Services build a `KafkaSettings` at their edge (flags with env fallback) and pass the frozen
object down; nothing below the edge reads the environment. The connection and security flags
(`--bootstrap-servers`, `--security-protocol`, `--sasl-*`, `--ssl-*`) take their variables
from Kafka's prefix (`KAFKA_BOOTSTRAP_SERVERS`, ...). `Topics` is the one list of topics: each
field says how its topic is created (`TopicSpec`), and the flags (`--topic-<field>`), their
environment variables (`SUNSPOTS_TOPIC_<FIELD>`, `TOPIC_ENV`) and `sunspots.topics` are
derived from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from sunspots.cli import env_flag, env_name, kafka_env

DEFAULT_BOOTSTRAP = "localhost:9092"

# Flag -> (kafka-python keyword argument, help), for SASL/SSL clusters. Unset ones are not
# passed, so kafka-python's defaults (PLAINTEXT, no SASL) apply.
SECURITY_FLAGS = {
    "--security-protocol": (
        "security_protocol",
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (default: PLAINTEXT)",
    ),
    "--sasl-mechanism": ("sasl_mechanism", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, ..."),
    "--sasl-username": ("sasl_plain_username", "SASL user name"),
    "--sasl-password": (
        "sasl_plain_password",
        "SASL password (prefer the variable: flags show in the process list)",
    ),
    "--ssl-cafile": ("ssl_cafile", "CA certificate file (PEM) to verify the brokers"),
    "--ssl-certfile": ("ssl_certfile", "client certificate file (PEM)"),
    "--ssl-keyfile": ("ssl_keyfile", "client private key file (PEM)"),
}


# The forecaster's state changelog is compacted, so only the last state of each series is kept.
CHANGELOG_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": "60000",
    "min.cleanable.dirty.ratio": "0.1",
}

# The largest model record the models topic takes (`sunspots.registry.MAX_RECORD_BYTES`, 1 MiB)
# plus room for the record batch's own framing: brokers default to 1 MiB + 12 bytes a batch.
MODELS_MAX_MESSAGE_BYTES = 1024 * 1024 + 64 * 1024

# The models topic is compacted too: only the last record of each role (key) is kept.
MODELS_CONFIGS = {**CHANGELOG_CONFIGS, "max.message.bytes": str(MODELS_MAX_MESSAGE_BYTES)}


@dataclass(frozen=True)
class TopicSpec:
    """How a topic is configured and created, beside its default name in `Topics`."""

    env: str  # the environment variable that names the topic: that of its flag, `topic_flag`
    partitioned: bool  # False: one partition, whatever the data topics have
    configs: Mapping[str, str]  # topic configs at creation


def _topic(default: str, partitioned: bool = True, configs: Mapping[str, str] | None = None) -> str:
    """A `Topics` field: its default name, with how it is created in the field's metadata.
    (Typed as the field's value, as `dataclasses.field` is.)"""
    creation = {"partitioned": partitioned, "configs": MappingProxyType(dict(configs or {}))}
    return field(default=default, metadata=creation)


@dataclass(frozen=True)
class Topics:
    """The service's topic names: the one list of topics that flags, environment variables
    and topic creation are all derived from."""

    observations: str = _topic("sunspots.observations")
    forecasts: str = _topic("sunspots.forecasts")
    evaluations: str = _topic("sunspots.evaluations")
    dead_letter: str = _topic("sunspots.dead-letter", partitioned=False)
    # Partition p of the changelog holds the windows of observations partition p.
    state: str = _topic("sunspots.forecaster-state", configs=CHANGELOG_CONFIGS)
    classifier_requests: str = _topic("classifier.requests")
    classifier_predictions: str = _topic("classifier.predictions")
    # The served models, key = role (champion, challenger): one partition, so one order.
    models: str = _topic("sunspots.models", partitioned=False, configs=MODELS_CONFIGS)

    @staticmethod
    def specs() -> dict[str, TopicSpec]:
        """Field name -> how that topic is configured and created, in declaration order."""
        return {
            f.name: TopicSpec(env_name(topic_flag(f.name)), **f.metadata) for f in fields(Topics)
        }

    def named(self) -> list[tuple[str, TopicSpec]]:
        """(topic name, spec) for every topic of this set."""
        return [(getattr(self, name), spec) for name, spec in self.specs().items()]


def topic_flag(name: str) -> str:
    """The command-line flag of the `Topics` field `name`: state -> --topic-state."""
    return f"--topic-{name.replace('_', '-')}"


# Field name -> environment variable, for the code that configures services by environment.
TOPIC_ENV = {name: spec.env for name, spec in Topics.specs().items()}


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
    flag = "--bootstrap-servers"
    env_flag(group, flag, DEFAULT_BOOTSTRAP, "comma-separated Kafka brokers", env=kafka_env(flag))
    for flag, (_, help) in SECURITY_FLAGS.items():
        env_flag(group, flag, None, help, env=kafka_env(flag))
    topics = parser.add_argument_group("topics")
    defaults = Topics()
    for name, spec in Topics.specs().items():
        env_flag(
            topics,
            topic_flag(name),
            getattr(defaults, name),
            f"topic for {name.replace('_', ' ')}",
            env=spec.env,
        )


def kafka_settings_from_args(args: argparse.Namespace) -> KafkaSettings:
    topics = Topics(**{name: getattr(args, f"topic_{name}") for name in Topics.specs()})
    security = tuple(
        (kwarg, value)
        for flag, (kwarg, _) in SECURITY_FLAGS.items()
        if (value := getattr(args, _dest(flag)))
    )
    return KafkaSettings(args.bootstrap_servers, topics, security)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")
