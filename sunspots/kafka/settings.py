"""Kafka settings: bootstrap servers, security pass-through and topic names, read once.

Services build a `KafkaSettings` at their edge (flags with env fallback) and pass the frozen
object down; nothing below the edge reads the environment. The connection and security flags
(`--bootstrap-servers`, `--security-protocol`, `--sasl-*`, `--ssl-*`) take their variables
from Kafka's prefix (`KAFKA_BOOTSTRAP_SERVERS`, ...). Each password can also come from a file
(`--sasl-password-file`, `KAFKA_SASL_PASSWORD_FILE`: Docker secrets), one way only; it is held
as a `Secret`, whose repr never shows it. `--compression-type` (`KAFKA_COMPRESSION_TYPE`), the
codec the project's producers write, is given only to the commands that produce. Settings that
cannot work together (SASL without a user or password, SASL settings on a plain connection)
stop the command at start. `Topics` is the one list of topics: each field says how its topic
is created (`TopicSpec`), and the flags (`--topic-<field>`), their environment variables
(`SUNSPOTS_TOPIC_<FIELD>`, `TOPIC_ENV`) and `sunspots.kafka.topics` are derived from it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from sunspots.kafka.codecs import COMPRESSION_TYPES, DEFAULT_COMPRESSION, kafka_python_value
from sunspots.process.cli import Parser, boolean, env_flag, env_name, kafka_env, secret_file

DEFAULT_BOOTSTRAP = "localhost:9092"
# The series id (and record key) the producer gives SILSO's series; with `--series-count N`,
# `silso-0` ... `silso-<N-1>`.
DEFAULT_SERIES = "silso"

SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


class Secret(str):
    """A password: the string itself for the client, `'***'` wherever it is shown (a repr in a
    log line, an exception, a dataclass's repr)."""

    def __repr__(self) -> str:
        return "'***'"


@dataclass(frozen=True)
class SecurityFlag:
    """A security flag: the kafka-python keyword argument it sets, and how it is read."""

    kwarg: str
    help: str
    type: Callable[[str], Any] = str
    choices: tuple[str, ...] | None = None
    secret: bool = False  # a password: also read from a file (`<flag>-file`), never shown


# Flag -> how it maps to kafka-python, for SASL/SSL clusters. Unset ones are not passed, so
# kafka-python's defaults (PLAINTEXT, no SASL, host names checked) apply.
SECURITY_FLAGS = {
    "--security-protocol": SecurityFlag(
        "security_protocol", "how to connect (default: PLAINTEXT)", choices=PROTOCOLS
    ),
    "--sasl-mechanism": SecurityFlag(
        "sasl_mechanism", "SASL mechanism (default: PLAIN)", choices=SASL_MECHANISMS
    ),
    "--sasl-username": SecurityFlag("sasl_plain_username", "SASL user name"),
    "--sasl-password": SecurityFlag(
        "sasl_plain_password",
        "SASL password (prefer the variable or the file: flags show in the process list)",
        secret=True,
    ),
    "--ssl-cafile": SecurityFlag("ssl_cafile", "CA certificate file (PEM) to verify the brokers"),
    "--ssl-certfile": SecurityFlag("ssl_certfile", "client certificate file (PEM), for mutual TLS"),
    "--ssl-keyfile": SecurityFlag("ssl_keyfile", "client private key file (PEM), for mutual TLS"),
    "--ssl-password": SecurityFlag(
        "ssl_password", "password of the client private key file", secret=True
    ),
    "--ssl-check-hostname": SecurityFlag(
        "ssl_check_hostname",
        "check that the broker's certificate names the host connected to (true/false; "
        "default: true)",
        type=boolean,
    ),
}


# The codec the commands that produce write (`add_kafka_flags(..., produces=True)`).
COMPRESSION_FLAG = "--compression-type"


def secret_file_flag(flag: str) -> str:
    """The flag that reads secret `flag` from a file: --sasl-password -> --sasl-password-file."""
    return f"{flag}-file"


# The forecaster's state changelog is compacted, so only the last state of each series is kept.
CHANGELOG_CONFIGS = {
    "cleanup.policy": "compact",
    "segment.ms": "60000",
    "min.cleanable.dirty.ratio": "0.1",
}

# The largest model record the models topic takes (`sunspots.lifecycle.records.MAX_RECORD_BYTES`, 1 MiB)
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
    # A challenger's forecasts and evaluations, beside the champion's (sunspots.lifecycle.lanes).
    forecasts_shadow: str = _topic("sunspots.forecasts.shadow")
    evaluations_shadow: str = _topic("sunspots.evaluations.shadow")
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
    """How every client of a command reaches the brokers: the bootstrap servers, the topic names,
    the security settings and the producers' compression, read once at the edge."""

    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    topics: Topics = field(default_factory=Topics)
    # (kafka-python keyword, value) pairs; passwords are `Secret`s, so a repr never shows them
    security: tuple[tuple[str, Any], ...] = ()
    # The codec of the record batches this command's producers write (--compression-type,
    # given only to the commands that produce); readers read every codec whatever it is.
    compression_type: str = DEFAULT_COMPRESSION

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by every kafka-python client."""
        return {
            "bootstrap_servers": self.bootstrap_servers.split(","),
            # kafka-python backs off reconnects up to 30 s by default, so a service would sit
            # idle long after a broker bounce; a 1 s ceiling resumes promptly.
            "reconnect_backoff_max_ms": 1000,
            **dict(self.security),
        }

    def producer_kwargs(self) -> dict[str, Any]:
        """`client_kwargs` and what every producer of the project shares: the compression."""
        return {
            **self.client_kwargs(),
            "compression_type": kafka_python_value(self.compression_type),
        }

    @property
    def principal(self) -> str:
        """Who the brokers see: `User:alice` with SASL, else what the protocol makes of it."""
        security = dict(self.security)
        user = security.get("sasl_plain_username")
        if user and security.get("security_protocol", "").startswith("SASL_"):
            return f"User:{user}"
        if security.get("ssl_certfile"):
            return "the principal of the client certificate"
        return "User:ANONYMOUS"


def add_kafka_flags(parser: argparse.ArgumentParser, produces: bool = False) -> None:
    """The connection, security and topic flags; `produces`: also --compression-type, for
    the commands that write to Kafka."""
    group = parser.add_argument_group("kafka")
    flag = "--bootstrap-servers"
    env_flag(group, flag, DEFAULT_BOOTSTRAP, "comma-separated Kafka brokers", env=kafka_env(flag))
    if produces:
        flag = COMPRESSION_FLAG
        env_flag(
            group,
            flag,
            DEFAULT_COMPRESSION,
            "codec of the record batches this command writes (every codec is read, whatever "
            "this is)",
            env=kafka_env(flag),
            choices=COMPRESSION_TYPES,
        )
    for flag, spec in SECURITY_FLAGS.items():
        env_flag(
            group, flag, None, spec.help, type=spec.type, env=kafka_env(flag), choices=spec.choices
        )
        if spec.secret:
            file_flag = secret_file_flag(flag)
            env_flag(
                group,
                file_flag,
                None,
                f"file holding the {flag[2:].replace('-', ' ')}, e.g. a Docker secret "
                f"(instead of {flag})",
                type=secret_file,
                env=kafka_env(file_flag),
            )
    if isinstance(parser, Parser):
        parser.add_check(check_security)
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


def check_security(args: argparse.Namespace) -> None:
    """The security flags make sense together: each secret given once, SASL complete."""
    for flag, spec in SECURITY_FLAGS.items():
        file_flag = secret_file_flag(flag)
        if spec.secret and getattr(args, _dest(flag)) and getattr(args, _dest(file_flag)):
            raise ValueError(
                f"{flag} ({kafka_env(flag)}) and {file_flag} ({kafka_env(file_flag)}) are both "
                "set; give the secret one way"
            )
    security = dict(_security(args))
    protocol = security.get("security_protocol", "PLAINTEXT")
    if protocol.startswith("SASL_"):
        missing = [
            flag
            for flag in ("--sasl-username", "--sasl-password")
            if SECURITY_FLAGS[flag].kwarg not in security
        ]
        if missing:
            raise ValueError(
                f"--security-protocol {protocol} needs "
                + " and ".join(f"{m} ({kafka_env(m)})" for m in missing)
            )
    elif "sasl_mechanism" in security or "sasl_plain_username" in security:
        raise ValueError(
            f"SASL settings are given but --security-protocol is {protocol}: set SASL_SSL "
            "(or SASL_PLAINTEXT) to authenticate with them"
        )


def _security(args: argparse.Namespace) -> tuple[tuple[str, Any], ...]:
    """The security settings given, as (kafka-python keyword, value); secrets as `Secret`s,
    from the flag, the variable or the file."""
    pairs = []
    for flag, spec in SECURITY_FLAGS.items():
        value = getattr(args, _dest(flag))
        if spec.secret:
            value = value or getattr(args, _dest(secret_file_flag(flag)))
            value = Secret(value) if value else None
        if value is not None and value != "":
            pairs.append((spec.kwarg, value))
    return tuple(pairs)


def kafka_settings_from_args(args: argparse.Namespace) -> KafkaSettings:
    topics = Topics(**{name: getattr(args, f"topic_{name}") for name in Topics.specs()})
    # A command that does not produce has no --compression-type, and no use for it.
    compression = getattr(args, _dest(COMPRESSION_FLAG), DEFAULT_COMPRESSION)
    return KafkaSettings(args.bootstrap_servers, topics, _security(args), compression)


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")
