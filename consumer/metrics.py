"""Every Prometheus metric the consumers export, declared in one place.

The registry is a parameter so tests use a fresh `CollectorRegistry()`. Labels stay few:
`series` (a handful of ids), `reason` (the fixed set in sunspots.schemas.REASONS plus the
window's), `predicted_class` (four values) and `model_version` on the info gauge only.
"""

from __future__ import annotations

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
            "The model artifact being served.",
            ["model_version"],
            registry=registry,
        )


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
