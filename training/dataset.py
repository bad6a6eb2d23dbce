"""Sliding windows over the daily sunspot series and the train / validation / test split.

Windows are built separately inside each contiguous period so that no window straddles the
train/test boundary (as in the lesson). Validation windows are the training-period windows
whose target falls in the validation years; they are used for early stopping, scaling and
interval calibration, so the test years are touched exactly once, at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sunspots.data import select_range, split_by_year, trim_unobserved


def make_windows(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """(len - window, window) input windows, oldest first, and the value after each."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) <= window:
        raise ValueError(f"need more than {window} values to build windows, got {len(values)}")
    x = np.lib.stride_tricks.sliding_window_view(values[:-1], window).copy()
    return x, values[window:].copy()


@dataclass(frozen=True)
class WindowSet:
    """Windows plus the date of each target, for reporting and plotting."""

    x: np.ndarray
    y: np.ndarray
    target_dates: pd.DatetimeIndex

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> WindowSet:
        return WindowSet(self.x[mask], self.y[mask], self.target_dates[mask])

    def describe(self) -> dict[str, Any]:
        return {
            "windows": len(self),
            "first_target": str(self.target_dates[0].date()),
            "last_target": str(self.target_dates[-1].date()),
        }


def window_set(frame: pd.DataFrame, window: int) -> WindowSet:
    if frame["sunspot_number"].isna().any():
        raise ValueError("series has missing values after trimming; cannot build windows")
    x, y = make_windows(frame["sunspot_number"].to_numpy(), window)
    return WindowSet(x, y, pd.DatetimeIndex(frame["date"].iloc[window:]))


@dataclass(frozen=True)
class Splits:
    train: WindowSet  # every training-period window (fit + validation)
    fit: WindowSet  # windows with target before the validation years
    validation: WindowSet
    test: WindowSet
    periods: dict[str, dict[str, Any]]


def _period(frame: pd.DataFrame) -> dict[str, Any]:
    return {
        "first_date": str(frame["date"].iloc[0].date()),
        "last_date": str(frame["date"].iloc[-1].date()),
        "values": len(frame),
    }


def build_splits(
    frame: pd.DataFrame,
    window: int,
    end: str | None,
    validation_from: int = 1990,
    test_from: int = 2000,
    start: str | None = None,
) -> Splits:
    """Trim the unobserved prefix, cut at `end` (and optionally `start`), and window each split."""
    if not validation_from < test_from:
        raise ValueError(f"validation year {validation_from} must precede test year {test_from}")
    series = select_range(trim_unobserved(frame), start, end)
    split = split_by_year(series, test_from)
    if split.train.empty or split.test.empty:
        raise ValueError(f"empty train or test period for end={end}, test years >= {test_from}")
    train, test = window_set(split.train, window), window_set(split.test, window)
    in_validation = np.asarray(train.target_dates.year >= validation_from)
    fit, validation = train.subset(~in_validation), train.subset(in_validation)
    if len(fit) == 0 or len(validation) == 0:
        raise ValueError(
            f"validation years from {validation_from} leave an empty fit or validation set"
        )
    periods = {"train": _period(split.train), "test": _period(split.test)}
    periods["train"].update(train.describe())
    periods["test"].update(test.describe())
    periods["fit"] = fit.describe()
    periods["validation"] = validation.describe()
    return Splits(train, fit, validation, test, periods)
