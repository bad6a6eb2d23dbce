"""Containment: no record can stop the line.

A record the schemas reject is a dead letter with its reason (consumer.processor.DeadLetters).
`Contained` covers everything else a record can set off — a bug in a decoder, the batched model
call, making or encoding an output — so that it costs that record and nothing more.

Policy. Processors are atomic per batch (consumer.processor): a call that raises leaves no
outputs, and no state or metric changed. When processing a batch raises, the batch is split in
two halves, each processed on its own (outputs concatenated in order), recursively, down to the
single record that still fails: that record becomes exactly one dead letter with reason
`internal_error` and `Type: message` in its detail, counted and logged once (ten a minute with
their tracebacks, the rest held back and counted by the one log limiter), and the line carries
on. Every good record's outputs go out exactly once, in the transaction of the
batch it came in. A batch of n records with k such records costs about k·log2(n) extra calls;
a batch without one costs nothing extra.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from consumer.output import Output
from consumer.processor import AtomicProcessor, Record, describe

log = logging.getLogger(__name__)


class Contained:
    """A runner Processor that runs an atomic processor so that no record stops the line."""

    def __init__(self, processor: AtomicProcessor) -> None:
        self.processor = processor

    def process(self, records: list[Record]) -> list[Output]:
        """The processor's outputs for `records`; a failing batch is halved until the record at
        fault is dead-lettered on its own, so the others still go out. An empty batch's error is
        raised."""
        try:
            return self.processor.process(records)
        except Exception as exc:
            if not records:
                raise  # what a processor owes outside a batch (consumer.forecaster.rewrite_state)
            if len(records) == 1:
                return [self.processor.isolate(records[0], exc)]
            log.debug("a batch of %d failed (%s); splitting it", len(records), describe(exc))
        half = len(records) // 2
        return self.process(records[:half]) + self.process(records[half:])

    def changelog(self) -> list[Output]:
        return self.processor.changelog()

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        self.processor.restore(partition, changelog)

    def revoke(self, partitions: set[int]) -> None:
        self.processor.revoke(partitions)
