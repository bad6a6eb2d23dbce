"""The forecasting processor: observations in; forecasts, evaluations and dead letters out.

Per poll batch it decodes every record, applies it to its series' window (sunspots.window),
makes ONE batched model call for all windows that became full, and scores each pending
forecast whose actual value arrived. It also emits the new state of every series it touched,
for the changelog the runner replays after a restart or rebalance. Each series' state is one
`SeriesState` (consumer.series).

A window can fill and its forecast's target date arrive within one batch, before the model
has run; such a pending forecast is held as an `InBatch` index into the batch's windows and
resolved once the batched call returns.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

import numpy as np

from consumer.metrics import BatchTally, ForecasterMetrics
from consumer.output import Output
from consumer.processor import DeadLetters, Record
from consumer.series import InBatch, Pending, SeriesState
from sunspots.schemas import Evaluation, Forecast, Observation, decode_observation, today_utc
from sunspots.settings import Topics
from sunspots.window import APPLIED

log = logging.getLogger(__name__)


class ForecastModel(Protocol):
    """What the forecaster needs of a model: sunspots.artifact.ForecasterModel is one."""

    @property
    def window(self) -> int: ...

    @property
    def model_version(self) -> str: ...

    @property
    def interval(self) -> tuple[float, float]: ...

    def predict(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class _Window:
    series: str
    end: date
    values: tuple[float, ...]


@dataclass
class _Batch:
    """What one batch gathers before the model call."""

    windows: list[_Window]
    scored: list[tuple[Pending, Observation]]
    touched: dict[str, SeriesState]
    dead: list[Output]
    tally: BatchTally


class Forecaster:
    def __init__(
        self,
        model: ForecastModel,
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
        self.series: dict[str, SeriesState] = {}
        self.dead_letters = DeadLetters(topics.dead_letter, metrics.dead_letters)
        metrics.model_info.labels(model.model_version).set(1)

    # --- one batch ------------------------------------------------------------------------

    def process(self, records: list[Record]) -> list[Output]:
        batch = _Batch([], [], {}, [], BatchTally())
        today = self.today()

        def decode(record: Record) -> Observation:
            return decode_observation(record.value, record.key, today)

        for record in records:
            obs = self.dead_letters.decode(record, decode, batch.dead)
            if obs is not None:
                self._apply(record, obs, batch)
        forecasts = self._forecast(batch.windows, batch.tally)
        for state in batch.touched.values():
            if isinstance(state.window.pending, InBatch):
                state.window.pending = forecasts[state.window.pending.index]
        evaluations = [self._evaluate(_resolve(p, forecasts), obs) for p, obs in batch.scored]
        for evaluation in evaluations:
            state = self.series[evaluation.series]
            state.score.add(evaluation.error, evaluation.persistence_error, evaluation.covered)
            batch.tally.scored(evaluation.series, evaluation.error, state.score)
        batch.tally.apply(self.metrics)
        return [
            *(Output(self.topics.forecasts, f.encode(), f.series.encode()) for f in forecasts),
            *(Output(self.topics.evaluations, e.encode(), e.series.encode()) for e in evaluations),
            *batch.dead,
            *(self._state_record(state) for state in batch.touched.values()),
        ]

    def _apply(self, record: Record, obs: Observation, batch: _Batch) -> None:
        state = self.series.get(obs.series)
        if state is not None and record.offset < state.applied_to:
            return  # already in the state: an at-least-once replay after a crash
        if state is None:
            state = SeriesState.new(obs.series, self.model.window, record.partition, self.rolling)
            self.series[obs.series] = state
        step = state.window.apply(obs.date, obs.sunspot_number)
        if step.status != APPLIED:
            detail = f"{obs.series} {obs.date} arrived after {state.window.last_date}"
            batch.dead.append(self.dead_letters.reject(record, step.status, detail))
            return
        state.partition = record.partition
        state.applied_to = record.offset + 1
        batch.touched[obs.series] = state
        batch.tally.observed(obs.series, obs.sunspot_number)
        if step.reset:
            self.metrics.window_resets.labels(obs.series, step.reset).inc()
        if step.scored is not None:
            batch.scored.append((step.scored, obs))
        if step.ready is not None:
            state.window.pending = InBatch(len(batch.windows))
            batch.windows.append(_Window(obs.series, obs.date, step.ready))

    def _forecast(self, windows: list[_Window], tally: BatchTally) -> list[Forecast]:
        if not windows:
            return []
        started = time.perf_counter()
        predictions = self.model.predict(np.array([w.values for w in windows], dtype=np.float64))
        self.metrics.inference.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(windows))
        low, high = self.model.interval
        forecasts = []
        for window, value in zip(windows, predictions.tolist(), strict=True):
            forecasts.append(
                Forecast(
                    series=window.series,
                    target_date=window.end + timedelta(days=1),
                    forecast=value,
                    window_end=window.end,
                    model_version=self.model.model_version,
                    lower=max(0.0, value + low),
                    upper=value + high,
                    persistence=window.values[-1],
                )
            )
            tally.forecast(window.series, value)
        return forecasts

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

    # --- state changelog ------------------------------------------------------------------

    def _state_record(self, state: SeriesState) -> Output:
        key = state.name.encode()
        return Output(self.topics.state, state.snapshot(), key, partition=state.partition)

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        restored = 0
        for key, value in changelog:
            series = key.decode()
            if value is None:
                self.series.pop(series, None)
                continue
            state = SeriesState.from_snapshot(series, value, partition, self.rolling)
            if state.window.size != self.model.window:
                # A model with another window size: its old windows are of no use.
                self.series.pop(series, None)
                continue
            self.series[series] = state
            restored += 1
        log.debug("partition %d: %d changelog records applied", partition, restored)

    def revoke(self, partitions: set[int]) -> None:
        for series in [s for s, state in self.series.items() if state.partition in partitions]:
            del self.series[series]


def _resolve(pending: Pending, forecasts: list[Forecast]) -> Forecast:
    return forecasts[pending.index] if isinstance(pending, InBatch) else pending
