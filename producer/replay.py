"""Replay SILSO daily observations onto Kafka, in date order, at a chosen speed.

One record per day per series, key = series id. Missing days are sent with
`sunspot_number: null` so the consumer sees the gap. Sends are asynchronous through an
idempotent producer with acks=all; every record's acknowledgement is accounted for
(`producer.delivery`), so the replay ends saying how far Kafka took it. While it runs, it shows
how far it is (`producer.progress`).

Under faults the replay stays bounded:
- a record Kafka has not acknowledged within the delivery timeout fails (kafka-python retries
  until then), and the first failure stops the replay: nothing more is sent, the records in
  flight get a few seconds' grace, then the producer is closed without waiting for the rest;
- at most `MAX_UNACKNOWLEDGED` records are in flight, so a replay whose brokers are gone
  neither fills memory nor blocks in `send()`, and SIGTERM/SIGINT stop it within the grace;
- `--resume` first reads where each series ends on the topic (`producer.resume`) and sends only
  the days after it.
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from itertools import islice

import pandas as pd

from producer.delivery import Delivery, DeliveryLedger, Ticket
from producer.progress import ProgressDisplay, ReplayProgress
from producer.resume import last_dates
from sunspots.domain.data import load_daily, select_range
from sunspots.kafka import compat as kafka_compat
from sunspots.kafka.clients import make_sender
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.settings import DEFAULT_SERIES, KafkaSettings
from sunspots.kafka.types import KafkaProducer
from sunspots.process.deadline import Deadline
from sunspots.wire.schemas import Observation

log = logging.getLogger(__name__)

LINGER_MS = 10
MAX_REQUEST_TIMEOUT_MS = 30_000  # kafka-python's default request timeout
MAX_UNACKNOWLEDGED = 20_000  # records in flight; a few MB, drained in well under a second
SHUTDOWN_GRACE_S = 5.0  # for the records in flight once the replay stops
DEFAULT_DELIVERY_TIMEOUT_S = 120.0  # Kafka's own default delivery.timeout.ms
MIN_DELIVERY_TIMEOUT_S = 5.0


class EmptyRange(ValueError):
    """The data file has no day in the replay's date range."""


@dataclass(frozen=True)
class ReplayConfig:
    """What one replay sends and how: the series, the date range, the pace, the delivery timeout
    and whether to resume after the topic's last dates."""

    data: str
    start: str | None = None
    end: str | None = None
    speed: float = 0.0  # simulated days per wall-clock second; 0 = as fast as possible
    series: str = DEFAULT_SERIES
    series_count: int = 1
    series_shift_days: int = 27
    progress_every_s: float = 5.0
    delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S
    resume: bool = False


@dataclass
class ReplayResult:
    """How a replay ended, for its one summary line and its exit code."""

    delivery: Delivery
    seconds: float = 0.0
    interrupted: bool = False  # stopped by SIGTERM/SIGINT
    last_date: str | None = None  # the last date sent
    resumed: dict[str, date] = field(default_factory=dict)  # series -> last date found

    @property
    def ok(self) -> bool:
        return self.delivery.complete


def _value(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def series_ids(config: ReplayConfig) -> list[str]:
    if config.series_count == 1:
        return [config.series]
    return [f"{config.series}-{i}" for i in range(config.series_count)]


def observations(
    frame: pd.DataFrame, config: ReplayConfig, after: Mapping[str, date] | None = None
) -> Iterator[list[Observation]]:
    """Day by day, one observation per series. Series i carries the data i × shift days late,
    so several series share the real calendar but not their values. A series in `after`
    starts on the day after its date there."""
    after = after or {}
    ids = series_ids(config)
    dates = frame["date"].dt.date.tolist()
    cols = [frame[c].tolist() for c in ("sunspot_number", "std_dev", "observations", "provisional")]
    for row, day in enumerate(dates):
        today = []
        for i, series in enumerate(ids):
            src = row - i * config.series_shift_days
            if src < 0 or (series in after and day <= after[series]):
                continue
            value, std, count, provisional = (c[src] for c in cols)
            today.append(
                Observation(series, day, _value(value), _value(std), int(count), bool(provisional))
            )
        yield today


@dataclass(frozen=True)
class ReplayPlan:
    """The rows of the date range left to send, and how many records that is."""

    first_row: int
    days: int
    records: int


def plan(dates: list[date], config: ReplayConfig, after: Mapping[str, date]) -> ReplayPlan:
    """What a replay of `dates` sends when each series in `after` resumes after its date."""
    first_row, records = len(dates), 0
    for i, series in enumerate(series_ids(config)):
        begin = i * config.series_shift_days
        if series in after:
            begin = max(begin, bisect.bisect_right(dates, after[series]))
        if begin < len(dates):
            first_row = min(first_row, begin)
            records += len(dates) - begin
    return ReplayPlan(first_row, len(dates) - first_row, records)


def replay_producer(
    kafka: KafkaSettings,
    delivery_timeout_s: float = DEFAULT_DELIVERY_TIMEOUT_S,
    paced: bool = False,
) -> KafkaProducer:
    """The replay's producer: idempotent, acknowledged by all in-sync replicas, large batches
    filled for `LINGER_MS`, in the codec of `kafka.compression_type` (bench.codecs measures
    each codec with it). A paced replay (`--speed`) sends each record at once: a day holds one
    record per series, so a linger would only add itself to every observation's latency
    (records sent while a request is in flight still share the next batch)."""
    delivery_ms = int(delivery_timeout_s * 1000)
    linger_ms = 0 if paced else LINGER_MS
    return make_sender(
        kafka,
        acks="all",
        enable_idempotence=True,
        linger_ms=linger_ms,
        batch_size=256 * 1024,
        # A record not acknowledged this long after it was sent fails; kafka-python needs the
        # delivery timeout to cover one request and the linger.
        delivery_timeout_ms=delivery_ms,
        request_timeout_ms=min(MAX_REQUEST_TIMEOUT_MS, delivery_ms - linger_ms),
        # send() waits this long at most for metadata (a new topic, a lost leader).
        max_block_ms=delivery_ms,
    )


class Replayer:
    """The replay of the SILSO series onto the observations topic: it sends each day's records
    (paced or at full speed), keeps account of every delivery, and stops cleanly at a signal
    or at the first failed delivery, so that a run ends in one line that says what was sent
    and what to do next."""

    def __init__(self, kafka: KafkaSettings, config: ReplayConfig, stop: threading.Event) -> None:
        self.kafka = kafka
        self.config = config
        self.stop = stop
        self.failure = threading.Event()  # set by the first delivery failure
        self.ledger = DeliveryLedger(0)
        self.last_date: str | None = None

    def run(self) -> ReplayResult:
        """Replay the configured days; the result counts what was sent, acknowledged and lost."""
        c = self.config
        frame = select_range(load_daily(c.data), c.start, c.end)
        if frame.empty:
            raise EmptyRange(
                f"no day of {c.data} lies between {c.start or 'its start'} and {c.end or 'its end'}"
            )
        after = self._resume_points() if c.resume else {}
        todo = plan(frame["date"].dt.date.tolist(), c, after)
        self.ledger = DeliveryLedger(todo.records)
        log.info(
            "replaying %d days × %d series (%d records) onto %s (speed %s days/s)",
            todo.days,
            c.series_count,
            todo.records,
            self.kafka.topics.observations,
            c.speed or "max",
        )
        producer = self._producer()
        started = time.monotonic()
        display = ProgressDisplay(ReplayProgress(todo.days, c.speed), c.progress_every_s)
        days = islice(observations(frame, c, after), todo.first_row, None)
        try:
            self._send_all(producer, days, started, display)
        finally:
            display.close()
            self._close(producer)
        return ReplayResult(
            self.ledger.apply(),
            time.monotonic() - started,
            self.stop.is_set(),
            self.last_date,
            after,
        )

    def _resume_points(self) -> dict[str, date]:
        ids = series_ids(self.config)
        after = last_dates(self.kafka, ids)
        topic = self.kafka.topics.observations
        if not after:
            log.info(
                "resume: no series of this replay is on %s yet, replaying from the start", topic
            )
        else:
            shown = ", ".join(f"{s} {after[s]}" for s in sorted(after)[:4])
            more = f" and {len(after) - 4} more" if len(after) > 4 else ""
            absent = len(ids) - len(after)
            log.info(
                "resume: continuing after the last date of each series on %s: %s%s%s",
                topic,
                shown,
                more,
                f"; {absent} series not on it yet, from the start" if absent else "",
            )
        return after

    def _producer(self) -> KafkaProducer:
        paced = self.config.speed > 0
        return replay_producer(self.kafka, self.config.delivery_timeout_s, paced)

    def _send_all(
        self,
        producer: KafkaProducer,
        days: Iterator[list[Observation]],
        started: float,
        display: ProgressDisplay,
    ) -> None:
        topic = self.kafka.topics.observations
        for day_index, today in enumerate(days):
            self._pace(started, day_index)
            if not self._room():
                return
            if today:
                day = self.ledger.day(today[0].date)
                for obs in today:
                    ticket = self.ledger.sending(day, obs.series)
                    if not self._send(producer, topic, obs, ticket):
                        return
                self.last_date = today[0].date.isoformat()
            display.update(day_index + 1, self.ledger.sent)

    def _send(self, producer: KafkaProducer, topic: str, obs: Observation, ticket: Ticket) -> bool:
        try:
            future = producer.send(topic, key=obs.series.encode(), value=obs.encode())
        except KafkaError as exc:  # no metadata or no buffer within max_block_ms
            self._failed(ticket, exc)
            return False
        future.add_callback(self.ledger.acknowledged, ticket).add_errback(self._failed, ticket)
        return True

    def _failed(self, ticket: Ticket, exc: BaseException) -> None:
        self.ledger.failed(ticket, exc)
        self.failure.set()

    def _halted(self) -> bool:
        return self.stop.is_set() or self.failure.is_set()

    def _room(self) -> bool:
        """Wait until fewer than MAX_UNACKNOWLEDGED records are in flight; False if the replay
        is to stop meanwhile."""
        while not self._halted():
            if self.ledger.wait_below(MAX_UNACKNOWLEDGED, 0.2):
                return not self._halted()
        return False

    def _pace(self, started: float, day_index: int) -> None:
        if self.config.speed > 0:
            until = started + day_index / self.config.speed
            while not self._halted() and (ahead := until - time.monotonic()) > 0:
                self.stop.wait(min(ahead, 0.2))

    def _close(self, producer: KafkaProducer) -> None:
        """Wait for the records in flight (until they are acknowledged or fail, or for the
        grace once the replay was told to stop), then close the producer without waiting for
        what is left."""
        if self._halted():
            log.info("stopping: waiting up to %g s for the records in flight", SHUTDOWN_GRACE_S)
        limit = Deadline(self.config.delivery_timeout_s + SHUTDOWN_GRACE_S)
        while self.ledger.unsettled and not limit.expired():
            if self._halted():
                limit = limit.sooner(SHUTDOWN_GRACE_S)
            self.ledger.wait_below(1, min(0.2, limit.remaining()))
        self.ledger.closing()
        if self.ledger.unsettled:
            kafka_compat.close_now(producer, SHUTDOWN_GRACE_S)
        else:
            producer.close()
