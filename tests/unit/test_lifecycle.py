"""The model lifecycle on the processor's side of the seam: a champion swapped between batches,
a shadow challenger, refused records, drift alarms and the automatic promotion (pure logic,
stand-in models, no Kafka)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import msgspec
import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from consumer.series import SeriesPolicy
from sunspots.domain.artifact import ArtifactError
from sunspots.domain.drift import DriftPolicy
from sunspots.kafka.settings import Topics
from sunspots.lifecycle import records as models
from sunspots.lifecycle.promotion import PromotionPolicy, PromotionRule
from sunspots.lifecycle.records import CHALLENGER, CHAMPION, Refused, Retired
from tests.unit.records import CALIBRATION, forecaster, observations, published, transaction

TOPICS = Topics()


class Offset:
    """Forecasts the window's last value + `offset`; reads `window` values."""

    calibration = CALIBRATION

    def __init__(self, version: str, window: int, offset: float = 1.0) -> None:
        self.model_version = version
        self.window = window
        self.offset = offset
        self.inputs: list[int] = []

    def predict(self, windows: np.ndarray) -> np.ndarray:
        self.inputs.append(windows.shape[1])
        return windows[:, -1] + self.offset


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def _on(outputs: list, topic: str) -> list[dict]:
    return [json.loads(o.value) for o in outputs if o.topic == topic]


def test_a_new_champion_serves_from_the_next_batch_without_a_warm_up(registry) -> None:
    old, new = Offset("v1", 3), Offset("v2", 5, offset=2.0)
    fc = forecaster(registry, old)
    first = transaction(fc, observations([10, 11, 12, 13, 14, 15]))
    fc.follow([published(CHAMPION, new)])
    second = transaction(fc, observations([16, 17, 18], start=6))

    forecasts = _on(first, TOPICS.forecasts) + _on(second, TOPICS.forecasts)
    # Every day from the first full window on, once; the version that made each.
    assert [(f["target_date"][-2:], f["model_version"]) for f in forecasts] == [
        ("04", "v1"),
        ("05", "v1"),
        ("06", "v1"),
        ("07", "v1"),
        ("08", "v2"),
        ("09", "v2"),
        ("10", "v2"),
    ]
    assert new.inputs == [5]  # the 5-value model forecast at once, from the history
    # The forecast pending from v1 is scored under v1; the next under v2.
    evaluations = _on(second, TOPICS.evaluations)
    assert [(e["date"][-2:], e["model_version"]) for e in evaluations] == [
        ("07", "v1"),
        ("08", "v2"),
        ("09", "v2"),
    ]
    info = "sunspot_model_info"
    assert registry.get_sample_value(info, {"model_version": "v2", "role": CHAMPION}) == 1
    assert registry.get_sample_value(info, {"model_version": "v1", "role": CHAMPION}) is None
    assert registry.get_sample_value("sunspot_model_switches_total", {"role": CHAMPION}) == 1


def test_a_challenger_forecasts_the_same_days_on_the_shadow_topics(registry) -> None:
    champion, challenger = Offset("v1", 3), Offset("w27", 5, offset=0.0)
    fc = forecaster(registry, champion)
    transaction(fc, observations([10, 11, 12, 13, 14, 15]))
    fc.follow([published(CHALLENGER, challenger)])
    outputs = transaction(fc, observations([16, 17, 18, 19], start=6))

    served = _on(outputs, TOPICS.forecasts)
    shadow = _on(outputs, TOPICS.forecasts_shadow)
    assert [f["target_date"] for f in shadow] == [f["target_date"] for f in served]
    assert {f["model_version"] for f in shadow} == {"w27"}
    assert {f["model_version"] for f in served} == {"v1"}
    shadow_scored = _on(outputs, TOPICS.evaluations_shadow)
    assert [e["date"] for e in shadow_scored] == [f["target_date"] for f in shadow[:-1]]
    assert all(e["error"] == 1.0 for e in shadow_scored)  # it forecast the last value: +1 a day
    labels = {"series": "s", "role": CHALLENGER, "model_version": "w27"}
    assert registry.get_sample_value("sunspot_model_rmse", labels) == 1.0
    champion_labels = {"series": "s", "role": CHAMPION, "model_version": "v1"}
    assert registry.get_sample_value("sunspot_model_rmse", champion_labels) == 0.0
    assert registry.get_sample_value(
        "sunspot_model_forecasts_total", {"role": CHALLENGER, "model_version": "w27"}
    ) == len(shadow)

    # Retired: its lane stops, its pending forecast is dropped, its gauges go.
    fc.follow([Retired(CHALLENGER)])
    after = transaction(fc, observations([20, 21], start=10))
    assert _on(after, TOPICS.forecasts_shadow) == _on(after, TOPICS.evaluations_shadow) == []
    assert len(_on(after, TOPICS.forecasts)) == 2
    assert registry.get_sample_value("sunspot_model_rmse", labels) is None


def test_a_refused_record_changes_nothing_and_is_counted(registry, caplog) -> None:
    fc = forecaster(registry, Offset("v1", 3))
    fc.follow([Refused(CHAMPION, "bad_hash", "champion record 'x': the weights do not match")])
    fc.follow([published(CHAMPION, Offset("too-long", 9))])  # more than the 8 values kept
    fc.follow([Retired(CHAMPION)])  # a model must serve
    outputs = transaction(fc, observations([1, 2, 3, 4]))
    assert {f["model_version"] for f in _on(outputs, TOPICS.forecasts)} == {"v1"}
    rejections = "sunspot_model_rejections_total"
    assert registry.get_sample_value(rejections, {"reason": "bad_hash"}) == 1
    assert registry.get_sample_value(rejections, {"reason": "bad_metadata"}) == 1
    assert caplog.text.count("model record refused") == 2


def test_a_starting_champion_longer_than_the_history_is_a_start_up_error(registry) -> None:
    with pytest.raises(ArtifactError, match="reads 9 values; series keep 8"):
        forecaster(registry, Offset("too-long", 9))


def test_the_changelog_keeps_each_role_and_the_history(registry) -> None:
    fc = forecaster(registry, Offset("v1", 3))
    fc.follow([published(CHALLENGER, Offset("w5", 5))])
    outputs = transaction(fc, observations([10, 11, 12, 13, 14, 15, 16]))
    changelog = [(o.key, o.value) for o in outputs if o.topic == TOPICS.state]
    snapshot = json.loads(changelog[-1][1])
    assert snapshot["window"]["size"] == 8 and len(snapshot["window"]["values"]) == 7
    assert set(snapshot["roles"]) == {CHAMPION, CHALLENGER}
    assert snapshot["roles"][CHALLENGER]["pending"]["model_version"] == "w5"
    later = observations([17, 18], start=7)
    uninterrupted = transaction(fc, later)

    # Restarted with the same models: the very same outputs.
    restored = forecaster(CollectorRegistry(), Offset("v1", 3))
    restored.follow([published(CHALLENGER, Offset("w5", 5))])
    restored.restore(0, changelog)
    assert transaction(restored, later) == uninterrupted

    # Restarted after the challenger was retired: its part is dropped, the champion goes on.
    alone = forecaster(CollectorRegistry(), Offset("v1", 3))
    alone.restore(0, changelog)
    outputs = transaction(alone, later)
    assert _on(outputs, TOPICS.forecasts) == _on(uninterrupted, TOPICS.forecasts)
    assert _on(outputs, TOPICS.evaluations_shadow) == []


def test_drift_alarms_once_per_change_of_the_error(registry) -> None:
    policy = DriftPolicy(delta=0.3, threshold=5.0, half_life=50.0, warmup=10, floor=1.0)
    fc = forecaster(
        registry, Offset("v1", 3, offset=0.0), series_policy=SeriesPolicy(8, 10, policy)
    )
    # The error is the day's step: 1 for 40 days, then 4.
    values = [float(i) for i in range(40)] + [40.0 + 4 * i for i in range(30)]
    records = observations(values)
    transaction(fc, records[:48])
    labels = {"series": "s", "role": CHAMPION}
    alarms = {"role": CHAMPION}
    assert registry.get_sample_value("sunspot_drift_alarms_total", alarms) == 1
    assert registry.get_sample_value("sunspot_drift_detected", labels) == 1
    assert registry.get_sample_value("sunspot_drift_detected_series", alarms) == 1
    alarm_day = registry.get_sample_value("sunspot_drift_last_alarm_timestamp_seconds", labels)
    first_shifted = date(2000, 2, 10)  # day 41, the first error of 4
    assert 0 <= (datetime.fromtimestamp(alarm_day, UTC).date() - first_shifted).days <= 5
    # The new level learned (10 errors), the alarm clears; the change alarmed once.
    transaction(fc, records[48:])
    assert registry.get_sample_value("sunspot_drift_detected", labels) == 0
    assert registry.get_sample_value("sunspot_drift_detected_series", alarms) == 0
    assert registry.get_sample_value("sunspot_drift_alarms_total", alarms) == 1


def test_the_challenger_that_wins_is_promoted_once_with_its_batch(registry) -> None:
    fc = forecaster(
        registry,
        Offset("v1", 3, offset=5.0),
        promotion=PromotionPolicy(days=5, margin=0.1),
        promoter="sunspots-forecaster-a",
    )
    fc.follow([published(CHALLENGER, Offset("better", 4, offset=1.0))])
    decided = [transaction(fc, observations([float(v)], start=v)) for v in range(12)]
    promotions = [
        (i, o) for i, outputs in enumerate(decided) for o in outputs if o.topic == TOPICS.models
    ]
    # Day 4 (index 4) is the first both models' forecasts are scored on (the challenger
    # reads 4 values): five days scored by both on index 8.
    assert [i for i, _ in promotions] == [8, 8]
    champion, tombstone = (o for _, o in promotions)
    assert (champion.key, tombstone.key, tombstone.value) == (b"champion", b"challenger", None)
    record = msgspec.json.decode(champion.value, type=models.ModelRecord)
    assert (record.role, record.model_version) == (CHAMPION, "better")
    assert record.published_by == "sunspots-forecaster-a"
    assert registry.get_sample_value("sunspot_model_promotions_total") == 1


def test_the_promotion_rule_needs_k_days_and_the_margin() -> None:
    rule = PromotionRule(PromotionPolicy(days=3, margin=0.2))
    assert not rule.apply(10.0, 1.0) and not rule.apply(10.0, 1.0)
    assert rule.apply(10.0, 1.0)
    assert not rule.apply(10.0, 1.0)  # decided once
    rule.reset()
    assert [rule.apply(10.0, 8.5) for _ in range(3)] == [False, False, False]  # 15 % < 20 %


def test_a_revoked_series_leaves_no_lifecycle_samples_and_the_others_stay(registry) -> None:
    policy = DriftPolicy(delta=0.3, threshold=5.0, half_life=50.0, warmup=10, floor=1.0)
    fc = forecaster(
        registry, Offset("v1", 3, offset=0.0), series_policy=SeriesPolicy(8, 10, policy)
    )
    steps = [float(i) for i in range(40)] + [40.0 + 4 * i for i in range(8)]
    transaction(fc, observations(steps, series="a") + observations([1, 2, 3, 4, 5], series="b"))
    fc.series["b"].partition = 1  # "b" arrives on another partition, which stays
    scored = {"role": CHAMPION, "model_version": "v1"}
    alarm_date = "sunspot_drift_last_alarm_timestamp_seconds"
    assert registry.get_sample_value(alarm_date, {"series": "a", "role": CHAMPION}) is not None
    fc.revoke({0})
    for series, kept in (("a", False), ("b", True)):
        rmse = registry.get_sample_value("sunspot_model_rmse", {"series": series, **scored})
        statistic = registry.get_sample_value(
            "sunspot_drift_statistic", {"series": series, "role": CHAMPION}
        )
        assert (rmse is not None, statistic is not None) == (kept, kept)
    assert registry.get_sample_value(alarm_date, {"series": "a", "role": CHAMPION}) is None
    # The fleet-wide count keeps the alarm.
    assert registry.get_sample_value("sunspot_drift_alarms_total", {"role": CHAMPION}) == 1
