"""The consumer loop's events, for whatever watches it: one seam, as faust's sensors are.

The runner tells its sensors what happens to the loop: partitions assigned and revoked, state
restored, offsets committed with the batch's latency, each step of publishing a batch, a
publish taken back, a fencing, partitions read to their end, a rewind, and what the loop is
busy with. A sensor overrides the events it cares for; the rest do nothing. The watchdog
(`consumer.watchdog`: lag, stalls) is one; the loop's metrics (`consumer.loop_metrics`: rewinds
by cause, restore and commit durations, readiness) are another.

Events are called on the loop's thread, inside `KafkaConsumer.poll` for the rebalance ones
(and the restores they cause); a sensor that another thread reads keeps its own lock, and none
may block or raise.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from sunspots.kafka.types import TopicPartition

# Why the loop rewound (`Sensor.on_rewind`): a publish failed and was taken back, or the state
# of newly assigned partitions could not be restored.
FAILED_PUBLISH, FAILED_RESTORE = "failed_publish", "failed_restore"
REWIND_CAUSES = (FAILED_PUBLISH, FAILED_RESTORE)

# The steps of publishing a batch (`Sensor.on_transaction`). Exactly once: `send` (begin the
# transaction, hand every output to the producer), `offsets` (send_offsets_to_transaction),
# `commit` (commit_transaction: the outputs flushed, the transaction ended), `abort` (a failed
# publish taken back: the transaction aborted, or the producer replaced). At least once:
# `send` (every output sent and acknowledged), `commit` (the offsets committed).
SEND, OFFSETS, COMMIT, ABORT = "send", "offsets", "commit", "abort"
PUBLISH_STEPS = (SEND, OFFSETS, COMMIT, ABORT)


class Sensor:
    """One observer of the loop; every event does nothing unless overridden."""

    def on_assigned(self, partitions: Collection[TopicPartition]) -> None:
        """Partitions given to this instance (their state restored, or being restored)."""

    def on_revoked(self, partitions: Collection[TopicPartition]) -> None:
        """Partitions taken away: this instance no longer reads or commits them."""

    def on_restored(self, partitions: Collection[int], records: int, seconds: float) -> None:
        """The state of `partitions` was rebuilt from `records` changelog records in `seconds`
        (after an assignment, or in a rewind)."""

    def on_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets committed (exactly once: with the batch's transaction), each the next
        offset to read."""

    def on_batch(self, records: int, seconds: float) -> None:
        """A batch of `records` was committed `seconds` after the poll that returned it."""

    def on_transaction(self, step: str, seconds: float) -> None:
        """A step of publishing a batch (one of `PUBLISH_STEPS`) took `seconds`."""

    def on_abort(self) -> None:
        """A batch's publish failed and what it sent was taken back (exactly once: its
        transaction aborted); a rewind follows."""

    def on_fenced(self) -> None:
        """Another process took over this instance's id: the service stops (exit code 3)."""

    def on_read(self, positions: Mapping[TopicPartition, int]) -> None:
        """Partitions where a poll found nothing more to read, at these positions: every
        offset before one is processed and committed, or holds no record (a transaction's
        marker, an aborted record), since the loop commits each batch before its next poll."""

    def on_rewind(self, cause: str) -> None:
        """The partitions were sought back to their committed offsets, for `cause` (one of
        `REWIND_CAUSES`): what `on_read` said of their positions is void."""

    def on_activity(self, activity: str) -> None:
        """What the loop is busy with now ("polling", "committing a batch of 30000 records",
        ...)."""


class Sensors(Sensor):
    """The sensors of one loop, called in turn; it also keeps the loop's current activity,
    which the watchdog's and the shutdown's lines name."""

    def __init__(self, sensors: Iterable[Sensor] = ()) -> None:
        self.sensors: list[Sensor] = list(sensors)
        self.activity = "starting"

    def add(self, sensor: Sensor) -> None:
        self.sensors.append(sensor)

    def on_assigned(self, partitions: Collection[TopicPartition]) -> None:
        for sensor in self.sensors:
            sensor.on_assigned(partitions)

    def on_revoked(self, partitions: Collection[TopicPartition]) -> None:
        for sensor in self.sensors:
            sensor.on_revoked(partitions)

    def on_restored(self, partitions: Collection[int], records: int, seconds: float) -> None:
        for sensor in self.sensors:
            sensor.on_restored(partitions, records, seconds)

    def on_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        for sensor in self.sensors:
            sensor.on_commit(offsets)

    def on_batch(self, records: int, seconds: float) -> None:
        for sensor in self.sensors:
            sensor.on_batch(records, seconds)

    def on_transaction(self, step: str, seconds: float) -> None:
        for sensor in self.sensors:
            sensor.on_transaction(step, seconds)

    def on_abort(self) -> None:
        for sensor in self.sensors:
            sensor.on_abort()

    def on_fenced(self) -> None:
        for sensor in self.sensors:
            sensor.on_fenced()

    def on_read(self, positions: Mapping[TopicPartition, int]) -> None:
        for sensor in self.sensors:
            sensor.on_read(positions)

    def on_rewind(self, cause: str) -> None:
        for sensor in self.sensors:
            sensor.on_rewind(cause)

    def on_activity(self, activity: str) -> None:
        self.activity = activity
        for sensor in self.sensors:
            sensor.on_activity(activity)
