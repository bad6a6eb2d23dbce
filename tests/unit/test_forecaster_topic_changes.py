"""The forecaster's side of topic changes (consumer.topic_changes): offsets compared within one
partition, two states of one series on two changelog partitions, states of an earlier topic
of the source's name, a changelog that lost the states (written again, kept over a rewind),
and series first seen on a partition added while it ran."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date

from prometheus_client import CollectorRegistry

from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from consumer.output import Output
from tests.unit.records import observations, transaction
from tests.unit.test_forecaster import TOPICS, LastPlusOne

OLD, NEW = "old-topic-id", "new-topic-id"


def forecaster() -> Forecaster:
    metrics = ForecasterMetrics(CollectorRegistry())
    return Forecaster(LastPlusOne(), TOPICS, metrics, rolling=10, today=lambda: date(2026, 1, 1))


def on(partition: int, records: list, first_offset: int = 0) -> list:
    """The records as they arrive on `partition`, at offsets from `first_offset`."""
    return [replace(r, partition=partition, offset=first_offset + i) for i, r in enumerate(records)]


def states(outputs: list[Output]) -> list[Output]:
    return [o for o in outputs if o.topic == TOPICS.state]


def forecast_dates(outputs: list[Output]) -> list[str]:
    return [json.loads(o.value)["target_date"] for o in outputs if o.topic == TOPICS.forecasts]


def test_a_series_that_moved_to_a_new_partition_is_applied_there_and_its_state_follows() -> None:
    """Partitions added: a series' later records arrive on another partition at lower
    offsets; they are applied (offsets compare within one partition), and its state goes to
    that partition of the changelog."""
    fc = forecaster()
    transaction(fc, on(0, observations([1, 2, 3, 4]), first_offset=500))
    moved = transaction(fc, on(2, observations([5, 6], start=4)))
    assert forecast_dates(moved) == ["2000-01-06", "2000-01-07"]
    (state,) = states(moved)
    assert state.partition == 2 and json.loads(state.value)["offset"] == 2
    # A late record of the old partition is a dead letter, as any late record.
    late = transaction(fc, on(0, observations([4], start=3), first_offset=504))
    assert [dict(o.headers)["reason"] for o in late] == [b"out_of_order"]


def test_a_restore_that_meets_a_series_on_two_partitions_keeps_the_later_state() -> None:
    fc = forecaster()
    older = states(transaction(fc, on(0, observations([1, 2, 3]))))
    newer = states(transaction(fc, on(1, observations([4, 5], start=3))))
    for order in ((0, older, 1, newer), (1, newer, 0, older)):
        restored = forecaster()
        restored.restore(order[0], [(o.key, o.value) for o in order[1]])
        restored.restore(order[2], [(o.key, o.value) for o in order[3]])
        state = restored.series["s"]
        assert state.partition == 1 and state.window.last_date == date(2000, 1, 5), order[0]
    # A tombstone on one partition leaves the state restored from the other.
    restored.restore(0, [(b"s", None)])
    assert "s" in restored.series


def test_states_of_an_earlier_topic_are_dropped_told_once_and_tombstoned() -> None:
    fc = forecaster()
    fc.source.follow(OLD, {})
    written = [(o.key, o.value) for o in states(transaction(fc, observations([1, 2, 3])))]
    assert json.loads(written[0][1])["topic_id"] == OLD

    restored = forecaster()
    restored.source.follow(NEW, {0: 0})
    restored.restore(0, written)
    restored.restore(0, written)  # a second restore before the tombstones go out
    assert restored.series == {} and sum(restored.source.stale.values()) == 1
    assert restored.owes
    tombstones = transaction(restored, [])
    assert [(o.topic, o.key, o.value, o.partition) for o in tombstones] == [
        (TOPICS.state, b"s", None, 0)
    ]
    assert not restored.owes
    # The records of the new topic, at offsets below the old state's, are applied.
    assert forecast_dates(transaction(restored, observations([7, 8, 9]))) == ["2000-01-04"]


def test_a_state_without_a_topic_id_is_judged_by_its_offset() -> None:
    """Snapshots written before they carried the topic's id: one whose offset lies past the
    partition's end cannot belong to the topic there now."""
    written = [(o.key, o.value) for o in states(transaction(forecaster(), observations([1, 2, 3])))]
    unmarked = [(k, json.dumps({**json.loads(v), "topic_id": None}).encode()) for k, v in written]
    for end, kept in ((3, True), (2, False)):
        fc = forecaster()
        fc.source.follow(NEW, {0: end})
        fc.restore(0, unmarked)
        assert ("s" in fc.series) is kept, end


def test_a_changelog_that_lost_the_states_gets_every_series_again_even_without_records() -> None:
    fc = forecaster()
    transaction(fc, observations([1, 2, 3], series="a") + observations([1, 2], series="b"))
    fc.checkpoint()
    assert transaction(fc, []) == []  # nothing owed: an idle turn publishes nothing
    fc.rewrite_state()
    assert fc.owes
    written = transaction(fc, [])
    assert sorted(o.key for o in states(written)) == [b"a", b"b"]
    assert not fc.owes  # in flight with this batch
    fc.undo()  # its publish failed: owed again
    assert fc.owes
    with_records = transaction(fc, observations([4], series="a", start=3))
    assert sorted(o.key for o in states(with_records)) == [b"a", b"b"]  # each once
    fc.checkpoint()  # published
    assert not fc.owes and not fc.rewrite


def test_undo_puts_the_series_back_as_they_were_at_the_last_checkpoint() -> None:
    fc = forecaster()
    transaction(fc, observations([1, 2, 3], series="a"))
    fc.checkpoint()
    before = fc.series["a"].copy()
    transaction(fc, observations([4, 5], series="a", start=3) + observations([1], series="new"))
    fc.undo()
    assert set(fc.series) == {"a"}
    assert fc.series["a"].window.last_date == before.window.last_date
    assert fc.series["a"].applied_to == before.applied_to
    # The batch processed again from there gives the same outputs as the first time.
    again = transaction(fc, observations([4, 5], series="a", start=3))
    assert forecast_dates(again) == ["2000-01-05", "2000-01-06"]


def test_undo_gives_back_a_series_a_restore_removed_since_the_checkpoint() -> None:
    fc = forecaster()
    transaction(fc, observations([1, 2, 3], series="a"))
    fc.checkpoint()
    at_checkpoint = fc.series["a"].snapshot()
    transaction(fc, observations([4], series="a", start=3))
    fc.restore(0, [(b"a", None)])  # a tombstone read back: the series is no longer held
    assert "a" not in fc.series
    fc.undo()
    assert fc.series["a"].snapshot() == at_checkpoint


def test_series_first_seen_on_an_added_partition_are_counted_as_moved() -> None:
    fc = forecaster()
    fc.source.added.update({1, 2})
    transaction(fc, on(0, observations([1], series="old")))
    transaction(fc, on(2, observations([1], series="moved")))
    transaction(fc, on(2, observations([2], series="moved", start=1)))  # held already
    assert fc.source.moved == 1


def test_a_moved_series_is_counted_once_when_its_batch_is_processed_again() -> None:
    """A publish failed after a series was first seen on an added partition: the batch is
    processed again, after an undo or after a rewind's restore that does not hold the series
    (its state was never published), and meets the series afresh again; it moved once."""
    fc = forecaster()
    fc.source.added.update({1, 2})
    fc.checkpoint()
    batch = on(2, observations([1, 2], series="moved"))
    transaction(fc, batch)
    fc.undo()
    transaction(fc, batch)
    fc.revoke({2})  # a rewind: the partition forgotten, then restored from the changelog,
    fc.restore(2, [])  # which has nothing on partition 2
    assert "moved" not in fc.series
    transaction(fc, batch)
    assert fc.source.moved == 1
    fc.source.moved = 0  # told
    transaction(fc, on(1, observations([1], series="other")))
    assert fc.source.moved == 1


def test_a_stale_state_tombstoned_in_the_batch_that_brings_its_series_back_ends_with_the_new() -> (
    None
):
    """The tombstone of a state a restore dropped goes out before the transaction's states, so
    a series whose first record arrives in that same batch keeps its new state once the
    changelog is compacted (the last record of a key is the one kept)."""
    old = forecaster()
    old.source.follow(OLD, {})
    written = [(o.key, o.value) for o in states(transaction(old, observations([1, 2, 3])))]
    fc = forecaster()
    fc.source.follow(NEW, {0: 0})
    fc.restore(0, written)
    assert fc.series == {} and fc.owes
    out = [(o.key, o.value is None) for o in states(transaction(fc, observations([7, 8])))]
    assert out == [(b"s", True), (b"s", False)]  # the tombstone, then the new state
