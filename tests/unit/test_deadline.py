"""The one bound for a wait (`sunspots.process.deadline`), on a clock the test moves."""

from __future__ import annotations

import pytest

from sunspots.process.deadline import Deadline, wait_until

pytestmark = pytest.mark.unit


class Clock:
    """A monotonic clock that moves only when told (or when something sleeps on it)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_a_deadline_counts_down_and_expires_only_past_its_bound() -> None:
    clock = Clock()
    deadline = Deadline(2.0, clock)
    assert deadline.remaining() == 2.0 and deadline.remaining_ms() == 2000
    clock.now += 2.0
    assert not deadline.expired()  # at the bound, not past it (as `now > deadline` was)
    clock.now += 0.001
    assert deadline.expired() and deadline.remaining() == 0.0


def test_sooner_takes_the_earlier_of_the_two_bounds() -> None:
    clock = Clock()
    deadline = Deadline(10.0, clock)
    assert deadline.sooner(3.0).at == 103.0
    assert deadline.sooner(30.0).at == 110.0


def test_wait_until_returns_the_first_answer_or_none_past_the_deadline() -> None:
    clock = Clock()
    answers = iter([None, False, "ready"])
    assert wait_until(lambda: next(answers), Deadline(5.0, clock), 1.0, clock.sleep) == "ready"
    assert clock.now == 102.0  # two waits of the interval
    assert wait_until(lambda: None, Deadline(2.5, clock), 1.0, clock.sleep) is None
    assert clock.now == 104.5  # the last sleep is cut to the time left: never past the bound
