"""Rolling RMSE, persistence RMSE and coverage over the last K evaluations, and whether an
evaluation's actual lies inside its forecast interval."""

from __future__ import annotations

import math
from datetime import date

import pytest

from sunspots.domain.evaluation import RollingScore, rmse
from sunspots.wire.schemas import Evaluation, Forecast
from tests.tolerance import FLOAT32_REL


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


def _scored(actual: float, lower: float = 10.0, upper: float = 20.0) -> Evaluation:
    forecast = Forecast("s", date(2001, 1, 1), 15.0, date(2000, 12, 31), "v1", lower, upper, 14.0)
    return Evaluation.score(forecast, actual)


@pytest.mark.parametrize(
    ("actual", "covered"),
    [
        (15.0, True),  # inside
        (10.0, True),  # on the lower bound: the interval is closed
        (20.0, True),  # on the upper bound
        (math.nextafter(10.0, 0.0), False),  # just below
        (math.nextafter(20.0, 30.0), False),  # just above
        (3.0, False),
        (27.0, False),
    ],
)
def test_an_actual_is_covered_inside_the_closed_interval_only(actual: float, covered: bool) -> None:
    assert _scored(actual).covered is covered


def test_a_zero_lower_bound_covers_a_spotless_day() -> None:
    # Forecast intervals are cut at 0 (sunspot numbers are never negative): a day with no
    # spots at all lies on that bound, inside.
    assert _scored(0.0, lower=0.0).covered


def test_coverage_is_the_share_of_covered_evaluations_in_the_window() -> None:
    score = RollingScore(4)
    for evaluation in (_scored(15.0), _scored(25.0), _scored(10.0), _scored(5.0), _scored(20.0)):
        score.add(evaluation.error, evaluation.persistence_error, evaluation.covered)
    # The first (covered) fell out of the window: 25 no, 10 yes, 5 no, 20 yes.
    assert score.coverage == 0.5


def test_widths_are_kept_to_24_bits_and_errors_in_full() -> None:
    # A width is only averaged for a gauge, so it is kept in 4 bytes; the errors, which the
    # RMSEs and the promotion rule compare, are kept exactly.
    widths = [1 / 3, 123.456789, 0.1, 987.654321]
    errors = [1 / 7, -2 / 3, 1e-9, 123.4567891234]
    score = RollingScore(4)
    for width, error in zip(widths, errors, strict=True):
        score.add(error, error, True, width, "50-100")
    assert score.rmse == rmse(errors)  # exact: the same doubles
    mean = math.fsum(widths) / len(widths)
    assert score.mean_width == pytest.approx(mean, rel=FLOAT32_REL)
    assert score.mean_width != mean  # rounded: the test would pass on doubles only by luck
    ((days, _, band_width),) = score.bands().values()
    assert days == 4 and band_width == score.mean_width
