"""Every Kafka codec is readable, and the commands that write take --compression-type.

A reader meets whatever codec a producer chose, so a command that reads Kafka needs all of
kafka-python's codec libraries and refuses to start without one (the subprocess cases, with a
library hidden from the import system as a stripped install would lack it, are in
test_startup_errors.py). The flag exists on exactly the commands that produce, and reaches
kafka-python as its own `compression_type`.
"""

from __future__ import annotations

import pytest
from kafka import codec
from kafka.record.default_records import DefaultRecordBatch

from consumer.config import build_parser as consumer_parser
from consumer.config import config_from_args
from producer.__main__ import build_parser as replay_parser
from producer.classify import build_parser as classify_parser
from sunspots.kafka.codecs import (
    COMPRESSION_TYPES,
    DEFAULT_COMPRESSION,
    kafka_python_value,
    missing,
    refusal,
)
from sunspots.kafka.settings import KafkaSettings, add_kafka_flags, kafka_settings_from_args
from sunspots.process.cli import Parser
from training.__main__ import build_parser as train_parser

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _no_variable(monkeypatch) -> None:
    monkeypatch.delenv("KAFKA_COMPRESSION_TYPE", raising=False)


def test_this_install_reads_and_writes_every_codec() -> None:
    # The lock installs kafka-python's codec extras; a stripped install would fail here first.
    assert missing(reads=True) == []
    assert refusal(reads=True, writes="zstd") is None


def test_the_names_are_in_the_order_of_kafkas_codec_ids() -> None:
    ids = [
        DefaultRecordBatch.CODEC_NONE,
        DefaultRecordBatch.CODEC_GZIP,
        DefaultRecordBatch.CODEC_SNAPPY,
        DefaultRecordBatch.CODEC_LZ4,
        DefaultRecordBatch.CODEC_ZSTD,
    ]
    assert [COMPRESSION_TYPES[i] for i in ids] == ["none", "gzip", "snappy", "lz4", "zstd"]


def _without(monkeypatch, *checks: str) -> None:
    for check in checks:
        monkeypatch.setattr(codec, check, lambda: False)


def test_a_reader_without_a_library_is_refused_naming_each_and_the_install(monkeypatch) -> None:
    _without(monkeypatch, "has_snappy", "has_zstd")
    line = refusal(reads=True)
    assert line is not None and "\n" not in line
    assert "cannot read snappy and zstd record batches" in line
    assert "python-snappy and zstandard libraries are not installed" in line
    assert "pip install 'kafka-python[lz4,snappy,zstd]'" in line


def test_a_writer_needs_only_the_codec_it_writes(monkeypatch) -> None:
    _without(monkeypatch, "has_lz4")
    assert refusal(reads=False, writes="gzip") is None
    assert refusal(reads=False, writes="none") is None
    line = refusal(reads=False, writes="lz4")
    assert line is not None and "cannot write lz4 record batches: the lz4 library is" in line
    # Reading needs it too, whatever the command writes.
    assert "cannot read lz4" in str(refusal(reads=True, writes="gzip"))


def test_kafka_python_is_given_its_own_names() -> None:
    assert kafka_python_value("none") is None
    assert [kafka_python_value(c) for c in COMPRESSION_TYPES[1:]] == list(COMPRESSION_TYPES[1:])
    with pytest.raises(ValueError, match="not a compression type"):
        kafka_python_value("brotli")


def test_producers_get_the_codec_and_consumers_never_see_it() -> None:
    kafka = KafkaSettings("b:9092", compression_type="zstd")
    assert kafka.producer_kwargs()["compression_type"] == "zstd"
    assert (
        KafkaSettings("b:9092", compression_type="none").producer_kwargs()["compression_type"]
        is None
    )
    # kafka-python's consumers and admin clients refuse settings they do not know.
    assert "compression_type" not in kafka.client_kwargs()
    assert KafkaSettings("b:9092").compression_type == DEFAULT_COMPRESSION


# --- the flag, on the commands that write and only there -------------------------------------


def _consumer(*argv: str) -> str:
    mode = argv[0]
    return config_from_args(consumer_parser().parse_args([mode, *argv[1:]])).kafka.compression_type


def _settings(parser: Parser, *argv: str) -> str:
    return kafka_settings_from_args(parser.parse_args(list(argv))).compression_type


@pytest.mark.parametrize(
    "read",
    [
        lambda *a: _consumer("forecast", *a),
        lambda *a: _consumer("classify", *a),
        lambda *a: _settings(replay_parser(), *a),
        lambda *a: _settings(classify_parser(), "--sequence", "0,1", *a),
        lambda *a: _settings(train_parser(), "publish", "m.json", *a),
        lambda *a: _settings(train_parser(), "promote", *a),
        lambda *a: _settings(train_parser(), "retire", *a),
    ],
    ids=["forecast", "classify", "replay", "classify-client", "publish", "promote", "retire"],
)
def test_every_command_that_writes_takes_the_flag_and_its_variable(read, monkeypatch) -> None:
    assert read() == DEFAULT_COMPRESSION
    assert read("--compression-type", "gzip") == "gzip"
    monkeypatch.setenv("KAFKA_COMPRESSION_TYPE", "snappy")
    assert read() == "snappy"
    assert read("--compression-type", "none") == "none"  # the flag wins


def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch, capsys) -> None:
    monkeypatch.setenv("KAFKA_COMPRESSION_TYPE", "brotli")
    with pytest.raises(SystemExit) as exit_:
        replay_parser().parse_args([])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "KAFKA_COMPRESSION_TYPE='brotli' is not valid for --compression-type" in err


def test_commands_that_only_read_have_no_flag(capsys) -> None:
    parser = Parser(prog="reader")
    add_kafka_flags(parser)
    assert "--compression-type" not in parser.format_help()
    for argv in (["forecaster", "--compression-type", "lz4"], ["--compression-type", "lz4"]):
        with pytest.raises(SystemExit):
            (train_parser() if argv[0] == "forecaster" else parser).parse_args(argv)
    assert "unrecognized arguments: --compression-type" in capsys.readouterr().err
