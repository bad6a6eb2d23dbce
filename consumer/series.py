"""Everything the forecaster keeps for one series, in one object, with its changelog snapshot.

A series' state is its window (its last `history` values, 64 by default, longer than any
model's input, with the forecasts pending for the next day, one per role), the source
partition it arrives on, the next source offset its state reflects (so an at-least-once replay
of older records after a crash is skipped instead of applied twice) with the id of the source
topic that offset belongs to (consumer.topic_changes.SourceTopic), its id as a record key,
and per role (`RoleState`) what is kept about the model running in that role: its adaptive
interval level (sunspots.domain.intervals), its drift test (sunspots.domain.drift) and, for a
series whose metrics are exported (`scored`: `--series-metrics` names it), its rolling scores.
The rolling scores are read only by those metrics, and with 365 evaluations they are four
fifths of a series' memory, so the other series keep none.

A role's state is about one model version: when the role's model changes, the next forecast
starts that role's interval, drift test and scores afresh (`SeriesState.role`); a forecast
still pending from the old model is scored under its own version all the same.

The snapshot written to the changelog holds all of it but the rolling scores, which are
metrics only and restart after a rebalance (`sunspots.wire.schemas.SeriesSnapshot`, published as
schemas/state.json):

    {"series": "silso", "offset": 1234,
     "window": {"size": 64, "last_date", "values", "pending": null},
     "roles": {"champion": {"model_version", "pending", "alpha", "drift"}, "challenger": {...}},
     "topic_id": "Ab3…"}

Older snapshots (a window as long as the model's input, its `pending` and `interval` the
champion's) restore into the longer window, as the champion's.

`copy` is what a batch saves before it first changes a series, to put back if the batch fails;
the copy shares the rolling scores and the counts, which a batch changes only once it has
succeeded.

The state is also what the series' metrics are read from at scrape time
(consumer.series_metrics): the counts of what the series went through (`SeriesCounts`), the
last value (the window's), the last forecast (the champion's pending one), and per role the
scores, the interval level and the drift test, with the date of the last drift alarm. Every
class here has slots, and the numbers sit in arrays (sunspots.domain.window, sunspots.domain.evaluation):
an instance holds up to `--max-series` of them.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from datetime import date

from sunspots.domain.drift import DriftDetector, DriftPolicy
from sunspots.domain.evaluation import RollingScore
from sunspots.domain.intervals import AdaptiveInterval
from sunspots.domain.window import SeriesWindow
from sunspots.lifecycle.lanes import Lane, Lanes
from sunspots.lifecycle.records import CHAMPION
from sunspots.wire.schemas import (
    DriftState,
    Forecast,
    RoleSnapshot,
    SeriesSnapshot,
    WindowState,
    decode_snapshot,
)

DEFAULT_HISTORY = 64
# Evaluations in a series' rolling RMSE and coverage (--rolling).
DEFAULT_ROLLING = 365


@dataclass(slots=True)
class InBatch:
    """A pending forecast from this batch's window number `index` of its role, not predicted
    yet."""

    index: int


# The forecast waiting for its target date's value: made, or still to be made in this batch.
Pending = Forecast | InBatch
# The pending forecast of each role.
Pendings = dict[str, Pending]


@dataclass(frozen=True)
class SeriesPolicy:
    """How series are kept: values of history, evaluations in the rolling scores, the drift
    test's settings."""

    history: int = DEFAULT_HISTORY
    rolling: int = DEFAULT_ROLLING
    drift: DriftPolicy = field(default_factory=DriftPolicy)


@dataclass(slots=True)
class SeriesCounts:
    """What a series went through since this instance took it: metrics only (not in the
    changelog), counted when a batch succeeds."""

    observations: int = 0
    forecasts: int = 0
    evaluations: int = 0


@dataclass(slots=True)
class RoleState:
    """What a series keeps about the model of one role, `model_version`."""

    model_version: str
    interval: AdaptiveInterval
    drift: DriftDetector
    score: RollingScore | None  # None: the series' metrics are not exported
    last_alarm: date | None = None  # the target date of the last drift alarm (metrics only)

    @classmethod
    def new(cls, lane: Lane, series_policy: SeriesPolicy, scored: bool) -> RoleState:
        """A fresh state for a role starting on this series, with rolling scores if `scored`."""
        model = lane.model
        return cls(
            model.model_version,
            model.calibration.start(),
            DriftDetector(series_policy.drift),
            RollingScore(series_policy.rolling) if scored else None,
        )

    def copy(self) -> RoleState:
        """An independent copy, for a batch that may be rolled back."""
        return RoleState(
            self.model_version,
            self.interval.copy(),
            self.drift.copy(),
            self.score,
            self.last_alarm,
        )

    def snapshot(self, pending: Pending | None) -> RoleSnapshot:
        assert not isinstance(pending, InBatch), "a pending forecast is resolved first"
        d = self.drift
        drift = DriftState(d.seen, d.level, d.cumulative, d.minimum, d.alarms)
        return RoleSnapshot(self.model_version, pending, self.interval.level, drift)


@dataclass(slots=True)
class SeriesState:
    """Everything the forecaster keeps of one series: its window of values, the partition it came
    from, the state of each role (champion, challenger) that scores it, and the changelog
    offset it was last applied to. One object per series, so that its snapshot and restore
    are one step."""

    name: str
    window: SeriesWindow[Pendings]
    partition: int
    roles: dict[str, RoleState] = field(default_factory=dict)
    applied_to: int = 0
    key: bytes = b""
    source_id: str | None = None  # the source topic's id, which `applied_to` belongs to
    counts: SeriesCounts = field(default_factory=SeriesCounts)
    scored: bool = True  # its roles keep rolling scores: its metrics are exported

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.name.encode()

    @classmethod
    def new(
        cls, name: str, partition: int, series_policy: SeriesPolicy, scored: bool = True
    ) -> SeriesState:
        return cls(name, SeriesWindow(series_policy.history), partition, scored=scored)

    def role(self, lane: Lane, series_policy: SeriesPolicy) -> RoleState:
        """The state of `lane`'s role, afresh if it was about another model."""
        state = self.roles.get(lane.role)
        if state is None or state.model_version != lane.version:
            state = self.roles[lane.role] = RoleState.new(lane, series_policy, self.scored)
        return state

    def copy(self) -> SeriesState:
        """An independent copy, for a batch that may be rolled back."""
        w = self.window
        pending = None if w.pending is None else dict(w.pending)
        window = SeriesWindow(w.size, w.last_date, w.values[:], pending)
        roles = {role: state.copy() for role, state in self.roles.items()}
        return SeriesState(
            self.name,
            window,
            self.partition,
            roles,
            self.applied_to,
            self.key,
            self.source_id,
            self.counts,
            self.scored,
        )

    def snapshot(self) -> bytes:
        """The changelog value; the pending forecasts must be resolved (no `InBatch`)."""
        w = self.window
        pending = w.pending or {}
        window = WindowState(w.size, w.last_date, w.values.tolist(), None)
        roles = {role: state.snapshot(pending.get(role)) for role, state in self.roles.items()}
        snapshot = SeriesSnapshot(self.name, self.applied_to, window, None, roles, self.source_id)
        return snapshot.encode()

    @classmethod
    def from_snapshot(
        cls,
        name: str,
        value: bytes,
        partition: int,
        lanes: Lanes,
        series_policy: SeriesPolicy,
        scored: bool = True,
    ) -> SeriesState:
        """The state in a changelog value, with rolling scores if `scored`; SchemaError if the
        value is not a snapshot.

        A role no model runs any more (a retired challenger) is dropped with its pending
        forecast; a role whose model changed keeps its pending forecast, and starts its
        interval and drift test afresh."""
        snap = decode_snapshot(value)
        values = array("d", snap.window.values[-series_policy.history :])
        window: SeriesWindow[Pendings] = SeriesWindow(
            series_policy.history, snap.window.last_date, values
        )
        state = cls(
            name, window, partition, applied_to=snap.offset, source_id=snap.topic_id, scored=scored
        )
        pending: Pendings = {}
        for role, part in _role_parts(snap, lanes).items():
            lane = lanes.get(role)
            if lane is None:
                continue
            restored = RoleState.new(lane, series_policy, scored)
            if part.model_version == lane.version:
                restored.interval.level = part.alpha
                if part.drift is not None:
                    restored.drift = _detector(part.drift, series_policy.drift)
            state.roles[role] = restored
            if part.pending is not None:
                pending[role] = part.pending
        state.window.pending = pending or None
        return state


def _role_parts(snap: SeriesSnapshot, lanes: Lanes) -> dict[str, RoleSnapshot]:
    """Each role's part of a snapshot; an older snapshot's window and interval as the
    champion's, about the model serving now."""
    if snap.roles is not None:
        return snap.roles
    champion = lanes.champion
    alpha = champion.model.calibration.alpha if snap.interval is None else snap.interval.alpha
    return {CHAMPION: RoleSnapshot(champion.version, snap.window.pending, alpha)}


def _detector(state: DriftState, policy: DriftPolicy) -> DriftDetector:
    return DriftDetector(
        policy, state.seen, state.level, state.cumulative, state.minimum, state.alarms
    )
