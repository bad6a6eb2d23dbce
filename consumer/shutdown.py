"""How a consumer service stops: gracefully when it can, and within a bound when it cannot.

A stop (SIGTERM or SIGINT, the watchdog's stall limit, a stop the loop decides) sets the stop
event that every wait of the loop watches, so the loop finishes the batch in hand, commits it
and closes. That is the common case. But the loop's thread may be where no event is looked at:
inside the Kafka client (spinning in a poll, waiting for a broker that is gone), inside a
restore or a transaction step. So the stop also starts a timer; if the process is still there
`grace_s` seconds later, the timer tells in one line what the loop was still doing, and ends the
process with `EXIT_STALLED`. A second signal ends it at once, with the same kind of line.

Why `os._exit` and not an exception or `sys.exit`: `sys.exit` on the timer's thread ends only
that thread; an exception cannot be delivered into the loop's thread while it waits inside the
client (a blocked call, or a loop of the client's that catches what it raises), and even when
it could, the clean-up it would run (closing the clients) may wait on the same broker again.
Ending the process is the only bound that holds whatever the client is doing. Before it, the
log handlers are flushed, so the line is not lost. Nothing else needs the clean-up: what was
not committed is processed again after a restart, and an open transaction is aborted by the
next incarnation's `init_transactions`, or by the brokers once it times out.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable

from consumer.stops import EXIT_STALLED, ServiceStop

log = logging.getLogger(__name__)

AFTERMATH = "exiting without committing: the batch in hand is processed again after a restart"


def exit_now(code: int) -> None:
    """End the process at once, its log handlers flushed first (see the module)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Shutdown:
    """The service's stop event, the bound on honouring it, and the stop's exit code."""

    def __init__(
        self,
        grace_s: float,
        activity: Callable[[], str],
        exit: Callable[[int], None] = exit_now,
    ) -> None:
        self.grace_s = grace_s
        self.activity = activity
        self.exit = exit
        self.event = threading.Event()
        self.cause: str | None = None
        self.stopped: ServiceStop | None = None  # a stop the service decided itself
        self.signals = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def begin(self, cause: str, stop: ServiceStop | None = None) -> None:
        """Ask the loop to stop, for `cause` ("SIGTERM", "the stall limit"), and start the
        timer; the first cause is the one told. `stop`: the exit code to end with."""
        with self._lock:
            if self.stopped is None:
                self.stopped = stop
            if self.cause is not None:
                return
            self.cause = cause
            self._timer = threading.Timer(self.grace_s, self._expire)
            self._timer.name = "shutdown-timer"
            self._timer.daemon = True
            self._timer.start()
        self.event.set()

    def on_signal(self, name: str) -> None:
        """SIGTERM or SIGINT: the first stops gracefully, the second at once."""
        self.signals += 1
        if self.signals == 1:
            log.info(
                "%s received: finishing the work in hand (at most %g s; again to exit at once)",
                name,
                self.grace_s,
            )
            self.begin(name)
            return
        log.error("%s again while %s; %s", name, self.activity(), AFTERMATH)
        self.exit(EXIT_STALLED)

    def cancel(self) -> None:
        """The loop has ended: nothing left to bound (a test's, or an embedding's, call)."""
        if self._timer is not None:
            self._timer.cancel()

    def _expire(self) -> None:
        log.error(
            "still %s %g s after %s; %s", self.activity(), self.grace_s, self.cause, AFTERMATH
        )
        self.exit(EXIT_STALLED)
