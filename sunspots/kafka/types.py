"""The kafka-python types the rest of the project names (in signatures, or to build an offset
or a partition), under the project's Kafka package: modules outside it take them from here and
never import the client library themselves. Clients are made in `sunspots.kafka.clients`."""

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import (
    ConfigResource,
    ConfigResourceType,
    KafkaAdminClient,
    NewTopic,
    OffsetSpec,
    TransactionState,
)
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.producer.future import FutureRecordMetadata
from kafka.structs import OffsetAndMetadata

__all__ = [
    "ConfigResource",
    "ConfigResourceType",
    "ConsumerRebalanceListener",
    "ConsumerRecord",
    "FutureRecordMetadata",
    "KafkaAdminClient",
    "KafkaConsumer",
    "KafkaProducer",
    "NewTopic",
    "OffsetAndMetadata",
    "OffsetSpec",
    "TopicPartition",
    "TransactionState",
]
