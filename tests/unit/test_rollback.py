"""A failed batch puts every series back exactly as it was (pure logic, stand-in models).

Before a batch first changes a series it keeps a copy of its state (`SeriesState.copy`) and
puts the copies back if anything in the batch raises: the window, the interval level and the
drift test, even after a model change that the next forecast would start afresh; last alarms,
like the rolling scores and the counts (tests/unit/test_containment.py), change only once a
batch has succeeded."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from consumer.series import SeriesPolicy
from sunspots.domain.drift import DriftPolicy
from sunspots.kafka.settings import Topics
from sunspots.lifecycle.records import CHAMPION
from tests.unit.records import CALIBRATION, forecaster, observations, published

pytestmark = pytest.mark.unit

TOPICS = Topics()
POISON = 666.0


class Model:
    """Forecasts the window's last value + `offset`; NaN for a window holding POISON (a forecast
    that is not a number fails its batch once the batch's earlier steps are done)."""

    calibration = CALIBRATION
    window = 3

    def __init__(self, version: str, offset: float = 1.0) -> None:
        self.model_version = version
        self.offset = offset

    def predict(self, windows: np.ndarray) -> np.ndarray:
        poisoned = (windows == POISON).any(axis=1)
        return np.where(poisoned, np.nan, windows[:, -1] + self.offset)


def test_after_a_model_change_a_failed_batch_gives_back_the_old_role() -> None:
    registry = CollectorRegistry()
    fc = forecaster(registry, Model("v1"))
    fc.process(observations([10, 11, 12, 13, 14, 15, 16]))
    role = fc.series["s"].roles[CHAMPION]
    level, before = role.interval.level, fc.series["s"].snapshot()
    fc.follow([published(CHAMPION, Model("v2", offset=2.0))])
    with pytest.raises(ValueError):
        fc.process(observations([17, 18, POISON], start=7))
    state = fc.series["s"]
    assert state.snapshot() == before
    assert state.roles[CHAMPION].model_version == "v1"
    assert state.roles[CHAMPION].interval.level == level
    # Processed again without the poison, the pending v1 forecast is scored under v1.
    out = fc.process(observations([17, 18], start=7))
    versions = [o.value for o in out if o.topic == TOPICS.evaluations]
    assert b'"model_version":"v1"' in versions[0] and b'"model_version":"v2"' in versions[1]


def test_a_drift_alarm_of_a_failed_batch_leaves_no_last_alarm() -> None:
    policy = DriftPolicy(delta=0.3, threshold=5.0, half_life=50.0, warmup=10, floor=1.0)
    registry = CollectorRegistry()
    series_policy = SeriesPolicy(history=8, rolling=10, drift=policy)
    fc = forecaster(registry, Model("v1", offset=0.0), series_policy=series_policy)
    # The error is the day's step: 1 for 40 days, then 4 (an alarm within days of day 41).
    values = [float(i) for i in range(40)] + [40.0 + 4 * i for i in range(8)]
    fc.process(observations(values[:40]))
    with pytest.raises(ValueError):
        fc.process(observations([*values[40:], POISON], start=40))
    assert fc.series["s"].roles[CHAMPION].last_alarm is None
    labels = {"series": "s", "role": CHAMPION}
    assert registry.get_sample_value("sunspot_drift_last_alarm_timestamp_seconds", labels) is None
    fc.process(observations(values[40:], start=40))  # the same days, without the poison
    assert fc.series["s"].roles[CHAMPION].last_alarm is not None
