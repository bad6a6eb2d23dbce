"""Sliding windows over the daily sunspot series and the train / validation / test split.

Windows are built separately inside each contiguous period so that no window straddles the
train/test boundary (as in the lesson). Validation windows are the training-period windows
whose target falls in the validation years; they are used for early stopping, scaling and
interval calibration, so the test years are touched exactly once, at the end.

The daily series comes from the SILSO file, or from the observations topic (`read_observations`
+ `frame_from_observations`), rebuilt into the same frame the file gives.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sunspots.domain.data import COLUMNS, select_range, split_by_year, trim_unobserved
from sunspots.kafka.reading import read_topic
from sunspots.kafka.settings import KafkaSettings
from sunspots.wire.schemas import SchemaError, decode_observation


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
        """The count and first and last target dates, for the metadata's periods."""
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
    """The windows of each split and the dates and counts of each period, for training and the
    artifact's metadata."""

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


# --- the observations topic as a data source ----------------------------------------------------


def frame_from_observations(
    records: Iterable[tuple[bytes | None, bytes | None]], series: str
) -> pd.DataFrame:
    """The daily frame `sunspots.domain.data.read_daily` gives, rebuilt from a series' observation
    records (key, value) in any order: one row per day from the first to the last date, a day
    with no record or a null value as a missing value (NaN, no observers, as SILSO marks one).
    A record that does not decode, or of another series, is left out; of a date sent twice, the
    first record counts, as the forecaster counts it. ValueError when the series has no record."""
    rows: dict[dt.date, tuple[Any, ...]] = {}
    for key, value in records:
        try:
            obs = decode_observation(value, key)
        except SchemaError:
            continue
        if obs.series == series and obs.date not in rows:
            # A minimal observation leaves the count and the flag out: no count, as SILSO
            # marks a day with none, and not provisional.
            count, provisional = obs.observations or 0, bool(obs.provisional)
            rows[obs.date] = (obs.sunspot_number, obs.std_dev, count, provisional)
    if not rows:
        raise ValueError(f"no observations of series {series!r}")
    days = pd.date_range(min(rows), max(rows), freq="D")
    missing = (np.nan, np.nan, 0, False)
    frame = pd.DataFrame([rows.get(day.date(), missing) for day in days], columns=list(COLUMNS[1:]))
    frame.insert(0, "date", days)
    for column in ("sunspot_number", "std_dev"):
        frame[column] = frame[column].astype(np.float64)
    return frame


def read_observations(
    kafka: KafkaSettings, topic: str, timeout_s: float = 300.0
) -> list[tuple[bytes | None, bytes | None]]:
    """Every committed (key, value) of `topic`, read to the end it has now (read_committed)."""
    return [
        (r.key, r.value)
        for _, batch in read_topic(kafka, topic, timeout_s=timeout_s, poll_ms=500)
        for r in batch
    ]


def write_daily(frame: pd.DataFrame, path: Path) -> Path:
    """`frame` as a SILSO daily file (`sunspots.domain.data.read_daily` reads it back the same), so a
    model trained from the topic records the exact data it saw, as one trained from a file."""
    lines = []
    for row in frame.itertuples(index=False):
        day = row.date
        value = -1 if np.isnan(row.sunspot_number) else row.sunspot_number
        std = -1.0 if np.isnan(row.std_dev) else row.std_dev
        fraction = (day.day_of_year - 0.5) / (366 if day.is_leap_year else 365)
        lines.append(
            f"{day.year};{day.month:02d};{day.day:02d};{day.year + fraction:.3f};"
            f"{value:g};{std:g};{int(row.observations)};{int(row.provisional)}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path
