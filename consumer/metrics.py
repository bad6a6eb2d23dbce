"""Every Prometheus metric the consumers export, declared in one place.

The registry is a parameter so tests use a fresh `CollectorRegistry()`. Labels stay few and
bounded: `series` (at most the forecaster's `--max-series` live series; a revoked series'
children are removed, see `SeriesLabels`), `band` (the five activity bands of
sunspots.intervals.BANDS), `reason` (the fixed set in sunspots.schemas.REASONS),
`predicted_class` (the model's classes), `role` (champion, challenger) and `model_version`
(the models an instance has run: a replaced model's gauges are removed).

The per-series metrics without a `role` (sunspot_forecast_rmse, ...) are the champion's, the
model serving; `LifecycleMetrics` has both roles' scores side by side.
"""

from __future__ import annotations

import logging
import math
from collections import Counter as TallyCounter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sunspots.drift import DriftDetector, DriftStep
from sunspots.evaluation import RollingScore
from sunspots.intervals import BAND_LABELS
from sunspots.registry import CHAMPION
from sunspots.schemas import Evaluation
from sunspots.window import RESET_CAUSES

if TYPE_CHECKING:
    from consumer.series import RoleState

log = logging.getLogger(__name__)

# Sunspot numbers run 0..~500; day-ahead errors are mostly below 30.
ABS_ERROR_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 15, 20, 30, 50, 75, 100, 150, 250)
# One batched NumPy call takes tens of microseconds to a few milliseconds.
INFERENCE_BUCKETS = (
    0.00005,
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1.0,
)
# The labels of the lifecycle's per-series metrics, in order.
SCORED = ("series", "role", "model_version")
DRIFT = ("series", "role")
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class ForecasterMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.observations = Counter(
            "sunspot_observations",
            "Observations consumed and decoded.",
            ["series"],
            registry=registry,
        )
        self.forecasts = Counter(
            "sunspot_forecasts", "Next-day forecasts published.", ["series"], registry=registry
        )
        self.evaluations = Counter(
            "sunspot_evaluations",
            "Forecasts scored against the actual value.",
            ["series"],
            registry=registry,
        )
        self.dead_letters = Counter(
            "sunspot_dead_letters",
            "Records sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.window_resets = Counter(
            "sunspot_window_resets",
            "Windows cleared by a skipped date or a missing value.",
            ["series", "cause"],
            registry=registry,
        )
        self.error = Gauge(
            "sunspot_forecast_error",
            "Last signed error, actual minus forecast.",
            ["series"],
            registry=registry,
        )
        self.abs_error = Histogram(
            "sunspot_forecast_abs_error",
            "Absolute forecast error (sunspot number).",
            ["series"],
            buckets=ABS_ERROR_BUCKETS,
            registry=registry,
        )
        self.rmse = Gauge(
            "sunspot_forecast_rmse",
            "Model RMSE over the last K evaluations.",
            ["series"],
            registry=registry,
        )
        self.persistence_rmse = Gauge(
            "sunspot_persistence_rmse",
            "Persistence (tomorrow = today) RMSE over the same last K evaluations.",
            ["series"],
            registry=registry,
        )
        self.coverage = Gauge(
            "sunspot_forecast_interval_coverage",
            "Share of the last K actuals inside the 90 % interval.",
            ["series"],
            registry=registry,
        )
        self.band_coverage = Gauge(
            "sunspot_forecast_interval_band_coverage",
            "Share of the actuals inside the 90 % interval among the last K evaluations whose "
            "window ended in the activity band (by its last value).",
            ["series", "band"],
            registry=registry,
        )
        self.band_width = Gauge(
            "sunspot_forecast_interval_band_width",
            "Mean width of the 90 % interval among the last K evaluations in the activity band.",
            ["series", "band"],
            registry=registry,
        )
        self.band_evaluations = Gauge(
            "sunspot_forecast_interval_band_evaluations",
            "How many of the last K evaluations fall in the activity band.",
            ["series", "band"],
            registry=registry,
        )
        self.width = Gauge(
            "sunspot_forecast_interval_width",
            "Mean width of the 90 % interval over the last K evaluations.",
            ["series"],
            registry=registry,
        )
        self.alpha = Gauge(
            "sunspot_forecast_interval_alpha",
            "The adaptive interval's current miscoverage level (0.1 calibrated; higher: "
            "narrower, lower: wider).",
            ["series"],
            registry=registry,
        )
        self.forecast_value = Gauge(
            "sunspot_forecast_value", "Last forecast published.", ["series"], registry=registry
        )
        self.actual_value = Gauge(
            "sunspot_actual_value", "Last observed sunspot number.", ["series"], registry=registry
        )
        self.inference = Histogram(
            "sunspot_inference_seconds",
            "Time of one batched model call.",
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "sunspot_batch_size",
            "Windows per batched model call.",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.model_info = Gauge(
            "sunspot_model_info",
            "The models this instance runs: the champion serves, a challenger is shadow-scored.",
            ["model_version", "role"],
            registry=registry,
        )
        self.live_series = Gauge(
            "sunspot_series", "Series whose state this instance holds.", registry=registry
        )
        self.lifecycle = LifecycleMetrics(registry)

    def gauges(self) -> tuple[Gauge, ...]:
        """The per-series gauges: last values, frozen once a series stops."""
        return (
            self.error,
            self.rmse,
            self.persistence_rmse,
            self.coverage,
            self.width,
            self.alpha,
            self.forecast_value,
            self.actual_value,
        )

    def band_gauges(self) -> tuple[Gauge, ...]:
        """The per-series gauges labelled by `series` and `band`."""
        return (self.band_coverage, self.band_width, self.band_evaluations)

    def counts(self) -> tuple[Counter | Histogram, ...]:
        """The per-series counters and histograms labelled by `series` alone."""
        return (self.observations, self.forecasts, self.evaluations, self.abs_error)


class LifecycleMetrics:
    """The models' lifecycle: switches, refusals, promotions, each role's scores, drift."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.switches = Counter(
            "sunspot_model_switches",
            "Models taken from the models topic while running, by role (a new champion "
            "serving, a challenger starting its shadow forecasts).",
            ["role"],
            registry=registry,
        )
        self.rejections = Counter(
            "sunspot_model_rejections",
            "Model records refused (the model in place keeps its role), by reason.",
            ["reason"],
            registry=registry,
        )
        self.promotions = Counter(
            "sunspot_model_promotions",
            "Challengers this instance promoted to champion by the automatic rule.",
            registry=registry,
        )
        by_role = ["role", "model_version"]
        self.forecasts = Counter(
            "sunspot_model_forecasts",
            "Forecasts made, by role and model.",
            by_role,
            registry=registry,
        )
        self.evaluations = Counter(
            "sunspot_model_evaluations",
            "Forecasts scored, by role and model.",
            by_role,
            registry=registry,
        )
        scored = list(SCORED)
        self.rmse = Gauge(
            "sunspot_model_rmse",
            "RMSE over the last K evaluations, by role and model.",
            scored,
            registry=registry,
        )
        self.skill = Gauge(
            "sunspot_model_skill",
            "Skill against persistence over the last K evaluations: 1 - RMSE / persistence "
            "RMSE (above 0: better than tomorrow = today).",
            scored,
            registry=registry,
        )
        self.coverage = Gauge(
            "sunspot_model_interval_coverage",
            "Share of the last K actuals inside the 90 % interval, by role and model.",
            scored,
            registry=registry,
        )
        drift = list(DRIFT)
        self.drift_detected = Gauge(
            "sunspot_drift_detected",
            "1 from a drift alarm until the detector has learned the new error level, else 0.",
            drift,
            registry=registry,
        )
        self.drift_alarms = Counter(
            "sunspot_drift_alarms", "Drift alarms on the live error.", drift, registry=registry
        )
        self.drift_statistic = Gauge(
            "sunspot_drift_statistic",
            "The Page-Hinkley statistic of the relative error (alarm above its threshold).",
            drift,
            registry=registry,
        )
        self.drift_alarm_date = Gauge(
            "sunspot_drift_last_alarm_timestamp_seconds",
            "The target date (midnight UTC, Unix time) of the scored forecast that raised the "
            "last drift alarm.",
            drift,
            registry=registry,
        )

    def scored_gauges(self) -> tuple[Gauge, ...]:
        """The gauges labelled `SCORED`: series, role, model_version."""
        return (self.rmse, self.skill, self.coverage)

    def drift_gauges(self) -> tuple[Gauge, ...]:
        """The gauges labelled `DRIFT`: series, role."""
        return (self.drift_detected, self.drift_statistic, self.drift_alarm_date)


class ClassifierMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "classifier_requests", "Classification requests consumed.", registry=registry
        )
        self.predictions = Counter(
            "classifier_predictions",
            "Predictions published, by class.",
            ["predicted_class"],
            registry=registry,
        )
        self.inference = Histogram(
            "classifier_inference_seconds",
            "Time of one batched model call.",
            buckets=INFERENCE_BUCKETS,
            registry=registry,
        )
        self.dead_letters = Counter(
            "classifier_dead_letters",
            "Requests sent to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.model_info = Gauge(
            "classifier_model_info",
            "The model artifact being served.",
            ["model_version"],
            registry=registry,
        )


@dataclass
class _SeriesTally:
    observations: int = 0
    actual: float | None = None
    forecasts: int = 0
    last_forecast: float | None = None
    evaluations: int = 0
    abs_errors: list[float] = field(default_factory=list)
    last_error: float | None = None
    score: RollingScore | None = None
    alpha: float | None = None
    resets: dict[str, int] = field(default_factory=dict)


@dataclass
class _DriftTally:
    statistic: float = 0.0
    alarms: int = 0
    detected: bool = False
    alarm_date: date | None = None
    alarm_statistic: float = 0.0


@dataclass
class RoleTally:
    """A batch's updates of the lifecycle metrics, by role and model."""

    forecasts: TallyCounter[tuple[str, str]] = field(default_factory=TallyCounter)
    evaluations: TallyCounter[tuple[str, str]] = field(default_factory=TallyCounter)
    scores: dict[tuple[str, str, str], RollingScore] = field(default_factory=dict)
    drift: dict[tuple[str, str], _DriftTally] = field(default_factory=dict)

    def apply(self, m: LifecycleMetrics) -> None:
        for key, count in self.forecasts.items():
            m.forecasts.labels(*key).inc(count)
        for key, count in self.evaluations.items():
            m.evaluations.labels(*key).inc(count)
        for key, score in self.scores.items():
            m.rmse.labels(*key).set(score.rmse)
            m.skill.labels(*key).set(skill(score))
            m.coverage.labels(*key).set(score.coverage)
        for key, d in self.drift.items():
            m.drift_statistic.labels(*key).set(d.statistic)
            m.drift_detected.labels(*key).set(1 if d.detected else 0)
            if d.alarms:
                m.drift_alarms.labels(*key).inc(d.alarms)
            if d.alarm_date is not None:
                midnight = datetime.combine(d.alarm_date, datetime.min.time(), UTC)
                m.drift_alarm_date.labels(*key).set(midnight.timestamp())
                log.warning(
                    "drift: the %s's error on %s has risen (Page-Hinkley statistic %.1f, "
                    "scoring the forecast for %s)",
                    key[1],
                    key[0],
                    d.alarm_statistic,
                    d.alarm_date,
                    extra={"series": key[0], "role": key[1]},
                )


def skill(score: RollingScore) -> float:
    """1 − RMSE / persistence RMSE: above 0, better than tomorrow = today (NaN without a
    persistence error to compare with)."""
    reference = score.persistence_rmse
    return 1.0 - score.rmse / reference if reference > 0 else math.nan


class BatchTally:
    """A batch's metric updates, gathered per series and applied once, when the batch succeeds.

    Each series' counters and gauges are set once per batch, to the values they would hold
    after updating them record by record: `labels()` lookups were a tenth of the consumer's
    time, and the rolling RMSE sums K values, so computing it per evaluation cost O(K) each.
    A batch that fails applies nothing, so processing it again counts nothing twice.
    """

    def __init__(self) -> None:
        self.series: dict[str, _SeriesTally] = {}
        self.model_calls: list[tuple[float, int]] = []
        self.roles = RoleTally()

    def _of(self, series: str) -> _SeriesTally:
        tally = self.series.get(series)
        if tally is None:
            tally = self.series[series] = _SeriesTally()
        return tally

    def observed(self, series: str, value: float | None) -> None:
        tally = self._of(series)
        tally.observations += 1
        if value is not None:
            tally.actual = value

    def reset(self, series: str, cause: str) -> None:
        resets = self._of(series).resets
        resets[cause] = resets.get(cause, 0) + 1

    def forecast(self, series: str, role: str, version: str, value: float) -> None:
        self.roles.forecasts[(role, version)] += 1
        if role == CHAMPION:
            tally = self._of(series)
            tally.forecasts += 1
            tally.last_forecast = value

    def scored(self, evaluation: Evaluation, role: str, state: RoleState | None) -> None:
        """An evaluation of `role`; `state` is the role's state when the evaluation is of the
        model now in the role (else it is counted, and scores nothing)."""
        series, version = evaluation.series, evaluation.model_version
        self.roles.evaluations[(role, version)] += 1
        if state is not None:
            self.roles.scores[(series, role, version)] = state.score
        if role != CHAMPION:
            return
        tally = self._of(series)
        tally.evaluations += 1
        tally.abs_errors.append(abs(evaluation.error))
        tally.last_error = evaluation.error
        if state is not None:
            tally.score = state.score
            tally.alpha = state.interval.level

    def drift(
        self, series: str, role: str, step: DriftStep, detector: DriftDetector, target: date
    ) -> None:
        d = self.roles.drift.setdefault((series, role), _DriftTally())
        d.statistic = step.statistic
        d.detected = detector.alarms > 0 and detector.seen < detector.policy.warmup
        if step.alarm:
            d.alarms += 1
            d.alarm_date = target
            d.alarm_statistic = step.statistic

    def inference(self, seconds: float, windows: int) -> None:
        self.model_calls.append((seconds, windows))

    def apply(self, m: ForecasterMetrics, live_series: int) -> None:
        for seconds, windows in self.model_calls:
            m.inference.observe(seconds)
            m.batch_size.observe(windows)
        m.live_series.set(live_series)
        for series, t in self.series.items():
            if t.observations:
                m.observations.labels(series).inc(t.observations)
            if t.actual is not None:
                m.actual_value.labels(series).set(t.actual)
            for cause, count in t.resets.items():
                m.window_resets.labels(series, cause).inc(count)
            if t.forecasts:
                m.forecasts.labels(series).inc(t.forecasts)
                m.forecast_value.labels(series).set(t.last_forecast)
            if t.evaluations:
                histogram = m.abs_error.labels(series)
                for value in t.abs_errors:
                    histogram.observe(value)
                m.evaluations.labels(series).inc(t.evaluations)
                m.error.labels(series).set(t.last_error)
            if t.score is not None and t.alpha is not None:
                m.rmse.labels(series).set(t.score.rmse)
                m.persistence_rmse.labels(series).set(t.score.persistence_rmse)
                m.coverage.labels(series).set(t.score.coverage)
                m.width.labels(series).set(t.score.mean_width)
                m.alpha.labels(series).set(t.alpha)
                _set_bands(m, series, t.score.bands())
        self.roles.apply(m.lifecycle)


def _set_bands(
    m: ForecasterMetrics, series: str, bands: Mapping[str, tuple[int, float, float]]
) -> None:
    """A band with no day among the last K has no value, rather than a stale one."""
    for band in BAND_LABELS:
        if band in bands:
            days, coverage, width = bands[band]
            m.band_evaluations.labels(series, band).set(days)
            m.band_coverage.labels(series, band).set(coverage)
            m.band_width.labels(series, band).set(width)
        else:
            for gauge in m.band_gauges():
                gauge.remove(series, band)


class SeriesLabels:
    """Removes the labelled children of series an instance no longer holds.

    On revocation a series' gauges go at once: a frozen last value would read as current (and
    keep alerts firing) although this instance no longer scores that series. Its counters and
    histograms go at the next batch, unless its partition came back meanwhile: a rewind after
    a failed publish revokes and restores every partition at once, and removing the counters
    then would reset them for nothing. A series that returns later starts its counters from
    zero, which `rate()` and `increase()` read as a counter reset.
    """

    def __init__(self, metrics: ForecasterMetrics) -> None:
        self.metrics = metrics
        self.released: set[str] = set()

    def release(self, series: Iterable[str]) -> None:
        gone = set(series)
        for name in gone:
            for gauge in self.metrics.gauges():
                gauge.remove(name)
            for gauge in self.metrics.band_gauges():
                for band in BAND_LABELS:
                    gauge.remove(name, band)
        lifecycle = self.metrics.lifecycle
        for gauge in lifecycle.scored_gauges():
            remove_where(gauge, SCORED, lambda labels: labels["series"] in gone)
        for gauge in lifecycle.drift_gauges():
            remove_where(gauge, DRIFT, lambda labels: labels["series"] in gone)
        self.released |= gone

    def retire_model(self, role: str, version: str) -> None:
        """A model left its role: its scores' gauges go, and the role's drift gauges, whose
        test starts afresh with the next model."""
        lifecycle = self.metrics.lifecycle
        for gauge in lifecycle.scored_gauges():
            remove_where(
                gauge,
                SCORED,
                lambda labels: labels["role"] == role and labels["model_version"] == version,
            )
        for gauge in lifecycle.drift_gauges():
            remove_where(gauge, DRIFT, lambda labels: labels["role"] == role)

    def keep(self, series: str) -> None:
        self.released.discard(series)

    def forget_released(self, live: Mapping[str, object]) -> None:
        gone = {name for name in self.released if name not in live}
        self.released.clear()
        if not gone:
            return
        for name in gone:
            for metric in self.metrics.counts():
                metric.remove(name)
            for cause in RESET_CAUSES:
                self.metrics.window_resets.remove(name, cause)
        alarms = self.metrics.lifecycle.drift_alarms
        remove_where(alarms, DRIFT, lambda labels: labels["series"] in gone)


def remove_where(
    metric: Gauge | Counter, names: tuple[str, ...], matches: Callable[[dict[str, str]], bool]
) -> None:
    """Remove every child of `metric` (labelled `names`, in order) whose labels `matches`.
    The children are found through the metric's public `collect()`, once: a rebalance or a
    rewind releases every series at once, so this is one pass whatever their number."""
    found = {
        tuple(sample.labels[n] for n in names)
        for family in metric.collect()
        for sample in family.samples
        if matches(sample.labels)
    }
    for values in found:
        metric.remove(*values)
