"""The loop's sensors (consumer.sensors): every event reaches every sensor, in turn, and the
current activity is kept for the lines that name it."""

from __future__ import annotations

from typing import Any

from kafka import TopicPartition

from consumer.sensors import Sensor, Sensors

TP = TopicPartition("t", 0)


class Recorder(Sensor):
    def __init__(self, name: str, into: list[tuple[str, str, Any]]) -> None:
        self.name, self.into = name, into

    def on_assigned(self, partitions: Any) -> None:
        self.into.append((self.name, "assigned", set(partitions)))

    def on_commit(self, offsets: Any) -> None:
        self.into.append((self.name, "commit", dict(offsets)))


def test_every_event_reaches_every_sensor_and_the_rest_do_nothing() -> None:
    seen: list[tuple[str, str, Any]] = []
    sensors = Sensors([Recorder("a", seen)])
    sensors.add(Recorder("b", seen))
    sensors.on_assigned({TP})
    sensors.on_commit({TP: 4})
    # Events a sensor does not override are no-ops: none of these raises.
    sensors.on_revoked({TP})
    sensors.on_read({TP: 4})
    sensors.on_rewind("failed_publish")
    assert seen == [
        ("a", "assigned", {TP}),
        ("b", "assigned", {TP}),
        ("a", "commit", {TP: 4}),
        ("b", "commit", {TP: 4}),
    ]


def test_the_current_activity_is_kept() -> None:
    sensors = Sensors()
    assert sensors.activity == "starting"
    sensors.on_activity("publishing 3 outputs")
    assert sensors.activity == "publishing 3 outputs"
