"""The one transaction-step guard: a step waited for in slices, a refused record raised as its
refusal, a bound that ends the wait, and the caller's look between slices (pure logic: a fake
producer and the compatibility shim replaced)."""

from __future__ import annotations

from typing import Any

import pytest

from sunspots.kafka import transactions
from sunspots.kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError


class Pending:
    """A step in flight that is acknowledged after `slices` waits (never, for None)."""

    def __init__(self, slices: int | None) -> None:
        self.slices = slices
        self.waits = 0

    def wait(self, timeout_ms: int) -> bool:
        self.waits += 1
        return self.slices is not None and self.waits > self.slices


class Future:
    def __init__(self, error: BaseException | None = None) -> None:
        self.exception = error
        self.is_done = error is not None

    def failed(self) -> bool:
        return self.exception is not None


@pytest.fixture
def pending(monkeypatch) -> list[Pending]:
    made: list[Pending] = []

    def start(producer: Any, step: str, *args: Any) -> Pending:
        made.append(Pending(producer))
        return made[-1]

    monkeypatch.setattr(transactions, "start_transaction_step", start)
    return made


def test_a_step_acknowledged_in_time_returns_after_its_slices(pending) -> None:
    looks: list[float] = []
    transactions.run_step(3, "commit_transaction", timeout_s=10, on_slice=looks.append)
    assert pending[0].waits == 4 and looks == [0.5, 1.0, 1.5]


def test_a_step_never_acknowledged_ends_at_its_bound(pending) -> None:
    with pytest.raises(
        transactions.StepTimeout, match="commit_transaction not acknowledged in 2 s"
    ):
        transactions.run_step(None, "commit_transaction", timeout_s=2)
    assert pending[0].waits == 4
    assert issubclass(transactions.StepTimeout, KafkaTimeoutError)


def test_a_refused_record_ends_the_wait_with_its_refusal(pending) -> None:
    sent = [Future(), Future(TopicAuthorizationFailedError({"sunspots.models"}))]
    with pytest.raises(TopicAuthorizationFailedError):
        transactions.run_step(None, "commit_transaction", timeout_s=60, sent=sent)
    assert pending[0].waits == 1


def test_the_callers_look_may_end_the_wait(pending) -> None:
    def shutting_down(waited: float) -> None:
        if waited >= 1.0:
            raise KafkaTimeoutError("into shutdown")

    with pytest.raises(KafkaTimeoutError, match="into shutdown"):
        transactions.run_step(None, "abort_transaction", timeout_s=60, on_slice=shutting_down)
    assert pending[0].waits == 2


def test_without_the_shim_the_public_call_is_made(monkeypatch) -> None:
    monkeypatch.setattr(transactions, "start_transaction_step", lambda *args: None)
    calls: list[str] = []

    class Producer:
        def commit_transaction(self) -> None:
            calls.append("commit")

    transactions.run_step(Producer(), "commit_transaction", timeout_s=1)
    assert calls == ["commit"]
