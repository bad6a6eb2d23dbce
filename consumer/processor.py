"""The seam between the Kafka loop and the services' logic: records in, outputs out.

A `Processor` never publishes and never sees a Kafka client: it turns a batch of consumed
`Record`s into `Output`s (results, dead letters) and keeps its state per source partition, so
it runs in unit tests without a broker. A transaction may hold several batches (the slices of
one poll, consumer.runner); at its end `changelog()` gives the records of the state the
transaction changed, each series once.

A processor's `process` is atomic: it returns the batch's outputs with its state and metrics
updated, or it raises with both as they were before the call. `DeadLetters` is the shared way
a processor rejects a record: the rejection is returned as an output at once, but counted and
logged only when the processor commits its batch, so a batch that fails and is processed again
counts nothing twice. `consumer.containment` builds on both so that no record stops the line.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from prometheus_client import Counter

from consumer.output import Output, Record, dead_letter
from sunspots.process.logs import LOG_LIMIT
from sunspots.wire.schemas import SchemaError

log = logging.getLogger(__name__)
T = TypeVar("T")

INTERNAL_ERROR = "internal_error"
INTERNAL_ERRORS_A_MINUTE = 10  # logged with their tracebacks; the rest are counted
# An internal error's detail: the exception's type and message, cut to this many characters.
DETAIL_CHARS = 300


class Processor(Protocol):
    """What the runner asks of a processor: a batch of records in, the outputs to publish out."""

    def process(self, records: list[Record]) -> list[Output]: ...

    def changelog(self) -> list[Output]: ...

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None: ...

    def revoke(self, partitions: set[int]) -> None: ...


class AtomicProcessor(Processor, Protocol):
    """A processor whose `process` changes nothing when it raises, and that can reject, on its
    own, a record whose processing raised (`isolate`: its dead letter, counted and logged)."""

    def isolate(self, record: Record, exc: Exception) -> Output: ...


def describe(exc: BaseException) -> str:
    """`Type: message` of an exception, bounded, for a dead letter's detail and the log."""
    try:
        message = str(exc)
    except Exception:  # an exception whose message itself fails
        message = "(no message)"
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class _Rejection:
    reason: str
    detail: str
    where: str  # topic/partition/offset
    partition: int
    series: str | None
    exc: BaseException | None = None


class DeadLetters:
    """Rejects records onto the dead-letter topic; counts and logs them when a batch commits."""

    def __init__(self, topic: str, counter: Counter) -> None:
        self.topic = topic
        self.counter = counter
        self.pending: list[_Rejection] = []

    def reject(
        self, record: Record, reason: str, detail: str, exc: BaseException | None = None
    ) -> Output:
        """The dead-letter output for `record`, with the rejection held until the batch commits
        (or is discarded)."""
        where = f"{record.topic}/{record.partition}/{record.offset}"
        series = (record.key or b"").decode(errors="replace") or None
        self.pending.append(_Rejection(reason, detail, where, record.partition, series, exc))
        return dead_letter(self.topic, record, reason, detail)

    def fail(self, record: Record, exc: BaseException) -> Output:
        """The dead letter of a record whose processing raised what no schema foresaw."""
        return self.reject(record, INTERNAL_ERROR, describe(exc), exc)

    def isolate(self, record: Record, exc: BaseException) -> Output:
        """`fail`, counted and logged at once: the record is rejected outside any batch."""
        out = self.fail(record, exc)
        self.commit()
        return out

    def decode(
        self, record: Record, decoder: Callable[[Record], T], into: list[Output]
    ) -> T | None:
        """`decoder(record)`, or None with the record's dead letter appended to `into`."""
        try:
            return decoder(record)
        except SchemaError as exc:
            into.append(self.reject(record, exc.reason, exc.detail))
        except Exception as exc:  # a decoder bug must cost this record only
            into.append(self.fail(record, exc))
        return None

    def commit(self) -> None:
        """Count and log the rejections of a batch whose outputs are going out."""
        if not self.pending:
            return
        for reason, count in collections.Counter(r.reason for r in self.pending).items():
            self.counter.labels(reason).inc(count)
        for r in self.pending:
            extra = {"reason": r.reason, "partition": r.partition, "series": r.series}
            # Held back past the first of each reason a minute (ten of the unexpected failures,
            # each with its traceback) by sunspots.process.logs.LogLimiter: every one is on the
            # dead-letter topic and in the counter.
            if r.reason != INTERNAL_ERROR:
                log.warning("dead letter %s at %s: %s", r.reason, r.where, r.detail, extra=extra)
            else:
                log.warning(
                    "record at %s failed (%s); dead-lettered",
                    r.where,
                    r.detail,
                    exc_info=r.exc,
                    extra={**extra, LOG_LIMIT: INTERNAL_ERRORS_A_MINUTE},
                )
        self.pending.clear()

    def discard(self) -> None:
        """Forget the rejections of a batch that failed: it will be processed again."""
        self.pending.clear()
