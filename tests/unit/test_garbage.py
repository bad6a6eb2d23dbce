"""The service loop's collector: what start-up built is frozen out of its sight, its own
threshold is only a backstop, and the batch boundaries collect the generations that are due:
the young one once enough objects were added, after five of those the middle one too, after
five of those all."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from sunspots.process.garbage import (
    BACKSTOP,
    OLDER,
    YOUNG,
    collect_between_batches,
    settle_garbage_collector,
)


class Node:
    """An object that can be in a reference cycle and be watched through a weak reference."""

    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def settled() -> Iterator[list[int]]:
    """The collector as a service settles it, put back after; yields the generations collected
    (by `gc.callbacks`), in order."""
    threshold = gc.get_threshold()
    collected: list[int] = []

    def told(phase: str, info: dict) -> None:
        if phase == "stop":
            collected.append(info["generation"])

    settle_garbage_collector()
    gc.callbacks.append(told)
    collected.clear()  # the collection that settling made
    try:
        yield collected
    finally:
        gc.callbacks.remove(told)
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_the_collectors_own_threshold_is_a_backstop() -> None:
    threshold = gc.get_threshold()
    built_at_start = [object() for _ in range(100)]
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() >= len(built_at_start)
        assert gc.get_threshold() == (BACKSTOP, OLDER, OLDER)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


def test_a_boundary_collects_nothing_until_enough_objects_were_added(settled) -> None:
    gc.collect(0)
    settled.clear()
    kept = [[] for _ in range(YOUNG // 2)]
    assert collect_between_batches() is None
    assert settled == []
    kept += [[] for _ in range(YOUNG)]
    assert collect_between_batches() == 0
    assert settled == [0]


def test_after_five_collections_of_a_generation_the_next_one_takes_the_older_too(settled) -> None:
    gc.collect()
    settled.clear()
    young_then_middle = [0] * OLDER + [1]
    expected = young_then_middle * OLDER + [0] * OLDER + [2]
    kept = []
    for _ in expected:
        kept.append([[] for _ in range(YOUNG)])
        collect_between_batches()
    assert settled == expected


def test_cyclic_garbage_of_a_batch_is_freed_at_the_next_boundary(settled) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a
    watched = weakref.ref(a)
    del a, b
    filler = [[] for _ in range(YOUNG)]  # a batch's worth of objects added
    assert watched() is not None  # the collector's own threshold is far off
    collect_between_batches()
    assert watched() is None
    del filler
