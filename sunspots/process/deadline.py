"""One bound for a wait: nothing in the project waits for ever.

Every loop that reads a topic to its end, drains a producer, restores state or waits for a
condition takes a `Deadline` (or `wait_until`) rather than writing `time.monotonic() + ...`
again, so each bound is said the same way and the line that reports it past its limit names
what it waited for and for how long.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Deadline:
    """`seconds` from when it was made (monotonic clock); `expired` once they have passed.

    `clock` is replaceable so that a unit test can move time without sleeping."""

    seconds: float
    clock: Callable[[], float] = time.monotonic
    at: float = field(init=False)

    def __post_init__(self) -> None:
        self.at = self.clock() + self.seconds

    @classmethod
    def at_time(cls, at: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """A deadline at the clock reading `at` (for a bound shared by several waits)."""
        deadline = cls(max(0.0, at - clock()), clock)
        deadline.at = at
        return deadline

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.at - self.clock())

    def remaining_ms(self) -> int:
        """`remaining` in whole milliseconds, for a client's `timeout_ms`."""
        return int(self.remaining() * 1000)

    def expired(self) -> bool:
        """Whether the bound has passed."""
        return self.clock() > self.at

    def sooner(self, seconds: float) -> Deadline:
        """This deadline or one `seconds` from now, whichever comes first."""
        return Deadline.at_time(min(self.at, self.clock() + seconds), self.clock)


def wait_until(
    probe: Callable[[], T | None],
    deadline: Deadline,
    interval: float = 0.25,
    sleep: Callable[[float], None] = time.sleep,
) -> T | None:
    """Call `probe` until it returns something other than None or False and return that, or
    None once `deadline` has passed (the caller says in one line what it waited for)."""
    while True:
        answer = probe()
        if answer is not None and answer is not False:
            return answer
        left = deadline.remaining()
        if left <= 0:
            return None
        sleep(min(interval, left))
