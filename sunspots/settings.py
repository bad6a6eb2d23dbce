"""Kafka settings: bootstrap servers, security pass-through and topic names, read once.

Services build a `KafkaSettings` at their edge (flags with env fallback) and pass the frozen
object down; nothing below the edge reads the environment.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Topics:
    observations: str = "sunspots.observations"
    forecasts: str = "sunspots.forecasts"
    evaluations: str = "sunspots.evaluations"
    dead_letter: str = "sunspots.dead-letter"
    state: str = "sunspots.forecaster-state"
    classifier_requests: str = "classifier.requests"
    classifier_predictions: str = "classifier.predictions"


TOPIC_ENV = {
    "observations": "TOPIC_OBSERVATIONS",
    "forecasts": "TOPIC_FORECASTS",
    "evaluations": "TOPIC_EVALUATIONS",
    "dead_letter": "TOPIC_DEAD_LETTER",
    "state": "TOPIC_FORECASTER_STATE",
    "classifier_requests": "TOPIC_CLASSIFIER_REQUESTS",
    "classifier_predictions": "TOPIC_CLASSIFIER_PREDICTIONS",
}


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
    for name, env in TOPIC_ENV.items():
        env_flag(
            group,
            f"--topic-{name.replace('_', '-')}",
            env,
            getattr(defaults, name),
            f"topic for {name.replace('_', ' ')}",
        )


def kafka_settings_from_args(args: argparse.Namespace) -> KafkaSettings:
    topics = Topics(**{name: getattr(args, f"topic_{name}") for name in TOPIC_ENV})
    security = tuple(
        (kwarg, os.environ[env]) for kwarg, env in _SECURITY_ENV.items() if os.environ.get(env)
    )
    return KafkaSettings(args.bootstrap_servers, topics, security)
