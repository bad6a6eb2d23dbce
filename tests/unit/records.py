"""Consumed records for the processors' unit tests: what the runner hands a processor
(`Record`, support.records), the models-topic publications a stand-in model makes, and the
forecaster the lifecycle's tests run such a model in."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from consumer.output import Output
from consumer.series import SeriesPolicy
from consumer.series_metrics import SeriesSelection
from sunspots.domain.intervals import Calibration
from sunspots.kafka.settings import Topics
from sunspots.lifecycle.records import ModelRecord, Published
from sunspots.wire.schemas import Observation
from support.records import Record

D0 = date(2000, 1, 1)
# A stand-in model's calibration: Q(p) = 2p − 1, so at α = 0.1 the interval is the forecast
# ± 0.9 × the window's volatility (floor 2); a step γ large enough to see the level move.
CALIBRATION = Calibration((-1.0, 1.0), gamma=0.05, floor=2.0)


def transaction(processor: Any, records: list[Record]) -> list[Output]:
    """One batch through a processor as the runner drives it: its outputs, then the changelog's
    records its transaction owes."""
    return processor.process(records) + processor.changelog()


def observations(values: list[float | None], series: str = "s", start: int = 0) -> list[Record]:
    """One observation a day from D0 + `start` days, at offsets `start`.., keyed by series."""
    out = []
    for i, v in enumerate(values):
        obs = Observation(series, D0 + timedelta(days=start + i), v, None, 1, False)
        out.append(Record(obs.encode(), series.encode(), start + i))
    return out


def published(role: str, model: Any) -> Published:
    """A models-topic publication of a stand-in `model` (it needs a `model_version`) in `role`."""
    record = ModelRecord(
        1, role, "sunspot-forecaster", model.model_version, "{}", "", b"", "", "", ""
    )
    return Published(role, model, record)


def forecaster(registry: CollectorRegistry, model: Any, **kwargs: Any) -> Forecaster:
    """A forecaster serving stand-in `model` on the default topics: today is 2026-01-01, 8
    values of history and 10 evaluations of rolling scores unless `series_policy` is given,
    every series with its own metrics; other keyword arguments go to Forecaster."""
    return Forecaster(
        model,
        Topics(),
        ForecasterMetrics(registry),
        today=lambda: date(2026, 1, 1),
        series_policy=kwargs.pop("series_policy", SeriesPolicy(history=8, rolling=10)),
        series_metrics=SeriesSelection.parse("all"),
        **kwargs,
    )


__all__ = ["CALIBRATION", "D0", "Record", "forecaster", "observations", "published"]
