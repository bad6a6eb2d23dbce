"""The account of a replay's deliveries: which records Kafka acknowledged, and where to resume.

The replay sends day after day, one record per series each day, asynchronously; kafka-python's
I/O thread reports each record acknowledged or failed, in any order. `DeliveryLedger` keeps
the account (thread-safe) and `apply()` returns a `Delivery`, a plain summary.

Policy:
- the last date acknowledged is the latest day whose records, and every record of the days
  before it, were acknowledged: a replay restarted after it loses nothing;
- a record not acknowledged when the replay stops is lost: the producer is closed without
  waiting for it (it may still have reached the topic: `--resume` reads the topic, not this
  account);
- a series has a gap when one of its records was lost but a later one of the same series was
  acknowledged (a failed batch followed by one that got through): resuming after the last
  record on the topic would skip the gap, so the summary names the first lost date instead;
- the first error decides what went wrong: a retriable one (a timeout, no leader, a lost
  connection) means Kafka could not be reached, so a later `--resume` will do; any other
  (authorisation, a record too large) means Kafka refused the records, which a retry will not
  mend. Records failed by the replay's own closing of the producer are lost, not errors.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date

from sunspots.kafka.errors import KafkaError
from sunspots.process.deadline import Deadline

Ticket = int  # one record sent: its number in the ledger


@dataclass(frozen=True)
class Delivery:
    """What became of a replay's records."""

    planned: int  # records the replay set out to send
    sent: int  # records handed to the producer
    acknowledged: int
    lost: int  # sent but not acknowledged
    last_acknowledged: date | None  # None: not even the first day
    error: BaseException | None  # the first delivery error, if any
    gaps: dict[str, date] = field(default_factory=dict)  # series -> first lost date

    @property
    def complete(self) -> bool:
        """Every record sent was acknowledged, and none failed."""
        return self.lost == 0 and self.error is None

    @property
    def refused(self) -> bool:
        """Kafka answered with an error a retry will not mend (else it was out of reach)."""
        return self.error is not None and not _retriable(self.error)

    @property
    def resume_from(self) -> date | None:
        """The first date to send again when a series has a gap; None: `--resume` is exact."""
        return min(self.gaps.values()) if self.gaps else None

    def where(self) -> str:
        """`last date acknowledged 1999-04-12 (5,012 of 9,131 records)`."""
        last = self.last_acknowledged.isoformat() if self.last_acknowledged else "none"
        return f"last date acknowledged {last} ({self.acknowledged:,} of {self.planned:,} records)"

    def advice(self) -> str:
        """How to carry on from here."""
        start = self.resume_from
        if start is None:
            return "resume with --resume"
        series = ", ".join(sorted(self.gaps)[:3]) + (" …" if len(self.gaps) > 3 else "")
        return (
            f"later days of {series} got through after {start} was lost, so --resume would "
            f"skip it: replay with --start {start} (days already applied become duplicates)"
        )


def _retriable(error: BaseException) -> bool:
    return isinstance(error, KafkaError) and bool(error.retriable)


class DeliveryLedger:
    """Records sent, acknowledged and failed, from the replay and the producer's I/O thread."""

    def __init__(self, planned: int) -> None:
        self.planned = planned
        self._changed = threading.Condition()
        self._days: list[date] = []
        self._pending: dict[Ticket, tuple[int, str]] = {}  # ticket -> (day index, series)
        self._lost: list[tuple[int, str]] = []
        self._last_acked: dict[str, int] = {}  # series -> latest day index acknowledged
        self._sent = 0
        self._acknowledged = 0
        self._error: BaseException | None = None
        self._closing = False

    # --- the replay's side --------------------------------------------------------------------

    def day(self, when: date) -> int:
        """Open the next day of the replay; its index."""
        with self._changed:
            self._days.append(when)
            return len(self._days) - 1

    def sending(self, day: int, series: str) -> Ticket:
        """A record of `series` for `day` is about to be sent."""
        with self._changed:
            ticket = self._sent
            self._sent += 1
            self._pending[ticket] = (day, series)
            return ticket

    def closing(self) -> None:
        """From now on failures come from closing the producer: losses, not errors."""
        with self._changed:
            self._closing = True

    def wait_below(self, limit: int, timeout: float) -> bool:
        """Wait up to `timeout` s until fewer than `limit` records are unsettled; whether so."""
        deadline = Deadline(timeout)
        with self._changed:
            while len(self._pending) >= limit:
                left = deadline.remaining()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    @property
    def sent(self) -> int:
        with self._changed:
            return self._sent

    @property
    def unsettled(self) -> int:
        with self._changed:
            return len(self._pending)

    @property
    def error(self) -> BaseException | None:
        with self._changed:
            return self._error

    # --- the producer's side (callbacks) ------------------------------------------------------

    def acknowledged(self, ticket: Ticket, _metadata: object = None) -> None:
        """The producer's callback for a delivered record: its series' last acknowledged day
        moves on, and waiters wake."""
        with self._changed:
            entry = self._pending.pop(ticket, None)
            if entry is not None:
                day, series = entry
                self._acknowledged += 1
                self._last_acked[series] = max(day, self._last_acked.get(series, -1))
                self._changed.notify_all()

    def failed(self, ticket: Ticket, error: BaseException) -> None:
        """The producer's callback for a lost record: kept to say where to resume, and the first
        error (unless closing) kept to raise."""
        with self._changed:
            entry = self._pending.pop(ticket, None)
            if entry is not None:
                self._lost.append(entry)
                if self._error is None and not self._closing:
                    self._error = error
                self._changed.notify_all()

    # --- the summary --------------------------------------------------------------------------

    def apply(self) -> Delivery:
        """The account so far; records still unsettled count as lost."""
        with self._changed:
            lost = self._lost + list(self._pending.values())
            first_lost: dict[str, int] = {}
            for day, series in lost:
                first_lost[series] = min(day, first_lost.get(series, day))
            frontier = min(first_lost.values(), default=len(self._days))
            gaps = {
                series: self._days[day]
                for series, day in first_lost.items()
                if self._last_acked.get(series, -1) > day
            }
            return Delivery(
                planned=self.planned,
                sent=self._sent,
                acknowledged=self._acknowledged,
                lost=len(lost),
                last_acknowledged=self._days[frontier - 1] if frontier > 0 else None,
                error=self._error,
                gaps=gaps,
            )


def failure_line(delivery: Delivery, bootstrap: str, timeout_s: float, grace_s: float) -> str:
    """The one line that tells why a replay did not deliver everything, how far it got and
    how to go on."""
    where = f"{delivery.where()}; {delivery.advice()}"
    error = delivery.error
    if error is not None and delivery.refused:
        return f"Kafka at {bootstrap} refused records: {error}; {where} once that is mended"
    if error is not None:
        return f"cannot deliver to Kafka at {bootstrap} for {timeout_s:g} s: {error}; {where}"
    return (
        f"stopped with {delivery.lost:,} records in flight that Kafka at {bootstrap} did not "
        f"acknowledge within {grace_s:g} s; {where}"
    )
