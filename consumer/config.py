"""The consumer services' settings: flags with env fallbacks, read once into a frozen object."""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass
from pathlib import Path

from consumer.modes import MODES, Mode
from consumer.publishing import AT_LEAST_ONCE, EXACTLY_ONCE
from sunspots.cli import add_logging_flag, env_flag
from sunspots.settings import KafkaSettings, add_kafka_flags, kafka_settings_from_args


@dataclass(frozen=True)
class ServiceConfig:
    mode: Mode
    model: Path | None  # None: the mode's committed default artifact
    kafka: KafkaSettings
    group_id: str
    instance_id: str
    processing: str
    metrics_port: int
    rolling: int
    max_poll_records: int
    create_topics: bool
    max_series: int = 0  # forecast only


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sunspots-consumer", description=description)
    subparsers = parser.add_subparsers(dest="mode", required=True)
    for mode in MODES.values():
        _add_mode_flags(subparsers.add_parser(mode.name, help=mode.help), mode)
    return parser


def _add_mode_flags(sub: argparse.ArgumentParser, mode: Mode) -> None:
    env_flag(
        sub,
        "--model",
        mode.model_env,
        None,
        f"{mode.name} artifact (.json); default: the committed models/{mode.default_model.name}",
    )
    env_flag(
        sub, "--metrics-port", "METRICS_PORT", mode.default_port, "HTTP port for /metrics", type=int
    )
    env_flag(sub, "--group", "CONSUMER_GROUP", mode.default_group, "consumer group id")
    mode.add_flags(sub)
    env_flag(
        sub,
        "--instance-id",
        "INSTANCE_ID",
        socket.gethostname(),
        "this process's stable id: names its transactional producer",
    )
    env_flag(
        sub,
        "--processing",
        "PROCESSING",
        EXACTLY_ONCE,
        f"{EXACTLY_ONCE} (transactions) or {AT_LEAST_ONCE}",
        choices=[EXACTLY_ONCE, AT_LEAST_ONCE],
    )
    env_flag(
        sub,
        "--max-poll-records",
        "MAX_POLL_RECORDS",
        2000,
        "records per batch (one model call each)",
        type=int,
    )
    env_flag(
        sub,
        "--create-topics",
        "CREATE_TOPICS",
        "true",
        "create missing topics at start (true/false)",
    )
    add_kafka_flags(sub)
    add_logging_flag(sub)


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    return ServiceConfig(
        mode=MODES[args.mode],
        model=Path(args.model) if args.model else None,
        kafka=kafka_settings_from_args(args),
        group_id=args.group,
        instance_id=args.instance_id,
        processing=args.processing,
        metrics_port=args.metrics_port,
        rolling=getattr(args, "rolling", 0),
        max_series=getattr(args, "max_series", 0),
        max_poll_records=args.max_poll_records,
        create_topics=args.create_topics.lower() in {"1", "true", "yes"},
    )
