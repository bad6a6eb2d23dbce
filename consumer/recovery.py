"""Keeping a processor's state in step with the partitions it owns and the offsets committed.

On assignment the processor's state is rebuilt from the changelog; on revocation it is
forgotten. After a failed publish, `rewind` seeks every owned partition back to its committed
offset and rebuilds the state again, so the batch is processed afresh from exactly the state
the committed offsets belong to.

If a restore fails (changelog unreadable), kafka-python would log the callback's error and
carry on with the partitions assigned, and the loop would forecast from empty windows. Instead
the recovery is marked pending: nothing is processed, `/readyz` answers 503 naming the
partitions and the cause, and the loop rewinds (and so restores) with backoff until it
succeeds.

Topic changes (consumer.topic_watch, when the service has one): before each restore the
watch makes sure the changelog has a partition for each partition restored, growing it or
stopping the service (`ServiceStop`, raised from the next rewind: kafka-python swallows what a
rebalance callback raises). A rewind after the source topic was deleted and created again
starts its partitions from their beginning, and one after the changelog lost the states
(deleted or recreated) keeps the states held, as they were at the last commit, instead of
reading back a changelog that no longer has them.

Each restore that succeeds is told to the loop's sensor (`Sensor.on_restored`): the partitions,
the changelog records read and the time it took.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from consumer.changelog import Changelog
from consumer.health import Health
from consumer.processor import Processor
from consumer.sensors import Sensor
from consumer.stops import ServiceStop
from consumer.topic_watch import TopicWatch
from sunspots.kafka.types import ConsumerRebalanceListener, KafkaConsumer, TopicPartition

log = logging.getLogger(__name__)

ReadChangelog = Callable[[list[int]], Iterable[tuple[int, Changelog]]]
RESTORE_PROBLEM = "restore"


class Recovery(ConsumerRebalanceListener):
    """The group member's rebalance listener: it restores the state of the partitions it is given
    from their changelog before any of their records is processed, and drops the state of
    those it loses, so that a partition's state moves with it between instances."""

    def __init__(
        self,
        processor: Processor,
        read_changelog: ReadChangelog | None,
        health: Health,
        watch: TopicWatch | None = None,
        sensor: Sensor | None = None,
    ) -> None:
        self.processor = processor
        self.read_changelog = read_changelog
        self.health = health
        self.watch = watch
        self.sensor = sensor if sensor is not None else Sensor()
        self.consumer: KafkaConsumer | None = None
        self.failed = False
        self.stopping: ServiceStop | None = None

    @property
    def pending(self) -> bool:
        """Whether the loop must rewind before it processes anything: a restore failed, or the
        source topic was deleted and created again under the assignment."""
        return self.failed or (self.watch is not None and self.watch.source_recreated)

    def attach(self, consumer: KafkaConsumer) -> None:
        self.consumer = consumer
        if self.watch is not None:
            self.watch.attach(consumer)

    def _owned(self) -> set[TopicPartition]:
        return set(self.consumer.assignment()) if self.consumer is not None else set()

    # --- rebalance callbacks (run inside poll) ------------------------------------------------

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Every batch is committed before the next poll, so there is nothing in flight here.
        """Forget the state of the partitions taken away (another instance restores it)."""
        if revoked:
            partitions = sorted(tp.partition for tp in revoked)
            log.info("partitions revoked: %s", partitions, extra={"partitions": partitions})
            self.processor.revoke({tp.partition for tp in revoked})
        self.health.assigned = bool(self._owned() - set(revoked))

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Restore the state of the partitions given, before their first record is processed."""
        if assigned:
            partitions = sorted(tp.partition for tp in assigned)
            started = time.monotonic()
            try:
                self.restore(partitions)
            except ServiceStop as exc:  # told by the service once the rewind raises it
                self.stopping, self.failed = exc, True
            except Exception as exc:  # whatever it was, never run on without the state
                self._failed(partitions, exc)
            else:
                log.info(
                    "partitions assigned: %s (state restored in %.2f s)",
                    partitions,
                    time.monotonic() - started,
                    extra={"partitions": partitions},
                )
        self.health.assigned = bool(self._owned()) and not self.failed

    def _failed(self, partitions: list[int], exc: Exception) -> None:
        log.warning(
            "restoring the state of partitions %s failed: %s",
            partitions,
            exc,
            extra={"partitions": partitions},
        )
        self.failed = True
        self.health.problem(
            RESTORE_PROBLEM,
            f"the state of partitions {partitions} is not restored ({exc}); nothing is "
            "processed until it is",
        )

    # --- state ----------------------------------------------------------------------------

    def restore(self, partitions: list[int]) -> None:
        """Read the changelog of `partitions` to its end into the processor, timed for the restore
        sensor."""
        if not partitions:
            return
        if self.watch is not None:
            self.watch.before_restore(partitions)
        if self.read_changelog is None:
            return
        started, records = time.monotonic(), 0
        for partition, changelog in self.read_changelog(partitions):
            self.processor.restore(partition, changelog)
            records += len(changelog)
        self.sensor.on_restored(partitions, records, time.monotonic() - started)

    def rewind(self) -> None:
        """Seek every owned partition to its committed offset and rebuild its state."""
        assert self.consumer is not None
        if self.stopping is not None:
            raise self.stopping
        watch = self.watch
        owned = self._owned()
        from_start = watch is not None and watch.source_recreated
        for tp in owned:
            committed = None if from_start else self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
        partitions = {tp.partition for tp in owned}
        kept = watch is not None and not from_start and watch.changelog_lacks_state()
        if kept:
            assert watch is not None
            watch.undo()  # the changelog lost them: the states held, as at the last commit
        else:
            self.processor.revoke(partitions)
            self.restore(sorted(partitions))
        if watch is not None:
            watch.source_recreated = False
        self.failed = False
        self.health.problem(RESTORE_PROBLEM, None)
        self.health.assigned = bool(owned)
        log.info(
            "rewound %d partitions to %s%s",
            len(owned),
            "their beginning" if from_start else "their committed offsets",
            "; the states held are kept (the changelog lost them)" if kept else "",
            extra={"partitions": sorted(partitions)},
        )
