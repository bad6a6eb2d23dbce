"""Every Prometheus metric the consumers export, declared in one place.

The registry is a parameter so tests use a fresh `CollectorRegistry()`.

The forecaster's metrics are of two kinds, so that what one instance exports stays bounded
whatever its number of series:

- **Fleet-wide** (`ForecasterMetrics`, `LifecycleMetrics`): counters and histograms summed
  over every series, labelled only by bounded sets: `band` (the five activity bands of
  sunspots.domain.intervals.BANDS), `reason` (sunspots.wire.schemas.DEAD_LETTER_REASONS), `cause`
  (sunspots.domain.window.RESET_CAUSES), `role` (champion, challenger), `model_version` (the models an
  instance has run). They are updated once per successful batch (consumer.tally).
- **Per series** (`SERIES_FAMILIES`, `SCORE_FAMILIES`, `DRIFT_FAMILIES`), labelled `series`: only
  for the series `--series-metrics` names (consumer.series_metrics.SeriesSelection), read from
  the forecaster's live state at scrape time by consumer.series_metrics.SeriesCollector (the
  client library's custom-collector pattern), so a series an instance lets go simply stops
  appearing. Their names are the ones the metrics had when every series had them.

The per-series metrics without a `role` (sunspot_forecast_rmse, ...) are the champion's, the
model serving; the `sunspot_model_*` ones have both roles' scores side by side.

The classifier's metrics (`ClassifierMetrics`) have no per-entity labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
GAUGE, COUNTER = "gauge", "counter"


@dataclass(frozen=True)
class Family:
    """A metric the forecaster's collector builds at scrape time: its name (a counter's
    without `_total`), kind, help and labels."""

    name: str
    kind: str
    help: str
    labels: tuple[str, ...]


def _series(name: str, help: str, kind: str = GAUGE) -> Family:
    return Family(name, kind, help, ("series",))


# Per series, the champion's unless a family says otherwise; each exported only for the series
# --series-metrics names. In the order the collector yields them.
SERIES_OBSERVATIONS = _series(
    "sunspot_series_observations",
    "Observations applied to the series since this instance took it.",
    COUNTER,
)
SERIES_FORECASTS = _series(
    "sunspot_series_forecasts",
    "Forecasts of the champion published for the series since this instance took it.",
    COUNTER,
)
SERIES_EVALUATIONS = _series(
    "sunspot_series_evaluations",
    "Forecasts of the champion scored for the series since this instance took it.",
    COUNTER,
)
ERROR = _series("sunspot_forecast_error", "Last signed error, actual minus forecast.")
RMSE = _series("sunspot_forecast_rmse", "Model RMSE over the last K evaluations.")
PERSISTENCE_RMSE = _series(
    "sunspot_persistence_rmse",
    "Persistence (tomorrow = today) RMSE over the same last K evaluations.",
)
COVERAGE = _series(
    "sunspot_forecast_interval_coverage",
    "Share of the last K actuals inside the 90 % interval.",
)
WIDTH = _series(
    "sunspot_forecast_interval_width",
    "Mean width of the 90 % interval over the last K evaluations.",
)
ALPHA = _series(
    "sunspot_forecast_interval_alpha",
    "The adaptive interval's current miscoverage level (0.1 calibrated; higher: narrower, "
    "lower: wider).",
)
FORECAST_VALUE = _series(
    "sunspot_forecast_value", "Last forecast published (for the day after the last value)."
)
ACTUAL_VALUE = _series("sunspot_actual_value", "Last observed sunspot number.")
BY_BAND = ("series", "band")
BAND_COVERAGE = Family(
    "sunspot_forecast_interval_band_coverage",
    GAUGE,
    "Share of the actuals inside the 90 % interval among the last K evaluations whose window "
    "ended in the activity band (by its last value).",
    BY_BAND,
)
BAND_WIDTH = Family(
    "sunspot_forecast_interval_band_width",
    GAUGE,
    "Mean width of the 90 % interval among the last K evaluations in the activity band.",
    BY_BAND,
)
BAND_EVALUATIONS = Family(
    "sunspot_forecast_interval_band_evaluations",
    GAUGE,
    "How many of the last K evaluations fall in the activity band.",
    BY_BAND,
)
SCORED = ("series", "role", "model_version")
MODEL_RMSE = Family(
    "sunspot_model_rmse", GAUGE, "RMSE over the last K evaluations, by role and model.", SCORED
)
MODEL_SKILL = Family(
    "sunspot_model_skill",
    GAUGE,
    "Skill against persistence over the last K evaluations: 1 - RMSE / persistence RMSE "
    "(above 0: better than tomorrow = today).",
    SCORED,
)
MODEL_COVERAGE = Family(
    "sunspot_model_interval_coverage",
    GAUGE,
    "Share of the last K actuals inside the 90 % interval, by role and model.",
    SCORED,
)
DRIFT = ("series", "role")
DRIFT_DETECTED = Family(
    "sunspot_drift_detected",
    GAUGE,
    "1 from a drift alarm until the detector has learned the new error level, else 0.",
    DRIFT,
)
DRIFT_STATISTIC = Family(
    "sunspot_drift_statistic",
    GAUGE,
    "The Page-Hinkley statistic of the relative error (alarm above its threshold).",
    DRIFT,
)
DRIFT_ALARM_DATE = Family(
    "sunspot_drift_last_alarm_timestamp_seconds",
    GAUGE,
    "The target date (midnight UTC, Unix time) of the scored forecast that raised the last "
    "drift alarm.",
    DRIFT,
)
SERIES_FAMILIES = (
    SERIES_OBSERVATIONS,
    SERIES_FORECASTS,
    SERIES_EVALUATIONS,
    ERROR,
    RMSE,
    PERSISTENCE_RMSE,
    COVERAGE,
    WIDTH,
    ALPHA,
    FORECAST_VALUE,
    ACTUAL_VALUE,
)
BAND_FAMILIES = (BAND_COVERAGE, BAND_WIDTH, BAND_EVALUATIONS)
SCORE_FAMILIES = (MODEL_RMSE, MODEL_SKILL, MODEL_COVERAGE)
DRIFT_FAMILIES = (DRIFT_DETECTED, DRIFT_STATISTIC, DRIFT_ALARM_DATE)

# Fleet-wide, read from the live state at scrape time too.
LIVE_SERIES = Family("sunspot_series", GAUGE, "Series whose state this instance holds.", ())
DRIFTING_SERIES = Family(
    "sunspot_drift_detected_series",
    GAUGE,
    "Series whose drift test of the role's error is in alarm (sunspot_drift_detected = 1).",
    ("role",),
)
FLEET_FAMILIES = (LIVE_SERIES, DRIFTING_SERIES)


class ForecasterMetrics:
    """The forecaster's fleet-wide metrics; the per-series ones are the collector's."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.observations = Counter(
            "sunspot_observations", "Observations applied, over all series.", registry=registry
        )
        self.forecasts = Counter(
            "sunspot_forecasts",
            "Next-day forecasts of the champion published, over all series.",
            registry=registry,
        )
        self.evaluations = Counter(
            "sunspot_evaluations",
            "Forecasts of the champion scored against the actual value, over all series.",
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
            "Windows cleared by a skipped date or a missing value, over all series.",
            ["cause"],
            registry=registry,
        )
        self.abs_error = Histogram(
            "sunspot_forecast_abs_error",
            "Absolute error of the champion's forecasts (sunspot number), over all series.",
            buckets=ABS_ERROR_BUCKETS,
            registry=registry,
        )
        self.band_evaluations, self.band_covered, self.band_width = _by_band(registry)
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
        self.lifecycle = LifecycleMetrics(registry)


def _by_band(registry: CollectorRegistry) -> tuple[Counter, Counter, Counter]:
    """The champion's scored forecasts by activity band, their hits and their widths."""
    evaluations = Counter(
        "sunspot_interval_evaluations",
        "Forecasts of the champion scored, by the activity band their window ended in (its "
        "last value), over all series.",
        ["band"],
        registry=registry,
    )
    covered = Counter(
        "sunspot_interval_covered",
        "Of those, the ones whose actual fell inside the 90 % interval.",
        ["band"],
        registry=registry,
    )
    width = Counter(
        "sunspot_interval_width",
        "The sum of their 90 % intervals' widths (÷ sunspot_interval_evaluations_total: the "
        "mean width).",
        ["band"],
        registry=registry,
    )
    return evaluations, covered, width


class LifecycleMetrics:
    """The models' lifecycle: switches, refusals, promotions, each model's scores over all
    series, drift alarms."""

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
        by_model = ["role", "model_version"]
        self.forecasts = Counter(
            "sunspot_model_forecasts",
            "Forecasts made, by role and model.",
            by_model,
            registry=registry,
        )
        self.evaluations = Counter(
            "sunspot_model_evaluations",
            "Forecasts scored, by role and model.",
            by_model,
            registry=registry,
        )
        self.squared_error = Counter(
            "sunspot_model_squared_error",
            "The sum of the squared errors of the forecasts scored, by role and model "
            "(÷ sunspot_model_evaluations_total, square-rooted: the RMSE over any range).",
            by_model,
            registry=registry,
        )
        self.persistence_squared_error = Counter(
            "sunspot_model_persistence_squared_error",
            "The sum of persistence's squared errors on the same days (the skill's reference).",
            by_model,
            registry=registry,
        )
        self.covered = Counter(
            "sunspot_model_covered",
            "Forecasts scored whose actual fell inside the 90 % interval, by role and model.",
            by_model,
            registry=registry,
        )
        self.drift_alarms = Counter(
            "sunspot_drift_alarms",
            "Drift alarms on the live error, by role, over all series.",
            ["role"],
            registry=registry,
        )


class ClassifierMetrics:
    """The classifier service's metrics, declared once and registered in the service's registry."""

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
