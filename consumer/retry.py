"""One retry policy for every step of the consumer loop that waits on Kafka.

Connecting at start (the broker may not be up yet), restoring state and rewinding after a
failed publish all retry the same way: back off exponentially up to a ceiling, report the
service as not connected meanwhile, stop at once on a fencing (see `consumer.fencing`), a
refusal a retry will not mend (`sunspots.kafka.refusal`) or a stop the service decided
(`consumer.stops`), and give up only when the service is asked to stop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from consumer.fencing import Fenced, is_fenced
from consumer.health import Health
from consumer.stops import ServiceStop
from sunspots.kafka.refusal import refusal_error

log = logging.getLogger(__name__)
T = TypeVar("T")


class Interrupted(Exception):
    """The service was asked to stop while a step was still failing."""


@dataclass(frozen=True)
class Backoff:
    first_s: float = 0.5
    max_s: float = 10.0


class Retry:
    """Runs steps until they succeed, with the service's stop event, health and backoff."""

    def __init__(self, stop: threading.Event, health: Health, backoff: Backoff) -> None:
        self.stop = stop
        self.health = health
        self.backoff = backoff

    def __call__(
        self,
        step: Callable[[], T],
        what: str,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
    ) -> T:
        """Return `step()` once it succeeds. Raises `Fenced` on a fencing, `Interrupted` when
        the service stops while the step still fails, and, unchanged, a refusal of the brokers
        (authentication, authorization: `sunspots.kafka.refusal`), a `ServiceStop` and any error
        outside `retry_on`."""
        delay = self.backoff.first_s
        while True:
            try:
                return step()
            except retry_on as exc:
                if isinstance(exc, ServiceStop):
                    raise
                if is_fenced(exc):
                    raise Fenced(f"fenced while {what}: {exc!r}") from exc
                if refusal_error(exc) is not None:
                    raise
                if self.stop.is_set():
                    raise Interrupted(f"stopped while {what}: {exc}") from exc
                log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
                self.health.polled(connected=False)
                self.stop.wait(delay)
                delay = min(delay * 2, self.backoff.max_s)
