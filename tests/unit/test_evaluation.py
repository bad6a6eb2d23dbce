"""Rolling RMSE, persistence RMSE and coverage over the last K evaluations."""

from __future__ import annotations

import math

import pytest

from sunspots.evaluation import RollingScore, rmse


def test_empty_score_is_nan() -> None:
    score = RollingScore(3)
    assert math.isnan(score.rmse) and math.isnan(score.coverage)


def test_rolling_window_forgets_old_errors() -> None:
    score = RollingScore(2)
    score.add(10.0, 1.0, False)
    score.add(3.0, 4.0, True)
    score.add(4.0, 3.0, True)
    assert len(score) == 2
    assert score.rmse == pytest.approx(math.sqrt((9 + 16) / 2))
    assert score.persistence_rmse == pytest.approx(math.sqrt((16 + 9) / 2))
    assert score.coverage == 1.0


def test_rmse() -> None:
    assert rmse([3.0, -4.0]) == pytest.approx(math.sqrt(12.5))
