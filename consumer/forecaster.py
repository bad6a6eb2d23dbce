"""The forecasting processor: observations in; forecasts, evaluations and dead letters out.

Per batch (a slice of a poll, consumer.runner) it decodes every record, applies it to its
series' window (sunspots.domain.window), makes ONE batched model call per role for all windows
that became full, and scores each pending forecast whose actual value arrived. Each series'
state is one `SeriesState` (consumer.series).

The changelog the runner restores after a restart or rebalance gets the state of every series
the transaction changed once, at its end (`changelog`), however many batches the transaction
held: a series touched in several slices of a poll writes one record, not one a slice, and it
is written after the transaction's tombstones, so a stale state dropped and a new one of the
same key end with the new one.

A window can fill and its forecast's target date arrive within one batch, before the model
has run; such a pending forecast is held as an `InBatch` index into the batch's windows and
resolved once the batched call returns.

Intervals (sunspots.domain.intervals): each series' adaptive level moves after every scored day, and
the interval of the next forecast depends on it, so once the batched model call has returned
(and the windows' volatilities are computed for the whole batch at once) the batch's forecasts
and scorings are walked in the order their observations were applied: each forecast gets its
interval at its series' current level, each scoring updates that level. This is the order the
offline evaluation uses, so stream and training give the same intervals.

A batch is atomic (consumer.processor): before a batch first changes a series it keeps a copy
of its state, and puts the copies back if anything in the batch raises; metrics, rolling
scores and dead-letter counts change only once the batch has succeeded. `consumer.containment`
relies on this to isolate a record that makes a batch fail.

Models (sunspots.lifecycle.lanes): the champion's forecasts and evaluations go to the forecasts and
evaluations topics; a challenger, while one runs, forecasts from the same windows (each model
reads as many of the series' last values as its input needs) and goes to the shadow topics.
Each output carries the version of the model that made it. Between batches, `follow` applies
the records of the models topic (consumer.model_roles): a new champion serves from the next batch on, and a forecast
pending from the old one is still scored, under its own version. The live error of each role
is watched for drift (sunspots.domain.drift), and with automatic promotion (sunspots.lifecycle.promotion) a
challenger that beats the champion is published as champion, in the batch's transaction.

Topic changes (consumer.topic_changes): offsets are compared within one partition only, so a
series whose key moved to a new partition (partitions added to the source topic) is applied
there, and its state follows it to that partition of the changelog. A restore drops the states
of an earlier topic of the source's name (`SourceTopic.is_stale`), and of two states of one
series on two changelog partitions keeps the later. A changelog deleted or recreated while the
service runs lost every state it held: `rewrite_state` has the next batch (even one without
records) write every series held again, and `undo` puts the series back as they were at the
last commit (`checkpoint`) when the rewind after a failed publish cannot read them back.

Bounds: at most `max_series` series hold state at once; an observation of a new series past
the limit is a dead letter `too_many_series`, so a producer that invents ids cannot exhaust
memory. A series forgotten on revocation frees its slot. Metrics: a batch updates the
fleet-wide ones once it succeeds (consumer.tally); the series `--series-metrics` names are
exported from their live state at scrape time (consumer.series_metrics), so nothing about a
series is kept for Prometheus and nothing needs removing when one goes. Only those series keep
rolling scores, which nothing else reads (consumer.series).
"""

from __future__ import annotations

import logging
import time
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from consumer.metrics import ForecasterMetrics
from consumer.model_roles import Lifecycle
from consumer.output import Output
from consumer.processor import DeadLetters, Record
from consumer.series import DEFAULT_ROLLING, InBatch, Pending, Pendings, SeriesPolicy, SeriesState
from consumer.series_metrics import DEFAULT_SERIES_METRICS, SeriesCollector, SeriesSelection
from consumer.tally import BatchTally
from consumer.topic_changes import SourceTopic
from sunspots.domain.evaluation import RollingScore
from sunspots.domain.intervals import band, volatility
from sunspots.domain.window import APPLIED, ONE_DAY
from sunspots.kafka.settings import Topics
from sunspots.lifecycle.lanes import ForecastModel, Lane, Lanes
from sunspots.lifecycle.promotion import PromotionPolicy, PromotionRule
from sunspots.lifecycle.records import Entry
from sunspots.wire.schemas import (
    Evaluation,
    Forecast,
    Observation,
    SchemaError,
    check_key,
    decode_observation,
    today_utc,
)

log = logging.getLogger(__name__)

DEFAULT_MAX_SERIES = 10_000

__all__ = ["DEFAULT_MAX_SERIES", "ForecastModel", "Forecaster"]


@dataclass(slots=True)
class _Window:
    state: SeriesState
    end: date
    values: array[float]  # the model's input: the series' last values


@dataclass(slots=True)
class _Scoring:
    pending: Pending
    state: SeriesState
    actual: float
    role: str


@dataclass(slots=True)
class _Batch:
    """What one batch gathers before the model calls, and what it must put back if it fails."""

    today: date
    windows: dict[str, list[_Window]] = field(default_factory=dict)  # by role
    scorings: list[_Scoring] = field(default_factory=list)
    # In application order: (role, i) the forecast of windows[role][i], (None, j) scorings[j].
    steps: list[tuple[str | None, int]] = field(default_factory=list)
    evaluations: list[Evaluation] = field(default_factory=list)  # beside `scorings`
    # The series this batch changed, each with its state from before the batch (None: new).
    saved: dict[str, SeriesState | None] = field(default_factory=dict)
    touched: dict[str, SeriesState] = field(default_factory=dict)
    dead: list[Output] = field(default_factory=list)
    tally: BatchTally = field(default_factory=BatchTally)


class Forecaster:
    """The forecast service's processor: it keeps a rolling window and the scores per series,
    forecasts each series' next day with the champion (and a challenger in the shadow),
    scores every forecast when the actual arrives, and writes each series' state to the
    changelog so that a restart restores it. One object per service instance; per-series
    state lives in `SeriesState`."""

    def __init__(
        self,
        model: ForecastModel,
        topics: Topics,
        metrics: ForecasterMetrics,
        rolling: int = DEFAULT_ROLLING,
        today: Callable[[], date] = today_utc,
        max_series: int = DEFAULT_MAX_SERIES,
        series_policy: SeriesPolicy | None = None,
        promotion: PromotionPolicy | None = None,
        promoter: str = "forecaster",
        series_metrics: SeriesSelection | None = None,
    ) -> None:
        self.series_policy = series_policy or SeriesPolicy(rolling=rolling)
        self.lanes = Lanes(model, topics, self.series_policy.history)
        self.topics = topics
        self.metrics = metrics
        self.today = today
        self.max_series = max_series
        self.series: dict[str, SeriesState] = {}
        self.selection = series_metrics or SeriesSelection.parse(DEFAULT_SERIES_METRICS)
        metrics.registry.register(SeriesCollector(self.series, self.lanes, self.selection))
        self.dead_letters = DeadLetters(topics.dead_letter, metrics.dead_letters)
        rule = None if promotion is None else PromotionRule(promotion)
        self.lifecycle = Lifecycle(self.lanes, metrics, topics.models, rule, promoter)
        self.source = SourceTopic()
        # Each series changed since the last checkpoint, as it was then (None: new).
        self.since_checkpoint: dict[str, SeriesState | None] = {}
        # The series whose state the changelog is owed: changed since the last `changelog`.
        self.dirty: dict[str, None] = {}
        self.rewrite = False  # every series held is owed to a changelog that lost them
        self.rewriting = False  # ... and the batch in flight carries them

    @property
    def model(self) -> ForecastModel:
        """The champion's model, the one serving."""
        return self.lanes.champion.model

    def follow(self, entries: Iterable[Entry]) -> None:
        """Apply records of the models topic; takes effect from the next batch."""
        self.lifecycle.follow(entries)

    # --- one batch ------------------------------------------------------------------------

    def process(self, records: list[Record]) -> list[Output]:
        """One batch of consumed records turned into outputs (forecasts, evaluations, dead letters,
        tombstones owed to the changelog), the series' state updated; the runner publishes them
        in its transaction, followed by `changelog()` at its end."""
        if not records and not self.owes:
            return []
        batch = _Batch(self.today(), {lane.role: [] for lane in self.lanes.running})
        try:
            outputs = self._process(records, batch) + self._owed()
        except BaseException:
            self._roll_back(batch)
            raise
        for name, saved in batch.saved.items():
            self.since_checkpoint.setdefault(name, saved)
        self.dirty.update(dict.fromkeys(batch.touched))
        return outputs + self._commit(batch)

    def _process(self, records: list[Record], batch: _Batch) -> list[Output]:
        today = batch.today

        def decode(record: Record) -> Observation:
            return decode_observation(record.value, record.key, today)

        for record in records:
            obs = self.dead_letters.decode(record, decode, batch.dead)
            if obs is not None:
                self._apply(record, obs, batch)
        forecasts = self._forecast(batch)
        for state in batch.touched.values():
            _resolve(state.window.pending, forecasts)
        return [
            *(
                Output(lane.forecasts, f.encode(), w.state.key)
                for lane in self.lanes
                for f, w in zip(
                    forecasts.get(lane.role, ()), batch.windows.get(lane.role, ()), strict=True
                )
            ),
            *(
                Output(self._lane(s.role).evaluations, e.encode(), s.state.key)
                for e, s in zip(batch.evaluations, batch.scorings, strict=True)
            ),
            *batch.dead,
        ]

    def _lane(self, role: str) -> Lane:
        lane = self.lanes.get(role)
        assert lane is not None
        return lane

    def _apply(self, record: Record, obs: Observation, batch: _Batch) -> None:
        name = obs.series
        state = self.series.get(name)
        # Offsets compare within one partition only (a series' key moves with added partitions).
        if (
            state is not None
            and state.partition == record.partition
            and record.offset < state.applied_to
        ):
            return  # already in the state: an at-least-once replay after a crash
        if state is None and len(self.series) >= self.max_series:
            detail = f"{len(self.series)} series hold state, the limit is {self.max_series}"
            batch.dead.append(self.dead_letters.reject(record, "too_many_series", detail))
            return
        if name not in batch.saved:
            batch.saved[name] = None if state is None else state.copy()
        if state is None:
            scored = self.selection.selects(name)
            state = SeriesState.new(name, record.partition, self.series_policy, scored)
            self.series[name] = state
        step = state.window.apply(obs.date, obs.sunspot_number, self.lanes.shortest)
        if step.status != APPLIED:
            detail = f"{name} {obs.date} arrived after {state.window.last_date}"
            batch.dead.append(self.dead_letters.reject(record, step.status, detail))
            return
        state.partition = record.partition
        state.applied_to = record.offset + 1
        state.source_id = self.source.topic_id
        batch.touched[name] = state
        batch.tally.observed(state)
        if step.reset:
            batch.tally.reset(step.reset)
        if step.scored is not None:
            assert obs.sunspot_number is not None
            self._score_later(step.scored, state, obs.sunspot_number, batch)
        if step.ready is not None:
            state.window.pending = self._forecast_later(state, obs.date, step.ready, batch)

    def _score_later(
        self, pending: Pendings, state: SeriesState, actual: float, batch: _Batch
    ) -> None:
        """Each role's pending forecast, to score once the batch's forecasts are made; that of
        a role no model runs any more (a retired challenger) is dropped."""
        running = self.lanes.by_role
        for role, made in pending.items():
            if role in running:
                batch.steps.append((None, len(batch.scorings)))
                batch.scorings.append(_Scoring(made, state, actual, role))

    def _forecast_later(
        self, state: SeriesState, end: date, values: array[float], batch: _Batch
    ) -> Pendings | None:
        """A forecast of each model whose input the window holds, to make in the batch's
        model calls."""
        pending: Pendings = {}
        held = len(values)
        for lane in self.lanes.running:
            need = lane.model.window
            if held >= need:
                role = lane.role
                windows = batch.windows[role]
                pending[role] = InBatch(len(windows))
                batch.steps.append((role, len(windows)))
                windows.append(_Window(state, end, values if held == need else values[-need:]))
        return pending or None

    def _forecast(self, batch: _Batch) -> dict[str, list[Forecast]]:
        """The batch's forecasts, from one model call per role, and its evaluations, in step
        order (each scoring moves its role's interval level before the next forecast)."""
        predicted = {lane.role: self._predict(lane, batch) for lane in self.lanes}
        forecasts: dict[str, dict[int, Forecast]] = {role: {} for role in predicted}
        for role, index in batch.steps:
            if role is not None:
                values, scales = predicted[role]
                window = batch.windows[role][index]
                made = self._made(self._lane(role), window, values[index], scales[index])
                forecasts[role][index] = made
                batch.tally.forecast(window.state, role, made.model_version)
            else:
                batch.evaluations.append(self._scored(batch.scorings[index], forecasts, batch))
        return {role: [made[i] for i in range(len(made))] for role, made in forecasts.items()}

    def _scored(
        self, scoring: _Scoring, forecasts: dict[str, dict[int, Forecast]], batch: _Batch
    ) -> Evaluation:
        pending = scoring.pending
        made = pending if isinstance(pending, Forecast) else forecasts[scoring.role][pending.index]
        evaluation = Evaluation.score(made, scoring.actual)
        role = scoring.state.roles.get(scoring.role)
        if role is not None and role.model_version == made.model_version:
            role.interval.update(evaluation.covered)
            drift = role.drift.apply(evaluation.error)
            if drift.alarm:
                role.last_alarm = made.target_date
                batch.tally.drift(scoring.state.name, scoring.role, drift, made.target_date)
        return evaluation

    def _predict(self, lane: Lane, batch: _Batch) -> tuple[list[float], list[float]]:
        """One model call for all the batch's windows of a role, and their volatilities."""
        windows = batch.windows.get(lane.role)
        if not windows:
            return [], []
        model = lane.model
        # One buffer of every window's values (each an array of doubles), no float objects.
        joined = array("d")
        for w in windows:
            joined.extend(w.values)
        x = np.frombuffer(joined, dtype=np.float64).reshape(len(windows), -1)
        started = time.perf_counter()
        values = model.predict(x).tolist()
        batch.tally.inference(time.perf_counter() - started, len(x))
        return values, volatility(x, model.calibration.floor).tolist()

    def _made(self, lane: Lane, window: _Window, value: float, scale: float) -> Forecast:
        """The forecast from a window, with its interval at its series' current level."""
        role = window.state.role(lane, self.series_policy)
        lower, upper = role.interval.interval(value, scale)
        return Forecast(
            window.state.name,
            window.end + ONE_DAY,
            value,
            window.end,
            lane.version,
            lower,
            upper,
            window.values[-1],
        )

    def isolate(self, record: Record, exc: Exception) -> Output:
        return self.dead_letters.isolate(record, exc)

    # --- commit or roll back --------------------------------------------------------------

    def _commit(self, batch: _Batch) -> list[Output]:
        """What a successful batch changes besides the windows: scores, metrics, counts, and
        the promotion it decided, if any (to publish with the batch)."""
        days: dict[tuple[str, date], dict[str, float]] = {}
        for evaluation, scoring in zip(batch.evaluations, batch.scorings, strict=True):
            batch.tally.scored(evaluation, scoring.state, scoring.role)
            role = scoring.state.roles.get(scoring.role)
            if role is None or role.model_version != evaluation.model_version:
                continue  # made by a model no longer in its role: published, counted, not scored
            if role.score is not None:
                _add_score(role.score, evaluation)
            days.setdefault((evaluation.series, evaluation.date), {})[scoring.role] = (
                evaluation.error
            )
        added = self.source.added
        if added:
            for name, saved in batch.saved.items():
                state = self.series.get(name)
                if saved is None and state is not None and state.partition in added:
                    self.source.moved_here(name, state.partition)  # its key, not its state
        batch.tally.apply(self.metrics)
        self.dead_letters.commit()
        return self.lifecycle.promotion(days.values())

    def _roll_back(self, batch: _Batch) -> None:
        for name, saved in batch.saved.items():
            if saved is None:
                self.series.pop(name, None)
            else:
                self.series[name] = saved
        self.dead_letters.discard()

    # --- state changelog ------------------------------------------------------------------

    def changelog(self) -> list[Output]:
        """The state of every series changed since the last call, one record each: what the
        transaction in hand owes the changelog, to publish after the outputs of its batches."""
        dirty, self.dirty = self.dirty, {}
        held = (self.series.get(name) for name in dirty)
        return [self._state_record(state) for state in held if state is not None]

    def _state_record(self, state: SeriesState) -> Output:
        return Output(self.topics.state, state.snapshot(), state.key, partition=state.partition)

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        """The series of `partition`, rebuilt from its changelog records (an unreadable record
        costs its series' state, never the partition)."""
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
            held = self.series.get(series)
            if state is None:  # a tombstone
                if held is not None and held.partition == partition:
                    del self.series[series]
                continue
            if self.source.is_stale(state.source_id, state.applied_to, partition):
                self.source.drop(key, partition)  # told and counted by the topic watch
                continue
            if held is not None and held.partition != partition and not _later(state, held):
                continue  # the series moved on from this partition (partitions were added)
            self.series[series] = state
            restored += 1
        if skipped:
            log.warning(
                "partition %d: %d changelog records skipped as unreadable (the first: %s)",
                partition,
                skipped,
                first_error,
            )
        log.debug("partition %d: %d changelog records applied", partition, restored)

    def _restored(self, series: str, value: bytes, partition: int) -> SeriesState:
        scored = self.selection.selects(series)
        return SeriesState.from_snapshot(
            series, value, partition, self.lanes, self.series_policy, scored
        )

    def revoke(self, partitions: set[int]) -> None:
        gone = [s for s, state in self.series.items() if state.partition in partitions]
        for series in gone:
            del self.series[series]
            self.since_checkpoint.pop(series, None)
            self.dirty.pop(series, None)

    # --- a changelog that lost the states (consumer.topic_watch) --------------------------

    @property
    def owes(self) -> bool:
        """Whether the next batch has outputs to write even without records."""
        return (self.rewrite and not self.rewriting) or bool(self.source.tombstones)

    def rewrite_state(self) -> None:
        """The changelog lost the states: write every series held again, with the next batch."""
        self.rewrite, self.rewriting = True, False

    def checkpoint(self) -> None:
        """The last batch is committed (or rewound): the series as they are now are what the
        committed offsets reflect."""
        if self.rewriting:
            self.rewrite = self.rewriting = False
        self.since_checkpoint = {}

    def undo(self) -> None:
        """Put every series back as it was at the last checkpoint: a rewind that cannot read
        the states back from the changelog (it lost them) starts from these."""
        for name, saved in self.since_checkpoint.items():
            if saved is None:
                self.series.pop(name, None)
            else:
                self.series[name] = saved
        self.since_checkpoint, self.rewriting, self.dirty = {}, False, {}

    def _owed(self) -> list[Output]:
        """What the changelog is owed beside the batch's own states: tombstones for the stale
        states a restore dropped, now, and every series held, once it lost them, with the
        transaction's states (`changelog`)."""
        rewrite = self.rewrite and not self.rewriting
        if rewrite:
            self.dirty.update(dict.fromkeys(self.series))
        owed = [
            Output(self.topics.state, None, key, partition=partition)
            for key, partition in self.source.tombstones
        ]
        self.source.tombstones = []
        self.rewriting = self.rewriting or rewrite
        return owed


def _later(state: SeriesState, than: SeriesState) -> bool:
    """Whether `state` has seen a later day than `than` (two states of one series on two
    changelog partitions: the series moved when partitions were added)."""
    return (state.window.last_date or date.min) > (than.window.last_date or date.min)


def _resolve(pending: Pendings | None, forecasts: dict[str, list[Forecast]]) -> None:
    """Put each forecast made in the batch in place of its `InBatch` index."""
    if pending is None:
        return
    for role, made in pending.items():
        if isinstance(made, InBatch):
            pending[role] = forecasts[role][made.index]


def _add_score(score: RollingScore, evaluation: Evaluation) -> None:
    score.add(
        evaluation.error,
        evaluation.persistence_error,
        evaluation.covered,
        evaluation.upper - evaluation.lower,
        band(evaluation.persistence),
    )
