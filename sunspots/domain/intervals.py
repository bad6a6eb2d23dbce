"""Prediction intervals that widen and narrow with the sun's activity, and keep their coverage.

A constant band around the forecast is far too wide at solar minimum and too narrow at
maximum. This module makes the 90 % interval in two steps, one calibrated offline and one
adapted online, both pure arithmetic shared by training (the offline evaluation) and the
forecaster (the stream), so the two give the same intervals by construction.

Policy:
- **Local scale.** A window's volatility is `floor + mean |day-to-day change|` over its values
  (`volatility`); the floor (1 sunspot number) keeps a flat window at zero from giving an
  empty interval.
- **Locally scaled conformal calibration.** On the validation years the signed score of each
  forecast is `(actual − forecast) / volatility`. Their quantile function is stored in the
  artifact as `QUANTILE_POINTS` values at the probabilities 0, 1/400, …, 1 (`Calibration`),
  read back with linear interpolation in O(1).
- **Interval at level α_t.** `[forecast + v·Q(α_t/2), forecast + v·Q(1 − α_t/2)]`, with `v` the
  window's volatility, `Q` the calibrated quantile function and the lower bound floored at zero
  (sunspot numbers are never negative). Q is evaluated at `clip(α_t, 0, 1)`: at α_t ≤ 0 the
  interval is the widest the calibration knows (its smallest and largest scores: the exact
  conformal interval would be infinite, which no reader can use); at α_t ≥ 1 it shrinks to the
  median. The clip is applied to the lookup only, never to α_t itself.
- **Adaptive conformal inference** (Gibbs & Candès 2021), per series: α_1 = α = 0.1 and, after
  each scored day, `α_{t+1} = α_t + γ (α − miss_t)` with `miss_t` 1 if the actual fell outside
  the interval and 0 otherwise, and a fixed step γ = 0.005 (the paper's). A run of misses widens
  the band, a run of hits narrows it, so the long-run miss rate tends to α whatever the drift.
  The state is α_t alone (`AdaptiveInterval`), a float on the series' changelog snapshot.

The floor was chosen on the validation years (1990–1999) alone, among 1, 2, 4 and 8: the one
whose worst coverage over the five activity bands (`BANDS`) is nearest 90 %, ties by the mean
interval score (`winkler`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np

ALPHA = 0.1
GAMMA = 0.005
VOLATILITY_FLOOR = 1.0
QUANTILE_POINTS = 401
METHOD = "adaptive-conformal"
VOLATILITY_MEASURE = "floor + mean absolute day-to-day change"

# Activity bands by the window's last value: (label, lowest value, first value past the band).
BANDS: tuple[tuple[str, float, float], ...] = (
    ("0-10", 0.0, 10.0),
    ("10-50", 10.0, 50.0),
    ("50-100", 50.0, 100.0),
    ("100-150", 100.0, 150.0),
    ("150+", 150.0, math.inf),
)
BAND_LABELS = tuple(label for label, _, _ in BANDS)


def band(last_value: float) -> str:
    """The activity band of a window, by its last value."""
    for label, _, high in BANDS:
        if last_value < high:
            return label
    return BANDS[-1][0]


def volatility(windows: np.ndarray, floor: float = VOLATILITY_FLOOR) -> np.ndarray:
    """`floor + mean |day-to-day change|` of each window (rows, oldest value first)."""
    x = np.asarray(windows, dtype=np.float64)
    return floor + np.abs(np.diff(x, axis=1)).mean(axis=1)


def winkler(
    lower: np.ndarray, upper: np.ndarray, actual: np.ndarray, alpha: float = ALPHA
) -> np.ndarray:
    """The interval score of each day: width plus 2/α times how far the actual fell outside."""
    below = np.maximum(lower - actual, 0.0)
    above = np.maximum(actual - upper, 0.0)
    return (upper - lower) + (2.0 / alpha) * (below + above)


@dataclass(frozen=True)
class Calibration:
    """The calibrated quantile function of the scaled scores, and the adaptation's settings."""

    quantiles: tuple[float, ...]
    alpha: float = ALPHA
    gamma: float = GAMMA
    floor: float = VOLATILITY_FLOOR

    def __post_init__(self) -> None:
        q = self.quantiles
        if len(q) < 2 or not all(math.isfinite(v) for v in q):
            raise ValueError("the calibration needs at least 2 finite quantiles")
        if any(b < a for a, b in pairwise(q)):
            raise ValueError("the calibration quantiles must not decrease")
        if not 0.0 < self.alpha < 1.0 or not 0.0 <= self.gamma < 1.0 or not self.floor > 0.0:
            raise ValueError(
                f"bad calibration settings: alpha {self.alpha}, gamma {self.gamma}, "
                f"floor {self.floor}"
            )

    @classmethod
    def from_scores(
        cls, scores: np.ndarray, points: int = QUANTILE_POINTS, floor: float = VOLATILITY_FLOOR
    ) -> Calibration:
        """The calibration of the scaled scores `(actual − forecast) / volatility`."""
        probabilities = np.linspace(0.0, 1.0, points)
        quantiles = tuple(float(q) for q in np.quantile(np.asarray(scores), probabilities))
        return cls(quantiles, floor=floor)

    @classmethod
    def fit(
        cls,
        windows: np.ndarray,
        forecasts: np.ndarray,
        actuals: np.ndarray,
        floor: float = VOLATILITY_FLOOR,
    ) -> Calibration:
        """Calibrate on forecasts from `windows` and the actual values that followed them."""
        scores = (np.asarray(actuals) - np.asarray(forecasts)) / volatility(windows, floor)
        return cls.from_scores(scores, floor=floor)

    def quantile(self, p: float) -> float:
        """Q(p) by linear interpolation, with p clipped to [0, 1]."""
        return _at(self.quantiles, min(max(p, 0.0), 1.0) * (len(self.quantiles) - 1))

    def offsets(self, level: float) -> tuple[float, float]:
        """The scaled lower and upper offsets of the interval at miscoverage `level` (α_t):
        Q(α_t/2) and Q(1 − α_t/2), with α_t clipped to [0, 1]."""
        q = self.quantiles
        top = len(q) - 1
        half = min(max(level, 0.0), 1.0) * 0.5 * top
        return _at(q, half), _at(q, top - half)

    def start(self) -> AdaptiveInterval:
        """A series' adaptive interval before its first scored day."""
        return AdaptiveInterval(self, self.alpha)

    def to_json(self) -> dict[str, Any]:
        """The artifact's interval section, as Calibration.from_json reads it back."""
        return {
            "method": METHOD,
            "coverage": round(1.0 - self.alpha, 12),
            "alpha": self.alpha,
            "gamma": self.gamma,
            "volatility": {"measure": VOLATILITY_MEASURE, "floor": self.floor},
            "quantiles": list(self.quantiles),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Calibration:
        """The calibration in an artifact's interval section; ValueError says what is wrong."""
        if obj.get("method") != METHOD:
            raise ValueError(
                f"interval method {obj.get('method')!r} is not {METHOD!r}: recalibrate with "
                "`python -m training calibrate`"
            )
        try:
            scale = obj["volatility"]
            return cls(
                quantiles=tuple(_finite(v) for v in obj["quantiles"]),
                alpha=_finite(obj["alpha"]),
                gamma=_finite(obj["gamma"]),
                floor=_finite(scale["floor"]),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"interval section incomplete or malformed: {exc!r}") from None


def _at(q: tuple[float, ...], position: float) -> float:
    """The quantile function between its points: `position` runs from 0 to len(q) − 1."""
    i = min(int(position), len(q) - 2)
    return q[i] + (position - i) * (q[i + 1] - q[i])


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return float(value)


class AdaptiveInterval:
    """One series' adaptive level α_t: `interval()` before a forecast, `update()` once scored."""

    __slots__ = ("calibration", "level")

    def __init__(self, calibration: Calibration, level: float) -> None:
        self.calibration = calibration
        self.level = level

    def interval(self, forecast: float, scale: float) -> tuple[float, float]:
        """`[lower, upper]` for a forecast from a window of volatility `scale`, at α_t."""
        low, high = self.calibration.offsets(self.level)
        return max(forecast + scale * low, 0.0), forecast + scale * high

    def update(self, covered: bool) -> None:
        """α_{t+1} = α_t + γ (α − miss_t)."""
        c = self.calibration
        self.level += c.gamma * (c.alpha - (0.0 if covered else 1.0))

    def copy(self) -> AdaptiveInterval:
        return AdaptiveInterval(self.calibration, self.level)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AdaptiveInterval)
            and other.level == self.level
            and other.calibration == self.calibration
        )

    def __repr__(self) -> str:
        return f"AdaptiveInterval(level={self.level!r})"


@dataclass(frozen=True)
class Intervals:
    """Intervals of a run of forecasts, and whether each covered its actual."""

    lower: np.ndarray
    upper: np.ndarray
    covered: np.ndarray


def sequential(
    calibration: Calibration,
    windows: np.ndarray,
    forecasts: Sequence[float] | np.ndarray,
    actuals: Sequence[float | None] | np.ndarray,
    adaptive: AdaptiveInterval | None = None,
) -> Intervals:
    """One series' intervals in date order, as the stream makes them: each day's interval at
    the level left by the days before it, the level updated once the actual is known (an
    actual of None or NaN: not scored, the level unchanged)."""
    state = adaptive if adaptive is not None else calibration.start()
    scales = volatility(windows, calibration.floor).tolist()
    n = len(scales)
    lower, upper, covered = np.empty(n), np.empty(n), np.zeros(n, dtype=bool)
    for i, (forecast, scale, actual) in enumerate(
        zip(np.asarray(forecasts, dtype=np.float64).tolist(), scales, actuals, strict=True)
    ):
        lo, hi = state.interval(forecast, scale)
        lower[i], upper[i] = lo, hi
        if actual is None or math.isnan(actual):
            continue
        covered[i] = lo <= actual <= hi
        state.update(bool(covered[i]))
    return Intervals(lower, upper, covered)


@dataclass(frozen=True)
class BandRow:
    """One activity band's interval figures on a test period, a row of band_table."""

    band: str
    days: int
    coverage: float
    mean_width: float
    winkler: float
    rmse: float

    def to_json(self) -> dict[str, Any]:
        """The row as a JSON object, for the artifact's metadata."""
        return {
            "band": self.band,
            "days": self.days,
            "coverage": self.coverage,
            "mean_width": self.mean_width,
            "winkler": self.winkler,
            "rmse": self.rmse,
        }


def band_table(
    last_values: np.ndarray,
    forecasts: np.ndarray,
    actuals: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
) -> list[BandRow]:
    """Coverage, mean width, mean interval score and RMSE per activity band, then overall."""
    last, actual = np.asarray(last_values), np.asarray(actuals)
    inside = (lower <= actual) & (actual <= upper)
    width, score = upper - lower, winkler(lower, upper, actual)
    squared = (actual - np.asarray(forecasts)) ** 2
    rows = []
    groups = [(label, (last >= low) & (last < high)) for label, low, high in BANDS]
    for label, mask in [*groups, ("all", np.ones(len(last), dtype=bool))]:
        n = int(mask.sum())
        rows.append(
            BandRow(
                label,
                n,
                float(inside[mask].mean()) if n else math.nan,
                float(width[mask].mean()) if n else math.nan,
                float(score[mask].mean()) if n else math.nan,
                float(np.sqrt(squared[mask].mean())) if n else math.nan,
            )
        )
    return rows


def format_table(rows: Sequence[BandRow]) -> str:
    """The band table as Markdown."""
    lines = [
        "| last value | scored days | coverage | mean width | interval score | RMSE |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {r.band} | {r.days:,} | {100 * r.coverage:.1f} % | {r.mean_width:.1f} "
            f"| {r.winkler:.1f} | {r.rmse:.1f} |"
        )
    return "\n".join(lines)
