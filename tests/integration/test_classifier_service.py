"""The classifier service end to end: a real broker, `python -m consumer classify` as a process.

Each test starts the service on its own topics, group and metrics port, waits for /readyz,
talks to it through Kafka only, checks /metrics against what it sent, then stops it with
SIGTERM and requires exit code 0 (a graceful shutdown that committed its last batch).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from consumer.health import scrape, wait_ready
from producer.classify import Exchange, ReplyReader, ask
from sunspots import lesson
from sunspots.schemas import decode_classifier_prediction
from sunspots.settings import KafkaSettings, Topics

REPO = Path(__file__).resolve().parents[2]
LESSON_SEQUENCES = lesson.SEQUENCES
LESSON_CLASSES = lesson.CLASSES
LESSON_EXAMPLE = lesson.EXAMPLE  # the lesson's nested form, class 1
READY_TIMEOUT_S = 90.0
ANSWER_TIMEOUT_S = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A running `python -m consumer classify` process and the settings it was given."""

    process: subprocess.Popen
    kafka: KafkaSettings
    metrics_port: int
    log_path: Path

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-40:])

    def get(self, path: str) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.metrics_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        try:
            wait_ready(self.metrics_port, self.process, timeout)
        except RuntimeError as exc:
            pytest.fail(f"{exc}:\n{self.log_tail()}")
        assert self.get("/healthz")[0] == 200

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        return scrape(self.metrics_port)

    def stop(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            pytest.fail(f"service ignored SIGTERM for {timeout:.0f} s:\n{self.log_tail()}")


@pytest.fixture
def start_service(bootstrap_servers: str, unique: str, tmp_path: Path) -> Iterator[Any]:
    started: list[Service] = []

    def start(topics: Topics) -> Service:
        port = _free_port()
        log_path = tmp_path / f"classifier-{len(started)}.log"
        command = [
            sys.executable,
            "-m",
            "consumer",
            "classify",
            "--bootstrap-servers",
            bootstrap_servers,
            "--group",
            f"g-{unique}",
            "--instance-id",
            f"i-{unique}",
            "--metrics-port",
            str(port),
            "--topic-classifier-requests",
            topics.classifier_requests,
            "--topic-classifier-predictions",
            topics.classifier_predictions,
            "--topic-dead-letter",
            topics.dead_letter,
            "--create-topics",
            "false",
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        service = Service(process, KafkaSettings(bootstrap_servers, topics), port, log_path)
        started.append(service)
        service.wait_ready()
        return service

    yield start
    for service in started:  # a failed test may leave its service running
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait(10)


def _topics(unique: str, create_topics: Any, partitions: int = 1) -> Topics:
    topics = Topics(
        classifier_requests=f"req-{unique}",
        classifier_predictions=f"pred-{unique}",
        dead_letter=f"dl-{unique}",
    )
    create_topics(topics.classifier_requests, topics.classifier_predictions, partitions=partitions)
    create_topics(topics.dead_letter)
    return topics


def _read_all(kafka: KafkaSettings, topic: str, expected: int, timeout: float) -> list[Any]:
    """Every committed record of `topic` from the beginning; waits for `expected`, then a bit
    more so that an extra (duplicate) record would be caught too."""
    consumer = KafkaConsumer(
        **kafka.client_kwargs(), group_id=None, isolation_level="read_committed"
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < expected and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        settle = time.monotonic() + 1.0
        while time.monotonic() < settle:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def _sample(metrics: dict, name: str, **labels: str) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def test_lesson_sequences_get_the_lesson_classes(start_service, unique, create_topics) -> None:
    service = start_service(_topics(unique, create_topics))
    # The 6 training sequences, the lesson's nested example, and a short sequence that the
    # service left-pads to [0, 0, 0, 0, 1, 1] (training sequence 6).
    answers = ask(
        service.kafka, [*LESSON_SEQUENCES, LESSON_EXAMPLE, [1, 1]], timeout=ANSWER_TIMEOUT_S
    )
    assert [a.predicted_class for a in answers] == [*LESSON_CLASSES, 1, 1]
    assert all(len(a.probabilities) == 4 and a.model_version for a in answers)

    # The command-line client, flat and nested forms and several flags at once.
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "producer",
            "classify",
            "--sequence",
            "0,0,0,0,3,3",
            "--sequence",
            json.dumps(LESSON_EXAMPLE),
            "--timeout",
            str(ANSWER_TIMEOUT_S),
            "--bootstrap-servers",
            service.kafka.bootstrap_servers,
            "--topic-classifier-requests",
            service.kafka.topics.classifier_requests,
            "--topic-classifier-predictions",
            service.kafka.topics.classifier_predictions,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT_S + 30,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    assert cli.returncode == 0, cli.stderr
    lines = cli.stdout.splitlines()
    assert len(lines) == 2 and "0,0,0,0,3,3 -> class 3" in lines[0], cli.stdout
    assert "0,0,0,0,0,1 -> class 1" in lines[1], cli.stdout

    metrics = service.metrics()
    assert _sample(metrics, "classifier_requests_total") == 10
    assert _sample(metrics, "classifier_predictions_total", predicted_class="1") == 5
    assert _sample(metrics, "classifier_predictions_total", predicted_class="2") == 2
    assert _sample(metrics, "classifier_predictions_total", predicted_class="3") == 3
    version = answers[0].model_version
    assert _sample(metrics, "classifier_model_info", model_version=version) == 1
    assert _sample(metrics, "classifier_inference_seconds_count") >= 2
    assert service.stop() == 0, service.log_tail()


# Bad requests, each with the reason it must be dead-lettered with.
POISON = [
    (b"{not json", "not_json"),
    (b'{"sequence": [0, 0, 0, 0, 1, 1]}', "missing_field"),
    (b'{"id": "p-range", "sequence": [0, 0, 0, 0, 4, 4]}', "bad_sequence"),
    (b'{"id": "p-float", "sequence": [0, 0, 0, 0, 1.5, 1]}', "wrong_type"),
    (b'{"id": "p-empty", "sequence": []}', "bad_sequence"),
    (b'{"id": "p-long", "sequence": [0, 0, 0, 0, 0, 0, 1]}', "bad_sequence"),
    (json.dumps({"id": "p-huge", "sequence": [0] * 5000}).encode(), "oversized"),
]


def test_a_thousand_requests_get_one_answer_each_and_poison_is_dead_lettered(
    start_service, unique, create_topics
) -> None:
    service = start_service(_topics(unique, create_topics, partitions=3))
    kafka, topics = service.kafka, service.kafka.topics
    good = {f"r-{i}": i % len(LESSON_SEQUENCES) for i in range(1000)}
    exchange = Exchange()
    reader = ReplyReader(kafka, timeout=30)  # at the end of the predictions topic, pre-send
    producer = KafkaProducer(**kafka.client_kwargs(), acks="all", linger_ms=5)
    try:
        for n, (request_id, lesson) in enumerate(good.items()):
            if n % 150 == 75:  # poison between good requests, in every partition
                value, _ = POISON[(n // 150) % len(POISON)]
                producer.send(topics.classifier_requests, value=value, key=f"p{n}".encode())
            body = {"id": request_id, "sequence": LESSON_SEQUENCES[lesson]}
            exchange.sent_at[request_id] = time.monotonic()
            producer.send(
                topics.classifier_requests,
                value=json.dumps(body).encode(),
                key=request_id.encode(),
            )
        producer.flush()
        reader.read_into(exchange, ANSWER_TIMEOUT_S)
    finally:
        producer.close()
        reader.close()
    assert not exchange.missing, f"{len(exchange.missing)} unanswered, e.g. {exchange.missing[:5]}"
    for request_id, answer in exchange.answers.items():
        assert answer.predicted_class == LESSON_CLASSES[good[request_id]], request_id

    # Exactly one committed answer per request, keyed like the request.
    predictions = _read_all(kafka, topics.classifier_predictions, 1000, ANSWER_TIMEOUT_S)
    ids = [decode_classifier_prediction(r.value).id for r in predictions]
    assert len(ids) == 1000 and set(ids) == set(good)
    assert all(r.key.decode() == decode_classifier_prediction(r.value).id for r in predictions)

    sent_poison = [POISON[(n // 150) % len(POISON)] for n in range(1000) if n % 150 == 75]
    dead = _read_all(kafka, topics.dead_letter, len(sent_poison), ANSWER_TIMEOUT_S)
    reasons = Counter(dict(r.headers)["reason"].decode() for r in dead)
    assert reasons == Counter(reason for _, reason in sent_poison)
    assert sorted(r.value for r in dead) == sorted(value for value, _ in sent_poison)

    metrics = service.metrics()
    assert _sample(metrics, "classifier_requests_total") == 1000 + len(sent_poison)
    answered = sum(
        _sample(metrics, "classifier_predictions_total", predicted_class=c) for c in "0123"
    )
    assert answered == 1000
    for reason, count in reasons.items():
        assert _sample(metrics, "classifier_dead_letters_total", reason=reason) == count
    assert service.stop() == 0, service.log_tail()
