"""How the loop cuts a poll's records into the slices the processor takes one at a time.

A slice is processed and its outputs handed to the producer before the next one is processed
(consumer.runner), so what a batch holds at once is its records and one slice's work. What a
processor pays per series a call touches (a copy of its state for a rollback, its place in the
call's maps) is paid again in every slice that touches the series, so slices follow the series:
each record goes to the slice its key hashes to, in the order it came (a series' records stay
in order, and in one slice), and a slice is cut into pieces of `size`, in order, only when it
is more than twice that. With many series every slice holds whole series; with one series (or a
few) its records are cut in order, and it is copied once a piece, which costs nothing there.
Records without a key go with the empty key.

`batch_outputs` is a batch's outputs as the loop hands them to its producer: slice after slice,
then the changelog's records the transaction owes; the benchmarks drive a processor with it too.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar
from zlib import crc32

from consumer.output import Output, Record
from consumer.processor import Processor


class Keyed(Protocol):
    @property
    def key(self) -> bytes | None: ...


R = TypeVar("R", bound=Keyed)


def slices(records: Sequence[R], size: int) -> Iterator[Sequence[R]]:
    """`records` in slices of whole series, about `size` records each (see the module)."""
    if len(records) <= size:
        yield records
        return
    count = -(-len(records) // size)
    groups: list[list[R]] = [[] for _ in range(count)]
    for record in records:
        groups[crc32(record.key or b"") % count].append(record)
    for group in groups:
        if len(group) <= 2 * size:
            if group:
                yield group
            continue
        for start in range(0, len(group), size):
            yield group[start : start + size]


def batch_outputs(processor: Processor, records: list[Record], size: int) -> Iterator[Output]:
    """A batch's outputs, made as they are taken: each slice of `records` processed once the
    outputs before it are taken, then `processor.changelog()`. `records` is emptied once
    processed, so the batch's records are let go before the changelog's snapshots are made."""
    for part in slices(records, size):  # an empty batch: one empty slice, for what is owed
        yield from processor.process(list(part))
    records.clear()
    yield from processor.changelog()
