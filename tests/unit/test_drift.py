"""The drift detector on synthetic errors: quiet on a steady or slowly changing error, an alarm
soon after a lasting rise, once per change, and a state that survives a restart."""

from __future__ import annotations

import numpy as np
import pytest

from sunspots.domain.drift import DriftDetector, DriftPolicy


def errors(n: int, scale: float, seed: int = 0) -> np.ndarray:
    """Absolute errors with the heavy right tail of the real ones (exponential)."""
    return np.random.default_rng(seed).exponential(scale, n)


def alarms(detector: DriftDetector, values: np.ndarray) -> list[int]:
    return [i for i, x in enumerate(values) if detector.apply(float(x)).alarm]


def test_a_steady_error_never_alarms() -> None:
    assert alarms(DriftDetector(), errors(20_000, 12.0)) == []


def test_an_error_that_grows_fourfold_over_years_never_alarms() -> None:
    # The solar cycle's own change of the error: about 3 to 12 sunspots over four years.
    scale = np.linspace(3.0, 12.0, 1500)
    values = np.random.default_rng(1).exponential(scale)
    assert alarms(DriftDetector(), values) == []


def test_a_lasting_rise_alarms_within_weeks_and_once() -> None:
    before, after = errors(1000, 12.0, seed=2), errors(2000, 20.0, seed=3)
    found = alarms(DriftDetector(), np.concatenate([before, after]))
    assert len(found) == 1 and 1000 <= found[0] < 1000 + 60


def test_the_warm_up_only_learns() -> None:
    detector = DriftDetector(DriftPolicy(warmup=5))
    steps = [detector.apply(x) for x in (1000.0, 1000.0, 1000.0, 1000.0, 1000.0)]
    assert all(not s.alarm and s.statistic == 0.0 for s in steps)
    assert detector.level == 1000.0


def test_the_signed_error_is_taken_as_its_size() -> None:
    a, b = DriftDetector(), DriftDetector()
    for x in errors(300, 12.0, seed=4):
        assert a.apply(x) == b.apply(-x)


def test_the_state_round_trips_through_json() -> None:
    values = np.concatenate([errors(500, 12.0, seed=5), errors(500, 25.0, seed=6)])
    whole, split = DriftDetector(), DriftDetector()
    expected = [whole.apply(x) for x in values]
    got = [split.apply(x) for x in values[:700]]
    split = DriftDetector.from_json(split.to_json())
    got += [split.apply(x) for x in values[700:]]
    assert got == expected and whole.alarms == split.alarms == 1


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_error_is_refused(bad: float) -> None:
    with pytest.raises(ValueError):
        DriftDetector().apply(bad)


@pytest.mark.parametrize(
    "policy", [{"threshold": 0}, {"delta": -1}, {"half_life": 0}, {"warmup": 0}, {"floor": 0}]
)
def test_a_bad_policy_is_refused(policy: dict) -> None:
    with pytest.raises(ValueError):
        DriftPolicy(**policy)
