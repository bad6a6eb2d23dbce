"""Waits on Kafka: a retriable error inside a wait is "not yet" until the wait's deadline, whose
error names what was awaited and the last error; any other error ends the wait at once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from kafka import TopicPartition
from kafka.errors import (
    CoordinatorLoadInProgressError,
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    NodeNotReadyError,
    NotCoordinatorError,
    RequestTimedOutError,
    TopicAuthorizationFailedError,
)

from support.polling import not_yet, retrying, wait_for
from support.run_progress import Progress


@pytest.mark.parametrize(
    "error",
    [
        NotCoordinatorError(),
        CoordinatorLoadInProgressError(),
        LeaderNotAvailableError(),
        NodeNotReadyError(),
        KafkaTimeoutError("Failed to update metadata after 60.0 secs."),
        RequestTimedOutError(),
    ],
)
def test_retriable_kafka_errors_mean_not_yet(error: KafkaError) -> None:
    assert not_yet(error)


@pytest.mark.parametrize(
    "error",
    [
        TopicAuthorizationFailedError(),
        GroupAuthorizationFailedError(),
        KafkaError("unknown"),
        ValueError("a bug in the probe"),
        TimeoutError("not Kafka's"),
    ],
)
def test_other_errors_are_not_waited_out(error: BaseException) -> None:
    assert not not_yet(error)


def _script(*steps: Any) -> tuple[Callable[[], Any], list[int]]:
    """A probe that raises or returns each step in turn, repeating the last; and its call count."""
    calls = [0]
    it: Iterator[Any] = iter(steps)
    last: list[Any] = [None]

    def probe() -> Any:
        calls[0] += 1
        last[0] = next(it, last[0])
        if isinstance(last[0], BaseException):
            raise last[0]
        return last[0]

    return probe, calls


def test_a_wait_asks_again_after_a_retriable_error() -> None:
    probe, calls = _script(NotCoordinatorError(), CoordinatorLoadInProgressError(), None, 7)
    assert wait_for("the answer", probe, timeout=5, interval=0) == 7
    assert calls == [4]


def test_past_its_deadline_a_wait_names_what_it_waited_for_and_the_last_error() -> None:
    probe, _ = _script(None, NotCoordinatorError("coordinator moved"))
    with pytest.raises(TimeoutError) as caught:
        wait_for("g1 to commit 10 records of obs", probe, timeout=0.05, interval=0.01)
    assert str(caught.value) == (
        "timed out after 0.05 s waiting for g1 to commit 10 records of obs "
        "(last error: [Error 16] NotCoordinatorError: coordinator moved)"
    )


def test_an_answer_after_an_error_clears_it_from_the_deadlines_message() -> None:
    probe, _ = _script(NodeNotReadyError(), False)
    with pytest.raises(TimeoutError, match=r"waiting for it \(last: False\)$"):
        wait_for("it", probe, timeout=0.05, interval=0.01)


def test_an_error_that_will_not_pass_ends_the_wait_at_once() -> None:
    probe, calls = _script(TopicAuthorizationFailedError())
    with pytest.raises(TopicAuthorizationFailedError):
        wait_for("the topic", probe, timeout=5, interval=0)
    assert calls == [1]


def test_retrying_returns_any_answer_even_an_empty_one() -> None:
    probe, calls = _script(LeaderNotAvailableError(), {})
    assert retrying("offsets", probe, timeout=5, interval=0) == {}
    assert calls == [2]


def test_progress_reads_a_groups_offsets_through_a_coordinator_move() -> None:
    """Progress.consumed, where a cluster test failed: NotCoordinatorError while the group's
    coordinator moved after a node fault is asked again, not raised."""
    offsets = {
        TopicPartition("obs", 0): SimpleNamespace(offset=40),
        TopicPartition("obs", 1): SimpleNamespace(offset=-1),
        TopicPartition("other", 0): SimpleNamespace(offset=5),
    }
    listing, calls = _script(NotCoordinatorError(), NotCoordinatorError(), {"g": offsets})
    progress = Progress.__new__(Progress)  # no clients: only the admin's answers matter here
    progress.admin = SimpleNamespace(list_group_offsets=lambda group: listing())
    assert progress.consumed("g", "obs", timeout=5) == 40
    assert calls == [3]
