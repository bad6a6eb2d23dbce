"""The broker under test is a real Apache Kafka, and observations survive a round trip."""

from __future__ import annotations

from datetime import date

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from sunspots.wire import schemas


def test_broker_is_apache_kafka_in_kraft_mode(bootstrap_servers: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        cluster = admin.describe_cluster()
        assert len(cluster["cluster_id"]) == 22  # KRaft cluster ids are 16 bytes, base64
        assert [b["broker_id"] for b in cluster["brokers"]] == [1]
        assert cluster["controller_id"] == 1  # broker and KRaft controller in one process
        # kafka-python infers the version from the API versions the broker advertises.
        assert admin.get_broker_version_data(1).broker_version >= (4, 0)
    finally:
        admin.close()


def test_observations_round_trip_through_a_consumer_group(
    bootstrap_servers: str, unique: str
) -> None:
    topic = f"obs-{unique}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    sent = [
        schemas.Observation("silso", date(2000, 1, d), float(d * 3), 1.5, 10, False)
        for d in range(1, 21)
    ] + [schemas.Observation("silso", date(2000, 1, 21), None, None, 0, True)]
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    for obs in sent:
        producer.send(topic, key=obs.series.encode(), value=obs.encode())
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=f"g-{unique}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    received = []
    for record in consumer:
        received.append(schemas.decode_observation(record.value, key=record.key))
        if len(received) == len(sent):
            break
    consumer.commit()
    consumer.close()
    # One key means one partition, so order is kept too.
    assert received == sent
