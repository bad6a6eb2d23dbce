"""kafka-python's errors under the project's Kafka package, so that a module outside it
catches a Kafka error without importing the client library (one place to follow a change of
library or version)."""

from kafka.consumer.fetcher import RecordTooLargeError
from kafka.errors import (
    ClusterAuthorizationFailedError,
    CorruptRecordError,
    FencedInstanceIdError,
    InvalidPartitionsError,
    InvalidRecordError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerFencedError,
    RecordListTooLargeError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
    UnsupportedCodecError,
    UnsupportedCompressionTypeError,
)

__all__ = [
    "ClusterAuthorizationFailedError",
    "CorruptRecordError",
    "FencedInstanceIdError",
    "InvalidPartitionsError",
    "InvalidRecordError",
    "KafkaError",
    "KafkaTimeoutError",
    "MessageSizeTooLargeError",
    "ProducerFencedError",
    "RecordListTooLargeError",
    "RecordTooLargeError",
    "TopicAlreadyExistsError",
    "TopicAuthorizationFailedError",
    "UnknownTopicOrPartitionError",
    "UnsupportedCodecError",
    "UnsupportedCompressionTypeError",
]
