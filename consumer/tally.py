"""A batch's updates of the fleet-wide metrics and of the series' counts, applied once, when the
batch succeeds.

The forecaster tells the tally what each record did (`observed`, `forecast`, `scored`,
`drift`, ...); `apply` then moves each fleet-wide counter and histogram of consumer.metrics
once per batch and label set, and adds each series' counts to its `SeriesCounts`, where the
series' collector reads them at scrape time. A batch that fails applies nothing, so processing
it again counts nothing twice. Nothing here is per series in Prometheus: the work per batch
grows with its records, not with the series an instance holds.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date

from consumer.metrics import ForecasterMetrics
from consumer.series import SeriesCounts, SeriesState
from sunspots.domain.drift import DriftStep
from sunspots.domain.intervals import band
from sunspots.lifecycle.records import CHAMPION
from sunspots.wire.schemas import Evaluation

log = logging.getLogger("consumer.forecaster")


@dataclass(slots=True)
class _Scores:
    """What a batch scored of one model: evaluations, squared errors, hits."""

    evaluations: int = 0
    squared_error: float = 0.0
    persistence_squared_error: float = 0.0
    covered: int = 0


@dataclass(slots=True)
class _Band:
    evaluations: int = 0
    covered: int = 0
    width: float = 0.0


@dataclass(slots=True)
class _Counted:
    """One series' counts in this batch, for its `SeriesCounts`."""

    counts: SeriesCounts
    observations: int = 0
    forecasts: int = 0
    evaluations: int = 0


@dataclass(slots=True)
class _Alarm:
    series: str
    role: str
    statistic: float
    target: date


@dataclass
class BatchTally:
    """What one batch did, for the metrics, gathered record by record."""

    series: dict[str, _Counted] = field(default_factory=dict)
    resets: Counter[str] = field(default_factory=Counter)
    forecasts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (role, version)
    scores: dict[tuple[str, str], _Scores] = field(default_factory=dict)
    abs_errors: list[float] = field(default_factory=list)  # the champion's
    bands: dict[str, _Band] = field(default_factory=dict)  # the champion's
    alarms: list[_Alarm] = field(default_factory=list)
    model_calls: list[tuple[float, int]] = field(default_factory=list)

    def _of(self, state: SeriesState) -> _Counted:
        counted = self.series.get(state.name)
        if counted is None:
            counted = self.series[state.name] = _Counted(state.counts)
        return counted

    def observed(self, state: SeriesState) -> None:
        self._of(state).observations += 1

    def reset(self, cause: str) -> None:
        self.resets[cause] += 1

    def forecast(self, state: SeriesState, role: str, version: str) -> None:
        self.forecasts[(role, version)] += 1
        if role == CHAMPION:
            self._of(state).forecasts += 1

    def scored(self, evaluation: Evaluation, state: SeriesState, role: str) -> None:
        """An evaluation of `role`'s forecast, by whichever version of the model made it."""
        key = (role, evaluation.model_version)
        scores = self.scores.get(key)
        if scores is None:
            scores = self.scores[key] = _Scores()
        scores.evaluations += 1
        scores.squared_error += evaluation.error * evaluation.error
        scores.persistence_squared_error += evaluation.persistence_error**2
        scores.covered += evaluation.covered
        if role != CHAMPION:
            return
        self._of(state).evaluations += 1
        self.abs_errors.append(abs(evaluation.error))
        label = band(evaluation.persistence)
        by_band = self.bands.get(label)
        if by_band is None:
            by_band = self.bands[label] = _Band()
        by_band.evaluations += 1
        by_band.covered += evaluation.covered
        by_band.width += evaluation.upper - evaluation.lower

    def drift(self, series: str, role: str, step: DriftStep, target: date) -> None:
        if step.alarm:
            self.alarms.append(_Alarm(series, role, step.statistic, target))

    def inference(self, seconds: float, windows: int) -> None:
        self.model_calls.append((seconds, windows))

    def apply(self, m: ForecasterMetrics) -> None:
        """Add the batch's counts to the metrics (and to its series' counts) once the batch has
        succeeded, and log each drift alarm it raised."""
        for seconds, windows in self.model_calls:
            m.inference.observe(seconds)
            m.batch_size.observe(windows)
        observations = 0
        for counted in self.series.values():
            counts = counted.counts
            counts.observations += counted.observations
            counts.forecasts += counted.forecasts
            counts.evaluations += counted.evaluations
            observations += counted.observations
        if observations:
            m.observations.inc(observations)
        for cause, count in self.resets.items():
            m.window_resets.labels(cause).inc(count)
        self._apply_models(m)
        for label, b in self.bands.items():
            m.band_evaluations.labels(label).inc(b.evaluations)
            m.band_covered.labels(label).inc(b.covered)
            m.band_width.labels(label).inc(b.width)
        for value in self.abs_errors:
            m.abs_error.observe(value)
        for alarm in self.alarms:
            m.lifecycle.drift_alarms.labels(alarm.role).inc()
            log.warning(
                "drift: the %s's error on %s has risen (Page-Hinkley statistic %.1f, "
                "scoring the forecast for %s)",
                alarm.role,
                alarm.series,
                alarm.statistic,
                alarm.target,
                extra={"series": alarm.series, "role": alarm.role},
            )

    def _apply_models(self, m: ForecasterMetrics) -> None:
        lifecycle = m.lifecycle
        for (role, version), count in self.forecasts.items():
            lifecycle.forecasts.labels(role, version).inc(count)
            if role == CHAMPION:
                m.forecasts.inc(count)
        for (role, version), s in self.scores.items():
            lifecycle.evaluations.labels(role, version).inc(s.evaluations)
            lifecycle.squared_error.labels(role, version).inc(s.squared_error)
            lifecycle.persistence_squared_error.labels(role, version).inc(
                s.persistence_squared_error
            )
            lifecycle.covered.labels(role, version).inc(s.covered)
            if role == CHAMPION:
                m.evaluations.inc(s.evaluations)
