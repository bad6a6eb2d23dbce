"""Flags and their environment variables: one naming scheme, strict values, flag over variable."""

from __future__ import annotations

import argparse

import pytest

from sunspots.kafka.settings import SECURITY_FLAGS, add_kafka_flags, kafka_settings_from_args
from sunspots.process.cli import (
    RENAMED_ENV,
    Parser,
    boolean,
    env_flag,
    env_name,
    iso_date,
    kafka_env,
    non_negative_float,
    port,
    positive_float,
    positive_int,
)


def test_the_variable_is_derived_from_the_flag() -> None:
    assert env_name("--metrics-port") == "SUNSPOTS_METRICS_PORT"
    assert env_name("--topic-dead-letter") == "SUNSPOTS_TOPIC_DEAD_LETTER"
    assert kafka_env("--bootstrap-servers") == "KAFKA_BOOTSTRAP_SERVERS"
    assert kafka_env("--sasl-password") == "KAFKA_SASL_PASSWORD"


def _parser(**kwargs: object) -> Parser:
    parser = Parser(prog="test")
    env_flag(parser, "--count", 3, "a count", type=positive_int, **kwargs)
    return parser


def test_precedence_is_flag_then_variable_then_default(monkeypatch) -> None:
    assert _parser().parse_args([]).count == 3
    monkeypatch.setenv("SUNSPOTS_COUNT", "7")
    assert _parser().parse_args([]).count == 7
    assert _parser().parse_args(["--count", "9"]).count == 9


def test_an_empty_variable_counts_as_unset(monkeypatch) -> None:
    monkeypatch.setenv("SUNSPOTS_COUNT", "")
    assert _parser().parse_args([]).count == 3


def test_a_bad_variable_is_a_usage_error_that_names_it(monkeypatch, capsys) -> None:
    monkeypatch.setenv("SUNSPOTS_COUNT", "0")
    with pytest.raises(SystemExit) as exit_:
        _parser().parse_args([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "environment variable SUNSPOTS_COUNT='0' is not valid for --count" in err


def test_help_shows_every_variable() -> None:
    parser = Parser(prog="test")
    add_kafka_flags(parser)
    shown = " ".join(parser.format_help().split())
    for flag in ("--bootstrap-servers", *SECURITY_FLAGS):
        assert f"[env: {kafka_env(flag)}]" in shown
    assert "[env: SUNSPOTS_TOPIC_OBSERVATIONS]" in shown


def test_security_settings_pass_through_only_when_set(monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "secret")
    parser = Parser(prog="test")
    add_kafka_flags(parser)
    kafka = kafka_settings_from_args(parser.parse_args(["--sasl-username", "alice"]))
    assert dict(kafka.security) == {
        "security_protocol": "SASL_SSL",
        "sasl_plain_username": "alice",
        "sasl_plain_password": "secret",
    }
    assert kafka.client_kwargs()["sasl_plain_username"] == "alice"


def test_a_plain_argumentparser_is_refused() -> None:
    # It would leave a variable's value unchecked.
    with pytest.raises(TypeError, match="Parser"):
        env_flag(argparse.ArgumentParser(), "--count", 3)


def test_renamed_variables_are_old_names_mapped_to_the_scheme() -> None:
    assert all(new.startswith("SUNSPOTS_") for new in RENAMED_ENV.values())
    assert not any(old.startswith(("SUNSPOTS_", "KAFKA_")) for old in RENAMED_ENV)


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("TRUE", True), ("yes", True), ("1", True), ("False", False), ("0", False)],
)
def test_booleans(text: str, value: bool) -> None:
    assert boolean(text) is value


@pytest.mark.parametrize("text", ["on", "off", "y", "", "2", "truee"])
def test_anything_else_is_not_a_boolean(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="not a boolean"):
        boolean(text)


@pytest.mark.parametrize(
    ("convert", "bad"),
    [
        (port, "0"),
        (port, "65536"),
        (port, "http"),
        (positive_int, "0"),
        (positive_int, "1.5"),
        (non_negative_float, "-1"),
        (non_negative_float, "nan"),
        (non_negative_float, "inf"),
        (positive_float, "0"),
        (positive_float, "-2"),
        (iso_date, "2017-02-30"),
        (iso_date, "30/06/2017"),
    ],
)
def test_types_refuse_with_a_reason(convert, bad: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=repr(bad).replace("(", r"\(")):
        convert(bad)


def test_the_progress_bounds_reach_the_service_config(monkeypatch) -> None:
    from consumer.config import build_parser, config_from_args

    monkeypatch.setenv("SUNSPOTS_STALL_LIMIT", "0")
    args = build_parser().parse_args(["classify", "--stall-timeout", "7.5"])
    config = config_from_args(args)
    assert (config.stall_timeout_s, config.stall_limit_s, config.shutdown_grace_s) == (7.5, 0, 20)
