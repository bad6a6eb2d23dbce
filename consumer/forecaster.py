"""The forecasting processor: observations in; forecasts, evaluations and dead letters out.

Per poll batch it decodes every record, applies it to its series' window (sunspots.window),
makes ONE batched model call for all windows that became full, and scores each pending
forecast whose actual value arrived. It also emits the new state of every series it touched,
for the changelog the runner replays after a restart or rebalance.

A window can fill and its forecast's target date arrive within one batch, before the model
has run; such a pending forecast is held as an index into the batch's windows and resolved
once the batched call returns.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np

from consumer.metrics import ForecasterMetrics
from consumer.output import Output, dead_letter
from sunspots.evaluation import RollingScore
from sunspots.schemas import (
    Evaluation,
    Forecast,
    Observation,
    SchemaError,
    decode_forecast,
    decode_observation,
    today_utc,
)
from sunspots.settings import Topics
from sunspots.window import APPLIED, SeriesWindow

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _InBatch:
    """A pending forecast from this batch's window number `index`, not predicted yet."""

    index: int


@dataclass(frozen=True, slots=True)
class _Window:
    series: str
    end: date
    values: tuple[float, ...]


class Forecaster:
    def __init__(
        self,
        model: Any,
        topics: Topics,
        metrics: ForecasterMetrics,
        rolling: int = 365,
        today: Callable[[], date] = today_utc,
    ) -> None:
        self.model = model
        self.topics = topics
        self.metrics = metrics
        self.rolling = rolling
        self.today = today
        self.windows: dict[str, SeriesWindow] = {}
        self.partition_of: dict[str, int] = {}
        # Next source offset not yet reflected in a series' state; an at-least-once replay of
        # older records after a crash is skipped instead of being applied twice.
        self.applied_to: dict[str, int] = {}
        self.scores: dict[str, RollingScore] = {}
        metrics.model_info.labels(model.model_version).set(1)

    # --- one batch ------------------------------------------------------------------------

    def process(self, records: list[Any]) -> list[Output]:
        dead: list[Output] = []
        batch: list[_Window] = []
        scored: list[tuple[Any, Observation]] = []
        touched: dict[str, int] = {}
        # Metrics are updated once per series per batch, to the values they would hold after
        # updating them record by record: labels() lookups were a tenth of the consumer's time.
        applied: dict[str, int] = {}
        actual: dict[str, float] = {}
        today = self.today()
        for record in records:
            obs = self._decode(record, today, dead)
            if obs is None or record.offset < self.applied_to.get(obs.series, 0):
                continue
            state = self.windows.get(obs.series) or self._new_window(obs.series)
            step = state.apply(obs.date, obs.sunspot_number)
            if step.status != APPLIED:
                detail = f"{obs.series} {obs.date} arrived after {state.last_date}"
                dead.append(self._dead(record, step.status, detail))
                continue
            self.partition_of[obs.series] = record.partition
            self.applied_to[obs.series] = record.offset + 1
            touched[obs.series] = record.partition
            applied[obs.series] = applied.get(obs.series, 0) + 1
            if obs.sunspot_number is not None:
                actual[obs.series] = obs.sunspot_number
            if step.reset:
                self.metrics.window_resets.labels(obs.series, step.reset).inc()
            if step.scored is not None:
                scored.append((step.scored, obs))
            if step.ready is not None:
                state.pending = _InBatch(len(batch))
                batch.append(_Window(obs.series, obs.date, step.ready))
        for series, count in applied.items():
            self.metrics.observations.labels(series).inc(count)
        for series, value in actual.items():
            self.metrics.actual_value.labels(series).set(value)
        forecasts = self._forecast(batch)
        for series in touched:
            pending = self.windows[series].pending
            if isinstance(pending, _InBatch):
                self.windows[series].pending = forecasts[pending.index]
        evaluations = [self._evaluate(self._resolve(p, forecasts), obs) for p, obs in scored]
        self._score(evaluations)
        return [
            *(Output(self.topics.forecasts, f.encode(), f.series.encode()) for f in forecasts),
            *(Output(self.topics.evaluations, e.encode(), e.series.encode()) for e in evaluations),
            *dead,
            *(self._state_record(series, partition) for series, partition in touched.items()),
        ]

    def _decode(self, record: Any, today: date, dead: list[Output]) -> Observation | None:
        try:
            return decode_observation(record.value, record.key, today)
        except SchemaError as exc:
            dead.append(self._dead(record, exc.reason, exc.detail))
            return None

    def _dead(self, record: Any, reason: str, detail: str) -> Output:
        self.metrics.dead_letters.labels(reason).inc()
        log.debug(
            "dead letter %s at %s/%s/%s: %s",
            reason,
            record.topic,
            record.partition,
            record.offset,
            detail,
        )
        return dead_letter(self.topics.dead_letter, record, reason, detail)

    def _new_window(self, series: str) -> SeriesWindow:
        self.windows[series] = SeriesWindow(self.model.window)
        return self.windows[series]

    def _forecast(self, batch: list[_Window]) -> list[Forecast]:
        if not batch:
            return []
        started = time.perf_counter()
        predictions = self.model.predict(np.array([w.values for w in batch], dtype=np.float64))
        self.metrics.inference.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(batch))
        low, high = self.model.interval
        forecasts = []
        made: dict[str, int] = {}
        last: dict[str, float] = {}
        for window, value in zip(batch, predictions.tolist(), strict=True):
            forecast = Forecast(
                series=window.series,
                target_date=window.end + timedelta(days=1),
                forecast=value,
                window_end=window.end,
                model_version=self.model.model_version,
                lower=max(0.0, value + low),
                upper=value + high,
                persistence=window.values[-1],
            )
            made[window.series] = made.get(window.series, 0) + 1
            last[window.series] = value
            forecasts.append(forecast)
        for series, count in made.items():
            self.metrics.forecasts.labels(series).inc(count)
            self.metrics.forecast_value.labels(series).set(last[series])
        return forecasts

    @staticmethod
    def _resolve(pending: Any, forecasts: list[Forecast]) -> Forecast:
        return forecasts[pending.index] if isinstance(pending, _InBatch) else pending

    @staticmethod
    def _evaluate(forecast: Forecast, obs: Observation) -> Evaluation:
        assert obs.sunspot_number is not None and forecast.target_date == obs.date
        return Evaluation(
            series=obs.series,
            date=obs.date,
            forecast=forecast.forecast,
            actual=obs.sunspot_number,
            model_version=forecast.model_version,
            lower=forecast.lower,
            upper=forecast.upper,
            persistence=forecast.persistence,
        )

    def _score(self, evaluations: list[Evaluation]) -> None:
        """Add a batch's evaluations to the rolling scores and the error histogram, then set
        each series' counter and gauges once: the last error and the scores after the batch
        (the rolling RMSE sums K values, so computing it per evaluation cost O(K) each)."""
        m = self.metrics
        counts: dict[str, int] = {}
        last_error: dict[str, float] = {}
        histograms: dict[str, Any] = {}
        for evaluation in evaluations:
            series, error = evaluation.series, evaluation.error
            score = self.scores.get(series)
            if score is None:
                score = self.scores[series] = RollingScore(self.rolling)
            score.add(error, evaluation.persistence_error, evaluation.covered)
            histogram = histograms.get(series)
            if histogram is None:
                histogram = histograms[series] = m.abs_error.labels(series)
            histogram.observe(abs(error))
            counts[series] = counts.get(series, 0) + 1
            last_error[series] = error
        for series, count in counts.items():
            score = self.scores[series]
            m.evaluations.labels(series).inc(count)
            m.error.labels(series).set(last_error[series])
            m.rmse.labels(series).set(score.rmse)
            m.persistence_rmse.labels(series).set(score.persistence_rmse)
            m.coverage.labels(series).set(score.coverage)

    # --- state changelog ------------------------------------------------------------------

    def _state_record(self, series: str, partition: int) -> Output:
        window = self.windows[series].to_json(encode_pending=lambda f: f.to_json())
        body = {"series": series, "offset": self.applied_to[series], "window": window}
        value = json.dumps(body, separators=(",", ":")).encode()
        return Output(self.topics.state, value, series.encode(), partition=partition)

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes]]) -> None:
        restored = 0
        for key, value in changelog:
            series = key.decode()
            if value is None:
                self._forget(series)
                continue
            body = json.loads(value)
            window = SeriesWindow.from_json(
                body["window"], decode_pending=lambda p: decode_forecast(json.dumps(p))
            )
            if window.size != self.model.window:
                # A model with another window size: its old windows are of no use.
                self._forget(series)
                continue
            self.windows[series] = window
            self.partition_of[series] = partition
            self.applied_to[series] = int(body["offset"])
            restored += 1
        log.debug("partition %d: %d changelog records applied", partition, restored)

    def revoke(self, partitions: set[int]) -> None:
        for series in [s for s, p in self.partition_of.items() if p in partitions]:
            self._forget(series)

    def _forget(self, series: str) -> None:
        self.windows.pop(series, None)
        self.partition_of.pop(series, None)
        self.applied_to.pop(series, None)
