"""Command-line flags that fall back to environment variables, shown in `--help`.

Every service flag has an env var so that the same settings work on a laptop (flags) and in
docker compose (environment). Precedence: flag, then env var, then the default.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Callable
from datetime import date
from typing import Any


def env_flag(
    parser: argparse.ArgumentParser | Any,
    flag: str,
    env: str,
    default: Any = None,
    help: str = "",
    type: Callable[[str], Any] = str,
    **kwargs: Any,
) -> None:
    """Add `flag` whose default comes from `env` when that variable is set."""
    raw = os.environ.get(env)
    value = default
    if raw is not None and raw != "":
        try:
            value = type(raw)
        except (TypeError, ValueError) as exc:
            parser.error(f"environment variable {env}={raw!r} is not valid for {flag}: {exc}")
    shown = f" (default: {default})" if default not in (None, "") else ""
    parser.add_argument(
        flag, default=value, type=type, help=f"{help}{shown} [env: {env}]", **kwargs
    )


def iso_date(text: str) -> str:
    """An argparse type: a YYYY-MM-DD date, returned as given once it parses."""
    try:
        date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {text!r}") from None
    return text


def add_logging_flag(parser: argparse.ArgumentParser | Any) -> None:
    env_flag(parser, "--log-level", "LOG_LEVEL", "INFO", "logging level", type=str.upper)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    # kafka-python is chatty at INFO about every connection and rebalance step.
    logging.getLogger("kafka").setLevel(max(logging.getLevelName(level), logging.WARNING))
