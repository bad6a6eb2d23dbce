"""Per-series rolling window of consecutive daily values, with the gap and ordering policy.

Policy, applied to each observation of a series in arrival order:
- a date at or before the last applied date is not applied: `duplicate` (same date) or
  `out_of_order` (earlier date); the caller dead-letters it;
- a skipped date (gap in the calendar) or a missing value (`sunspot_number` null) resets the
  window: it holds again only once N consecutive values exist, so no forecast is ever made from
  a broken window; a pending forecast whose target date is skipped or has no value is dropped;
- otherwise the value is appended, the oldest dropped past N; when the window holds at least
  `need` values (N unless the caller asks for fewer) it is ready for a forecast of the next
  day, and a pending forecast for this date is ready to be scored.

A window can be longer than any model's input: the forecaster keeps N = 64 values of history
and asks each model for as many as it reads (`need`), so a model with a longer input than the
one serving can take over without waiting for its window to fill.

Pure: knows nothing of Kafka or the model; the pending forecast is whatever type the caller
keeps (`P`). The state round-trips through JSON for the forecaster's changelog topic.

The values are machine numbers in an `array` (8 bytes each, 64 values in about 600 bytes,
against about 2,700 in a deque of Python floats): a forecaster keeps one window per series.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, Generic, TypeVar

APPLIED, DUPLICATE, OUT_OF_ORDER = "applied", "duplicate", "out_of_order"
SKIPPED_DATE, MISSING_VALUE = "skipped_date", "missing_value"
RESET_CAUSES = (SKIPPED_DATE, MISSING_VALUE)
ONE_DAY = timedelta(days=1)
P = TypeVar("P")


@dataclass(slots=True)
class Step(Generic[P]):
    """What applying one observation did (one per observation: not frozen, which would make
    it several times dearer to build)."""

    status: str
    reset: str | None = None  # "skipped_date" or "missing_value" when the window was cleared
    ready: array[float] | None = None  # a copy of every value held, oldest first, when ready
    scored: P | None = None  # the pending forecast whose target date this observation is
    dropped: P | None = None  # a pending forecast that can never be scored


@dataclass(slots=True)
class SeriesWindow(Generic[P]):
    """The last `size` values of a series with the date of the last one, and the forecast waiting
    for the next day's actual: what a forecast is made from, and what a missing or skipped
    day resets."""

    size: int
    last_date: date | None = None
    values: array[float] = field(default_factory=lambda: array("d"))
    # The forecast for last_date + 1, waiting for its actual value.
    pending: P | None = None

    def apply(self, day: date, value: float | None, need: int | None = None) -> Step[P]:
        """Take the next day's value: appended when it follows the last date, the window reset when
        a day was skipped or missing; an earlier or repeated date is refused."""
        if self.last_date is not None and day <= self.last_date:
            return Step(DUPLICATE if day == self.last_date else OUT_OF_ORDER)
        reset = None
        scored = dropped = None
        if self.last_date is not None and day != self.last_date + ONE_DAY:
            reset = SKIPPED_DATE
        elif value is None:
            reset = MISSING_VALUE
        if self.pending is not None:
            if reset is None:
                scored = self.pending
            else:
                dropped = self.pending
            self.pending = None
        values = self.values
        if reset:
            del values[:]
        self.last_date = day
        if value is not None:
            values.append(value)
            if len(values) > self.size:
                del values[: len(values) - self.size]
        held = len(values)
        ready = values[:] if value is not None and held >= (need or self.size) else None
        return Step(APPLIED, reset, ready, scored, dropped)

    def to_json(self, encode_pending: Callable[[P], Any] | None = None) -> dict[str, Any]:
        """The window as the changelog stores it."""
        pending: Any = self.pending
        if pending is not None and encode_pending is not None:
            pending = encode_pending(pending)
        return {
            "size": self.size,
            "last_date": self.last_date.isoformat() if self.last_date else None,
            "values": self.values.tolist(),
            "pending": pending,
        }

    @classmethod
    def from_json(
        cls, obj: dict[str, Any], decode_pending: Callable[[Any], P] | None = None
    ) -> SeriesWindow[P]:
        """A window back from its changelog form."""
        pending = obj.get("pending")
        if pending is not None and decode_pending is not None:
            pending = decode_pending(pending)
        last = obj.get("last_date")
        return cls(
            size=int(obj["size"]),
            last_date=date.fromisoformat(last) if last else None,
            values=array("d", (float(v) for v in obj["values"])),
            pending=pending,
        )
