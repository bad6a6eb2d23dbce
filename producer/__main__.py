"""`python -m producer`: replay sunspot observations onto Kafka (`classify`: ask the classifier).

Every flag falls back to an environment variable, shown in --help.
"""

from __future__ import annotations

import argparse
import logging
import sys

from kafka.errors import KafkaError

from producer.replay import ReplayConfig, Replayer
from sunspots.cli import add_logging_flag, env_flag, iso_date, setup_logging
from sunspots.data import SILSO_DAILY_URL, DataFormatError
from sunspots.settings import add_kafka_flags, kafka_settings_from_args
from sunspots.signals import stop_on_signals

log = logging.getLogger("producer")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sunspots-producer", description=__doc__)
    env_flag(parser, "--data", "SUNSPOTS_DATA", SILSO_DAILY_URL, "SILSO daily CSV: path or URL")
    env_flag(
        parser, "--start", "REPLAY_START", None, "first date to replay (YYYY-MM-DD)", type=iso_date
    )
    env_flag(parser, "--end", "REPLAY_END", None, "last date to replay (YYYY-MM-DD)", type=iso_date)
    env_flag(
        parser,
        "--speed",
        "REPLAY_SPEED",
        0.0,
        "simulated days per wall-clock second; 0 = as fast as the broker takes them",
        type=float,
    )
    env_flag(parser, "--series", "SERIES_ID", "silso", "series id (the record key)")
    env_flag(
        parser,
        "--series-count",
        "SERIES_COUNT",
        1,
        "replay this many series (ids <series>-0..N-1), each shifted in time",
        type=int,
    )
    env_flag(
        parser,
        "--series-shift-days",
        "SERIES_SHIFT_DAYS",
        27,
        "days by which each further series lags the one before",
        type=int,
    )
    add_kafka_flags(parser)
    add_logging_flag(parser)
    return parser


def replay(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    config = ReplayConfig(
        data=args.data,
        start=args.start,
        end=args.end,
        speed=args.speed,
        series=args.series,
        series_count=args.series_count,
        series_shift_days=args.series_shift_days,
    )
    stop = stop_on_signals()
    kafka = kafka_settings_from_args(args)
    try:
        result = Replayer(kafka, config, stop).run()
    except (OSError, DataFormatError) as exc:
        log.error("cannot read the sunspot data: %s", exc)
        return 2
    except KafkaError as exc:
        log.error("cannot reach Kafka at %s: %s", kafka.bootstrap_servers, exc)
        return 2
    log.info(
        "done: %d sent, %d delivered, %d failed in %.1f s (%.0f records/s), last date %s%s",
        result.sent,
        result.delivered,
        result.failed,
        result.seconds,
        result.sent / result.seconds if result.seconds else 0.0,
        result.last_date,
        " (interrupted)" if result.interrupted else "",
    )
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["classify"]:
        from producer.classify import main as classify_main

        return classify_main(argv[1:])
    return replay(argv)


if __name__ == "__main__":
    sys.exit(main())
