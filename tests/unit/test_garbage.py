"""The service loop's collector settings: what start-up built is frozen out of the collector's
sight, and young collections come less often, with a full one every 5 × 5 of them."""

from __future__ import annotations

import gc

from sunspots.process.garbage import settle_garbage_collector


def test_start_up_objects_are_frozen_and_collections_spaced() -> None:
    threshold = gc.get_threshold()
    built_at_start = [object() for _ in range(100)]
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() >= len(built_at_start)
        assert gc.get_threshold() == (10_000, 5, 5)
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
