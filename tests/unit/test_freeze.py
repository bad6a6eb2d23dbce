"""Freezing a service inside a transaction: the process is stepped (stopped, looked at, let run
a little) until a look finds a transaction open with records in it, and is left stopped there;
past the deadline it is let go and the last look is told."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from types import SimpleNamespace

import pytest

from support.run_progress import Ends, Moment, step_into_transaction

OPEN = Moment(1, 2, {"forecasts": Ends(4, 6)}, ("Ongoing",))
COMMITTING = Moment(1, 2, {"forecasts": Ends(4, 6)}, ("PrepareCommit",))
BEGUN = Moment(1, 2, {"forecasts": Ends(4, 4)}, ("Ongoing",))
IDLE = Moment(3, 3, {"forecasts": Ends(6, 6)}, ("CompleteCommit",))


class Process:
    """A stand-in child process that records the signals sent to it."""

    def __init__(self) -> None:
        self.signals: list[signal.Signals] = []

    def send_signal(self, sig: signal.Signals) -> None:
        self.signals.append(sig)


def service() -> SimpleNamespace:
    return SimpleNamespace(name="forecaster-a", process=Process())


def looks(*seen: Moment) -> Callable[[], Moment]:
    """A `moment` that gives `seen` one after the other, then the last one for ever."""
    queue = list(seen)
    return lambda: queue.pop(0) if len(queue) > 1 else queue[0]


def test_only_records_in_an_ongoing_transaction_are_inside_one() -> None:
    assert OPEN.in_transaction
    assert not COMMITTING.in_transaction  # records open, but the commit is under way
    assert not BEGUN.in_transaction  # ongoing, nothing written yet
    assert not IDLE.in_transaction


def test_the_process_is_stepped_until_a_look_is_inside_and_left_stopped_there() -> None:
    svc = service()
    moment = looks(IDLE, COMMITTING, BEGUN, OPEN, IDLE)
    frozen = step_into_transaction(svc, moment, time.monotonic() + 60, 0.0)
    assert frozen is OPEN
    stop, cont = signal.SIGSTOP, signal.SIGCONT
    # Three looks outside, each followed by a step; the fourth is inside: stopped there.
    assert svc.process.signals == [stop, cont, stop, cont, stop, cont, stop]


def test_past_the_deadline_the_process_is_let_go_and_the_last_look_told() -> None:
    svc = service()
    with pytest.raises(AssertionError) as raised:
        step_into_transaction(svc, looks(BEGUN, IDLE), time.monotonic() + 0.05, 0.001)
    message = str(raised.value)
    assert "looks at a stopped forecaster-a found a transaction open" in message
    assert IDLE.describe() in message
    assert svc.process.signals[-1] == signal.SIGCONT  # never left frozen
    assert svc.process.signals.count(signal.SIGSTOP) >= 2  # it kept stepping until then
