"""`--log-format json`: a real forecaster on a real broker writes one JSON object per line,
each with its service and instance id, and the lines about partitions and dead letters carry
them as fields a log collector can filter on."""

from __future__ import annotations

import json
from pathlib import Path

from kafka import KafkaProducer

from support.http import sample
from support.polling import wait_for
from support.run_topics import unique_topics
from support.services import forecaster


def test_json_logs_carry_service_instance_partitions_and_series(
    bootstrap_servers, create_topics, unique, tmp_path: Path
) -> None:
    topics = create_topics(unique_topics(unique))
    group = f"logs-{unique}"
    service = forecaster(
        bootstrap_servers, topics, group, tmp_path, "--log-format", "json", "--log-level", "INFO"
    ).start()
    try:
        service.wait_ready(90)
        producer = KafkaProducer(bootstrap_servers=bootstrap_servers)
        producer.send(topics.observations, key=b"silso", value=b"not json at all")
        producer.flush()
        producer.close()
        wait_for(
            "the dead letter",
            lambda: sample(service.metrics(), "sunspot_dead_letters_total", reason="not_json"),
            timeout=60,
        )
        assert service.terminate() == 0, service.log()
    finally:
        service.stop()

    lines = [json.loads(line) for line in service.log_path.read_text().splitlines() if line]
    assert lines
    instance_id = f"{group}-a"
    for line in lines:
        assert {"timestamp", "level", "logger", "message"} <= set(line), line
        assert (line["service"], line["instance_id"]) == ("forecast", instance_id), line
    (assigned,) = [line for line in lines if line["message"].startswith("partitions assigned")]
    assert assigned["partitions"] == [0]
    (dead,) = [line for line in lines if line["message"].startswith("dead letter")]
    assert dead["level"] == "WARNING"
    assert (dead["reason"], dead["series"], dead["partition"]) == ("not_json", "silso", 0)
