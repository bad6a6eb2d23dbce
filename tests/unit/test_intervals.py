"""The interval machinery: volatility, the calibrated quantile function, the adaptive level,
and the stream giving the offline run's intervals whatever its batches (pure logic)."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from sunspots.domain.intervals import (
    ALPHA,
    BAND_LABELS,
    Calibration,
    band,
    band_table,
    sequential,
    volatility,
    winkler,
)
from sunspots.kafka.settings import Topics
from tests.unit.records import observations

TOPICS = Topics()


def test_volatility_is_the_floor_plus_the_mean_absolute_day_to_day_change() -> None:
    windows = np.array([[0.0, 0.0, 0.0], [10.0, 20.0, 15.0]])
    assert volatility(windows, 2.0).tolist() == [2.0, 2.0 + 7.5]


def test_bands_split_at_10_50_100_150() -> None:
    assert [band(v) for v in (0, 9.99, 10, 49, 50, 100, 149.9, 150, 400)] == [
        "0-10",
        "0-10",
        "10-50",
        "10-50",
        "50-100",
        "100-150",
        "100-150",
        "150+",
        "150+",
    ]
    assert BAND_LABELS == ("0-10", "10-50", "50-100", "100-150", "150+")


def test_the_quantile_function_interpolates_and_clips_its_level() -> None:
    c = Calibration.from_scores(np.arange(101.0), points=11)  # Q(p) = 100 p
    assert c.quantile(0.25) == pytest.approx(25.0)
    assert c.offsets(0.1) == pytest.approx((5.0, 95.0))
    # α_t at or below 0: the widest interval the calibration knows, never an infinite one.
    assert c.offsets(-0.3) == (0.0, 100.0)
    # α_t at or above 1: the interval shrinks to the median.
    assert c.offsets(1.7) == (50.0, 50.0)


def test_the_level_moves_by_gamma_times_alpha_minus_the_miss() -> None:
    adaptive = Calibration((-1.0, 1.0), gamma=0.01).start()
    assert adaptive.level == ALPHA
    adaptive.update(covered=False)
    assert adaptive.level == pytest.approx(0.1 + 0.01 * (0.1 - 1))
    adaptive.update(covered=True)
    assert adaptive.level == pytest.approx(0.091 + 0.01 * 0.1)


def test_the_lower_bound_is_floored_at_zero() -> None:
    adaptive = Calibration((-1.0, 1.0)).start()
    assert adaptive.interval(1.0, 10.0) == (0.0, pytest.approx(10.0))


def test_adaptation_restores_the_coverage_when_the_errors_grow() -> None:
    """Calibrated on scaled errors of spread 1, run on errors twice as wide: the fixed band
    covers far less than 90 %, the adaptive one close to it."""
    rng = np.random.default_rng(7)
    calibration = Calibration.from_scores(rng.normal(0, 1, 5000), floor=2.0)
    n = 20_000
    windows = np.zeros((n, 2))  # volatility = the floor, 2, on every day
    actual = 100.0 + rng.normal(0, 4, n)
    forecast = np.full(n, 100.0)
    run = sequential(calibration, windows, forecast, actual)
    fixed = Calibration(calibration.quantiles, gamma=0.0, floor=2.0)
    still = sequential(fixed, windows, forecast, actual)
    assert still.covered.mean() < 0.65
    assert abs(run.covered.mean() - 0.9) < 0.01


def test_a_day_without_an_actual_leaves_the_level_unchanged() -> None:
    calibration = Calibration((-1.0, 1.0), gamma=0.05, floor=2.0)
    windows = np.zeros((3, 3))
    run = sequential(calibration, windows, [0.0, 0.0, 0.0], [100.0, None, math.nan])
    assert not run.covered.any()
    # The first day missed; the second and third were made at the level that left.
    _, high = calibration.offsets(0.1 + 0.05 * (0.1 - 1))
    assert run.upper[1] == run.upper[2] == pytest.approx(2.0 * high)


def test_the_calibration_round_trips_through_the_artifact_json() -> None:
    c = Calibration.from_scores(np.linspace(-3, 4, 50), points=21)
    text = json.dumps(c.to_json())
    assert Calibration.from_json(json.loads(text)) == c


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "constant"}, "method"),
        ({"quantiles": [1.0, 0.0]}, "must not decrease"),
        ({"quantiles": [0.0, "x"]}, "finite"),
        ({"alpha": 1.5}, "alpha"),
        ({"volatility": {}}, "incomplete"),
    ],
)
def test_a_bad_interval_section_says_what_is_wrong(change: dict, message: str) -> None:
    section = {**Calibration((-1.0, 1.0)).to_json(), **change}
    with pytest.raises(ValueError, match=message):
        Calibration.from_json(section)


def test_the_band_table_counts_coverage_width_and_interval_score() -> None:
    last = np.array([5.0, 5.0, 60.0])
    actual = np.array([1.0, 10.0, 60.0])
    lower, upper = np.array([0.0, 0.0, 50.0]), np.array([4.0, 6.0, 70.0])
    rows = {r.band: r for r in band_table(last, actual, actual, lower, upper)}
    assert rows["0-10"].days == 2 and rows["0-10"].coverage == 0.5
    assert rows["0-10"].winkler == pytest.approx((4 + 6 + 20 * 4) / 2)
    assert rows["50-100"].mean_width == 20.0 and rows["all"].days == 3
    assert math.isnan(rows["150+"].coverage)
    assert winkler(lower, upper, actual).tolist() == [4.0, 86.0, 20.0]


class Drifting:
    """A model whose forecasts miss more and more: last value plus a growing offset."""

    window = 4
    model_version = "drift"
    calibration = Calibration((-1.0, -0.2, 0.0, 0.3, 1.0), gamma=0.02)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return windows[:, -1] * 0.9 + 0.01 * windows[:, 0] ** 1.5


def test_the_stream_gives_the_offline_intervals_whatever_its_batches() -> None:
    """Two series interleaved, cut into batches of uneven sizes: each forecast's interval is
    the one `sequential` computes for its series offline, in date order."""
    rng = np.random.default_rng(3)
    values = {s: np.abs(np.cumsum(rng.normal(0, 8, 300))) + 1 for s in ("a", "b")}
    records = [
        r
        for pair in zip(
            observations(values["a"].tolist(), "a"),
            observations(values["b"].tolist(), "b"),
            strict=True,
        )
        for r in pair
    ]
    model = Drifting()
    fc = Forecaster(
        model, TOPICS, ForecasterMetrics(CollectorRegistry()), today=lambda: date(2026, 1, 1)
    )
    published = []
    cuts = np.cumsum(rng.integers(1, 60, 40))
    for chunk in np.split(np.arange(len(records)), cuts[cuts < len(records)]):
        outputs = fc.process([records[i] for i in chunk])
        published += [json.loads(o.value) for o in outputs if o.topic == TOPICS.forecasts]
    for series, v in values.items():
        windows = np.lib.stride_tricks.sliding_window_view(v, model.window)
        forecasts = model.predict(windows)
        actuals = [*v[model.window :].tolist(), None]
        offline = sequential(model.calibration, windows, forecasts, actuals)
        streamed = [f for f in published if f["series"] == series]
        assert len(streamed) == len(windows)
        assert np.abs(np.array([f["lower"] for f in streamed]) - offline.lower).max() < 1e-9
        assert np.abs(np.array([f["upper"] for f in streamed]) - offline.upper).max() < 1e-9
    assert fc.series["a"].roles["champion"].interval.level != ALPHA
