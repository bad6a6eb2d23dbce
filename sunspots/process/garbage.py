"""The garbage collector's settings for a service loop: it collects between batches, not in them.

A service builds much at start-up (modules, the model) and then, per batch, many objects that
live exactly as long as the batch: its records, its outputs, the producer's futures for them.
Left to its own thresholds the collector runs dozens of times inside every large batch, walks
those objects while they are still in use, and moves them into the older generations, whose
collections then walk them (and every series' state) again. At 10,000 series, batches of
20,000 records, that was about 17 µs of CPU per observation, 15 s of a 900,000-observation
replay (bench.many_series, 2026-12-06, timed with `gc.callbacks`).

So the loop collects at its batch boundaries instead (`collect_between_batches`, called before
each poll), when the last batch's objects have been freed by their reference counts (the
runner empties the batch's lists at the end of its turn) and only what outlives a batch is
young: a young collection once 10,000 objects were added since the last one; after five young
collections the next takes the middle generation too, and after five of those the next is a
full one, much as the collector's own schedule does. The collector's own threshold stays as a
backstop, far above what a batch adds (about 190,000 objects at its peak for 20,000 records),
so that a loop that stopped turning (a broker gone for a long while) still has its garbage
collected.

`gc.freeze()` moves what start-up built out of the collector's sight for good.
"""

from __future__ import annotations

import gc

# Objects added (allocated less freed) since the last collection past which a batch boundary
# runs a young collection.
YOUNG = 10_000
# Collections of a generation after which the next collection takes the older one too.
OLDER = 5
# The collector's own threshold, a backstop only: reached inside a batch of about 100,000
# records, or by a loop that stopped turning.
BACKSTOP = 1_000_000


def settle_garbage_collector() -> None:
    """Freeze what start-up built and leave collections to the batch boundaries (the module's
    doc), with the collector's own threshold as a backstop."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(BACKSTOP, OLDER, OLDER)


def collect_between_batches() -> int | None:
    """At a batch boundary: collect the generations that are due (the module's doc), and return
    the oldest one collected, or None when none was due."""
    young, middle, old = gc.get_count()
    if young < YOUNG:
        return None
    generation = 0
    if middle >= OLDER:
        generation = 2 if old >= OLDER else 1
    gc.collect(generation)
    return generation
