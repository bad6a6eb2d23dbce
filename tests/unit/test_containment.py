"""Containment: a record that makes processing fail costs that record alone (pure logic).

The processors are atomic per batch, and `Contained` bisects a failing batch down to the
record that fails, which becomes one `internal_error` dead letter; everything else goes out
exactly once and is counted once.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from consumer import forecaster as forecaster_module
from consumer.classifier import Classifier
from consumer.containment import Contained
from consumer.forecaster import Forecaster
from consumer.metrics import ClassifierMetrics, ForecasterMetrics
from consumer.output import Output
from consumer.processor import DeadLetters
from consumer.series_metrics import SeriesSelection
from sunspots.kafka.settings import Topics
from sunspots.process.logs import LogLimiter
from tests.unit.records import CALIBRATION, D0, Record, observations

pytestmark = pytest.mark.unit

TOPICS = Topics()
POISON = 666.0


class BrokenOnPoison:
    """Forecasts last value + 1, but fails on any window holding POISON: by raising, or by
    returning NaN for that window."""

    window = 3
    model_version = "test-v1"
    calibration = CALIBRATION

    def __init__(self, how: str = "raise") -> None:
        self.how = how
        self.calls: list[int] = []

    def predict(self, windows: np.ndarray) -> np.ndarray:
        self.calls.append(len(windows))
        poisoned = (windows == POISON).any(axis=1)
        if self.how == "raise" and poisoned.any():
            raise FloatingPointError("the model blew up")
        return np.where(poisoned, np.nan, windows[:, -1] + 1.0)


_records = observations
EVERY_SERIES = SeriesSelection.parse("all")


def _forecaster(model: BrokenOnPoison) -> tuple[Contained, CollectorRegistry]:
    registry = CollectorRegistry()
    fc = Forecaster(
        model,
        TOPICS,
        ForecasterMetrics(registry),
        rolling=10,
        today=lambda: date(2026, 1, 1),
        series_metrics=EVERY_SERIES,
    )
    return Contained(fc), registry


def _values(outputs: list[Output], topic: str) -> list[dict]:
    return [json.loads(o.value) for o in outputs if o.topic == topic]


def _dead(outputs: list[Output]) -> list[dict[str, str]]:
    return [{k: v.decode() for k, v in o.headers} for o in outputs if o.topic == TOPICS.dead_letter]


VALUES = [float(v) for v in range(10, 25)]
VALUES[12] = POISON  # completes the window ending on day 12


@pytest.mark.parametrize("how", ["raise", "nan"])
def test_a_record_the_model_fails_on_is_one_internal_error_and_nothing_else_is_lost(how) -> None:
    contained, registry = _forecaster(BrokenOnPoison(how))
    outputs = contained.process(_records(VALUES))
    dead = _dead(outputs)
    assert [(d["reason"], d["source_offset"]) for d in dead] == [("internal_error", "12")]
    assert dead[0]["detail"].startswith("FloatingPointError" if how == "raise" else "ValueError")
    # Windows ending on days 2..11 forecast; day 12 never applied, so day 13 starts afresh.
    forecasts = _values(outputs, TOPICS.forecasts)
    assert [f["window_end"] for f in forecasts] == [
        (D0 + timedelta(days=d)).isoformat() for d in range(2, 12)
    ]
    assert len(_values(outputs, TOPICS.evaluations)) == 9  # days 3..11
    sample = registry.get_sample_value
    assert sample("sunspot_dead_letters_total", {"reason": "internal_error"}) == 1
    s = {"series": "s"}
    assert sample("sunspot_observations_total") == sample("sunspot_series_observations_total", s)
    assert sample("sunspot_observations_total") == 14
    assert sample("sunspot_forecasts_total") == sample("sunspot_series_forecasts_total", s) == 10
    assert sample("sunspot_evaluations_total") == sample("sunspot_series_evaluations_total", s)
    assert sample("sunspot_evaluations_total") == 9
    assert sample("sunspot_window_resets_total", {"cause": "skipped_date"}) == 1


def test_bisecting_gives_what_processing_record_by_record_gives() -> None:
    def run(batches: list[list[Record]]) -> list[Output]:
        contained, _ = _forecaster(BrokenOnPoison())
        return [o for b in batches for o in contained.process(b) if o.topic != TOPICS.state]

    records = _records(VALUES)
    one_batch = run([records])
    one_by_one = run([[r] for r in records])
    key = lambda o: (o.topic, o.value, o.key, o.headers)  # noqa: E731
    assert sorted(one_batch, key=key) == sorted(one_by_one, key=key)


def test_a_failed_batch_leaves_state_and_metrics_as_they_were() -> None:
    registry = CollectorRegistry()
    fc = Forecaster(
        BrokenOnPoison(),
        TOPICS,
        ForecasterMetrics(registry),
        rolling=10,
        today=lambda: D0 + timedelta(days=900),
        series_metrics=EVERY_SERIES,
    )
    good = _records(VALUES[:12])
    fc.process(good)
    before_state = {name: s.snapshot() for name, s in fc.series.items()}
    before_metrics = [(s.name, s.labels, s.value) for m in registry.collect() for s in m.samples]
    new_series = _records([1.0, 2.0], series="other")
    batch = [*new_series, _records(VALUES)[12], Record(b"{bad", b"s", 13)]
    with pytest.raises(FloatingPointError):
        fc.process(batch)
    assert {name: s.snapshot() for name, s in fc.series.items()} == before_state
    after_metrics = [(s.name, s.labels, s.value) for m in registry.collect() for s in m.samples]
    assert after_metrics == before_metrics
    assert fc.dead_letters.pending == []


def test_a_decoder_that_raises_costs_its_record_without_splitting_the_batch(monkeypatch) -> None:
    real = forecaster_module.decode_observation

    def deep(raw, key, today):
        if raw == b"deep":
            raise RecursionError("maximum recursion depth exceeded")
        return real(raw, key, today)

    monkeypatch.setattr(forecaster_module, "decode_observation", deep)
    model = BrokenOnPoison()
    contained, registry = _forecaster(model)
    records = _records([1.0, 2.0, 3.0, 4.0])
    outputs = contained.process([*records[:2], Record(b"deep", b"s", 99), *records[2:]])
    assert [d["reason"] for d in _dead(outputs)] == ["internal_error"]
    assert _dead(outputs)[0]["detail"] == "RecursionError: maximum recursion depth exceeded"
    assert model.calls == [2]  # one model call: the batch was not split
    assert registry.get_sample_value("sunspot_observations_total") == 4


class FakeProcessor:
    """Echoes each record, and fails any batch that holds a value of b"boom"."""

    def __init__(self, dead_letters: DeadLetters) -> None:
        self.dead_letters = dead_letters
        self.calls = 0

    def process(self, records: list[Record]) -> list[Output]:
        self.calls += 1
        if any(r.value == b"boom" for r in records):
            raise KeyError("boom")
        return [Output("out", r.value) for r in records]

    def isolate(self, record: Record, exc: Exception) -> Output:
        return self.dead_letters.isolate(record, exc)

    def restore(self, partition, changelog) -> None: ...

    def revoke(self, partitions) -> None: ...


def test_bisection_keeps_the_order_and_isolates_each_failing_record() -> None:
    registry = CollectorRegistry()
    dead_letters = DeadLetters(TOPICS.dead_letter, ForecasterMetrics(registry).dead_letters)
    inner = FakeProcessor(dead_letters)
    values = [str(i).encode() for i in range(64)]
    values[5] = values[40] = b"boom"
    outputs = Contained(inner).process([Record(v, None, i) for i, v in enumerate(values)])
    assert [o.value for o in outputs] == values
    assert [dict(o.headers).get("source_offset") for o in outputs if o.topic != "out"] == [
        b"5",
        b"40",
    ]
    assert (
        registry.get_sample_value("sunspot_dead_letters_total", {"reason": "internal_error"}) == 2
    )
    assert inner.calls <= 2 * 2 * 6 + 1  # about 2·k·log2(n) calls, not n


def test_a_burst_of_failures_is_told_ten_a_minute_then_summed_up(caplog) -> None:
    """Through the one log limiter the services install: ten failures a minute are told with
    their tracebacks, the rest held back and counted on the next minute's first line; every one
    is counted in the metric."""
    now = [0.0]
    limiter = LogLimiter(("consumer.processor",), clock=lambda: now[0])
    registry = CollectorRegistry()
    dead_letters = DeadLetters(TOPICS.dead_letter, ForecasterMetrics(registry).dead_letters)
    caplog.handler.addFilter(limiter)
    try:
        with caplog.at_level(logging.WARNING, logger="consumer.processor"):
            for i in range(14):
                dead_letters.fail(Record(b"x", None, i), ValueError(f"bad {i}"))
            dead_letters.commit()
            now[0] = 61.0
            dead_letters.fail(Record(b"x", None, 14), ValueError("bad 14"))
            dead_letters.commit()
    finally:
        caplog.handler.removeFilter(limiter)
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 11
    assert "bad 0" in messages[0] and "bad 9" in messages[9]
    assert all(r.exc_info for r in caplog.records)
    assert "bad 14" in messages[10]
    assert "[4 more like it held back since the last one shown]" in messages[10]
    assert (
        registry.get_sample_value("sunspot_dead_letters_total", {"reason": "internal_error"}) == 15
    )


class ClassOfLargest:
    sequence_length = 6
    max_value = 3
    classes = (0, 1, 2, 3)
    model_version = "clf-test-v1"

    def predict_proba(self, sequences: np.ndarray) -> np.ndarray:
        scores = np.full((len(sequences), 4), 0.1)
        scores[np.arange(len(sequences)), sequences.max(axis=1)] = 0.9
        scores[sequences.max(axis=1) == 3] = np.nan  # broken for class 3
        return scores


def test_a_request_the_classifier_model_fails_on_is_one_internal_error() -> None:
    registry = CollectorRegistry()
    clf = Classifier(ClassOfLargest(), TOPICS, ClassifierMetrics(registry))
    contained = Contained(clf)
    requests = [
        Record(json.dumps({"id": f"r{i}", "sequence": [i % 4]}).encode(), f"r{i}".encode(), i)
        for i in range(8)
    ]
    outputs = contained.process(requests)
    answers = [
        json.loads(o.value)["id"] for o in outputs if o.topic == TOPICS.classifier_predictions
    ]
    assert answers == ["r0", "r1", "r2", "r4", "r5", "r6"]
    assert [d["source_offset"] for d in _dead(outputs)] == ["3", "7"]
    sample = registry.get_sample_value
    assert sample("classifier_requests_total") == 8
    assert sample("classifier_dead_letters_total", {"reason": "internal_error"}) == 2
    assert sample("classifier_predictions_total", {"predicted_class": "3"}) is None
    assert sample("classifier_predictions_total", {"predicted_class": "1"}) == 2
