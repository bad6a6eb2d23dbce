"""Waiting for a condition with a deadline: services, topics and Prometheus catch up in time,
so the tests ask again until they have or the time is up.

A wait on Kafka meets errors that only mean "not yet": a group's coordinator moving or still
loading after a node fault, a partition's leader being elected, a node not ready, a metadata
request timed out. kafka-python marks them `retriable`; inside a wait they are asked again
until the wait's own deadline, whose error then names what it waited for and the last error.
Any other error ends the wait at once: it will not pass by itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sunspots.kafka.errors import KafkaError
from sunspots.process.deadline import Deadline

T = TypeVar("T")


def not_yet(exc: BaseException) -> bool:
    """Whether an error raised inside a wait means "ask again": a Kafka error its client marks
    retriable (NotCoordinatorError, CoordinatorLoadInProgressError, LeaderNotAvailableError,
    NodeNotReadyError, KafkaTimeoutError, RequestTimedOutError, ...)."""
    return isinstance(exc, KafkaError) and bool(exc.retriable)


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 0.25) -> T:
    """Call `probe` until it returns something other than None or False, and return that.
    A retriable Kafka error from `probe` counts as no answer yet (`not_yet`); any other error
    is raised at once. After `timeout` seconds, TimeoutError naming `what` and the last answer
    or the last error."""
    deadline = Deadline(timeout)
    last: T | None = None
    error: BaseException | None = None
    while not deadline.expired():
        try:
            last, error = probe(), None
        except KafkaError as exc:
            if not not_yet(exc):
                raise
            error = exc
        else:
            if last is not None and last is not False:
                return last
        time.sleep(interval)
    told = f"last error: {error}" if error is not None else f"last: {last!r}"
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what} ({told})")


def retrying(what: str, call: Callable[[], T], timeout: float, interval: float = 0.25) -> T:
    """`call()`'s answer, whatever it is (an empty dict, 0), asked again while it raises a
    retriable Kafka error, for at most `timeout` seconds (then TimeoutError, as `wait_for`)."""
    return wait_for(what, lambda: (call(),), timeout, interval)[0]
