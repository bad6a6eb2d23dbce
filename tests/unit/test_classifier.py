"""The classifier processor's batch logic with a stand-in model, and its client's argument parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from consumer.classifier import Classifier, pad_sequence
from consumer.metrics import ClassifierMetrics
from producer.classify import build_parser, parse_sequence, sequences_from_args
from sunspots.kafka.settings import Topics
from sunspots.wire.schemas import MAX_SEQUENCE_LENGTH, SchemaError
from tests.unit import records

TOPICS = Topics()


class LargestValue:
    """A stand-in for the lesson's model: the class is the largest value in the sequence.

    Its scores are 0.9 for that class and 0.1 elsewhere, and it records every call's input.
    """

    sequence_length = 6
    max_value = 3
    classes = (0, 1, 2, 3)
    model_version = "clf-test-v1"

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def predict_proba(self, sequences: np.ndarray) -> np.ndarray:
        self.calls.append(sequences.copy())
        scores = np.full((len(sequences), 4), 0.1)
        scores[np.arange(len(sequences)), sequences.max(axis=1)] = 0.9
        return scores


def Record(value: bytes | None, key: bytes | None, offset: int) -> records.Record:
    return records.Record(value, key, offset, topic="classifier.requests")


def _request(request_id: object, sequence: object, offset: int = 0) -> Record:
    value = json.dumps({"id": request_id, "sequence": sequence}).encode()
    return Record(value, str(request_id).encode(), offset)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def _classifier(registry: CollectorRegistry) -> tuple[Classifier, LargestValue]:
    model = LargestValue()
    return Classifier(model, TOPICS, ClassifierMetrics(registry)), model


def _answers(outputs: list) -> list[dict]:
    return [json.loads(o.value) for o in outputs if o.topic == TOPICS.classifier_predictions]


def _reasons(outputs: list) -> list[str]:
    return [dict(o.headers)["reason"].decode() for o in outputs if o.topic == TOPICS.dead_letter]


def test_one_model_call_per_batch_flat_and_nested_forms(registry) -> None:
    clf, model = _classifier(registry)
    outputs = clf.process(
        [
            _request("a", [0, 1, 1, 0, 0, 0], 0),
            _request("b", [[0], [0], [0], [2], [2], [0]], 1),  # the lesson's nested form
            _request(7, [0, 0, 0, 0, 3, 3], 2),  # integer ids are kept as integers
        ]
    )
    assert len(model.calls) == 1 and model.calls[0].shape == (3, 6)
    answers = _answers(outputs)
    assert [(a["id"], a["predicted_class"]) for a in answers] == [("a", 1), ("b", 2), (7, 3)]
    assert answers[0]["probabilities"] == [0.1, 0.9, 0.1, 0.1]
    assert {a["model_version"] for a in answers} == {"clf-test-v1"}
    # Each answer goes out under its request's key, so the caller can correlate by key or id.
    assert [o.key for o in outputs] == [b"a", b"b", b"7"]


def test_a_request_without_key_is_answered_under_its_id(registry) -> None:
    clf, _ = _classifier(registry)
    outputs = clf.process([Record(b'{"id": "x1", "sequence": [1]}', None, 0)])
    assert outputs[0].key == b"x1"


def test_short_sequences_are_left_padded_with_zeros(registry) -> None:
    clf, model = _classifier(registry)
    outputs = clf.process([_request("short", [1, 1], 0), _request("six", [0, 0, 0, 0, 2, 2], 1)])
    # Both lengths share one call: the short one became [0, 0, 0, 0, 1, 1].
    assert model.calls[0].tolist() == [[0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 2, 2]]
    assert [a["predicted_class"] for a in _answers(outputs)] == [1, 2]


def test_longer_sequences_are_rejected_not_truncated(registry) -> None:
    clf, model = _classifier(registry)
    outputs = clf.process([_request("long", [0, 0, 0, 0, 0, 0, 3], 0)])
    assert _answers(outputs) == [] and model.calls == []  # no model call for an empty batch
    assert _reasons(outputs) == ["bad_sequence"]
    assert pad_sequence((1, 2, 3), 3) == (1, 2, 3)
    with pytest.raises(SchemaError) as err:
        pad_sequence((0,) * 7, 6)
    assert err.value.reason == "bad_sequence"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", "not_json"),
        (None, "not_json"),  # a tombstone
        (b"[1, 2]", "not_object"),
        (b'{"sequence": [0, 1]}', "missing_field"),
        (b'{"id": "x"}', "missing_field"),
        (b'{"id": "x", "sequence": [0, 1], "extra": 1}', "unknown_field"),
        (b'{"id": true, "sequence": [0, 1]}', "wrong_type"),
        (b'{"id": "x", "sequence": [0, 1.5]}', "wrong_type"),
        (b'{"id": "x", "sequence": [0, "1"]}', "wrong_type"),
        (b'{"id": "x", "sequence": "0,1"}', "wrong_type"),
        (b'{"id": "x", "sequence": [0, 4]}', "bad_sequence"),
        (b'{"id": "x", "sequence": [0, -1]}', "bad_sequence"),
        (b'{"id": "x", "sequence": [[0, 1]]}', "bad_sequence"),
        (b'{"id": "x", "sequence": []}', "bad_sequence"),
        (
            json.dumps({"id": "x", "sequence": [0] * (MAX_SEQUENCE_LENGTH + 1)}).encode(),
            "oversized",
        ),
        (b"x" * 70_000, "oversized"),
    ],
)
def test_invalid_requests_are_dead_lettered_with_their_reason(registry, value, reason) -> None:
    clf, _ = _classifier(registry)
    poison = Record(value, b"k", 5)
    outputs = clf.process([_request("before", [1], 4), poison, _request("after", [2], 6)])
    # Good requests around the bad one are still answered.
    assert [a["id"] for a in _answers(outputs)] == ["before", "after"]
    dead = [o for o in outputs if o.topic == TOPICS.dead_letter]
    assert _reasons(outputs) == [reason]
    headers = dict(dead[0].headers)
    assert headers["source_offset"] == b"5" and headers["source_topic"] == b"classifier.requests"
    assert dead[0].value == value and dead[0].key == b"k"  # the original bytes, untouched
    assert registry.get_sample_value("classifier_dead_letters_total", {"reason": reason}) == 1


def test_metrics_count_requests_predictions_and_model(registry) -> None:
    clf, _ = _classifier(registry)
    clf.process([_request("a", [1], 0), _request("b", [3], 1), Record(b"?", None, 2)])
    clf.process([_request("c", [1], 3)])
    sample = registry.get_sample_value
    assert sample("classifier_requests_total") == 4
    assert sample("classifier_predictions_total", {"predicted_class": "1"}) == 2
    assert sample("classifier_predictions_total", {"predicted_class": "3"}) == 1
    assert sample("classifier_dead_letters_total", {"reason": "not_json"}) == 1
    assert sample("classifier_inference_seconds_count") == 2  # one per batch with work
    assert sample("classifier_model_info", {"model_version": "clf-test-v1"}) == 1


def test_stateless_restore_and_revoke_are_harmless(registry) -> None:
    clf, _ = _classifier(registry)
    clf.restore(0, [(b"k", b"v")])
    clf.revoke({0})
    assert _answers(clf.process([_request("a", [2], 0)]))[0]["predicted_class"] == 2


# --- the client's command line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0,0,0,0,0,1", [0, 0, 0, 0, 0, 1]),
        (" 1, 2 ", [1, 2]),
        ("[0, 2, 2]", [0, 2, 2]),
        ("[[0],[0],[0],[0],[0],[1]]", [0, 0, 0, 0, 0, 1]),
    ],
)
def test_client_parses_flat_and_nested_sequences(text, expected) -> None:
    assert parse_sequence(text) == expected


@pytest.mark.parametrize("text", ["", "a,b", "[]", "[[0, 1]]", "[0.5]", '{"a": 1}', "[true]"])
def test_client_rejects_what_is_not_a_sequence(text) -> None:
    with pytest.raises(ValueError):
        parse_sequence(text)


def test_client_takes_several_sequence_flags_and_flags_beat_the_env(monkeypatch) -> None:
    monkeypatch.setenv("SUNSPOTS_SEQUENCE", "1,1;[[2],[2]]")
    monkeypatch.setenv("SUNSPOTS_TIMEOUT", "5")
    parser = build_parser()
    from_env = parser.parse_args([])
    assert sequences_from_args(parser, from_env.sequence) == [[1, 1], [2, 2]]
    assert from_env.timeout == 5.0
    flags = parser.parse_args(["--sequence", "0,3", "--sequence", "[[1]]", "--timeout", "2"])
    assert sequences_from_args(parser, flags.sequence) == [[0, 3], [1]]
    assert flags.timeout == 2.0
