"""Service logs: JSON lines with the service's identity and the call site's fields; floods of
one kind of line held back and counted."""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys

import pytest

from sunspots.process.logs import LOG_LIMIT, LogLimiter, Outage, formatter, log_level


def _record(name: str = "consumer.recovery", msg: str = "partitions assigned: %s", **extra):
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, ([0, 1],), None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_the_service_the_instance_and_the_call_sites_fields() -> None:
    line = formatter("json", "forecast", "forecaster-1").format(
        _record(partitions=[0, 1], series="silso")
    )
    fields = json.loads(line)
    assert fields["message"] == "partitions assigned: [0, 1]"
    assert fields["level"] == "INFO" and fields["logger"] == "consumer.recovery"
    assert (fields["service"], fields["instance_id"]) == ("forecast", "forecaster-1")
    assert fields["partitions"] == [0, 1] and fields["series"] == "silso"
    assert fields["timestamp"].endswith("+00:00")


def test_a_traceback_stays_inside_its_json_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    line = formatter("json", "producer", "host").format(record)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exc_info"]


def test_text_stays_the_default_for_people() -> None:
    line = formatter("text", "forecast", "forecaster-1").format(_record())
    assert line.endswith("INFO consumer.recovery: partitions assigned: [0, 1]")


def test_log_levels_in_any_case_and_nothing_else() -> None:
    assert log_level("debug") == "DEBUG"
    with pytest.raises(argparse.ArgumentTypeError, match="not a log level: 'verbose'"):
        log_level("verbose")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_repeats_are_held_back_then_counted() -> None:
    clock = Clock()
    repeats = LogLimiter(("kafka",), window_s=60, clock=clock)

    def kafka_line() -> logging.LogRecord:
        return _record("kafka.net.manager", "Connection failed: %s")

    assert repeats.filter(kafka_line())
    for second in range(1, 31):
        clock.now = second
        assert not repeats.filter(kafka_line())
    clock.now = 61
    shown = kafka_line()
    assert repeats.filter(shown)
    assert "[30 more like it held back since the last one shown]" in shown.getMessage()
    # Other lines of the same logger, and other loggers, are not held back.
    assert repeats.filter(_record("kafka.net.manager", "Bootstrap %s not ready"))
    assert all(repeats.filter(_record("consumer.runner")) for _ in range(3))


def test_dead_letters_are_held_back_per_reason() -> None:
    repeats = LogLimiter(("consumer.processor",), clock=Clock())

    def dead_letter(reason: str) -> logging.LogRecord:
        return _record("consumer.processor", "dead letter %s", reason=reason)

    assert repeats.filter(dead_letter("not_json"))
    assert not repeats.filter(dead_letter("not_json"))
    assert repeats.filter(dead_letter("duplicate"))


def test_a_line_with_its_own_limit_shows_that_many_a_window_then_says_what_it_held() -> None:
    """Internal-error dead letters carry their own limit (ten a minute, with tracebacks): the
    one limiter shows ten, holds the rest, and the first line of the next minute counts them;
    the plain dead letters beside them keep their one a minute."""
    clock = Clock()
    repeats = LogLimiter(("consumer.processor",), clock=clock)

    def failure() -> logging.LogRecord:
        return _record(
            "consumer.processor",
            "record %s failed; dead-lettered",
            reason="internal_error",
            **{LOG_LIMIT: 10},
        )

    assert [repeats.filter(failure()) for _ in range(14)] == [True] * 10 + [False] * 4
    plain = _record("consumer.processor", "dead letter %s", reason="not_json")
    assert repeats.filter(plain) and not repeats.filter(plain)
    clock.now = 60
    shown = failure()
    assert repeats.filter(shown)
    assert "[4 more like it held back since the last one shown]" in shown.getMessage()
    assert all(repeats.filter(failure()) for _ in range(9))
    assert not repeats.filter(failure())


def test_a_line_outside_the_limited_loggers_passes_unless_it_sets_a_limit() -> None:
    repeats = LogLimiter(("kafka",), clock=Clock())
    assert all(repeats.filter(_record("consumer.runner")) for _ in range(5))
    limited = [repeats.filter(_record("consumer.runner", **{LOG_LIMIT: 2})) for _ in range(3)]
    assert limited == [True, True, False]


# One process per case: setup_logging configures the root logger of the process it runs in.
_LINES = """
import argparse, logging, sys
from sunspots.process.logs import quiet_kafka, setup_logging
level = sys.argv[1]
if level == "none":
    quiet_kafka()  # the demo's and the benchmarks' way: no handler of their own
else:
    setup_logging(argparse.Namespace(log_level=level, log_format="text"), "producer")
for name, lvl, msg in [
    ("kafka.cluster", logging.ERROR, "Topic observations is not authorized for this client"),
    ("kafka.producer.kafka", logging.WARNING, "Exception occurred waiting for metadata"),
    ("kafka.conn", logging.INFO, "connecting to 127.0.0.1:9092"),
    ("producer", logging.ERROR, "the project's one line"),
]:
    logging.getLogger(name).log(lvl, msg)
"""


def _stderr(level: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", _LINES, level], capture_output=True, text=True, check=True
    )
    return [line.split(" ", 2)[2] if level != "none" else line for line in done.stderr.splitlines()]


@pytest.mark.parametrize("level", ["INFO", "WARNING", "ERROR"])
def test_kafka_pythons_lines_are_filtered_below_debug(level: str) -> None:
    assert _stderr(level) == ["ERROR producer: the project's one line"]


def test_at_debug_kafka_pythons_warnings_and_errors_show() -> None:
    assert _stderr("DEBUG") == [
        "ERROR kafka.cluster: Topic observations is not authorized for this client",
        "WARNING kafka.producer.kafka: Exception occurred waiting for metadata",
        "ERROR producer: the project's one line",
    ]


def test_without_setup_logging_quiet_kafka_filters_them_too() -> None:
    # Python's last-resort handler prints bare messages of WARNING and up.
    assert _stderr("none") == ["the project's one line"]


def test_an_outage_is_told_as_it_begins_and_as_it_ends(caplog) -> None:
    caplog.set_level(logging.INFO)
    outage = Outage(logging.getLogger("outage-test"), "reading failed (%s)", "reading again")
    outage.over()  # nothing began: nothing to tell
    for attempt in range(3):
        outage.failed(RuntimeError(f"attempt {attempt}"))
    outage.over()
    outage.over()
    assert caplog.text.count("reading failed (attempt 0)") == 1
    assert "attempt 1" not in caplog.text and caplog.text.count("reading again") == 1
