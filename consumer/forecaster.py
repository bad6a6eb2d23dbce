"""The forecasting processor: observations in; forecasts, evaluations and dead letters out.

Per poll batch it decodes every record, applies it to its series' window (sunspots.window),
makes ONE batched model call for all windows that became full, and scores each pending
forecast whose actual value arrived. It also emits the new state of every series it touched,
for the changelog the runner replays after a restart or rebalance. Each series' state is one
`SeriesState` (consumer.series).

A window can fill and its forecast's target date arrive within one batch, before the model
has run; such a pending forecast is held as an `InBatch` index into the batch's windows and
resolved once the batched call returns.

Intervals (sunspots.intervals): each series' adaptive level moves after every scored day, and
the interval of the next forecast depends on it, so once the batched model call has returned
(and the windows' volatilities are computed for the whole batch at once) the batch's forecasts
and scorings are walked in the order their observations were applied: each forecast gets its
interval at its series' current level, each scoring updates that level. This is the order the
offline evaluation uses, so stream and training give the same intervals.

A batch is atomic (consumer.processor): before a batch first changes a series it keeps a copy
of its state, and puts the copies back if anything in the batch raises; metrics, rolling
scores and dead-letter counts change only once the batch has succeeded. `consumer.containment`
relies on this to isolate a record that makes a batch fail.

Bounds: at most `max_series` series hold state at once; an observation of a new series past
the limit is a dead letter `too_many_series`, so a producer that invents ids cannot exhaust
memory or the metrics' label space. A series forgotten on revocation frees its slot, and its
labelled metrics are removed (consumer.metrics.SeriesLabels).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

import numpy as np

from consumer.metrics import BatchTally, ForecasterMetrics, SeriesLabels
from consumer.output import Output
from consumer.processor import DeadLetters, Record
from consumer.series import InBatch, Pending, SeriesState
from sunspots.intervals import Calibration, band, volatility
from sunspots.schemas import (
    Evaluation,
    Forecast,
    Observation,
    SchemaError,
    check_key,
    decode_observation,
    today_utc,
)
from sunspots.settings import Topics
from sunspots.window import APPLIED, ONE_DAY

log = logging.getLogger(__name__)

DEFAULT_MAX_SERIES = 10_000


class ForecastModel(Protocol):
    """What the forecaster needs of a model: sunspots.artifact.ForecasterModel is one."""

    @property
    def window(self) -> int: ...

    @property
    def model_version(self) -> str: ...

    @property
    def calibration(self) -> Calibration: ...

    def predict(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(slots=True)
class _Window:
    state: SeriesState
    end: date
    values: tuple[float, ...]


@dataclass(slots=True)
class _Batch:
    """What one batch gathers before the model call, and what it must put back if it fails."""

    today: date
    windows: list[_Window] = field(default_factory=list)
    scored: list[tuple[Pending, SeriesState, float]] = field(default_factory=list)
    # In application order: (True, i) the forecast of windows[i], (False, j) the scoring of
    # scored[j].
    steps: list[tuple[bool, int]] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)
    # The series this batch changed, each with its state from before the batch (None: new).
    saved: dict[str, SeriesState | None] = field(default_factory=dict)
    touched: dict[str, SeriesState] = field(default_factory=dict)
    dead: list[Output] = field(default_factory=list)
    tally: BatchTally = field(default_factory=BatchTally)


class Forecaster:
    def __init__(
        self,
        model: ForecastModel,
        topics: Topics,
        metrics: ForecasterMetrics,
        rolling: int = 365,
        today: Callable[[], date] = today_utc,
        max_series: int = DEFAULT_MAX_SERIES,
    ) -> None:
        self.model = model
        self.topics = topics
        self.metrics = metrics
        self.rolling = rolling
        self.today = today
        self.max_series = max_series
        self.series: dict[str, SeriesState] = {}
        self.labels = SeriesLabels(metrics)
        self.dead_letters = DeadLetters(topics.dead_letter, metrics.dead_letters)
        metrics.model_info.labels(model.model_version, "champion").set(1)

    # --- one batch ------------------------------------------------------------------------

    def process(self, records: list[Record]) -> list[Output]:
        batch = _Batch(self.today())
        try:
            outputs = self._process(records, batch)
        except BaseException:
            self._roll_back(batch)
            raise
        self._commit(batch)
        return outputs

    def _process(self, records: list[Record], batch: _Batch) -> list[Output]:
        today = batch.today

        def decode(record: Record) -> Observation:
            return decode_observation(record.value, record.key, today)

        for record in records:
            obs = self.dead_letters.decode(record, decode, batch.dead)
            if obs is not None:
                self._apply(record, obs, batch)
        forecasts, batch.evaluations = self._forecast(batch)
        for state in batch.touched.values():
            if isinstance(state.window.pending, InBatch):
                state.window.pending = forecasts[state.window.pending.index]
        topics = self.topics
        return [
            *(
                Output(topics.forecasts, f.encode(), w.state.key)
                for f, w in zip(forecasts, batch.windows, strict=True)
            ),
            *(
                Output(topics.evaluations, e.encode(), state.key)
                for e, (_, state, _) in zip(batch.evaluations, batch.scored, strict=True)
            ),
            *batch.dead,
            *(self._state_record(state) for state in batch.touched.values()),
        ]

    def _apply(self, record: Record, obs: Observation, batch: _Batch) -> None:
        name = obs.series
        state = self.series.get(name)
        if state is not None and record.offset < state.applied_to:
            return  # already in the state: an at-least-once replay after a crash
        if state is None and len(self.series) >= self.max_series:
            detail = f"{len(self.series)} series hold state, the limit is {self.max_series}"
            batch.dead.append(self.dead_letters.reject(record, "too_many_series", detail))
            return
        if name not in batch.saved:
            batch.saved[name] = None if state is None else state.copy()
        if state is None:
            state = SeriesState.new(
                name, self.model.window, record.partition, self.model.calibration, self.rolling
            )
            self.series[name] = state
        step = state.window.apply(obs.date, obs.sunspot_number)
        if step.status != APPLIED:
            detail = f"{name} {obs.date} arrived after {state.window.last_date}"
            batch.dead.append(self.dead_letters.reject(record, step.status, detail))
            return
        state.partition = record.partition
        state.applied_to = record.offset + 1
        batch.touched[name] = state
        batch.tally.observed(name, obs.sunspot_number)
        if step.reset:
            batch.tally.reset(name, step.reset)
        if step.scored is not None:
            assert obs.sunspot_number is not None
            batch.steps.append((False, len(batch.scored)))
            batch.scored.append((step.scored, state, obs.sunspot_number))
        if step.ready is not None:
            state.window.pending = InBatch(len(batch.windows))
            batch.steps.append((True, len(batch.windows)))
            batch.windows.append(_Window(state, obs.date, step.ready))

    def _forecast(self, batch: _Batch) -> tuple[list[Forecast], list[Evaluation]]:
        """The batch's forecasts, from one model call, and its evaluations, in step order."""
        values, scales = self._predict(batch)
        forecasts: dict[int, Forecast] = {}
        evaluations = []
        for is_forecast, index in batch.steps:
            if is_forecast:
                forecasts[index] = self._made(batch.windows[index], values[index], scales[index])
                batch.tally.forecast(forecasts[index].series, values[index])
            else:
                pending, state, actual = batch.scored[index]
                made = pending if isinstance(pending, Forecast) else forecasts[pending.index]
                evaluation = Evaluation.score(made, actual)
                state.interval.update(evaluation.covered)
                evaluations.append(evaluation)
        return [forecasts[i] for i in range(len(batch.windows))], evaluations

    def _predict(self, batch: _Batch) -> tuple[list[float], list[float]]:
        """One model call for all the batch's windows, and their volatilities."""
        if not batch.windows:
            return [], []
        x = np.array([w.values for w in batch.windows], dtype=np.float64)
        started = time.perf_counter()
        values = self.model.predict(x).tolist()
        batch.tally.inference(time.perf_counter() - started, len(x))
        return values, volatility(x, self.model.calibration.floor).tolist()

    def _made(self, window: _Window, value: float, scale: float) -> Forecast:
        """The forecast from a window, with its interval at its series' current level."""
        lower, upper = window.state.interval.interval(value, scale)
        return Forecast(
            window.state.name,
            window.end + ONE_DAY,
            value,
            window.end,
            self.model.model_version,
            lower,
            upper,
            window.values[-1],
        )

    def isolate(self, record: Record, exc: Exception) -> Output:
        return self.dead_letters.isolate(record, exc)

    # --- commit or roll back --------------------------------------------------------------

    def _commit(self, batch: _Batch) -> None:
        """What a successful batch changes besides the windows: scores, metrics, counts."""
        for evaluation, (_, state, _) in zip(batch.evaluations, batch.scored, strict=True):
            state.score.add(
                evaluation.error,
                evaluation.persistence_error,
                evaluation.covered,
                evaluation.upper - evaluation.lower,
                band(evaluation.persistence),
            )
            batch.tally.scored(state.name, evaluation.error, state.score, state.interval.level)
        self.labels.forget_released(self.series)
        batch.tally.apply(self.metrics, len(self.series))
        self.dead_letters.commit()

    def _roll_back(self, batch: _Batch) -> None:
        for name, saved in batch.saved.items():
            if saved is None:
                self.series.pop(name, None)
            else:
                self.series[name] = saved
        self.dead_letters.discard()

    # --- state changelog ------------------------------------------------------------------

    def _state_record(self, state: SeriesState) -> Output:
        return Output(self.topics.state, state.snapshot(), state.key, partition=state.partition)

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        restored, skipped, first_error = 0, 0, ""
        for key, value in changelog:
            try:
                series = check_key(key or b"")
                state = None if value is None else self._restored(series, value, partition)
            except SchemaError as exc:
                # A record no instance wrote: that series starts afresh, rather than the
                # partition never being restored.
                skipped += 1
                first_error = first_error or exc.detail
                continue
            if state is None:
                self.series.pop(series, None)  # a tombstone, or a window of another size
                continue
            self.series[series] = state
            self.labels.keep(series)
            restored += 1
        if skipped:
            log.warning(
                "partition %d: %d changelog records skipped as unreadable (the first: %s)",
                partition,
                skipped,
                first_error,
            )
        log.debug("partition %d: %d changelog records applied", partition, restored)

    def _restored(self, series: str, value: bytes, partition: int) -> SeriesState | None:
        state = SeriesState.from_snapshot(
            series, value, partition, self.model.calibration, self.rolling
        )
        # A model with another window size: the old windows are of no use.
        return state if state.window.size == self.model.window else None

    def revoke(self, partitions: set[int]) -> None:
        gone = [s for s, state in self.series.items() if state.partition in partitions]
        for series in gone:
            del self.series[series]
        self.labels.release(gone)
