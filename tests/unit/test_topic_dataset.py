"""The training data rebuilt from observation records is the frame the data file gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sunspots.domain.data import load_daily, read_daily, select_range
from sunspots.wire.schemas import Observation
from training.dataset import build_splits, frame_from_observations, write_daily


def records(frame: pd.DataFrame, series: str = "silso") -> list[tuple[bytes, bytes]]:
    """The frame's rows as the producer sends them."""
    out = []
    for row in frame.itertuples(index=False):
        value = None if np.isnan(row.sunspot_number) else float(row.sunspot_number)
        std = None if np.isnan(row.std_dev) else float(row.std_dev)
        obs = Observation(
            series, row.date.date(), value, std, int(row.observations), bool(row.provisional)
        )
        out.append((series.encode(), obs.encode()))
    return out


@pytest.fixture(scope="module")
def frame(data_path) -> pd.DataFrame:
    return select_range(load_daily(data_path), "1995-01-01", "2001-12-31").reset_index(drop=True)


def test_the_records_of_a_range_give_its_frame_in_any_order(frame) -> None:
    shuffled = records(frame)
    np.random.default_rng(0).shuffle(shuffled)
    pd.testing.assert_frame_equal(frame_from_observations(shuffled, "silso"), frame)


def test_the_same_windows_and_targets_as_the_file(frame) -> None:
    rebuilt = frame_from_observations(records(frame), "silso")
    ours = build_splits(rebuilt, 10, "2001-12-31", 1998, 2000)
    theirs = build_splits(frame, 10, "2001-12-31", 1998, 2000)
    for name in ("fit", "validation", "test"):
        a, b = getattr(ours, name), getattr(theirs, name)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        assert a.target_dates.equals(b.target_dates)


def test_missing_days_duplicates_other_series_and_junk(frame) -> None:
    sent = records(frame.iloc[:40])
    del sent[20]  # a day never sent
    sent.insert(5, sent[5])  # a day sent twice
    sent.append((b"x", b"{not json"))
    sent += records(frame.iloc[:40], series="other")
    rebuilt = frame_from_observations(sent, "silso")
    assert len(rebuilt) == 40 and np.isnan(rebuilt["sunspot_number"][20])
    assert rebuilt["observations"][20] == 0
    expected = frame.iloc[:40].drop(index=20)
    pd.testing.assert_frame_equal(rebuilt.drop(index=20), expected)
    with pytest.raises(ValueError, match="no observations"):
        frame_from_observations(sent, "nobody")


def test_the_written_data_file_reads_back_the_same(frame, tmp_path) -> None:
    path = write_daily(frame, tmp_path / "topic.csv")
    pd.testing.assert_frame_equal(read_daily(path), frame)


def test_minimal_observations_train_on_the_same_numbers(frame, tmp_path) -> None:
    """Records of `{"series", "date", "sunspot_number"}` alone: the same sunspot numbers, no
    count or flag (0 observers, not provisional), and a data file that reads back."""
    sent = [
        (b"silso", Observation("silso", row.date.date(), _number(row.sunspot_number)).encode())
        for row in frame.itertuples(index=False)
    ]
    rebuilt = frame_from_observations(sent, "silso")
    pd.testing.assert_series_equal(rebuilt["sunspot_number"], frame["sunspot_number"])
    assert rebuilt["std_dev"].isna().all() and (rebuilt["observations"] == 0).all()
    assert not rebuilt["provisional"].any()
    path = write_daily(rebuilt, tmp_path / "minimal.csv")
    pd.testing.assert_frame_equal(read_daily(path), rebuilt)


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
