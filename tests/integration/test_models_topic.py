"""The models topic on the real broker: publish, retire and promote as commands, and the feed
a service reads them with, refusals included."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from sunspots.domain.artifact import MODELS_DIR, load_forecaster
from sunspots.kafka.settings import KafkaSettings, topic_flag
from sunspots.lifecycle import records as registry
from sunspots.lifecycle.feed import ModelFeed
from sunspots.lifecycle.records import Published, Refused, Retired
from support.run_topics import read_to_end, unique_topics

REPO = Path(__file__).resolve().parents[2]
W10 = MODELS_DIR / "sunspot_lstm.json"
W27 = MODELS_DIR / "sunspot_lstm_w27.json"


@pytest.fixture
def kafka(bootstrap_servers, unique, create_topics) -> KafkaSettings:
    return KafkaSettings(bootstrap_servers, create_topics(unique_topics(unique)))


def command(kafka: KafkaSettings, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m training ARGS` on this test's models topic."""
    flags = ["--bootstrap-servers", kafka.bootstrap_servers]
    flags += [topic_flag("models"), kafka.topics.models]
    return subprocess.run(
        [sys.executable, "-m", "training", *args, *flags],
        capture_output=True,
        text=True,
        timeout=120,
    )


def poll_until(feed: ModelFeed, count: int, timeout: float = 60.0) -> list:
    """What the feed returns until it has `count` entries (or the deadline passes)."""
    entries: list = []
    deadline = time.monotonic() + timeout
    while len(entries) < count and time.monotonic() < deadline:
        entries.extend(feed.poll())
        time.sleep(0.05)
    return entries


def test_publish_promote_retire_as_a_service_sees_them(kafka: KafkaSettings) -> None:
    w10, w27 = load_forecaster(W10), load_forecaster(W27)
    for path, role in ((W10, "champion"), (W27, "challenger")):
        done = command(kafka, "publish", str(path), "--role", role)
        assert done.returncode == 0, done.stderr
        assert f"published {load_forecaster(path).model_version} as {role}" in done.stderr

    feed = ModelFeed.connect(kafka)
    try:
        board, refused = feed.current()
        assert refused == []
        assert board.champion.model_version == w10.model_version
        assert board.challenger.model_version == w27.model_version
        assert board.challenger.model.window == 27
        assert feed.poll() == []  # nothing new: it returns at once

        done = command(kafka, "promote")
        assert done.returncode == 0, done.stderr
        entries = poll_until(feed, 2)
        assert [type(e) for e in entries] == [Published, Retired]
        assert entries[0].role == "champion" and entries[0].model_version == w27.model_version
        assert board.champion.model_version == w27.model_version and board.challenger is None

        done = command(kafka, "retire", "--role", "champion")
        assert done.returncode == 0, done.stderr
        assert poll_until(feed, 1) == [Retired("champion")]
        assert board.models == {}
    finally:
        feed.close()

    records = read_to_end(kafka.bootstrap_servers, kafka.topics.models)
    keys = [(r.key, r.value is None) for r in records]
    assert keys == [
        (b"champion", False),
        (b"challenger", False),
        (b"champion", False),
        (b"challenger", True),
        (b"champion", True),
    ]
    # The promotion's two records are one transaction: adjacent, one commit marker after them.
    assert records[3].offset == records[2].offset + 1
    # Every record follows the published contract of the topic.
    document = json.loads((REPO / "schemas" / "model-record.json").read_text())
    validator = Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for record in records:
        if record.value is not None:
            validator.validate(json.loads(record.value))


def test_promote_without_a_challenger_is_bad_input(kafka: KafkaSettings) -> None:
    assert command(kafka, "publish", str(W10), "--role", "champion").returncode == 0
    done = command(kafka, "promote")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "no challenger to promote" in lines[0]
    assert [r.key for r in read_to_end(kafka.bootstrap_servers, kafka.topics.models)] == [
        b"champion"
    ]


def test_a_refused_artifact_is_never_sent(kafka: KafkaSettings, tmp_path) -> None:
    meta = W10.read_text().replace('"window": 10', '"window": 0')
    (tmp_path / "bad.json").write_text(meta)
    (tmp_path / "sunspot_lstm.npz").write_bytes(W10.with_suffix(".npz").read_bytes())
    done = command(kafka, "publish", str(tmp_path / "bad.json"), "--role", "champion")
    assert done.returncode == 2 and "window must be a positive integer" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert read_to_end(kafka.bootstrap_servers, kafka.topics.models) == []


def test_the_feed_refuses_bad_records_and_keeps_the_model(kafka: KafkaSettings) -> None:
    assert command(kafka, "publish", str(W10), "--role", "champion").returncode == 0
    producer = KafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, max_request_size=2 * registry.MAX_RECORD_BYTES
    )
    producer.send(kafka.topics.models, key=b"champion", value=b"{not a model}")
    producer.flush()
    feed = ModelFeed.connect(kafka)
    try:
        board, refused = feed.current()
        assert [r.reason for r in refused] == ["not_a_model_record"]
        assert board.champion.model_version == load_forecaster(W10).model_version
        producer.send(kafka.topics.models, key=b"challenger", value=b"x" * (1024 * 1024 + 1))
        producer.flush()
        [entry] = poll_until(feed, 1)
        assert isinstance(entry, Refused) and entry.reason == "oversized"
        assert board.challenger is None
    finally:
        feed.close()
        producer.close()


def test_an_unreachable_broker_is_one_line_and_exit_4() -> None:
    kafka = KafkaSettings("127.0.0.1:1", unique_topics("none"))
    done = command(kafka, "retire", "--role", "challenger")
    assert done.returncode == 4
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach Kafka at 127.0.0.1:1" in lines[0]


def test_a_missing_models_topic_is_named_not_created(bootstrap_servers, unique) -> None:
    kafka = KafkaSettings(bootstrap_servers, unique_topics(unique))
    done = command(kafka, "publish", str(W10), "--role", "champion")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{kafka.topics.models} does not exist" in lines[0]
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        assert kafka.topics.models not in admin.list_topics()
    finally:
        admin.close()
