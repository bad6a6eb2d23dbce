"""The forecasting processor's batch logic, with a stand-in model (pure logic, no Kafka)."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from consumer.series_metrics import SeriesSelection
from sunspots.kafka.settings import Topics
from tests.unit.records import CALIBRATION, Record, observations, transaction

TOPICS = Topics()


class LastPlusOne:
    """A model that forecasts the window's last value + 1 and counts its calls."""

    window = 3
    model_version = "test-v1"
    calibration = CALIBRATION

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.fail = False  # a test's broken model: every call raises

    def predict(self, windows: np.ndarray) -> np.ndarray:
        if self.fail:
            raise RuntimeError("the model failed")
        self.calls.append(len(windows))
        return windows[:, -1] + 1.0


_records = observations


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


EVERY_SERIES = SeriesSelection.parse("all")


def _forecaster(
    registry: CollectorRegistry, selection: SeriesSelection = EVERY_SERIES
) -> tuple[Forecaster, LastPlusOne]:
    model = LastPlusOne()
    return Forecaster(
        model,
        TOPICS,
        ForecasterMetrics(registry),
        rolling=10,
        today=lambda: date(2026, 1, 1),
        series_metrics=selection,
    ), model


def _by_topic(outputs: list, topic: str) -> list[dict]:
    return [json.loads(o.value) for o in outputs if o.topic == topic]


def test_one_model_call_per_batch_and_evaluations_within_the_batch(registry) -> None:
    fc, model = _forecaster(registry)
    outputs = transaction(fc, _records([10, 20, 30, 40, 50]))
    assert model.calls == [3]  # windows ending on days 2, 3 and 4, in one call
    forecasts = _by_topic(outputs, TOPICS.forecasts)
    assert [(f["target_date"], f["forecast"]) for f in forecasts] == [
        ("2000-01-04", 31.0),
        ("2000-01-05", 41.0),
        ("2000-01-06", 51.0),
    ]
    # ± 0.9 × (2 + mean |change| of 10, 20, 30 = 10) around 31.
    assert (forecasts[0]["lower"], forecasts[0]["upper"]) == pytest.approx((20.2, 41.8))
    assert forecasts[0]["window_end"] == "2000-01-03" and forecasts[0]["persistence"] == 30.0
    evaluations = _by_topic(outputs, TOPICS.evaluations)
    # Forecasts made in this batch are scored in this batch when their day arrives.
    assert [(e["date"], e["actual"], e["error"]) for e in evaluations] == [
        ("2000-01-04", 40.0, 9.0),
        ("2000-01-05", 50.0, 9.0),
    ]
    assert registry.get_sample_value("sunspot_forecast_rmse", {"series": "s"}) == 9.0
    assert registry.get_sample_value("sunspot_persistence_rmse", {"series": "s"}) == 10.0
    assert registry.get_sample_value("sunspot_forecast_interval_coverage", {"series": "s"}) == 1.0
    band = {"series": "s", "band": "10-50"}
    assert registry.get_sample_value("sunspot_forecast_interval_band_coverage", band) == 1.0
    assert registry.get_sample_value("sunspot_forecast_interval_band_evaluations", band) == 2
    # Widths 2 × 0.9 × 12 and, after one hit (α_t = 0.105), 2 × 0.895 × 12.
    assert registry.get_sample_value("sunspot_forecast_interval_band_width", band) == pytest.approx(
        21.54
    )
    assert (
        registry.get_sample_value(
            "sunspot_forecast_interval_band_coverage", {"series": "s", "band": "0-10"}
        )
        is None
    )  # no day of that band scored: no value, rather than a made-up one
    # Two hits: α_t = 0.1 + 2 × 0.05 × (0.1 − 0).
    assert registry.get_sample_value(
        "sunspot_forecast_interval_alpha", {"series": "s"}
    ) == pytest.approx(0.11)


def test_pending_forecast_carries_over_to_the_next_batch(registry) -> None:
    fc, _ = _forecaster(registry)
    transaction(fc, _records([1, 2, 3]))
    outputs = transaction(fc, _records([7], start=3))
    evaluations = _by_topic(outputs, TOPICS.evaluations)
    assert [(e["date"], e["forecast"], e["actual"]) for e in evaluations] == [
        ("2000-01-04", 4.0, 7.0)
    ]


def test_bad_records_are_dead_lettered_with_reason_and_source(registry) -> None:
    fc, _ = _forecaster(registry)
    good = _records([1, 2, 3, 4])
    poison = Record(b"{not json", b"s", 99)
    duplicate = _records([5], start=3)[0]
    duplicate.offset = 100  # re-sent later: a new offset carrying an old date
    outputs = transaction(fc, [*good[:2], poison, *good[2:], duplicate])
    dead = [o for o in outputs if o.topic == TOPICS.dead_letter]
    reasons = [dict(o.headers)["reason"] for o in dead]
    assert reasons == [b"not_json", b"duplicate"]
    assert dict(dead[0].headers)["source_offset"] == b"99"
    assert dead[0].value == b"{not json"
    assert len(_by_topic(outputs, TOPICS.forecasts)) == 2  # the poison cost no good record
    assert registry.get_sample_value("sunspot_dead_letters_total", {"reason": "not_json"}) == 1


def test_gap_resets_the_window(registry) -> None:
    fc, _ = _forecaster(registry)
    outputs = transaction(fc, _records([1, 2, 3, None, 5, 6, 7]))
    forecasts = _by_topic(outputs, TOPICS.forecasts)
    assert [f["window_end"] for f in forecasts] == ["2000-01-03", "2000-01-07"]
    assert _by_topic(outputs, TOPICS.evaluations) == []  # day 4 had no value to score
    assert registry.get_sample_value("sunspot_window_resets_total", {"cause": "missing_value"}) == 1


def test_changelog_restores_the_exact_state(registry) -> None:
    fc, _ = _forecaster(registry)
    # 5 falls inside its interval, 30 outside: α_t = 0.1 + 0.05 × 0.1 + 0.05 × (0.1 − 1).
    outputs = transaction(fc, _records([1, 2, 3, 5, 30]))
    state = [(o.key, o.value) for o in outputs if o.topic == TOPICS.state]
    assert len(state) == 1 and outputs[-1].partition == 0
    assert json.loads(state[0][1])["roles"]["champion"]["alpha"] == pytest.approx(0.06)
    level = fc.series["s"].roles["champion"].interval.level
    uninterrupted = transaction(fc, _records([9, 10, 30], start=5))

    restored, _ = _forecaster(CollectorRegistry())
    restored.restore(0, state)
    assert restored.series["s"].roles["champion"].interval.level == level
    assert transaction(restored, _records([9, 10, 30], start=5)) == uninterrupted
    # A level restarted at α would give other intervals: the comparison above would catch it.
    afresh, _ = _forecaster(CollectorRegistry())
    afresh.restore(0, [(state[0][0], _calibrated(state[0][1]))])
    assert transaction(afresh, _records([9, 10, 30], start=5)) != uninterrupted
    # A replay of records already in the state (at-least-once) is skipped, not re-applied.
    assert transaction(restored, _records([3, 4], start=2)) == []


def _calibrated(value: bytes) -> bytes:
    """The snapshot with the champion's interval level back at the calibrated one."""
    snapshot = json.loads(value)
    snapshot["roles"]["champion"]["alpha"] = CALIBRATION.alpha
    return json.dumps(snapshot).encode()


def test_revoke_forgets_the_partitions_series(registry) -> None:
    fc, _ = _forecaster(registry)
    transaction(fc, _records([1, 2, 3]))
    fc.revoke({0})
    assert fc.series == {}


# A changelog record exactly as the forecaster wrote it before its schemas moved to msgspec
# (standard-library JSON: ASCII escapes, the forecast's fields in their old order).
OLD_CHANGELOG_VALUE = (
    b'{"series":"s\\u00e9","offset":3,"window":{"size":3,"last_date":"2000-01-03",'
    b'"values":[1.0,2.0,3.5],"pending":{"schema_version":1,"series":"s\\u00e9",'
    b'"target_date":"2000-01-04","forecast":4.5,"lower":2.5,"upper":6.5,'
    b'"window_end":"2000-01-03","persistence":3.5,"model_version":"test-v1"}}}'
)


def test_changelog_records_of_the_earlier_format_still_restore(registry) -> None:
    fc, _ = _forecaster(registry)
    fc.restore(0, [("s\u00e9".encode(), OLD_CHANGELOG_VALUE)])
    state = fc.series["s\u00e9"]
    assert state.applied_to == 3 and list(state.window.values) == [1.0, 2.0, 3.5]
    # No adaptive state yet: the calibrated level. The window is the longer history now.
    assert state.roles["champion"].interval.level == CALIBRATION.alpha
    assert state.window.size == 64
    pending = state.window.pending["champion"]
    assert pending.forecast == 4.5 and pending.persistence == 3.5
    outputs = transaction(fc, _records([7.0], series="s\u00e9", start=3))
    assert [(e["forecast"], e["actual"]) for e in _by_topic(outputs, TOPICS.evaluations)] == [
        (4.5, 7.0)
    ]


def test_a_changelog_record_no_instance_wrote_is_skipped_not_fatal(registry, caplog) -> None:
    fc, _ = _forecaster(registry)
    good = [
        (o.key, o.value) for o in transaction(fc, _records([1, 2, 3])) if o.topic == TOPICS.state
    ]
    restored, _ = _forecaster(CollectorRegistry())
    restored.restore(0, [(b"junk", b"{not json"), (b"\xff", b"{}"), (None, b"{}"), *good])
    assert list(restored.series) == ["s"]
    assert "3 changelog records skipped as unreadable" in caplog.text


def test_new_series_past_the_limit_are_dead_letters_and_a_revoke_frees_their_slots() -> None:
    registry = CollectorRegistry()
    fc = Forecaster(
        LastPlusOne(),
        TOPICS,
        ForecasterMetrics(registry),
        today=lambda: date(2026, 1, 1),
        max_series=2,
    )
    first = [*_records([1], "a"), *_records([1], "b", start=1)]
    outputs = transaction(fc, [*first, *_records([1], "c", start=2), *_records([2], "a", start=1)])
    dead = [dict(o.headers) for o in outputs if o.topic == TOPICS.dead_letter]
    assert [(d["reason"], d["source_offset"]) for d in dead] == [(b"too_many_series", b"2")]
    assert sorted(fc.series) == ["a", "b"]
    assert registry.get_sample_value("sunspot_series") == 2
    assert (
        registry.get_sample_value("sunspot_dead_letters_total", {"reason": "too_many_series"}) == 1
    )
    fc.revoke({0})
    assert transaction(fc, _records([1], "c", start=3)) and list(fc.series) == ["c"]


def _series_samples(registry: CollectorRegistry, series: str) -> set[str]:
    return {
        s.name for m in registry.collect() for s in m.samples if s.labels.get("series") == series
    }


def test_a_revoked_series_stops_appearing_at_once(registry) -> None:
    fc, _ = _forecaster(registry)
    transaction(fc, _records([1, 2, 3, 4, 5, None]))
    assert {
        "sunspot_forecast_rmse",
        "sunspot_forecast_interval_band_coverage",
        "sunspot_forecast_interval_alpha",
        "sunspot_series_observations_total",
    } <= _series_samples(registry, "s")
    fc.revoke({0})
    assert _series_samples(registry, "s") == set()
    assert registry.get_sample_value("sunspot_series") == 0
    # The fleet-wide counts keep what the series did.
    assert registry.get_sample_value("sunspot_observations_total") == 6
    transaction(fc, _records([1], series="t"))
    assert _series_samples(registry, "t")


def test_a_rewind_keeps_the_fleet_counts_and_restarts_the_series_counts(registry) -> None:
    fc, _ = _forecaster(registry)
    outputs = transaction(fc, _records([1, 2, 3, 4]))
    state = [(o.key, o.value) for o in outputs if o.topic == TOPICS.state]
    fc.revoke({0})  # what a rewind does: revoke every partition, then restore it
    fc.restore(0, state)
    transaction(fc, _records([5], start=4))
    assert registry.get_sample_value("sunspot_observations_total") == 5
    assert registry.get_sample_value("sunspot_forecasts_total") == 3
    # A series' own counts are since this instance took it: Prometheus reads a counter reset.
    assert registry.get_sample_value("sunspot_series_observations_total", {"series": "s"}) == 1
    assert registry.get_sample_value("sunspot_series_forecasts_total", {"series": "s"}) == 1


def test_only_the_selected_series_have_their_own_metrics() -> None:
    registry = CollectorRegistry()
    fc, _ = _forecaster(registry, SeriesSelection.parse("a,b-*"))
    records = [_records([1, 2, 3, 4], name) for name in ("a", "b-1", "b-2", "c")]
    offset = 0
    for batch in records:
        for record in batch:
            record.offset, offset = offset, offset + 1
    transaction(fc, [r for batch in records for r in batch])
    exported = {
        s.labels["series"] for m in registry.collect() for s in m.samples if "series" in s.labels
    }
    assert exported == {"a", "b-1", "b-2"}
    assert registry.get_sample_value("sunspot_series") == 4
    assert registry.get_sample_value("sunspot_observations_total") == 16
    assert registry.get_sample_value("sunspot_forecasts_total") == 8
    none = CollectorRegistry()
    fc, _ = _forecaster(none, SeriesSelection.parse("none"))
    transaction(fc, _records([1, 2, 3, 4]))
    assert not any("series" in s.labels for m in none.collect() for s in m.samples)
    assert none.get_sample_value("sunspot_evaluations_total") == 1


def test_a_transaction_of_several_batches_writes_each_series_state_once_at_its_end(
    registry,
) -> None:
    """The runner hands a poll over in slices, one transaction for all: each batch's outputs
    carry no state record, and `changelog` then gives each series changed once, at its latest
    state, and nothing more until it changes again."""
    fc, _ = _forecaster(registry)
    first = fc.process(_records([1, 2, 3]) + _records([5], series="b"))
    second = fc.process(_records([4], start=3))
    assert not [o for o in first + second if o.topic == TOPICS.state]
    written = fc.changelog()
    assert [(o.topic, o.key) for o in written] == [(TOPICS.state, b"s"), (TOPICS.state, b"b")]
    s = json.loads(written[0].value)
    assert s["offset"] == 4 and s["window"]["values"] == [1.0, 2.0, 3.0, 4.0]
    assert fc.changelog() == []
    fc.process(_records([9], series="b", start=1))
    assert [o.key for o in fc.changelog()] == [b"b"]


def test_a_batch_rolled_back_owes_the_changelog_nothing(registry) -> None:
    """A batch that raises changes nothing, the changelog's debt included; a revoked series'
    state is not written either."""
    fc, model = _forecaster(registry)
    fc.process(_records([1, 2, 3]))
    model.fail = True
    with pytest.raises(RuntimeError):
        fc.process(_records([5], series="b") + _records([4], start=3))
    assert [o.key for o in fc.changelog()] == [b"s"]
    model.fail = False
    fc.process(_records([4], start=3))
    fc.revoke({0})
    assert fc.changelog() == []
