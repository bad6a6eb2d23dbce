"""Keeping a processor's state in step with the partitions it owns and the offsets committed.

On assignment the processor's state is rebuilt from the changelog; on revocation it is
forgotten. After a failed publish, `rewind` seeks every owned partition back to its committed
offset and rebuilds the state again, so the batch is processed afresh from exactly the state
the committed offsets belong to.

If a restore fails (changelog unreadable), kafka-python would log the callback's error and
carry on with the partitions assigned, and the loop would forecast from empty windows. Instead
the recovery is marked pending: nothing is processed, `/readyz` answers 503, and the loop
rewinds (and so restores) with backoff until it succeeds.

Each restore that succeeds is told to the loop's sensor (`Sensor.on_restored`): the partitions,
the changelog records read and the time it took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from consumer.changelog import Changelog
from consumer.health import Health
from consumer.processor import Processor
from consumer.sensors import Sensor

log = logging.getLogger(__name__)

ReadChangelog = Callable[[list[int]], Iterable[tuple[int, Changelog]]]


class Recovery(ConsumerRebalanceListener):
    def __init__(
        self,
        processor: Processor,
        read_changelog: ReadChangelog | None,
        health: Health,
        sensor: Sensor | None = None,
    ) -> None:
        self.processor = processor
        self.read_changelog = read_changelog
        self.health = health
        self.sensor = sensor if sensor is not None else Sensor()
        self.consumer: KafkaConsumer | None = None
        self.pending = False

    def attach(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer

    def _owned(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    # --- rebalance callbacks (run inside poll) ------------------------------------------------

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Every batch is committed before the next poll, so there is nothing in flight here.
        if revoked:
            partitions = sorted(tp.partition for tp in revoked)
            log.info("partitions revoked: %s", partitions, extra={"partitions": partitions})
            self.processor.revoke({tp.partition for tp in revoked})
        self.health.assigned = bool(self._owned() - set(revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            partitions = sorted(tp.partition for tp in assigned)
            started = time.monotonic()
            try:
                self.restore(partitions)
            except Exception as exc:  # whatever it was, never run on without the state
                log.warning(
                    "restoring the state of partitions %s failed: %s",
                    partitions,
                    exc,
                    extra={"partitions": partitions},
                )
                self.pending = True
            else:
                log.info(
                    "partitions assigned: %s (state restored in %.2f s)",
                    partitions,
                    time.monotonic() - started,
                    extra={"partitions": partitions},
                )
        self.health.assigned = bool(self._owned()) and not self.pending

    # --- state ----------------------------------------------------------------------------

    def restore(self, partitions: list[int]) -> None:
        if self.read_changelog is None:
            return
        started, records = time.monotonic(), 0
        for partition, changelog in self.read_changelog(partitions):
            self.processor.restore(partition, changelog)
            records += len(changelog)
        if partitions:
            self.sensor.on_restored(partitions, records, time.monotonic() - started)

    def rewind(self) -> None:
        """Seek every owned partition to its committed offset and rebuild its state."""
        assert self.consumer is not None
        owned = self._owned()
        for tp in owned:
            committed = self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
        partitions = {tp.partition for tp in owned}
        self.processor.revoke(partitions)
        self.restore(sorted(partitions))
        self.pending = False
        self.health.assigned = bool(owned)
        log.info(
            "rewound %d partitions to their committed offsets",
            len(owned),
            extra={"partitions": sorted(partitions)},
        )
