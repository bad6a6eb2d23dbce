"""Service logs: plain text for people at a terminal, JSON lines for log collectors.

`--log-format text` (the default) writes `time level logger: message`. `--log-format json`
writes one JSON object per line with `timestamp`, `level`, `logger`, `message`, the `service`
(forecast, classify, producer, ...) and its `instance_id`, and whatever a call site passes in
`extra=`: the log lines that concern one series carry `series`, those that concern partitions
carry `partition` or `partitions`, so a collector can filter on them without parsing messages.
An exception's traceback stays inside its line (`exc_info`).

Some lines come in floods: while a broker is away kafka-python logs every reconnect attempt,
several lines a second, and a stream of bad input makes a dead letter per record.
One limiter, `LogLimiter`, lets the first line of each kind (logger, level, message template
and `reason`) through and holds back its repeats for a minute, then says how many it held back:
an outage or a poison stream is told, not flooded. A line may set its own limit per minute
(`extra={LOG_LIMIT: n}`): the forecaster's unexpected failures show ten a minute, each with its
traceback. (Every dead letter is still on the dead-letter topic and in `*_dead_letters_total`.)

kafka-python's own lines stay below the project's: a client refused its topic or its password
logs three ERROR lines of its own (`ClusterAuthorizationFailedError`, `Topic … is not
authorized`, `Exception occurred waiting for metadata`) before the command's one line that
says the same, and a broker away logs a reconnect attempt several times a second. So its
loggers are silent unless `--log-level debug` is asked for, and then show WARNING and up
(`quiet_kafka`): a failure is told once, by the project, in one line.

`Outage` tells a failure that repeats at each try (a read of a topic, a look at the topics)
once when it begins and once when it ends.
"""

from __future__ import annotations

import argparse
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from sunspots.process.cli import env_flag

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
KAFKA_LOGGER = "kafka"
# Above CRITICAL: no line of kafka-python's passes.
SILENT = logging.CRITICAL + 1
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_level(text: str) -> str:
    """An argparse type: a logging level name, in any case."""
    level = text.strip().upper()
    if level not in LEVELS:
        raise argparse.ArgumentTypeError(f"not a log level: {text!r} (one of {', '.join(LEVELS)})")
    return level


def add_logging_flags(parser: argparse.ArgumentParser | Any) -> None:
    """Add `--log-level` and `--log-format` (each also read from its environment variable), as
    every command takes them."""
    env_flag(parser, "--log-level", "INFO", "logging level", type=log_level)
    env_flag(
        parser,
        "--log-format",
        "text",
        "text for a terminal, json for one JSON object per line",
        choices=FORMATS,
    )


def setup_logging(args: argparse.Namespace, service: str, instance_id: str | None = None) -> None:
    """Configure the root logger from `--log-level` and `--log-format`, once, at start."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(args.log_format, service, instance_id or socket.gethostname()))
    handler.addFilter(LogLimiter((KAFKA_LOGGER, "consumer.processor")))
    logging.basicConfig(level=args.log_level, handlers=[handler], force=True)
    # Python's warnings go through the same handler, so a JSON log stays all JSON.
    logging.captureWarnings(True)
    quiet_kafka(args.log_level)


def quiet_kafka(log_level: str = "INFO") -> None:
    """kafka-python's loggers: WARNING and up at `--log-level debug`, silent otherwise (its
    failures are the project's to tell, once). The demo and the benchmarks, which run clients
    in their own process without `setup_logging`, call it too."""
    debug = log_level.upper() == "DEBUG"
    logging.getLogger(KAFKA_LOGGER).setLevel(logging.WARNING if debug else SILENT)


def formatter(log_format: str, service: str, instance_id: str) -> logging.Formatter:
    """The formatter of `--log-format`: one JSON object a line, with the service and instance, or
    plain text."""
    if log_format == "json":
        return JsonFormatter(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"service": service, "instance_id": instance_id},
            timestamp=True,
        )
    return logging.Formatter(TEXT_FORMAT)


LOG_LIMIT = "log_limit"  # the `extra=` key with which a line sets its own limit per window


class LogLimiter(logging.Filter):
    """The one log limiter: at most `limit` lines of each kind (logger, level, message template
    and `reason`) per `window_s` seconds; the first line shown after a window says how many it
    held back. The loggers under `prefixes` are limited to one line a window; a line anywhere
    may set its own limit with `extra={LOG_LIMIT: n}` (the forecaster's internal errors: ten a
    minute, each with its traceback)."""

    def __init__(
        self,
        prefixes: tuple[str, ...],
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.prefixes = prefixes
        self.window_s = window_s
        self.clock = clock
        self.windows: dict[tuple[str, int, str, object], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a line over its limit in the current window; the first line of a new window
        tells how many were held back."""
        limit = self._limit(record)
        if limit is None:
            return True
        key = (record.name, record.levelno, str(record.msg), getattr(record, "reason", None))
        window = self.windows.get(key)
        now = self.clock()
        if window is None or now - window.started >= self.window_s:
            held = window.held if window else 0
            window = self.windows[key] = _Window(now)
            if held:
                record.msg = (
                    f"{record.msg} [{held} more like it held back since the last one shown]"
                )
        if window.shown >= limit:
            window.held += 1
            return False
        window.shown += 1
        return True

    def _limit(self, record: logging.LogRecord) -> int | None:
        own = getattr(record, LOG_LIMIT, None)
        if own is not None:
            return int(own)
        name = record.name
        if any(name == p or name.startswith(p + ".") for p in self.prefixes):
            return 1
        return None


class _Window:
    """One kind of line's current window: when it began, lines shown and held back in it."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.shown = 0
        self.held = 0


class Outage:
    """A failure that may last several tries: told once as it begins, once as it ends."""

    def __init__(self, logger: logging.Logger, failed: str, recovered: str) -> None:
        self.logger = logger
        self.failed_line = failed  # a %-template of the exception: "reading X failed (%s)"
        self.recovered_line = recovered
        self.lasting = False

    def failed(self, exc: BaseException) -> None:
        if not self.lasting:
            self.logger.warning(self.failed_line, exc)
        self.lasting = True

    def over(self) -> None:
        if self.lasting:
            self.logger.info(self.recovered_line)
        self.lasting = False
