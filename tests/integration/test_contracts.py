"""The published JSON Schemas hold for what the services really write, on the real broker.

A short replay through the producer, the forecaster and the classifier, with a few bad records
mixed in; then every record of every topic — observations, forecasts, evaluations, the state
changelog, classifier requests and predictions — is validated with `jsonschema` against its
document in schemas/, and the dead letters' headers against schemas/dead-letter-headers.json.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from jsonschema import Draft202012Validator
from kafka import KafkaProducer

from sunspots.wire.schemas import Observation, encode_classifier_request
from support.polling import wait_for
from support.run_topics import read_to_end, unique_topics
from support.services import REPO, consumer, forecaster, run_producer, running

SCHEMAS = REPO / "schemas"
START, END = "2000-01-01", "2000-03-31"  # 91 days: 82 forecasts, 81 evaluations


def _validator(name: str) -> Draft202012Validator:
    document = json.loads((SCHEMAS / name).read_text())
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_record_of_every_topic_follows_its_published_schema(
    bootstrap_servers, create_topics, unique, data_path: Path, tmp_path: Path
) -> None:
    topics = create_topics(unique_topics(unique))
    fc = forecaster(bootstrap_servers, topics, f"g-{unique}", tmp_path)
    clf = consumer(
        "classify",
        bootstrap_servers,
        topics,
        f"c-{unique}",
        tmp_path / "classifier.log",
        instance_id=f"c-{unique}-a",
    )
    with running(fc), running(clf):
        fc.wait_ready()
        clf.wait_ready()
        run_producer(
            bootstrap_servers,
            topics,
            data_path,
            tmp_path / "producer.log",
            "--start",
            START,
            "--end",
            END,
        )
        kafka = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
        kafka.send(topics.observations, key=b"silso", value=b"{not json")
        valid = Observation("silso", date(2000, 4, 1), 1.0, None, 1, False).encode()
        kafka.send(topics.observations, key=b"\xff", value=valid)  # a key that is not UTF-8
        for i in range(5):
            kafka.send(
                topics.classifier_requests,
                key=f"r{i}".encode(),
                value=encode_classifier_request(f"r{i}", [0, 0, 0, 0, 0, i % 4]),
            )
        kafka.send(topics.classifier_requests, key=b"bad", value=b'{"id":"bad","sequence":[9]}')
        kafka.flush()
        kafka.close()
        wait_for(
            "every output",
            lambda: (
                len(read_to_end(bootstrap_servers, topics.evaluations)) >= 81
                and len(read_to_end(bootstrap_servers, topics.classifier_predictions)) >= 5
                and len(read_to_end(bootstrap_servers, topics.dead_letter)) >= 3
            ),
            120,
            interval=1.0,
        )
        assert fc.terminate() == 0 and clf.terminate() == 0

    checked: dict[str, int] = {}
    for topic, name in [
        (topics.forecasts, "forecast.json"),
        (topics.evaluations, "evaluation.json"),
        (topics.state, "state.json"),
        (topics.classifier_predictions, "classifier-prediction.json"),
        (topics.classifier_requests, "classifier-request.json"),
    ]:
        validator = _validator(name)
        records = read_to_end(bootstrap_servers, topic)
        for record in records:
            validator.validate(json.loads(record.value))
        checked[name] = len(records)
    # The observations topic holds the two bad records last: the replay's must validate.
    observations = read_to_end(bootstrap_servers, topics.observations)
    validator = _validator("observation.json")
    for record in observations[:-2]:
        validator.validate(json.loads(record.value))
    dead = read_to_end(bootstrap_servers, topics.dead_letter)
    headers = _validator("dead-letter-headers.json")
    for record in dead:
        headers.validate({name: value.decode("utf-8") for name, value in record.headers})
    reasons = sorted(dict(r.headers)["reason"].decode() for r in dead)
    assert reasons == ["bad_key", "bad_sequence", "not_json"]
    assert checked["forecast.json"] == 82 and checked["evaluation.json"] == 81
    assert checked["state.json"] >= 1 and checked["classifier-prediction.json"] == 5
    assert len(observations) == 91 + 2
