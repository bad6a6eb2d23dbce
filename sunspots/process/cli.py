"""Command-line flags that fall back to environment variables, and start-up errors in one line.

Every flag of every command has an environment variable, so the same settings work on a laptop
(flags) and in docker compose (environment). The variable's name is derived from the flag, so
there is one naming scheme and nothing to look up: the project's own settings are
`SUNSPOTS_` + the flag in capitals (`--metrics-port` -> `SUNSPOTS_METRICS_PORT`), Kafka's are
`KAFKA_` + the flag (`--bootstrap-servers` -> `KAFKA_BOOTSTRAP_SERVERS`). `--help` shows each
as `[env: NAME]`. Precedence: the flag, then the variable, then the default.

A bad value, from a flag or from the environment, ends the command with one line that names
the setting, and exit code 2 (`EXIT_USAGE`): `Parser.error` drops argparse's screen of usage,
and a variable's value is checked by the same type and choices as the flag's, when the
command line is parsed. Variables renamed when the scheme was introduced are refused with a
line that names the new name, rather than silently ignored.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

ENV_PREFIX = "SUNSPOTS_"
KAFKA_ENV_PREFIX = "KAFKA_"
EXIT_USAGE = 2

# Old name -> new name, for the variables renamed when the one scheme came in: setting an old
# one is an error that says what to set instead (a setting silently ignored is worse). Names
# that other software commonly sets too (LOG_LEVEL, INSTANCE_ID, METRICS_PORT, PROCESSING) are
# left out: a container's unrelated LOG_LEVEL must not stop the service.
RENAMED_ENV = {
    "CONSUMER_GROUP": "SUNSPOTS_GROUP",
    "MAX_POLL_RECORDS": "SUNSPOTS_MAX_POLL_RECORDS",
    "CREATE_TOPICS": "SUNSPOTS_CREATE_TOPICS",
    "ROLLING_EVALUATIONS": "SUNSPOTS_ROLLING",
    "REPLAY_START": "SUNSPOTS_START",
    "REPLAY_END": "SUNSPOTS_END",
    "REPLAY_SPEED": "SUNSPOTS_SPEED",
    "SERIES_ID": "SUNSPOTS_SERIES",
    "SERIES_COUNT": "SUNSPOTS_SERIES_COUNT",
    "SERIES_SHIFT_DAYS": "SUNSPOTS_SERIES_SHIFT_DAYS",
    "CLASSIFY_SEQUENCES": "SUNSPOTS_SEQUENCE",
    "CLASSIFY_TIMEOUT": "SUNSPOTS_TIMEOUT",
    "TOPIC_PARTITIONS": "SUNSPOTS_PARTITIONS",
    "TOPIC_OBSERVATIONS": "SUNSPOTS_TOPIC_OBSERVATIONS",
    "TOPIC_FORECASTS": "SUNSPOTS_TOPIC_FORECASTS",
    "TOPIC_EVALUATIONS": "SUNSPOTS_TOPIC_EVALUATIONS",
    "TOPIC_DEAD_LETTER": "SUNSPOTS_TOPIC_DEAD_LETTER",
    "TOPIC_FORECASTER_STATE": "SUNSPOTS_TOPIC_STATE",
    "TOPIC_CLASSIFIER_REQUESTS": "SUNSPOTS_TOPIC_CLASSIFIER_REQUESTS",
    "TOPIC_CLASSIFIER_PREDICTIONS": "SUNSPOTS_TOPIC_CLASSIFIER_PREDICTIONS",
    "TRAIN_END": "SUNSPOTS_END",
    "TRAIN_START": "SUNSPOTS_START",
    "TRAIN_WINDOW": "SUNSPOTS_WINDOW",
    "TRAIN_SEED": "SUNSPOTS_SEED",
    "TRAIN_SEEDS": "SUNSPOTS_SEEDS",
    "TRAIN_EPOCHS": "SUNSPOTS_EPOCHS",
    "TRAIN_BATCH_SIZE": "SUNSPOTS_BATCH_SIZE",
    "TRAIN_HUBER_DELTA": "SUNSPOTS_HUBER_DELTA",
    "TRAIN_PATIENCE": "SUNSPOTS_PATIENCE",
    "TRAIN_VALIDATION_FROM": "SUNSPOTS_VALIDATION_FROM",
    "TRAIN_TEST_FROM": "SUNSPOTS_TEST_FROM",
    "TRAIN_NAME": "SUNSPOTS_NAME",
    "TRAIN_REPORTS": "SUNSPOTS_REPORTS",
    "TRAIN_OUT": "SUNSPOTS_OUT",
    "TRAIN_THREADS": "SUNSPOTS_THREADS",
}

TRUE_WORDS = ("true", "yes", "1")
FALSE_WORDS = ("false", "no", "0")


def env_name(flag: str, prefix: str = ENV_PREFIX) -> str:
    """The environment variable of `flag`: `--metrics-port` -> `SUNSPOTS_METRICS_PORT`."""
    return prefix + flag.lstrip("-").upper().replace("-", "_")


def kafka_env(flag: str) -> str:
    """The environment variable of a Kafka flag: `--bootstrap-servers` -> `KAFKA_BOOTSTRAP_SERVERS`."""
    return env_name(flag, KAFKA_ENV_PREFIX)


@dataclass(frozen=True)
class EnvValue:
    """A default taken from the environment, checked when the command line is parsed (so that
    a bad value is reported like a bad flag, and a flag given instead overrides it)."""

    flag: str
    env: str
    raw: str
    type: Callable[[str], Any]
    choices: Sequence[Any] | None = None
    renamed_from: str | None = None

    def resolve(self) -> Any:
        """The converted value; ValueError with the reason when it is not valid."""
        if self.renamed_from:
            raise ValueError(
                f"environment variable {self.renamed_from} was renamed {self.env}; set that instead"
            )
        try:
            value = self.type(self.raw)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ValueError(f"{self._where()}: {exc}") from None
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise ValueError(f"{self._where()}: choose from {allowed}")
        return value

    def _where(self) -> str:
        return f"environment variable {self.env}={self.raw!r} is not valid for {self.flag}"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, exit code 2, which checks the values its
    flags took from the environment, and then the checks that span several flags."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.checks: list[Callable[[argparse.Namespace], None]] = []

    def add_check(self, check: Callable[[argparse.Namespace], None]) -> None:
        """Run `check` on the parsed flags; a ValueError it raises is a usage error."""
        self.checks.append(check)

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see {self.prog} --help\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        """Resolve the values taken from the environment, then run the cross-flag checks; any
        ValueError becomes a one-line error and exit 2."""
        parsed, rest = super().parse_known_args(args, namespace)
        for dest, value in vars(parsed).items():
            if isinstance(value, EnvValue):
                try:
                    setattr(parsed, dest, value.resolve())
                except ValueError as exc:
                    self.error(str(exc))
        for check in self.checks:
            try:
                check(parsed)
            except ValueError as exc:
                self.error(str(exc))
        return parsed, rest


def env_flag(
    parser: argparse.ArgumentParser | Any,
    flag: str,
    default: Any = None,
    help: str = "",
    type: Callable[[str], Any] = str,
    env: str | None = None,
    **kwargs: Any,
) -> None:
    """Add `flag`, whose default comes from its environment variable when that is set: by
    default `env_name(flag)`; Kafka flags pass `kafka_env(flag)`, and a flag whose variable
    depends on the command (a mode's model) passes its own."""
    if isinstance(parser, argparse.ArgumentParser) and not isinstance(parser, Parser):
        raise TypeError(
            f"{flag}: env_flag needs a sunspots.process.cli.Parser, which checks the variable"
        )
    env = env or env_name(flag)
    raw = os.environ.get(env)
    old = next((o for o, new in RENAMED_ENV.items() if new == env and os.environ.get(o)), None)
    value: Any = default
    if raw:
        value = EnvValue(flag, env, raw, type, kwargs.get("choices"))
    elif old:
        value = EnvValue(flag, env, os.environ[old], type, renamed_from=old)
    shown = f" (default: {default})" if default not in (None, "") else ""
    parser.add_argument(
        flag, default=value, type=type, help=f"{help}{shown} [env: {env}]", **kwargs
    )


# --- argparse types: each raises ArgumentTypeError with the reason ----------------------------


def iso_date(text: str) -> str:
    """A YYYY-MM-DD date, returned as given once it parses."""
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None
    return text


def boolean(text: str) -> bool:
    """true/false, yes/no, 1/0 in any case; anything else is an error, never a silent false."""
    word = text.strip().lower()
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    allowed = "/".join(f"{t}/{f}" for t, f in zip(TRUE_WORDS, FALSE_WORDS, strict=True))
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r} (use {allowed})")


def secret_file(text: str) -> str:
    """The content of a secret file (a Docker secret), without its final line break; an
    unreadable file is an error that names the file, never its content."""
    try:
        with open(text, encoding="utf-8") as fh:
            content = fh.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise argparse.ArgumentTypeError(f"cannot read the secret file {text}: {reason}") from None
    if not content:
        raise argparse.ArgumentTypeError(f"the secret file {text} is empty")
    return content


def port(text: str) -> int:
    """A TCP port to listen on, 1-65535."""
    value = _integer(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port (1-65535): {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0: {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number ≥ 0, else a one-line argument error."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number ≥ 0: {text!r}")
    return value


def positive_float(text: str) -> float:
    """A finite number above 0 (a duration in seconds)."""
    value = non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError(f"must be above 0: {text!r}")
    return value


def fraction(text: str) -> float:
    """A number from 0 (included) to 1 (excluded)."""
    value = non_negative_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be below 1: {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
