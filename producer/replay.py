"""Replay SILSO daily observations onto Kafka, in date order, at a chosen speed.

One record per day per series, key = series id. Missing days are sent with
`sunspot_number: null` so the consumer sees the gap. Sends are asynchronous through an
idempotent producer with acks=all; the producer flushes at the end or on SIGINT/SIGTERM and
reports how many records were delivered, so a non-zero exit means something was lost. While
it runs, it shows how far it is (`producer.progress`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from kafka import KafkaProducer

from producer.progress import ProgressDisplay, ReplayProgress
from sunspots.data import load_daily, select_range
from sunspots.schemas import Observation
from sunspots.settings import KafkaSettings

log = logging.getLogger(__name__)


class EmptyRange(ValueError):
    """The data file has no day in the replay's date range."""


@dataclass(frozen=True)
class ReplayConfig:
    data: str
    start: str | None = None
    end: str | None = None
    speed: float = 0.0  # simulated days per wall-clock second; 0 = as fast as possible
    series: str = "silso"
    series_count: int = 1
    series_shift_days: int = 27
    progress_every_s: float = 5.0


@dataclass
class ReplayResult:
    sent: int = 0
    delivered: int = 0
    failed: int = 0
    seconds: float = 0.0
    interrupted: bool = False
    last_date: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.delivered == self.sent


def _value(x: float) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def series_ids(config: ReplayConfig) -> list[str]:
    if config.series_count == 1:
        return [config.series]
    return [f"{config.series}-{i}" for i in range(config.series_count)]


def observations(frame: pd.DataFrame, config: ReplayConfig) -> Iterator[list[Observation]]:
    """Day by day, one observation per series. Series i carries the data i × shift days late,
    so several series share the real calendar but not their values."""
    ids = series_ids(config)
    dates = frame["date"].dt.date.tolist()
    cols = [frame[c].tolist() for c in ("sunspot_number", "std_dev", "observations", "provisional")]
    for row, day in enumerate(dates):
        today = []
        for i, series in enumerate(ids):
            src = row - i * config.series_shift_days
            if src < 0:
                continue
            value, std, count, provisional = (c[src] for c in cols)
            today.append(
                Observation(series, day, _value(value), _value(std), int(count), bool(provisional))
            )
        yield today


class Replayer:
    def __init__(self, kafka: KafkaSettings, config: ReplayConfig, stop: threading.Event) -> None:
        self.kafka = kafka
        self.config = config
        self.stop = stop
        self.result = ReplayResult()
        self._lock = threading.Lock()

    def _delivered(self, _metadata: object) -> None:
        with self._lock:
            self.result.delivered += 1

    def _failed(self, exc: BaseException) -> None:
        with self._lock:
            self.result.failed += 1
            first = self.result.failed == 1
        # Told once, not once per record: the final line gives the count.
        if first:
            log.error("delivery failed: %s (further failures are counted, not logged)", exc)

    def run(self) -> ReplayResult:
        c = self.config
        frame = select_range(load_daily(c.data), c.start, c.end)
        if frame.empty:
            raise EmptyRange(
                f"no day of {c.data} lies between {c.start or 'its start'} and {c.end or 'its end'}"
            )
        log.info(
            "replaying %d days × %d series onto %s (speed %s days/s)",
            len(frame),
            self.config.series_count,
            self.kafka.topics.observations,
            self.config.speed or "max",
        )
        producer = KafkaProducer(
            **self.kafka.client_kwargs(),
            acks="all",
            enable_idempotence=True,
            linger_ms=10,
            batch_size=256 * 1024,
        )
        started = time.monotonic()
        display = ProgressDisplay(
            ReplayProgress(len(frame), self.config.speed), self.config.progress_every_s
        )
        try:
            self._send_all(producer, frame, started, display)
        finally:
            display.close()
            producer.flush()
            producer.close()
            self.result.seconds = time.monotonic() - started
        return self.result

    def _send_all(
        self,
        producer: KafkaProducer,
        frame: pd.DataFrame,
        started: float,
        display: ProgressDisplay,
    ) -> None:
        topic = self.kafka.topics.observations
        for day_index, today in enumerate(observations(frame, self.config)):
            if self.stop.is_set():
                self.result.interrupted = True
                log.info("stopping: flushing what was sent")
                return
            self._pace(started, day_index)
            for obs in today:
                future = producer.send(topic, key=obs.series.encode(), value=obs.encode())
                future.add_callback(self._delivered).add_errback(self._failed)
                self.result.sent += 1
            if today:
                self.result.last_date = today[0].date.isoformat()
            display.update(day_index + 1, self.result.sent)

    def _pace(self, started: float, day_index: int) -> None:
        if self.config.speed > 0:
            ahead = started + day_index / self.config.speed - time.monotonic()
            if ahead > 0:
                self.stop.wait(ahead)
