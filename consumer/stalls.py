"""Which assigned partitions have stalled: records waiting and no progress, judged over time.

Per assigned partition the loop says (through its sensor events) what it committed and where a
poll found nothing more to read; the greater of the two is what it has *consumed*. The watchdog
probes the brokers every few seconds for each partition's end (the last stable offset, which a
read_committed reader reads up to). The lag is the end minus the consumed offset: records
waiting. Progress is the consumed offset moving forward.

A partition with lag and no progress builds up stalled time, counted only across probes that
succeeded and lie at most `max_gap_s` apart: while the brokers do not answer the probe (an
outage, which the loop waits out and `/readyz` already shows as `connected=False`) or while the
process was frozen, the clock stands still, so neither ends the service. Past `timeout_s` the
stall is reported (once, until the partition progresses or catches up); past `limit_s` (0:
never) the service is to stop. Everything here is pure: the caller gives the time.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from sunspots.kafka.types import TopicPartition

ChangeKind = Literal["stalled", "resumed", "limit"]


@dataclass(frozen=True)
class Change:
    """A partition's stall began (`stalled`), ended (`resumed`) or passed the limit."""

    kind: ChangeKind
    tp: TopicPartition
    lag: int
    stalled_s: float


@dataclass
class Watch:
    """What is known of one assigned partition."""

    committed: int | None = None  # the loop's last commit, or the group's at assignment
    read: int | None = None  # where a poll of the loop last found nothing more to read
    end: int | None = None  # the last stable offset at the last probe
    seen: int | None = None  # the consumed offset at the last probe
    stalled_s: float = 0.0
    reported: bool = False
    limited: bool = False

    @property
    def consumed(self) -> int | None:
        known = [offset for offset in (self.committed, self.read) if offset is not None]
        return max(known) if known else None

    @property
    def lag(self) -> int | None:
        """Records waiting, once both ends are known."""
        consumed = self.consumed
        if self.end is None or consumed is None:
            return None
        return max(self.end - consumed, 0)


class Stalls:
    """The watches of the assigned partitions and the decisions on them."""

    def __init__(self, timeout_s: float, limit_s: float, max_gap_s: float) -> None:
        self.timeout_s = timeout_s
        self.limit_s = limit_s
        self.max_gap_s = max_gap_s
        self.watches: dict[TopicPartition, Watch] = {}
        self._last_probe: float | None = None

    # --- what the loop says -------------------------------------------------------------------

    def assign(self, partitions: Collection[TopicPartition]) -> None:
        for tp in partitions:
            self.watches.setdefault(tp, Watch())

    def revoke(self, partitions: Collection[TopicPartition]) -> None:
        for tp in partitions:
            self.watches.pop(tp, None)

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp in self.watches:
                self.watches[tp].committed = offset

    def read(self, positions: Mapping[TopicPartition, int]) -> None:
        for tp, offset in positions.items():
            if tp in self.watches:
                self.watches[tp].read = offset

    def rewind(self) -> None:
        for watch in self.watches.values():
            watch.read = None

    # --- what the brokers say -----------------------------------------------------------------

    def unknown(self) -> list[TopicPartition]:
        """Partitions whose committed offset the loop has not told yet (just assigned)."""
        return [tp for tp, watch in self.watches.items() if watch.consumed is None]

    def baseline(self, offsets: Mapping[TopicPartition, int]) -> None:
        """The group's committed offsets, for partitions the loop has told nothing of."""
        for tp, offset in offsets.items():
            watch = self.watches.get(tp)
            if watch is not None and watch.committed is None:
                watch.committed = offset

    def blind(self) -> None:
        """A probe failed: the time until the next one that succeeds does not count."""
        self._last_probe = None

    def probed(self, now: float, ends: Mapping[TopicPartition, int]) -> list[Change]:
        """A probe at `now` found these ends; the changes it makes."""
        gap = 0.0
        if self._last_probe is not None:
            gap = min(max(now - self._last_probe, 0.0), self.max_gap_s)
        self._last_probe = now
        changes: list[Change] = []
        # In partition order, so that what is told first (the limit names one partition) does
        # not depend on the order partitions were assigned in.
        for tp, watch in sorted(self.watches.items()):
            if tp in ends:
                watch.end = ends[tp]
            changes.extend(self._judge(tp, watch, gap))
        return changes

    def _judge(self, tp: TopicPartition, watch: Watch, gap: float) -> list[Change]:
        consumed, lag = watch.consumed, watch.lag
        if consumed is None or lag is None:
            return []
        progressed = watch.seen is not None and consumed > watch.seen
        watch.seen = consumed
        if lag == 0 or progressed:
            watch.stalled_s, watch.limited = 0.0, False
            if watch.reported:
                watch.reported = False
                return [Change("resumed", tp, lag, 0.0)]
            return []
        watch.stalled_s += gap
        changes = []
        if not watch.reported and watch.stalled_s >= self.timeout_s:
            watch.reported = True
            changes.append(Change("stalled", tp, lag, watch.stalled_s))
        if self.limit_s and not watch.limited and watch.stalled_s >= self.limit_s:
            watch.limited = True
            changes.append(Change("limit", tp, lag, watch.stalled_s))
        return changes
