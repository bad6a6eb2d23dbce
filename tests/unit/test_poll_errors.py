"""What an error of a poll means (consumer.poll_errors): retried, or a batch that cannot be read,
told in one line with where it is and what to do."""

from __future__ import annotations

import pytest
from kafka import TopicPartition
from kafka.consumer.fetcher import RecordTooLargeError
from kafka.errors import (
    CoordinatorNotAvailableError,
    CorruptRecordError,
    IllegalStateError,
    InvalidRecordError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NotLeaderForPartitionError,
    RebalanceInProgressError,
    UnsupportedCodecError,
)

from consumer.poll_errors import cause, is_unreadable, unreadable_line, where_told

TP = TopicPartition("sunspots.observations", 3)


@pytest.mark.parametrize(
    "error",
    [
        UnsupportedCodecError("Libraries for snappy compression codec not found"),
        CorruptRecordError("Record batch for partition 3 at offset 1204 failed crc check"),
        InvalidRecordError(),
        RecordTooLargeError("too large", {TP: 7}),
        ValueError("escaped from the client"),
        RuntimeError("StopIteration raised unpacking messageset"),
    ],
)
def test_a_batch_that_cannot_be_read(error: Exception) -> None:
    assert is_unreadable(error)


@pytest.mark.parametrize(
    "error",
    [
        KafkaConnectionError("refused"),
        KafkaTimeoutError("no answer"),
        CoordinatorNotAvailableError(),
        NotLeaderForPartitionError(),
        RebalanceInProgressError(),
        IllegalStateError("a client state the next poll may mend"),
    ],
)
def test_everything_else_of_kafka_is_retried(error: Exception) -> None:
    assert not is_unreadable(error)


def test_an_error_that_names_its_partition() -> None:
    assert where_told(RecordTooLargeError("too large", {TP: 7})) == (TP, 7)
    assert where_told(CorruptRecordError("no place in it")) is None


def test_a_missing_codec_says_which_extra_to_install() -> None:
    error = UnsupportedCodecError("Libraries for snappy compression codec not found")
    line = unreadable_line(error, (TP, 1204), {}, "sunspots-forecaster", "k1:9092")
    assert line.startswith(
        "cannot read partition 3 of sunspots.observations at offset 1204: "
        "UnsupportedCodecError: Libraries for snappy compression codec not found; "
    )
    assert "pip install 'kafka-python[snappy]'" in line
    assert "'kafka-python[lz4,snappy,zstd]' for every codec" in line
    assert "\n" not in line


def test_a_corrupt_batch_says_how_to_move_the_group_past_it() -> None:
    error = CorruptRecordError("Record batch for partition 3 at offset 1204 failed crc check")
    line = unreadable_line(error, (TP, 1204), {}, "sunspots-forecaster", "k1:9092,k2:9092")
    assert "at offset 1204: [Error 2] CorruptRecordError: Record batch" in line
    assert (
        "kafka-consumer-groups.sh --bootstrap-server k1:9092,k2:9092 --group sunspots-forecaster "
        "--topic sunspots.observations:3 --reset-offsets --to-offset" in line
    )
    assert "\n" not in line


def test_an_unknown_place_names_the_positions_of_the_assigned_partitions() -> None:
    other = TopicPartition("sunspots.observations", 0)
    line = unreadable_line(ValueError("boom"), None, {TP: 40, other: 12}, "g", "b:9092")
    assert line.startswith(
        "cannot read an unknown partition (the client does not say; positions: partition 0 of "
        "sunspots.observations at 12, partition 3 of sunspots.observations at 40): "
        "ValueError: boom; "
    )


def test_the_cause_names_the_type_once() -> None:
    assert cause(KafkaConnectionError("gone")) == "KafkaConnectionError: gone"
    assert cause(ValueError("bad")) == "ValueError: bad"
    assert cause(InvalidRecordError()) == "[Error 87] InvalidRecordError"
    assert cause(ValueError()) == "ValueError"
