"""The consumer services' settings: flags with env fallbacks, read once into a frozen object.

Each flag's environment variable is derived from its name (`sunspots.cli`); the model's is the
mode's own (`SUNSPOTS_MODEL`, `SUNSPOTS_CLASSIFIER_MODEL`), since one shell or compose file may
configure both services.
"""

from __future__ import annotations

import argparse
import socket
from dataclasses import dataclass
from pathlib import Path

from consumer.modes import MODES, Mode
from consumer.promotion import PromotionPolicy
from consumer.publishing import AT_LEAST_ONCE, EXACTLY_ONCE
from consumer.series_metrics import SeriesSelection
from sunspots.cli import Parser, boolean, env_flag, port, positive_int
from sunspots.logs import add_logging_flags
from sunspots.settings import KafkaSettings, add_kafka_flags, kafka_settings_from_args
from sunspots.topics import Replication, add_replication_flags, replication_from_args


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
    replication: Replication
    max_series: int = 0  # forecast only
    metrics_host: str = "0.0.0.0"
    history: int = 64  # forecast only
    promotion: PromotionPolicy | None = None  # forecast only: None, no automatic promotion
    series_metrics: SeriesSelection | None = None  # forecast only: None, the default selection


def build_parser(description: str | None = None) -> argparse.ArgumentParser:
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
        2000,
        "records per batch (one model call each)",
        type=positive_int,
    )
    env_flag(
        sub,
        "--create-topics",
        "true",
        "create missing topics at start (true/false)",
        type=boolean,
    )
    add_replication_flags(sub)
    add_kafka_flags(sub)
    add_logging_flags(sub)


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    return ServiceConfig(
        mode=MODES[args.mode],
        model=Path(args.model) if args.model else None,
        kafka=kafka_settings_from_args(args),
        group_id=args.group,
        instance_id=args.instance_id,
        processing=args.processing,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        rolling=getattr(args, "rolling", 0),
        max_series=getattr(args, "max_series", 0),
        max_poll_records=args.max_poll_records,
        create_topics=args.create_topics,
        replication=replication_from_args(args),
        history=getattr(args, "history", 64),
        promotion=_promotion(args),
        series_metrics=getattr(args, "series_metrics", None),
    )


def _promotion(args: argparse.Namespace) -> PromotionPolicy | None:
    if not getattr(args, "auto_promote", False):
        return None
    return PromotionPolicy(args.promote_days, args.promote_margin)
