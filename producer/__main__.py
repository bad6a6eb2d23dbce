"""`python -m producer`: replay sunspot observations onto Kafka (`classify`: ask the classifier).

Every flag falls back to an environment variable, shown in --help. Exit codes: 0 when every
record sent was acknowledged (also after SIGTERM or SIGINT, which stop the replay early); 1 when
Kafka refused records with an error a retry will not mend (a record too large); 2 for bad
start-up input (a bad flag or variable, unreadable data, a date range that selects nothing, a
compression library kafka-python lacks: `sunspots.kafka.codecs`);
4 when Kafka is out of reach (at start, or nothing acknowledged within the delivery timeout, or
records still in flight at SIGTERM/SIGINT); 5, 6, 7 when a secured cluster refuses this client:
authentication, authorization (the topic), TLS (`sunspots.kafka.refusal`). Every failure is one line
that names its cause and, once records were sent, the last date acknowledged and how to go on
(`--resume`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from producer.delivery import Delivery, failure_line
from producer.replay import (
    DEFAULT_DELIVERY_TIMEOUT_S,
    MIN_DELIVERY_TIMEOUT_S,
    SHUTDOWN_GRACE_S,
    EmptyRange,
    ReplayConfig,
    Replayer,
    ReplayResult,
)
from sunspots.domain.data import SILSO_DAILY_URL, DataFormatError
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.refusal import EXIT_CODES, UNREACHABLE, explain, from_error, refused_at_start
from sunspots.kafka.settings import (
    DEFAULT_SERIES,
    KafkaSettings,
    add_kafka_flags,
    kafka_settings_from_args,
)
from sunspots.process.cli import (
    EXIT_USAGE,
    Parser,
    boolean,
    env_flag,
    iso_date,
    non_negative_float,
    non_negative_int,
    positive_int,
)
from sunspots.process.logs import add_logging_flags, setup_logging
from sunspots.process.signals import stop_on_signals

log = logging.getLogger("producer")

EXIT_REFUSED = 1  # Kafka answered with an error a retry will not mend
EXIT_UNREACHABLE = EXIT_CODES[UNREACHABLE]  # Kafka out of reach: try again later with --resume


def delivery_timeout(text: str) -> float:
    """Seconds, at least MIN_DELIVERY_TIMEOUT_S (a request and its retries must fit)."""
    value = non_negative_float(text)
    if value < MIN_DELIVERY_TIMEOUT_S:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_DELIVERY_TIMEOUT_S:g} s: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The producer's command line; every flag falls back to its environment variable."""
    parser = Parser(prog="sunspots-producer", description=__doc__)
    env_flag(parser, "--data", SILSO_DAILY_URL, "SILSO daily CSV: path or URL")
    env_flag(parser, "--start", None, "first date to replay (YYYY-MM-DD)", type=iso_date)
    env_flag(parser, "--end", None, "last date to replay (YYYY-MM-DD)", type=iso_date)
    env_flag(
        parser,
        "--speed",
        0.0,
        "simulated days per wall-clock second; 0 = as fast as the broker takes them",
        type=non_negative_float,
    )
    env_flag(parser, "--series", DEFAULT_SERIES, "series id (the record key)")
    env_flag(
        parser,
        "--series-count",
        1,
        "replay this many series (ids <series>-0..N-1), each shifted in time",
        type=positive_int,
    )
    env_flag(
        parser,
        "--series-shift-days",
        27,
        "days by which each further series lags the one before",
        type=non_negative_int,
    )
    env_flag(
        parser,
        "--delivery-timeout",
        DEFAULT_DELIVERY_TIMEOUT_S,
        "seconds Kafka has to acknowledge a record (retries included); when it does not, the "
        "replay stops and exits 4",
        type=delivery_timeout,
    )
    env_flag(
        parser,
        "--resume",
        False,
        "send each series only after the last date it already has on the topic (true/false; "
        "--resume alone: true)",
        type=boolean,
        nargs="?",
        const=True,
    )
    add_kafka_flags(parser, produces=True)
    add_logging_flags(parser)
    return parser


def replay(argv: list[str]) -> int:
    """The replay command: the data read, the topics checked, the replay run, its end told in one
    line with its exit code."""
    args = build_parser().parse_args(argv)
    setup_logging(args, service="producer")
    config = ReplayConfig(
        data=args.data,
        start=args.start,
        end=args.end,
        speed=args.speed,
        series=args.series,
        series_count=args.series_count,
        series_shift_days=args.series_shift_days,
        delivery_timeout_s=args.delivery_timeout,
        resume=args.resume,
    )
    stop = stop_on_signals()
    kafka = kafka_settings_from_args(args)
    # --resume reads the topic, whose batches may come from any producer in any codec.
    refused = refused_at_start(kafka, reads=config.resume)  # --resume reads the topic
    if refused is not None:
        log.error("%s", refused[0])
        return refused[1]
    try:
        result = Replayer(kafka, config, stop).run()
    except (OSError, DataFormatError) as exc:
        log.error("cannot read the sunspot data: %s", exc)
        return EXIT_USAGE
    except EmptyRange as exc:
        log.error("nothing to replay: %s", exc)
        return EXIT_USAGE
    except KafkaError as exc:
        refusal = explain(exc, kafka, _resources(kafka))
        log.error("%s", refusal.line)
        return refusal.exit_code
    return outcome(result, kafka, config.delivery_timeout_s)


def _resources(kafka: KafkaSettings) -> dict[str, str]:
    return {"topic": kafka.topics.observations}


def outcome(result: ReplayResult, kafka: KafkaSettings, timeout_s: float) -> int:
    """Tell how the replay ended, in one line, and return its exit code."""
    delivery = result.delivery
    if not result.ok:
        return _failed(delivery, kafka, timeout_s)
    log.info(
        "done: %d sent, %d delivered, %d failed in %.1f s (%.0f records/s), last date %s%s",
        delivery.sent,
        delivery.acknowledged,
        delivery.lost,
        result.seconds,
        delivery.sent / result.seconds if result.seconds else 0.0,
        result.last_date,
        " (interrupted)" if result.interrupted else "",
    )
    return 0


def _failed(delivery: Delivery, kafka: KafkaSettings, timeout_s: float) -> int:
    """One line for a replay that did not deliver everything; its exit code."""
    error = delivery.error
    refusal = from_error(error, kafka, _resources(kafka)) if error is not None else None
    if refusal is not None:
        log.error("%s; %s", refusal.line, delivery.where())
        return refusal.exit_code
    line = failure_line(delivery, kafka.bootstrap_servers, timeout_s, SHUTDOWN_GRACE_S)
    log.error("%s", line)
    return EXIT_REFUSED if delivery.refused else EXIT_UNREACHABLE


def main(argv: list[str] | None = None) -> int:
    """`sunspots-producer`: replay (default) or classify."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["classify"]:
        from producer.classify import main as classify_main

        return classify_main(argv[1:])
    return replay(argv)


if __name__ == "__main__":
    sys.exit(main())
