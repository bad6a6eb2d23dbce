"""The runner's classification of Kafka errors: a fencing stops the service, others retry."""

from __future__ import annotations

from kafka.errors import (
    FencedInstanceIdError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
)

from consumer.fencing import is_fenced


def test_fencing_is_recognised_even_when_wrapped() -> None:
    assert is_fenced(ProducerFencedError())
    assert is_fenced(FencedInstanceIdError())
    # kafka-python's producer reports it like this once its transaction manager is fenced.
    assert is_fenced(KafkaError("Cannot perform send because ...", ProducerFencedError()))
    # ... and like this, the error in its message alone, once a transaction step is refused.
    for fenced in (ProducerFencedError(), FencedInstanceIdError()):
        state = f"Cannot execute transactional method because we are in an error state: {fenced}"
        assert is_fenced(KafkaError(state))
    try:
        try:
            raise ProducerFencedError()
        except ProducerFencedError as inner:
            raise KafkaError("commit failed") from inner
    except KafkaError as outer:
        assert is_fenced(outer)


def test_a_fencing_named_deep_in_a_chain_is_recognised() -> None:
    # A step that fails after kafka-python's transaction manager went into its error state,
    # wrapped once more by whoever raised it: the fencing is in the inner error's message alone.
    state = KafkaError(f"... in an error state: {ProducerFencedError()}")
    try:
        try:
            raise state
        except KafkaError as inner:
            raise KafkaTimeoutError("commit_transaction not acknowledged") from inner
    except KafkaTimeoutError as outer:
        assert is_fenced(outer)
    assert is_fenced(KafkaError("wrapped", KafkaError("again", state)))


def test_a_chain_that_loops_is_judged_and_ends() -> None:
    first, second = KafkaError("first"), KafkaError("second")
    first.__cause__, second.__cause__ = second, first
    assert not is_fenced(first)
    second.args = ("second", FencedInstanceIdError())
    assert is_fenced(first)


def test_outages_are_not_fencing() -> None:
    assert not is_fenced(KafkaTimeoutError("no broker"))
    assert not is_fenced(KafkaConnectionError("refused"))
    assert not is_fenced(KafkaError("something else", "detail"))
