"""The bounded stop (consumer.shutdown): the timer ends the process with its line past the
grace, a second signal at once, and a loop that ends in time is never cut short. The process's
end is a recorded call here (the real one is os._exit: tests/integration/test_loop_faults.py)."""

from __future__ import annotations

import logging
import threading

from consumer.shutdown import Shutdown
from consumer.stops import EXIT_INPUT, EXIT_STALLED, ServiceStop


class Exits:
    def __init__(self) -> None:
        self.codes: list[int] = []
        self.called = threading.Event()

    def __call__(self, code: int) -> None:
        self.codes.append(code)
        self.called.set()


def test_past_the_grace_the_timer_tells_what_the_loop_was_doing_and_exits(caplog) -> None:
    exits = Exits()
    shutdown = Shutdown(0.05, lambda: "polling", exits)
    with caplog.at_level(logging.INFO, logger="consumer.shutdown"):
        shutdown.on_signal("SIGTERM")
        assert shutdown.event.is_set()
        assert exits.called.wait(5)
    assert exits.codes == [EXIT_STALLED]
    assert caplog.records[-1].getMessage() == (
        "still polling 0.05 s after SIGTERM; exiting without committing: the batch in hand is "
        "processed again after a restart"
    )


def test_a_loop_that_ends_in_time_is_not_cut_short() -> None:
    exits = Exits()
    shutdown = Shutdown(0.2, lambda: "polling", exits)
    shutdown.on_signal("SIGTERM")
    shutdown.cancel()
    assert not exits.called.wait(0.5)


def test_a_second_signal_exits_at_once(caplog) -> None:
    exits = Exits()
    shutdown = Shutdown(60.0, lambda: "restoring the state of partitions [0]", exits)
    with caplog.at_level(logging.INFO, logger="consumer.shutdown"):
        shutdown.on_signal("SIGTERM")
        assert exits.codes == []
        shutdown.on_signal("SIGINT")
    assert exits.codes == [EXIT_STALLED]
    assert (
        caplog.records[-1]
        .getMessage()
        .startswith(
            "SIGINT again while restoring the state of partitions [0]; exiting without committing"
        )
    )
    shutdown.cancel()


def test_the_first_cause_and_the_first_stop_are_kept() -> None:
    exits = Exits()
    shutdown = Shutdown(60.0, lambda: "polling", exits)
    stalled = ServiceStop("no progress", EXIT_STALLED)
    shutdown.begin("the stall limit", stalled)
    shutdown.begin("SIGTERM", ServiceStop("later", EXIT_INPUT))
    assert shutdown.cause == "the stall limit" and shutdown.stopped is stalled
    shutdown.cancel()
    assert exits.codes == []
