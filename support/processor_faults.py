"""A processor that fails on a marked record, for tests: `python -m support.processor_faults`.

Containment (consumer.containment) bisects a batch whose processing raises, down to the one
record that fails, and dead-letters it as `internal_error`. No record the decoders know of
makes the real processors raise any more, so a test on the real broker needs a fault put in.
This entry point is `python -m consumer` with one difference: the mode's atomic processor
raises `ProcessorFault` on every batch that holds a record whose value contains `MARK`,
before it changes anything (as an atomic processor must), so `Contained` splits the batch
until the marked record stands alone. Nothing of it is in the service: it is test support.

Each call that meets the mark is logged (`processor fault: raising on a batch of N records`),
so a test can read from the log that the batch was bisected. With `SUPPORT_FAULT_HOLD_SECONDS`
set, the first such call of the process first holds that long (logging `processor fault:
holding`), so that a test can kill the process while the marked record's batch is in hand
and not yet committed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from consumer import __main__ as service
from consumer import modes
from consumer.containment import Contained
from consumer.modes import Built
from consumer.output import Output
from consumer.processor import Record

MARK = b"processor-fault"
HOLD_ENV = "SUPPORT_FAULT_HOLD_SECONDS"

log = logging.getLogger("support.processor_faults")


class ProcessorFault(RuntimeError):
    """The fault put in: raised on a batch that holds a marked record."""


def faulty(process: Callable[[list[Record]], list[Output]], hold: float) -> Callable:
    """`process`, raising on a batch that holds a marked record (after holding the first such
    batch `hold` seconds)."""
    held = False

    def process_with_fault(records: list[Record]) -> list[Output]:
        """The batch's outputs, or ProcessorFault when a record in it carries the mark."""
        nonlocal held
        marked = [r.offset for r in records if r.value is not None and MARK in r.value]
        if not marked:
            return process(records)
        if hold > 0 and not held:
            held = True
            log.warning("processor fault: holding a batch of %d records", len(records))
            time.sleep(hold)
        log.warning("processor fault: raising on a batch of %d records", len(records))
        raise ProcessorFault(f"marked record at offset {marked[0]}")

    return process_with_fault


def _with_fault(build: Callable[..., Built], hold: float) -> Callable[..., Built]:
    def build_with_fault(config: object, registry: CollectorRegistry) -> Built:
        """The mode's own build, with its atomic processor's `process` made to fail on marked
        records."""
        built = build(config, registry)
        assert isinstance(built.processor, Contained)
        atomic = built.processor.processor
        # An instance attribute: the processor stays the mode's own object (the keeper the
        # model follower and the topic watch hold), only its `process` fails on the mark.
        atomic.process = faulty(atomic.process, hold)  # type: ignore[method-assign]
        return built

    return build_with_fault


def main(argv: list[str] | None = None) -> int:
    hold = float(os.environ.get(HOLD_ENV, "0"))
    for name, mode in list(modes.MODES.items()):
        modes.MODES[name] = dataclasses.replace(mode, build=_with_fault(mode.build, hold))
    return service.main(argv)


if __name__ == "__main__":
    sys.exit(main())
