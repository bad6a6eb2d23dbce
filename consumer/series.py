"""Everything the forecaster keeps for one series, in one object, with its changelog snapshot.

A series' state is its window (with the forecast pending for the next day), the source
partition it arrives on, the next source offset its state reflects (so an at-least-once replay
of older records after a crash is skipped instead of applied twice), its adaptive interval
level (sunspots.intervals.AdaptiveInterval), its rolling scores, and its id as a record key. The
snapshot written to the changelog holds all of it but the rolling scores, which are metrics
only and restart after a rebalance (`sunspots.schemas.SeriesSnapshot`, published as
schemas/state.json):

    {"series": "silso", "offset": 1234, "window": {"size", "last_date", "values", "pending"},
     "interval": {"alpha": 0.1}}

A snapshot without `interval` (written before the adaptive interval) restores with the
calibrated level, α.

`copy` is what a batch saves before it first changes a series, to put back if the batch fails;
the copy shares the rolling scores, which a batch changes only once it has succeeded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from sunspots.evaluation import RollingScore
from sunspots.intervals import AdaptiveInterval, Calibration
from sunspots.schemas import (
    Forecast,
    IntervalState,
    SeriesSnapshot,
    WindowState,
    decode_snapshot,
)
from sunspots.window import SeriesWindow


@dataclass(slots=True)
class InBatch:
    """A pending forecast from this batch's window number `index`, not predicted yet."""

    index: int


# The forecast waiting for its target date's value: made, or still to be made in this batch.
Pending = Forecast | InBatch


@dataclass(slots=True)
class SeriesState:
    name: str
    window: SeriesWindow[Pending]
    partition: int
    interval: AdaptiveInterval
    applied_to: int = 0
    score: RollingScore = field(default_factory=RollingScore)
    key: bytes = b""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = self.name.encode()

    @classmethod
    def new(
        cls, name: str, window_size: int, partition: int, calibration: Calibration, rolling: int
    ) -> SeriesState:
        window: SeriesWindow[Pending] = SeriesWindow(window_size)
        return cls(name, window, partition, calibration.start(), 0, RollingScore(rolling))

    def copy(self) -> SeriesState:
        w = self.window
        window = SeriesWindow(w.size, w.last_date, deque(w.values), w.pending)
        return SeriesState(
            self.name,
            window,
            self.partition,
            self.interval.copy(),
            self.applied_to,
            self.score,
            self.key,
        )

    def snapshot(self) -> bytes:
        """The changelog value; the pending forecast must be resolved (no `InBatch`)."""
        w = self.window
        pending = w.pending
        assert not isinstance(pending, InBatch), "a pending forecast is resolved first"
        window = WindowState(w.size, w.last_date, list(w.values), pending)
        interval = IntervalState(self.interval.level)
        return SeriesSnapshot(self.name, self.applied_to, window, interval).encode()

    @classmethod
    def from_snapshot(
        cls, name: str, value: bytes, partition: int, calibration: Calibration, rolling: int
    ) -> SeriesState:
        """The state in a changelog value; SchemaError if the value is not a snapshot."""
        snap = decode_snapshot(value)
        w = snap.window
        window: SeriesWindow[Pending] = SeriesWindow(
            w.size, w.last_date, deque(w.values), w.pending
        )
        interval = calibration.start()
        if snap.interval is not None:
            interval.level = snap.interval.alpha
        return cls(name, window, partition, interval, snap.offset, RollingScore(rolling))
