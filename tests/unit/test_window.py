"""The window's gap and ordering policy, and its JSON round trip."""

from __future__ import annotations

from datetime import date, timedelta

from sunspots.domain.window import APPLIED, DUPLICATE, OUT_OF_ORDER, SeriesWindow

D0 = date(2000, 1, 1)


def _day(i: int) -> date:
    return D0 + timedelta(days=i)


def _fill(window: SeriesWindow, values: list[float], start: int = 0) -> list:
    return [window.apply(_day(start + i), v) for i, v in enumerate(values)]


def _ready(steps: list) -> list:
    """Each step's ready values as a tuple (the window hands out a copy of its array)."""
    return [None if s.ready is None else tuple(s.ready) for s in steps]


def test_ready_once_full_then_every_day() -> None:
    steps = _fill(SeriesWindow(3), [1, 2, 3, 4])
    assert _ready(steps) == [None, None, (1, 2, 3), (2, 3, 4)]
    assert all(s.status == APPLIED and s.reset is None for s in steps)


def test_pending_forecast_is_scored_by_the_next_day() -> None:
    window = SeriesWindow(2)
    _fill(window, [1, 2])
    window.pending = "forecast-for-day-2"
    step = window.apply(_day(2), 3)
    assert step.scored == "forecast-for-day-2" and step.dropped is None
    assert window.pending is None


def test_duplicate_and_out_of_order_are_not_applied() -> None:
    window = SeriesWindow(2)
    _fill(window, [1, 2, 3])
    assert window.apply(_day(2), 99).status == DUPLICATE
    assert window.apply(_day(0), 99).status == OUT_OF_ORDER
    assert list(window.values) == [2, 3] and window.last_date == _day(2)


def test_missing_value_resets_and_drops_the_pending_forecast() -> None:
    window = SeriesWindow(2)
    _fill(window, [1, 2])
    window.pending = "f"
    step = window.apply(_day(2), None)
    assert step.reset == "missing_value" and step.dropped == "f" and step.scored is None
    assert list(window.values) == []
    # Holds until two consecutive values exist again.
    assert _ready(_fill(window, [5, 6], start=3)) == [None, (5, 6)]


def test_skipped_date_resets_and_starts_from_the_new_value() -> None:
    window = SeriesWindow(2)
    _fill(window, [1, 2])
    window.pending = "f"
    step = window.apply(_day(5), 7)
    assert step.reset == "skipped_date" and step.dropped == "f"
    assert list(window.values) == [7] and step.ready is None
    assert _ready([window.apply(_day(6), 8)]) == [(7, 8)]


def test_json_round_trip_keeps_window_and_pending() -> None:
    window = SeriesWindow(3)
    _fill(window, [1, 2, 3, 4])
    window.pending = {"target_date": "2000-01-05"}
    again = SeriesWindow.from_json(window.to_json())
    assert again == window
    assert again.apply(_day(4), 5).scored == {"target_date": "2000-01-05"}
