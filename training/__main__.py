"""Command line: `python -m training forecaster|seeds|classifier|calibrate|intervals` (also
`sunspots-train`), and `publish|retire|promote` for the models topic (`sunspots.lifecycle.publishing`, no
TensorFlow)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from sunspots.domain.data import SILSO_DAILY_URL, DataFormatError, load_daily
from sunspots.kafka.settings import add_kafka_flags, kafka_settings_from_args
from sunspots.lifecycle.records import CHALLENGER, ROLES
from sunspots.process.cli import (
    EXIT_USAGE,
    Parser,
    boolean,
    env_flag,
    iso_date,
    non_negative_float,
    positive_int,
)
from sunspots.process.logs import add_logging_flags, setup_logging

log = logging.getLogger("training")
MODEL_COMMANDS = ("publish", "retire", "promote")


def _optional_date(text: str) -> str | None:
    """An ISO date, or None for an empty value (no limit)."""
    return iso_date(text) if text else None


def _optional(text: str) -> str | None:
    return text or None


def _forecaster_flags(sub: argparse.ArgumentParser) -> None:
    env_flag(sub, "--data", SILSO_DAILY_URL, "SILSO daily CSV path or URL")
    env_flag(sub, "--end", "2017-06-30", "last date used (YYYY-MM-DD)", type=_optional_date)
    env_flag(
        sub, "--start", None, "first date used, for quick runs (YYYY-MM-DD)", type=_optional_date
    )
    env_flag(sub, "--window", 10, "input window length in days", type=positive_int)
    env_flag(sub, "--seed", 0, "random seed", type=int)
    env_flag(sub, "--epochs", 100, "maximum epochs (early stopping)", type=positive_int)
    env_flag(sub, "--batch-size", 256, "minibatch size", type=positive_int)
    env_flag(
        sub,
        "--huber-delta",
        0.25,
        "Huber loss delta on the scaled target",
        type=non_negative_float,
    )
    env_flag(sub, "--patience", 5, "early-stopping patience", type=positive_int)
    env_flag(
        sub,
        "--validation-from",
        1990,
        "first validation year (carved from the training years)",
        type=int,
    )
    env_flag(sub, "--test-from", 2000, "first test year", type=int)
    env_flag(
        sub,
        "--name",
        None,
        "artifact base name (default sunspot_lstm, or sunspot_lstm_w<window>)",
        type=_optional,
    )
    env_flag(sub, "--reports", "reports", "report directory", type=Path)


def _common_flags(sub: argparse.ArgumentParser) -> None:
    env_flag(sub, "--out", "models", "artifact directory", type=Path)
    env_flag(sub, "--threads", 2, "TensorFlow intra-op threads", type=positive_int)
    add_logging_flags(sub)


def _seed_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not comma-separated integers: {text!r}") from None


def _role(text: str) -> str:
    if text not in ROLES:
        raise argparse.ArgumentTypeError(f"not a role ({', '.join(ROLES)}): {text!r}")
    return text


def _model_commands(commands: Any) -> None:
    """`publish`, `retire` and `promote`: each with the Kafka flags and the logging flags."""
    publish = commands.add_parser(
        "publish", help="publish a forecaster artifact to the models topic under a role"
    )
    publish.add_argument("model_json", type=Path, help="the artifact's .json (its .npz beside)")
    retire = commands.add_parser("retire", help="remove a role's model from the models topic")
    promote = commands.add_parser(
        "promote", help="make the challenger champion, in one transaction"
    )
    for sub in (publish, retire):
        env_flag(sub, "--role", CHALLENGER, f"{' or '.join(ROLES)}", type=_role)
    for sub in (publish, retire, promote):
        add_kafka_flags(sub, produces=True)
        add_logging_flags(sub)


def _topic_source_flags(sub: argparse.ArgumentParser) -> None:
    """Train from an observations topic instead of the file: the topic and the Kafka flags."""
    env_flag(
        sub,
        "--from-topic",
        None,
        "read the data from this observations topic (to its end, read_committed), not --data",
        type=_optional,
    )
    env_flag(sub, "--series", "silso", "with --from-topic: the series to train on")
    add_kafka_flags(sub)


def build_parser() -> argparse.ArgumentParser:
    """The training command line: forecaster, classifier, seeds, and the model commands (publish,
    promote, retire)."""
    parser = Parser(prog="sunspots-train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    forecaster = commands.add_parser("forecaster", help="train the next-day sunspot LSTM")
    _forecaster_flags(forecaster)
    _common_flags(forecaster)
    _topic_source_flags(forecaster)
    seeds = commands.add_parser(
        "seeds", help="retrain the forecaster with several seeds; write <reports>/<name>_seeds.json"
    )
    _forecaster_flags(seeds)
    env_flag(seeds, "--seeds", "0,1,2", "comma-separated seeds", type=_seed_list)
    _common_flags(seeds)
    calibrate = commands.add_parser(
        "calibrate",
        help="recompute the interval section of committed forecaster artifacts from their weights",
    )
    calibrate.add_argument("models", nargs="+", type=Path, help="forecaster artifact (.json)")
    env_flag(calibrate, "--data", SILSO_DAILY_URL, "SILSO daily CSV path or URL")
    env_flag(calibrate, "--reports", "reports", "report directory", type=Path)
    add_logging_flags(calibrate)
    intervals = commands.add_parser(
        "intervals",
        help="print the interval's table by activity band for a replay of a date range",
    )
    env_flag(
        intervals,
        "--model",
        None,
        "forecaster artifact (.json); default: the committed models/sunspot_lstm.json",
        type=Path,
    )
    env_flag(intervals, "--data", SILSO_DAILY_URL, "SILSO daily CSV path or URL")
    env_flag(intervals, "--start", "2000-01-01", "first date replayed (YYYY-MM-DD)", type=iso_date)
    env_flag(intervals, "--end", None, "last date replayed (YYYY-MM-DD)", type=_optional_date)
    env_flag(
        intervals,
        "--floors",
        False,
        "instead: how the volatility floor was chosen on the model's validation years "
        "(true/false; --floors alone: true)",
        type=boolean,
        nargs="?",
        const=True,
    )
    add_logging_flags(intervals)
    classifier = commands.add_parser("classifier", help="train the lesson's toy classifier")
    env_flag(classifier, "--seed", 0, "first random seed", type=int)
    env_flag(classifier, "--epochs", 200, "epochs", type=positive_int)
    _common_flags(classifier)
    _model_commands(commands)
    return parser


def _forecaster_config(args: argparse.Namespace) -> Any:
    from training.forecaster import ForecasterConfig

    return ForecasterConfig(
        data=args.data,
        end=args.end,
        start=args.start,
        window=args.window,
        seed=args.seed,
        epochs=args.epochs,
        batch_size=args.batch_size,
        huber_delta=args.huber_delta,
        patience=args.patience,
        validation_from=args.validation_from,
        test_from=args.test_from,
        name=args.name,
        out=args.out,
        reports=args.reports,
        threads=args.threads,
    )


def main(argv: list[str] | None = None) -> int:
    """`sunspots-train`: one of its commands, told in one line on failure."""
    args = build_parser().parse_args(argv)
    setup_logging(args, service="train")
    if args.command in MODEL_COMMANDS:
        from sunspots.lifecycle.publishing import run

        path = getattr(args, "model_json", None)
        return run(kafka_settings_from_args(args), args.command, path, getattr(args, "role", ""))
    if getattr(args, "from_topic", None):
        code = _data_from_topic(args)
        if code:
            return code
    if args.command != "classifier":
        # Checked before TensorFlow starts, so a bad path or file is one line, not a traceback.
        try:
            load_daily(args.data)
        except (OSError, DataFormatError) as exc:
            log.error("cannot read the sunspot data: %s", exc)
            return EXIT_USAGE
    _run(args)
    return 0


def _data_from_topic(args: argparse.Namespace) -> int:
    """Read the series from `--from-topic` into a data file under `--reports` and point
    `--data` at it; an exit code (with one line) when that cannot be done, else 0."""
    from sunspots.kafka.codecs import refusal
    from sunspots.kafka.errors import KafkaError
    from training.dataset import frame_from_observations, read_observations, write_daily

    lacking = refusal(reads=True)
    if lacking is not None:
        log.error("%s", lacking)
        return EXIT_USAGE
    try:
        records = read_observations(kafka_settings_from_args(args), args.from_topic)
    except KafkaError as exc:
        log.error("cannot read the observations topic %s: %r", args.from_topic, exc)
        return 1
    try:
        frame = frame_from_observations(records, args.series)
    except ValueError as exc:
        log.error("%s: %s", args.from_topic, exc)
        return EXIT_USAGE
    path = write_daily(frame, args.reports / f"{args.from_topic}.{args.series}.csv")
    log.info("read %d days of %s from %s into %s", len(frame), args.series, args.from_topic, path)
    args.data = str(path)
    return 0


def _run(args: argparse.Namespace) -> None:
    if args.command == "calibrate":
        from training.calibration import recalibrate

        for path in args.models:
            recalibrate(path, args.data, args.reports)
    elif args.command == "intervals":
        from sunspots.domain.artifact import DEFAULT_FORECASTER, load_forecaster
        from training.calibration import replay_run

        path = args.model or DEFAULT_FORECASTER
        model = load_forecaster(path)
        if args.floors:
            from training.calibration import artifact_splits, floor_study

            study = floor_study(model, artifact_splits(model.metadata, args.data))
            log.info("volatility floors on the validation years of %s:\n%s", path, study)
            return
        run = replay_run(model, args.data, args.start, args.end)
        log.info("intervals of %s, %s to %s:\n%s", path, args.start, args.end, run.markdown())
    elif args.command == "forecaster":
        from training.forecaster import train_forecaster

        train_forecaster(_forecaster_config(args))
    elif args.command == "seeds":
        from training.seed_study import run_seed_study

        run_seed_study(_forecaster_config(args), args.seeds)
    else:
        from training.classifier import ClassifierConfig, train_classifier

        train_classifier(
            ClassifierConfig(seed=args.seed, epochs=args.epochs, out=args.out, threads=args.threads)
        )


if __name__ == "__main__":
    raise SystemExit(main())
