"""A transaction step that cannot wait for ever: the one guard both transactional writers use.

kafka-python's `commit_transaction`, `abort_transaction` and `send_offsets_to_transaction` wait
without a timeout, and a commit that began while a record of the transaction was refused (no
Write on its topic: the brokers never add the partition) waits for good. `run_step` begins the
step through the compatibility shim and waits for it in slices: between slices a record the
brokers refused is raised at once as that refusal (for the caller to tell in its one line), the
caller may look around (`on_slice`: report itself unready, give up for a shutdown), and past
`timeout_s` the step fails with `StepTimeout`. The forecaster's publisher (consumer.publishing)
and the model commands (sunspots.lifecycle.publishing) both commit through it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sunspots.kafka.compat import start_transaction_step
from sunspots.kafka.errors import KafkaTimeoutError
from sunspots.kafka.refusal import refusal_error

SLICE_S = 0.5


class StepTimeout(KafkaTimeoutError):
    """A transaction step the brokers did not acknowledge within its bound."""


def refused(future: Any) -> BaseException | None:
    """The brokers' refusal of a record sent, if it has come back."""
    if future.is_done and future.failed():
        return refusal_error(future.exception)
    return None


def first_refusal(sent: Sequence[Any]) -> BaseException | None:
    """The refusal of the first record of `sent` the brokers refused, if any has come back."""
    return next(filter(None, map(refused, sent)), None)


def run_step(
    producer: Any,
    step: str,
    *args: object,
    timeout_s: float,
    sent: Sequence[Any] = (),
    on_slice: Callable[[float], None] = lambda waited: None,
) -> None:
    """Run transaction `step` of `producer`, waiting in slices of SLICE_S seconds. A refused
    record of `sent` is raised as its refusal; `on_slice(waited)` runs after each slice (it may
    raise to stop waiting); past `timeout_s`, StepTimeout. Without the shim (a kafka-python
    that lacks what it needs) the public, blocking call is made."""
    pending = start_transaction_step(producer, step, *args)
    if pending is None:
        getattr(producer, step)(*args)
        return
    waited = 0.0
    while not pending.wait(timeout_ms=int(SLICE_S * 1000)):
        waited += SLICE_S
        refusal = first_refusal(sent)
        if refusal is not None:
            raise refusal
        on_slice(waited)
        if waited >= timeout_s:
            raise StepTimeout(f"{step} not acknowledged in {waited:.0f} s")
