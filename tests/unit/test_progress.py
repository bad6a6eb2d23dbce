"""A replay's progress: the share of its dates, its rates and the time left."""

from __future__ import annotations

import io
import logging

import pytest

from producer.progress import ProgressDisplay, ReplayProgress, duration


def test_share_rates_and_time_left_at_full_speed() -> None:
    snap = ReplayProgress(total_days=1000).apply(days=250, records=500, elapsed_s=5.0)
    assert snap.percent == 25.0
    assert (snap.days_per_s, snap.records_per_s) == (50.0, 100.0)
    # 750 days left at the 50 days/s measured so far.
    assert snap.left_s == 15.0


def test_a_paced_replay_takes_the_configured_speed_for_the_time_left() -> None:
    snap = ReplayProgress(total_days=1000, speed=4.0).apply(days=200, records=200, elapsed_s=40.0)
    assert snap.left_s == 200.0  # 800 days at 4 days/s, whatever the measured rate


def test_time_left_is_unknown_before_the_first_day_and_zero_at_the_end() -> None:
    progress = ReplayProgress(total_days=10)
    assert progress.apply(0, 0, 0.0).left_s is None
    assert progress.apply(10, 30, 2.0).left_s == 0.0


def test_the_line_says_all_of_it() -> None:
    snap = ReplayProgress(total_days=64_314).apply(days=32_157, records=64_314, elapsed_s=10.0)
    assert snap.describe() == (
        "50.0 % of the dates (32157/64314 days), 64314 records, 6431 records/s, "
        "3215.7 days/s, 10 s left"
    )


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (12.2, "13 s"), (185, "3 min 05 s"), (3720, "1 h 02 min")]
)
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_without_a_terminal_progress_is_a_log_line(caplog) -> None:
    caplog.set_level(logging.INFO, logger="producer.progress")
    display = ProgressDisplay(ReplayProgress(total_days=4), every_s=0.0, stream=io.StringIO())
    assert display.bar is None
    display.update(days=1, records=2)
    display.update(days=2, records=4)
    assert [r.getMessage()[:30] for r in caplog.records] == [
        "progress: 25.0 % of the dates ",
        "progress: 50.0 % of the dates ",
    ]
    assert display.close().days == 2


def test_on_a_terminal_progress_is_a_bar() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    display = ProgressDisplay(ReplayProgress(total_days=4), stream=stream)
    display.update(days=2, records=2)
    display.close()
    # tqdm draws the share, the days and the rate; it says the time left once it has a rate.
    last = stream.getvalue().rstrip().split("\r")[-1]
    assert last.startswith(" 50%") and "2/4" in last and "day/s" in last
