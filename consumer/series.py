"""Everything the forecaster keeps for one series, in one object, with its changelog snapshot.

A series' state is its window (with the forecast pending for the next day), the source
partition it arrives on, the next source offset its state reflects (so an at-least-once replay
of older records after a crash is skipped instead of applied twice), and its rolling scores.
The snapshot written to the changelog holds all of it but the rolling scores, which are
metrics only and restart after a rebalance:

    {"series": "silso", "offset": 1234, "window": {"size", "last_date", "values", "pending"}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sunspots.evaluation import RollingScore
from sunspots.schemas import Forecast, decode_forecast
from sunspots.window import SeriesWindow


@dataclass(frozen=True, slots=True)
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
    applied_to: int = 0
    score: RollingScore = field(default_factory=RollingScore)

    @classmethod
    def new(cls, name: str, window_size: int, partition: int, rolling: int) -> SeriesState:
        return cls(name, SeriesWindow(window_size), partition, 0, RollingScore(rolling))

    def snapshot(self) -> bytes:
        """The changelog value; the pending forecast must be resolved (no `InBatch`)."""
        window = self.window.to_json(encode_pending=_encode_pending)
        body = {"series": self.name, "offset": self.applied_to, "window": window}
        return json.dumps(body, separators=(",", ":")).encode()

    @classmethod
    def from_snapshot(cls, name: str, value: bytes, partition: int, rolling: int) -> SeriesState:
        body = json.loads(value)
        window: SeriesWindow[Pending] = SeriesWindow.from_json(
            body["window"], decode_pending=lambda p: decode_forecast(json.dumps(p))
        )
        return cls(name, window, partition, int(body["offset"]), RollingScore(rolling))


def _encode_pending(pending: Pending) -> dict[str, object]:
    assert isinstance(pending, Forecast), "a pending forecast is resolved before its snapshot"
    return pending.to_json()
