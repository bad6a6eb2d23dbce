"""The consumer services' settings: flags with env fallbacks, read once into a frozen object.

Each flag's environment variable is derived from its name (`sunspots.process.cli`); the model's is the
mode's own (`SUNSPOTS_MODEL`, `SUNSPOTS_CLASSIFIER_MODEL`), since one shell or compose file may
configure both services.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass
from pathlib import Path

from consumer.modes import MODES, Mode, ModeSettings
from consumer.publishing import AT_LEAST_ONCE, EXACTLY_ONCE
from consumer.runner import DEFAULT_MAX_POLL_RECORDS
from sunspots.kafka.settings import KafkaSettings, add_kafka_flags, kafka_settings_from_args
from sunspots.kafka.topics import Replication, add_replication_flags, replication_from_args
from sunspots.process.cli import (
    Parser,
    boolean,
    env_flag,
    non_negative_float,
    port,
    positive_float,
    positive_int,
)
from sunspots.process.logs import add_logging_flags

# The progress watchdog (consumer.watchdog) and the bounded stop (consumer.shutdown).
DEFAULT_STALL_TIMEOUT_S = 60.0
DEFAULT_STALL_LIMIT_S = 300.0
DEFAULT_SHUTDOWN_GRACE_S = 20.0


@dataclass(frozen=True)
class ServiceConfig:
    """The service's whole configuration, read once at the edge from flags and environment: the
    mode, its model, the Kafka settings, its group and instance, its metrics port and its
    mode's own settings."""

    mode: Mode
    model: Path | None  # None: the mode's committed default artifact
    kafka: KafkaSettings
    group_id: str
    instance_id: str
    processing: str
    metrics_port: int
    max_poll_records: int
    create_topics: bool
    replication: Replication
    mode_settings: ModeSettings  # the mode's own, read from its own flags
    metrics_host: str = "0.0.0.0"
    stall_timeout_s: float = DEFAULT_STALL_TIMEOUT_S
    stall_limit_s: float = DEFAULT_STALL_LIMIT_S  # 0: report only
    shutdown_grace_s: float = DEFAULT_SHUTDOWN_GRACE_S


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    """The `sunspots-consumer` command line: one subcommand per mode, each with its own flags."""
    parser = Parser(prog="sunspots-consumer", description=description)
    subparsers = parser.add_subparsers(dest="mode", required=True)
    for mode in MODES.values():
        _add_mode_flags(subparsers.add_parser(mode.name, help=mode.help), mode)
    return parser


def _add_mode_flags(sub: argparse.ArgumentParser, mode: Mode) -> None:
    env_flag(
        sub,
        "--model",
        None,
        f"{mode.name} artifact (.json); default: the committed models/{mode.default_model.name}",
        env=mode.model_env,
    )
    env_flag(sub, "--metrics-port", mode.default_port, "HTTP port for /metrics", type=port)
    env_flag(
        sub,
        "--metrics-host",
        "0.0.0.0",
        "address /metrics, /healthz and /readyz listen on (127.0.0.1: this host only)",
    )
    env_flag(sub, "--group", mode.default_group, "consumer group id")
    mode.add_flags(sub)
    env_flag(
        sub,
        "--instance-id",
        socket.gethostname(),
        "this process's stable id: names its transactional producer",
    )
    env_flag(
        sub,
        "--processing",
        EXACTLY_ONCE,
        f"{EXACTLY_ONCE} (transactions) or {AT_LEAST_ONCE}",
        choices=[EXACTLY_ONCE, AT_LEAST_ONCE],
    )
    env_flag(
        sub,
        "--max-poll-records",
        DEFAULT_MAX_POLL_RECORDS,
        "records per batch (one model call, one transaction each); a backlog fills batches",
        type=positive_int,
    )
    env_flag(
        sub,
        "--create-topics",
        "true",
        "create missing topics at start, and mend topics changed while running: create them "
        "again, grow the changelog, set compaction back (true/false; false: exit 8 instead)",
        type=boolean,
    )
    _add_progress_flags(sub)
    add_replication_flags(sub)
    add_kafka_flags(sub, produces=True)  # the outputs, the changelog, dead letters
    add_logging_flags(sub)


def _add_progress_flags(sub: argparse.ArgumentParser) -> None:
    """The watchdog's and the shutdown's bounds: nothing waits for ever."""
    env_flag(
        sub,
        "--stall-timeout",
        DEFAULT_STALL_TIMEOUT_S,
        "seconds an assigned partition may have records waiting without progress before it is "
        "reported stalled (a WARNING line, /readyz 503, sunspot_consumer_stalled)",
        type=positive_float,
    )
    env_flag(
        sub,
        "--stall-limit",
        DEFAULT_STALL_LIMIT_S,
        "seconds of such a stall after which the service exits with code 9 for a restart; 0: "
        "report only, never exit",
        type=non_negative_float,
    )
    env_flag(
        sub,
        "--shutdown-grace",
        DEFAULT_SHUTDOWN_GRACE_S,
        "seconds SIGTERM/SIGINT gives the batch in hand; past them the service exits with "
        "code 9 without committing (a second signal exits at once)",
        type=positive_float,
    )
    sub.add_check(_check_stall_limit)  # type: ignore[attr-defined]


def _check_stall_limit(args: argparse.Namespace) -> None:
    if 0 < args.stall_limit < args.stall_timeout:
        raise ValueError(
            f"--stall-limit ({args.stall_limit:g} s) must be 0 or at least --stall-timeout "
            f"({args.stall_timeout:g} s)"
        )


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    """The frozen configuration from parsed arguments; a bad combination is a usage error (exit 2)."""
    mode = MODES[args.mode]
    return ServiceConfig(
        mode=mode,
        model=Path(args.model) if args.model else None,
        kafka=kafka_settings_from_args(args),
        group_id=args.group,
        instance_id=args.instance_id,
        processing=args.processing,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        max_poll_records=args.max_poll_records,
        create_topics=args.create_topics,
        replication=replication_from_args(args),
        mode_settings=mode.read_settings(args),
        stall_timeout_s=args.stall_timeout,
        stall_limit_s=args.stall_limit,
        shutdown_grace_s=args.shutdown_grace,
    )
