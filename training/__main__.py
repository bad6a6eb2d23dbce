"""Command line: `python -m training forecaster|seeds|classifier` (also `sunspots-train`)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from sunspots.cli import add_logging_flag, env_flag, setup_logging
from sunspots.data import SILSO_DAILY_URL

log = logging.getLogger("training")


def _optional(text: str) -> str | None:
    return text or None


def _forecaster_flags(sub: argparse.ArgumentParser) -> None:
    env_flag(sub, "--data", "SUNSPOTS_DATA", SILSO_DAILY_URL, "SILSO daily CSV path or URL")
    env_flag(sub, "--end", "TRAIN_END", "2017-06-30", "last date used (ISO)", type=_optional)
    env_flag(
        sub, "--start", "TRAIN_START", None, "first date used, for quick runs (ISO)", type=_optional
    )
    env_flag(sub, "--window", "TRAIN_WINDOW", 10, "input window length in days", type=int)
    env_flag(sub, "--seed", "TRAIN_SEED", 0, "random seed", type=int)
    env_flag(sub, "--epochs", "TRAIN_EPOCHS", 100, "maximum epochs (early stopping)", type=int)
    env_flag(sub, "--batch-size", "TRAIN_BATCH_SIZE", 256, "minibatch size", type=int)
    env_flag(
        sub,
        "--huber-delta",
        "TRAIN_HUBER_DELTA",
        0.25,
        "Huber loss delta on the scaled target",
        type=float,
    )
    env_flag(sub, "--patience", "TRAIN_PATIENCE", 5, "early-stopping patience", type=int)
    env_flag(
        sub,
        "--validation-from",
        "TRAIN_VALIDATION_FROM",
        1990,
        "first validation year (carved from the training years)",
        type=int,
    )
    env_flag(sub, "--test-from", "TRAIN_TEST_FROM", 2000, "first test year", type=int)
    env_flag(
        sub,
        "--name",
        "TRAIN_NAME",
        None,
        "artifact base name (default sunspot_lstm, or sunspot_lstm_w<window>)",
        type=_optional,
    )
    env_flag(sub, "--reports", "TRAIN_REPORTS", "reports", "report directory", type=Path)


def _common_flags(sub: argparse.ArgumentParser) -> None:
    env_flag(sub, "--out", "TRAIN_OUT", "models", "artifact directory", type=Path)
    env_flag(sub, "--threads", "TRAIN_THREADS", 2, "TensorFlow intra-op threads", type=int)
    add_logging_flag(sub)


def _seed_list(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sunspots-train", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    forecaster = commands.add_parser("forecaster", help="train the next-day sunspot LSTM")
    _forecaster_flags(forecaster)
    _common_flags(forecaster)
    seeds = commands.add_parser(
        "seeds", help="retrain the forecaster with several seeds; write <reports>/<name>_seeds.json"
    )
    _forecaster_flags(seeds)
    env_flag(seeds, "--seeds", "TRAIN_SEEDS", "0,1,2", "comma-separated seeds", type=_seed_list)
    _common_flags(seeds)
    classifier = commands.add_parser("classifier", help="train the lesson's toy classifier")
    env_flag(classifier, "--seed", "TRAIN_SEED", 0, "first random seed", type=int)
    env_flag(classifier, "--epochs", "TRAIN_EPOCHS", 200, "epochs", type=int)
    _common_flags(classifier)
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
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    if args.command == "forecaster":
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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
