"""The classifier service end to end: a real broker, `python -m consumer classify` as a process.

Each test starts the service on its own topics, group and metrics port, waits for /readyz,
talks to it through Kafka only, checks /metrics against what it sent, then stops it with
SIGTERM and requires exit code 0 (a graceful shutdown that committed its last batch).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer

from producer.classify import Exchange, ReplyReader, ask
from sunspots.domain import lesson
from sunspots.kafka.settings import KafkaSettings
from sunspots.wire.schemas import decode_classifier_prediction
from support.http import sample
from support.run_topics import read_topic, unique_topics
from support.services import REPO, Service, consumer

LESSON_SEQUENCES = lesson.SEQUENCES
LESSON_CLASSES = lesson.CLASSES
LESSON_EXAMPLE = lesson.EXAMPLE  # the lesson's nested form, class 1
READY_TIMEOUT_S = 90.0
ANSWER_TIMEOUT_S = 60.0


@pytest.fixture
def start_service(
    bootstrap_servers: str, unique: str, tmp_path: Path
) -> Iterator[Callable[[KafkaSettings], Service]]:
    """Start `python -m consumer classify` on the given topics and wait until it is ready."""
    started: list[Service] = []

    def start(kafka: KafkaSettings) -> Service:
        service = consumer(
            "classify",
            kafka.bootstrap_servers,
            kafka.topics,
            f"g-{unique}",
            tmp_path / f"classifier-{len(started)}.log",
            "--create-topics",
            "false",
            instance_id=f"i-{unique}",
        ).start()
        started.append(service)
        service.wait_ready(READY_TIMEOUT_S)
        assert service.get("/healthz")[0] == 200
        return service

    yield start
    for service in started:  # a failed test may leave its service running
        service.kill()


def test_lesson_sequences_get_the_lesson_classes(
    start_service, bootstrap_servers, unique, create_topics
) -> None:
    kafka = KafkaSettings(bootstrap_servers, create_topics(unique_topics(unique)))
    service = start_service(kafka)
    # The 6 training sequences, the lesson's nested example, and a short sequence that the
    # service left-pads to [0, 0, 0, 0, 1, 1] (training sequence 6).
    answers = ask(kafka, [*LESSON_SEQUENCES, LESSON_EXAMPLE, [1, 1]], timeout=ANSWER_TIMEOUT_S)
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
            kafka.bootstrap_servers,
            "--topic-classifier-requests",
            kafka.topics.classifier_requests,
            "--topic-classifier-predictions",
            kafka.topics.classifier_predictions,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=ANSWER_TIMEOUT_S + 30,
        env={**os.environ, "SUNSPOTS_LOG_LEVEL": "WARNING"},
    )
    assert cli.returncode == 0, cli.stderr
    lines = cli.stdout.splitlines()
    assert len(lines) == 2 and "0,0,0,0,3,3 -> class 3" in lines[0], cli.stdout
    assert "0,0,0,0,0,1 -> class 1" in lines[1], cli.stdout

    metrics = service.metrics()
    assert sample(metrics, "classifier_requests_total") == 10
    assert sample(metrics, "classifier_predictions_total", predicted_class="1") == 5
    assert sample(metrics, "classifier_predictions_total", predicted_class="2") == 2
    assert sample(metrics, "classifier_predictions_total", predicted_class="3") == 3
    version = answers[0].model_version
    assert sample(metrics, "classifier_model_info", model_version=version) == 1
    assert sample(metrics, "classifier_inference_seconds_count") >= 2
    assert service.terminate() == 0, service.log()


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
    start_service, bootstrap_servers, unique, create_topics
) -> None:
    kafka = KafkaSettings(bootstrap_servers, create_topics(unique_topics(unique), partitions=3))
    service = start_service(kafka)
    topics = kafka.topics
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

    # Exactly one committed answer per request, keyed like the request; a second more of
    # reading (idle) would catch an extra, duplicate answer too.
    predictions = read_topic(
        bootstrap_servers, topics.classifier_predictions, 1000, ANSWER_TIMEOUT_S, idle=1.0
    )
    ids = [decode_classifier_prediction(r.value).id for r in predictions]
    assert len(ids) == 1000 and set(ids) == set(good)
    assert all(r.key.decode() == decode_classifier_prediction(r.value).id for r in predictions)

    sent_poison = [POISON[(n // 150) % len(POISON)] for n in range(1000) if n % 150 == 75]
    dead = read_topic(
        bootstrap_servers, topics.dead_letter, len(sent_poison), ANSWER_TIMEOUT_S, idle=1.0
    )
    reasons = Counter(dict(r.headers)["reason"].decode() for r in dead)
    assert reasons == Counter(reason for _, reason in sent_poison)
    assert sorted(r.value for r in dead) == sorted(value for value, _ in sent_poison)

    metrics = service.metrics()
    assert sample(metrics, "classifier_requests_total") == 1000 + len(sent_poison)
    answered = sum(
        sample(metrics, "classifier_predictions_total", predicted_class=c) for c in "0123"
    )
    assert answered == 1000
    for reason, count in reasons.items():
        assert sample(metrics, "classifier_dead_letters_total", reason=reason) == count
    assert service.terminate() == 0, service.log()
