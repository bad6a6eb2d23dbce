"""The drift detector's calibration on the real data and the committed model: no alarm on the
clean replays, an alarm soon after a change of scale of the stream."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sunspots.domain.artifact import load_forecaster
from sunspots.domain.data import load_daily, select_range
from sunspots.domain.drift import DriftDetector

START = "2000-01-01"
SHIFT_FROM = "2012-01-01"
# SILSO's 2015 recalibration (version 1 to 2) divided the old numbers by 0.6.
RESCALE = 1 / 0.6
# The detection delay the documentation states, in scored days.
MAX_DELAY = 30


@pytest.fixture(scope="module")
def stream(data_path) -> tuple[np.ndarray, pd.DatetimeIndex]:
    frame = select_range(load_daily(data_path), START, None)
    assert not frame["sunspot_number"].isna().any()
    return frame["sunspot_number"].to_numpy(), pd.DatetimeIndex(frame["date"])


def scored_errors(values: np.ndarray) -> np.ndarray:
    """The absolute error of each day's forecast, as the service scores it."""
    model = load_forecaster()
    windows = np.lib.stride_tricks.sliding_window_view(values[:-1], model.window)
    return np.abs(model.predict(windows) - values[model.window :])


def alarm_days(values: np.ndarray) -> list[int]:
    detector = DriftDetector()
    return [i for i, e in enumerate(scored_errors(values)) if detector.apply(float(e)).alarm]


@pytest.mark.parametrize("end", ["2017-06-30", None])
def test_no_alarm_on_the_clean_replays(stream, end) -> None:
    values, dates = stream
    kept = values if end is None else values[dates <= pd.Timestamp(end)]
    assert alarm_days(kept) == []


def test_an_alarm_within_a_month_of_a_change_of_scale(stream) -> None:
    values, dates = stream
    shifted = np.where(dates >= pd.Timestamp(SHIFT_FROM), values * RESCALE, values)
    window = load_forecaster().window
    first = int(np.argmax(dates[window:] >= pd.Timestamp(SHIFT_FROM)))
    found = alarm_days(shifted)
    assert [day for day in found if day < first] == []
    assert found and 0 <= found[0] - first <= MAX_DELAY


def test_a_constant_offset_is_not_a_drift_of_this_models_error(stream) -> None:
    # The model forecasts the change from the last value, so a constant added to the stream
    # moves its error by less than 1 %: a detector on the error rightly stays quiet.
    values, dates = stream
    shifted = np.where(dates >= pd.Timestamp(SHIFT_FROM), values + 50.0, values)
    after = dates[load_forecaster().window :] >= pd.Timestamp(SHIFT_FROM)
    clean, moved = scored_errors(values)[after][:365], scored_errors(shifted)[after][:365]
    assert abs(moved.mean() / clean.mean() - 1) < 0.02
