"""The consumer loop's events, for whatever watches it: one seam, as faust's sensors are.

The runner tells its sensors what happens to the loop: partitions assigned and revoked, offsets
committed, partitions read to their end, a rewind, and what the loop is busy with. A sensor
overrides the events it cares for; the rest do nothing. The watchdog (`consumer.watchdog`:
lag, stalls) is one; later loop metrics (rewinds by cause, restore and commit durations) plug
into the same calls rather than into the loop.

Events are called on the loop's thread, inside `KafkaConsumer.poll` for the rebalance ones; a
sensor that another thread reads keeps its own lock, and none may block or raise.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from kafka import TopicPartition


class Sensor:
    """One observer of the loop; every event does nothing unless overridden."""

    def on_assigned(self, partitions: Collection[TopicPartition]) -> None:
        """Partitions given to this instance (their state restored, or being restored)."""

    def on_revoked(self, partitions: Collection[TopicPartition]) -> None:
        """Partitions taken away: this instance no longer reads or commits them."""

    def on_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Offsets committed (exactly once: with the batch's transaction), each the next
        offset to read."""

    def on_read(self, positions: Mapping[TopicPartition, int]) -> None:
        """Partitions where a poll found nothing more to read, at these positions: every
        offset before one is processed and committed, or holds no record (a transaction's
        marker, an aborted record), since the loop commits each batch before its next poll."""

    def on_rewind(self, cause: str) -> None:
        """The partitions were sought back to their committed offsets, for `cause` ("a failed
        publish", "a failed restore"): what `on_read` said of their positions is void."""

    def on_activity(self, activity: str) -> None:
        """What the loop is busy with now ("polling", "publishing 40 outputs", ...)."""


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

    def on_commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        for sensor in self.sensors:
            sensor.on_commit(offsets)

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
