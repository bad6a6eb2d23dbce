"""Client security settings: every one a flag and a variable, secrets from files, checked at
start, never shown."""

from __future__ import annotations

import pytest

from sunspots.kafka.settings import (
    SECURITY_FLAGS,
    add_kafka_flags,
    kafka_settings_from_args,
    secret_file_flag,
)
from sunspots.process.cli import Parser, kafka_env


def _parse(*argv: str):
    parser = Parser(prog="test")
    add_kafka_flags(parser)
    return kafka_settings_from_args(parser.parse_args(list(argv)))


def _usage_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stopped:
        _parse(*argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_help_shows_every_security_variable_and_the_secret_files() -> None:
    parser = Parser(prog="test")
    add_kafka_flags(parser)
    shown = " ".join(parser.format_help().split())
    for flag, spec in SECURITY_FLAGS.items():
        assert f"[env: {kafka_env(flag)}]" in shown
        if spec.secret:
            assert f"[env: {kafka_env(secret_file_flag(flag))}]" in shown
    assert "[env: KAFKA_SASL_PASSWORD_FILE]" in shown
    assert "[env: KAFKA_SSL_PASSWORD_FILE]" in shown


def test_a_secret_file_is_read_without_its_line_break(monkeypatch, tmp_path) -> None:
    secret = tmp_path / "sasl"
    secret.write_text("s3cret-value\n")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    key = tmp_path / "key"
    key.write_text("key-pass")
    kafka = _parse(
        "--security-protocol", "SASL_SSL", "--sasl-mechanism", "SCRAM-SHA-256",
        "--sasl-username", "alice", "--ssl-password-file", str(key),
        "--ssl-check-hostname", "false",
    )  # fmt: skip
    kwargs = kafka.client_kwargs()
    assert kwargs["sasl_plain_password"] == "s3cret-value"
    assert kwargs["ssl_password"] == "key-pass"
    assert kwargs["ssl_check_hostname"] is False
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert "s3cret" not in repr(kafka) and "key-pass" not in repr(kafka)
    assert kafka.principal == "User:alice"


def test_a_secret_given_twice_is_refused(monkeypatch, tmp_path, capsys) -> None:
    secret = tmp_path / "sasl"
    secret.write_text("from-the-file")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "from-the-variable")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret))
    err = _usage_error(capsys, "--security-protocol", "SASL_SSL", "--sasl-username", "a")
    assert "--sasl-password (KAFKA_SASL_PASSWORD) and --sasl-password-file" in err
    assert "from-the" not in err


def test_an_unreadable_secret_file_is_named_not_shown(monkeypatch, tmp_path, capsys) -> None:
    missing = tmp_path / "absent"
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(missing))
    err = _usage_error(capsys, "--security-protocol", "SASL_SSL", "--sasl-username", "a")
    assert f"cannot read the secret file {missing}: No such file or directory" in err
    assert "KAFKA_SASL_PASSWORD_FILE" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--security-protocol", "SASL_SSL"], "needs --sasl-username (KAFKA_SASL_USERNAME) and"),
        (["--sasl-username", "a"], "SASL settings are given but --security-protocol is PLAINTEXT"),
        (["--sasl-mechanism", "GSSAPI"], "invalid choice"),
        (["--security-protocol", "TLS"], "invalid choice"),
        (["--ssl-check-hostname", "maybe"], "not a boolean"),
    ],
)
def test_settings_that_cannot_work_stop_the_start(argv, message, capsys) -> None:
    assert message in _usage_error(capsys, *argv)
