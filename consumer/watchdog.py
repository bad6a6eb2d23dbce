"""The progress watchdog: no assigned partition stalls silently, even with the loop stuck.

The loop's own thread cannot be trusted to notice that it has stopped: it may be stuck inside
the Kafka client. So the watchdog runs on a thread of its own with a client of its own (never
the loop's consumer, which is not thread-safe): every few seconds it asks the brokers for the
end of each assigned partition (read_committed: the last stable offset) and, for a partition
the loop has said nothing of yet, the group's committed offset. The loop feeds it as a sensor
(`consumer.sensors`): assignments, commits, where it read to. `consumer.stalls` decides.

A stalled partition is told in one WARNING line (topic, partition, records waiting, for how
long, what the loop is doing), shown on `/readyz` as a problem (`stalled=...`, 503) and in the
metrics (`consumer.lag`) until it progresses again. Past the stall limit the watchdog hands one
line to `on_limit`, which stops the service with `EXIT_STALLED` so that a supervisor restarts it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Protocol

from consumer.health import Health
from consumer.sensors import Sensor
from consumer.stalls import Change, Stalls
from sunspots.kafka import clients
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.types import KafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

PROBLEM = "stalled"  # the key of the stall on /readyz


def records(count: int) -> str:
    return f"{count} record" if count == 1 else f"{count} records"


class Probe(Protocol):
    """What the watchdog asks the brokers; raises on a failure (the brokers away)."""

    def ends(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...

    def close(self) -> None: ...


class KafkaProbe:
    """The watchdog's own client: a reader that names the group only to read its committed
    offsets (it never joins it), made at the first probe that can make it."""

    def __init__(self, kafka: KafkaSettings, group_id: str, timeout_ms: int = 5_000) -> None:
        self.kafka = kafka
        self.group_id = group_id
        self.timeout_ms = timeout_ms
        self._reader: KafkaConsumer | None = None

    def _open_reader(self) -> KafkaConsumer:
        """The probe's own reader, made at its first use (not kafka-python's private client)."""
        if self._reader is None:
            self._reader = clients.make_reader(self.kafka, group_id=self.group_id)
        return self._reader

    def ends(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return dict(self._open_reader().end_offsets(partitions, timeout_ms=self.timeout_ms))

    def committed(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offset of each partition; the partition's first offset where
        the group has none (where the loop starts: auto_offset_reset is earliest)."""
        reader = self._open_reader()
        # One request per partition; the first that fails ends the round (the caller asks
        # again at its next probe), so a broker gone costs one timeout, not one per partition.
        found = {tp: reader.committed(tp, timeout_ms=self.timeout_ms) for tp in partitions}
        missing = [tp for tp, offset in found.items() if offset is None]
        first = reader.beginning_offsets(missing, timeout_ms=self.timeout_ms) if missing else {}
        return {tp: offset if offset is not None else first[tp] for tp, offset in found.items()}

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close(timeout_ms=self.timeout_ms)


@dataclass(frozen=True)
class PartitionState:
    """One assigned partition as the metrics show it."""

    tp: TopicPartition
    lag: int | None
    stalled: bool


class Watchdog(Sensor):
    """Watches the assigned partitions' progress from a thread of its own (see the module)."""

    def __init__(
        self,
        stalls: Stalls,
        probe: Probe,
        health: Health,
        on_limit: Callable[[str], None],
        interval_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stalls = stalls
        self.probe = probe
        self.health = health
        self.on_limit = on_limit
        self.interval_s = interval_s
        self.clock = clock
        self.activity = "starting"
        self.stalls_total = 0  # stalls reported since start
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False  # the last probe failed (told once per outage)
        self._limited = False  # a partition passed the stall limit: the service is stopping

    # --- the loop's events (its thread) ---------------------------------------------------------

    def on_assigned(self, partitions: Collection[TopicPartition]) -> None:
        with self._lock:
            self.stalls.assign(partitions)

    def on_revoked(self, partitions: Collection[TopicPartition]) -> None:
        with self._lock:
            self.stalls.revoke(partitions)
            self._show()

    def on_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self.stalls.commit(offsets)

    def on_read(self, positions: Mapping[TopicPartition, int]) -> None:
        with self._lock:
            self.stalls.read(positions)

    def on_rewind(self, cause: str) -> None:
        with self._lock:
            self.stalls.rewind()

    def on_activity(self, activity: str) -> None:
        self.activity = activity

    # --- the watchdog's thread ----------------------------------------------------------------

    def start(self) -> Watchdog:
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop the watchdog's thread, waiting for it two seconds at most."""
        self._closed.set()
        if self._thread is not None:
            # A probe in flight may wait for the brokers a few seconds more; the thread is a
            # daemon, so a stop is not held up by it.
            self._thread.join(timeout=2)

    def _run(self) -> None:
        failed = False
        try:
            while not self._closed.wait(self.interval_s):
                try:
                    self.check()
                except Exception:  # a fault of the watchdog's own: told once, never its end
                    if not failed:
                        log.exception("the watchdog's check failed; it goes on checking")
                    failed = True
        finally:
            self.probe.close()

    def check(self) -> None:
        """One probe of the brokers and what follows from it."""
        with self._lock:
            partitions = list(self.stalls.watches)
            unknown = self.stalls.unknown()
        if not partitions:
            return
        committed = self._group_offsets(unknown)
        try:
            ends = self.probe.ends(partitions)
        except Exception as exc:  # the brokers away: the clock stands still meanwhile
            if not self._failing:
                log.info("the watchdog cannot ask the brokers for end offsets (%s)", exc)
            self._failing = True
            with self._lock:
                self.stalls.blind()
            return
        if self._failing:
            log.info("the watchdog reaches the brokers again")
        self._failing = False
        with self._lock:
            self.stalls.baseline(committed)
            changes = self.stalls.probed(self.clock(), ends)
            self._show()
        for change in changes:
            self._tell(change)

    def _group_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The group's committed offsets of partitions the loop has said nothing of; none this
        time when the brokers do not give them (a transaction of the group still open: the
        next probe asks again)."""
        if not partitions:
            return {}
        try:
            return self.probe.committed(partitions)
        except Exception as exc:
            log.debug("the group's committed offsets are not known yet: %s", exc)
            return {}

    def _tell(self, change: Change) -> None:
        topic, partition = change.tp.topic, change.tp.partition
        where = {"partition": partition, "topic": topic}
        if change.kind == "stalled":
            self.stalls_total += 1
            log.warning(
                "partition %d of %s: no progress for %.0f s with %s waiting (the loop is %s)",
                partition,
                topic,
                change.stalled_s,
                records(change.lag),
                self.activity,
                extra=where,
            )
        elif change.kind == "resumed":
            log.info("partition %d of %s progresses again", partition, topic, extra=where)
        elif not self._limited:  # the service stops once, for the first partition past it
            self._limited = True
            self.on_limit(
                f"partition {partition} of {topic}: no progress for {change.stalled_s:.0f} s "
                f"with {records(change.lag)} waiting while the loop was {self.activity}; "
                f"stopping past the stall limit ({self.stalls.limit_s:g} s) so that a restart "
                "starts the loop afresh"
            )

    def _show(self) -> None:
        """The stalled partitions on /readyz (the lock held)."""
        stalled = [
            f"partition {tp.partition} of {tp.topic} ({records(w.lag or 0)} waiting, "
            f"{w.stalled_s:.0f} s without progress)"
            for tp, w in sorted(self.stalls.watches.items())
            if w.reported
        ]
        self.health.problem(PROBLEM, "; ".join(stalled) if stalled else None)

    def snapshot(self) -> list[PartitionState]:
        """The assigned partitions' lag and stall, for a scrape (any thread)."""
        with self._lock:
            return [
                PartitionState(tp, w.lag, w.reported)
                for tp, w in sorted(self.stalls.watches.items())
            ]
