"""The dead-letter recipe of docs/guarantees.md, run as written (kcat) against a real forecaster: it lists
the dead letters, and sends those of one reason back to the topic they came from, into the
partition of their series, where the service takes them up again."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from kafka import KafkaProducer

from support.run_topics import read_topic, unique_topics
from support.services import REPO, forecaster

RECIPE = re.compile(r"<!-- recipe: dead-letter-replay -->\n```sh\n(.*?)```", re.DOTALL)


def readme_recipe(bootstrap: str, dead_letter: str, observations: str) -> str:
    """The recipe's commands, pointed at this test's broker and topics."""
    match = RECIPE.search((REPO / "docs" / "guarantees.md").read_text())
    assert match, "docs/guarantees.md has no dead-letter recipe"
    return (
        match.group(1)
        .replace("localhost:9092", bootstrap)
        .replace("sunspots.dead-letter", dead_letter)
        .replace(r"sunspots\.observations", re.escape(observations))
        .replace("sunspots.observations", observations)
    )


def _headers(record) -> dict[str, str]:
    return {key: value.decode() for key, value in record.headers}


def test_the_readme_recipe_replays_one_reason_into_its_partition(
    bootstrap_servers, create_topics, unique, tmp_path: Path
) -> None:
    topics = create_topics(unique_topics(unique), partitions=3)
    service = forecaster(bootstrap_servers, topics, f"dlq-{unique}", tmp_path).start()
    try:
        service.wait_ready(90)
        newer = {
            "schema_version": 99,
            "series": "silso-7",
            "date": "2001-02-03",
            "sunspot_number": 101.0,
            "std_dev": 7.5,
            "observations": 31,
            "provisional": False,
        }
        producer = KafkaProducer(bootstrap_servers=bootstrap_servers)
        # Of 3 partitions, the Java/Python partitioner puts key silso-7 in 0 and kcat's own
        # default (CRC32) in 1: the recipe must ask for the former.
        sent = producer.send(topics.observations, key=b"silso-7", value=json.dumps(newer).encode())
        producer.send(topics.observations, key=b"silso-8", value=b"not json")
        original_partition = sent.get(timeout=30).partition
        producer.close()
        before = read_topic(bootstrap_servers, topics.dead_letter, expected=2, idle=1)
        assert sorted(_headers(r)["reason"] for r in before) == ["not_json", "unknown_version"]

        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", readme_recipe(bootstrap_servers, **_names(topics))],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        # The listing: one line per dead letter, headers first.
        listed = [line for line in done.stdout.splitlines() if line.startswith("reason=")]
        assert len(listed) == 2, done.stdout

        after = read_topic(bootstrap_servers, topics.dead_letter, expected=3, idle=2)
        assert service.terminate() == 0, service.log()
    finally:
        service.stop()
    reasons = sorted(_headers(r)["reason"] for r in after)
    assert reasons == ["not_json", "unknown_version", "unknown_version"]  # only that reason
    first, again = (r for r in after if _headers(r)["reason"] == "unknown_version")
    assert (again.key, again.value) == (first.key, first.value)
    assert _headers(again)["source_partition"] == str(original_partition)
    assert _headers(again)["source_offset"] != _headers(first)["source_offset"]


def _names(topics) -> dict[str, str]:
    return {"dead_letter": topics.dead_letter, "observations": topics.observations}
