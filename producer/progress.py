"""How far a replay is: the share of its date range done, its rates and the time left.

Policy:
- done = simulated days sent ÷ days in the replay's date range (every series advances one
  calendar day per step, so days are the honest measure, whatever the series count);
- rates are averages since the start: records/s and simulated days/s;
- time left is the remaining days at the configured speed (days per second) when the replay is
  paced, else at the days/s measured so far (unknown until a day has passed);
- shown as a live bar (tqdm) when stderr is a terminal, otherwise as one log line every few
  seconds, so container logs stay readable (`ProgressDisplay`).

`ReplayProgress.apply()` is pure: it takes the counts and the clock and returns a `Snapshot`.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass
from typing import IO

from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """The replay's counts at one moment, for the progress bar and the periodic report."""

    days: int
    total_days: int
    records: int
    elapsed_s: float
    days_per_s: float
    records_per_s: float
    left_s: float | None  # None while unknown

    @property
    def percent(self) -> float:
        return 100.0 * self.days / self.total_days if self.total_days else 100.0

    def describe(self) -> str:
        """One line for the periodic report: share done, days, records, rates and time left."""
        left = "unknown" if self.left_s is None else duration(self.left_s)
        return (
            f"{self.percent:.1f} % of the dates ({self.days}/{self.total_days} days), "
            f"{self.records} records, {self.records_per_s:.0f} records/s, "
            f"{self.days_per_s:.1f} days/s, {left} left"
        )


@dataclass(frozen=True)
class ReplayProgress:
    """The replay's progress told as it goes: a bar on a terminal, a log line every so often
    elsewhere."""

    total_days: int
    speed: float = 0.0  # configured simulated days per second; 0 = as fast as possible

    def apply(self, days: int, records: int, elapsed_s: float) -> Snapshot:
        """The snapshot after `days` days and `records` records in `elapsed_s` seconds; the time
        left is at the configured speed when one is set, else at the rate so far, and None when
        unknown."""
        days_per_s = days / elapsed_s if elapsed_s > 0 else 0.0
        records_per_s = records / elapsed_s if elapsed_s > 0 else 0.0
        remaining = max(self.total_days - days, 0)
        rate = self.speed or days_per_s
        left = remaining / rate if rate > 0 else (0.0 if remaining == 0 else None)
        return Snapshot(days, self.total_days, records, elapsed_s, days_per_s, records_per_s, left)


def duration(seconds: float) -> str:
    """1 h 02 min, 3 min 05 s, 12 s."""
    seconds = max(0, math.ceil(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class ProgressDisplay:
    """Shows a replay's progress: a tqdm bar on a terminal, periodic log lines elsewhere."""

    def __init__(
        self,
        progress: ReplayProgress,
        every_s: float = 5.0,
        stream: IO[str] | None = None,
    ) -> None:
        self.progress = progress
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.next_report = self.started + every_s
        self.days = self.records = 0
        self.bar: tqdm | None = None
        if _is_terminal(self.stream):
            self.bar = tqdm(
                total=progress.total_days, unit="day", file=self.stream, dynamic_ncols=True
            )

    def update(self, days: int, records: int) -> None:
        """Called once per replayed day: cheap unless something is shown."""
        self.days, self.records = days, records
        if self.bar is not None:
            self.bar.update(days - self.bar.n)
        elif time.monotonic() >= self.next_report:
            log.info("progress: %s", self.snapshot().describe())
            self.next_report = time.monotonic() + self.every_s

    def snapshot(self) -> Snapshot:
        return self.progress.apply(self.days, self.records, time.monotonic() - self.started)

    def close(self) -> Snapshot:
        if self.bar is not None:
            self.bar.close()
        return self.snapshot()


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
