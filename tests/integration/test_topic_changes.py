"""Topics changed by an administrator while the services run, on the real broker.

Each test makes the change with an admin client while a forecaster (and where it applies a
classifier) runs, then asserts the outcome the README's table promises: where the service
carries on, every day is forecast and scored exactly once, judged against the uninterrupted
run computed offline (tests.integration.offline); where it stops, exit code 8 and the one line
that names the topic and what to do; while a condition lasts, the reason on /readyz; never a
record skipped without a word (a dead letter, a counted line).

The test broker keeps Kafka's default `auto.create.topics.enable=true`: a service that asked
about a deleted topic would have it created again with the broker's defaults, so these tests
also show that the services never do (consumer.clients, sunspots.kafka_compat.no_auto_create).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

from sunspots.settings import Topics
from sunspots.topics import main as topics_main
from support import http
from support.polling import wait_for
from support.progress import Progress
from support.services import Service, consumer, forecaster, replay_range, running
from support.topics import read_results, read_topic, topic_flags, unique_topics
from tests.integration.offline import assert_matches, offline_run

COUNT = 4  # series silso-0..3: with 3 partitions every one of them maps to partition 1 or 2
START, MIDDLE, END = "2000-01-01", "2000-04-30", "2000-08-31"


@contextmanager
def admin_client(bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        yield admin
    finally:
        admin.close()


def partitions(admin: KafkaAdminClient, topic: str) -> int:
    """The topic's partitions now; 0 when it does not exist."""
    (described,) = admin.describe_topics([topic])
    return len(described["partitions"]) if described["error_code"] == 0 else 0


def replay(bootstrap: str, topics: Topics, data: Path, log_dir: Path, end: str, *extra: str):
    """The test's replay of COUNT series from START to `end`, as fast as the broker takes it;
    with `--resume`, only the days after those on the topic."""
    series = ["--series-count", str(COUNT)]
    return replay_range(bootstrap, topics, data, log_dir, START, end, 0, *series, *extra)


def finish(service: Service, timeout: float = 60.0) -> None:
    """Run the producer to its end; raise with its log unless it exits 0."""
    code = service.start().wait(timeout)
    assert code == 0, service.log()


def log_count(service: Service, text: str) -> int:
    return service.log(tail=10**7).count(text)


def counter(service: Service, name: str, **labels: str) -> float:
    return http.sample(service.metrics(), name, **labels)


# --- partitions added -------------------------------------------------------------------


def test_partitions_added_while_running_grow_the_changelog_and_the_state_follows(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    """Partitions added to the changelog (it simply continues), then to the observations: the
    forecaster grows the changelog to match, each series' later records arrive on a new
    partition, its state follows it, and every day is forecast and scored exactly once."""
    topics = create_topics(unique_topics(unique), partitions=1)
    group = f"g-{unique}"
    offline = offline_run(data_file, forecaster_model, START, END, count=COUNT)
    first = offline_run(data_file, forecaster_model, START, MIDDLE, count=COUNT).observations
    fc = forecaster(bootstrap_servers, topics, group, tmp_path)
    with (
        running(fc),
        Progress(bootstrap_servers) as progress,
        admin_client(bootstrap_servers) as admin,
    ):
        fc.wait_ready()
        finish(replay(bootstrap_servers, topics, data_file.path, tmp_path, MIDDLE))
        progress.wait_consumed(group, topics.observations, first, 60, fc)
        admin.create_partitions({topics.state: 2})  # more than needed: nothing to do
        admin.create_partitions({topics.observations: 3})
        wait_for("the changelog grown to 3", lambda: partitions(admin, topics.state) == 3, 30)
        wait_for("partitions 1 and 2 restored", lambda: "assigned: [1, 2]" in fc.log(10**7), 30)
        finish(replay(bootstrap_servers, topics, data_file.path, tmp_path, END, "--resume"))
        progress.wait_finished(group, topics, offline.observations, 60, fc)
        forecasts, evaluations = read_results(bootstrap_servers, topics)
        moved = {r.key.decode() for r in read_topic(bootstrap_servers, topics.observations)}
        grown = counter(
            fc, "sunspot_consumer_topic_changes_total", topic=topics.state, change="grown"
        )
        added = counter(
            fc,
            "sunspot_consumer_topic_changes_total",
            topic=topics.observations,
            change="partitions_added",
        )
        assert fc.terminate() == 0
    assert_matches(offline, forecasts, evaluations)
    assert len(moved) == COUNT
    assert grown == 1 and added == 1
    assert log_count(fc, "grew from 1 to 3 partitions while the service ran") == 1
    assert log_count(fc, "had 2 partitions for the 3") == 1


def test_partitions_added_without_create_topics_stop_with_exit_8_and_the_fix_works(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    """Without --create-topics the forecaster may not grow the changelog: it stops with exit
    code 8 and one line naming both topics, both counts and the command that fixes it; that
    command (`sunspots-topics --partitions 3`) grows every topic, and the forecaster runs."""
    topics = create_topics(unique_topics(unique), partitions=1)
    group = f"g-{unique}"
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, "--create-topics", "false")
    with running(fc), admin_client(bootstrap_servers) as admin:
        fc.wait_ready()
        admin.create_partitions({topics.observations: 3})
        assert fc.wait(60) == 8
        line = (
            f"topic {topics.observations} has 3 partitions but its state changelog "
            f"{topics.state} has 1"
        )
        assert log_count(fc, line) == 1, fc.log()
        assert "sunspots-topics --partitions 3" in fc.log()
        flags = [
            "--bootstrap-servers",
            bootstrap_servers,
            "--partitions",
            "3",
            *topic_flags(topics),
        ]
        assert topics_main(flags) == 0
        assert partitions(admin, topics.state) == 3
        assert partitions(admin, topics.forecasts) == 3
        assert partitions(admin, topics.dead_letter) == 1  # one partition by its spec
        fc.start().wait_ready()
        assert fc.terminate() == 0


def test_classifier_answers_on_added_partitions_and_dead_letters_a_record_past_the_fetch_limit(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    """Partitions added to the requests: the classifier answers requests on every partition.
    A 3 MiB request (the topic's max.message.bytes raised to 4 MiB) is a dead letter, kept cut,
    and the next request is answered."""
    topics = create_topics(unique_topics(unique), partitions=1)
    with admin_client(bootstrap_servers) as admin:
        raise_record_limit(admin, topics.classifier_requests)
        clf = consumer(
            "classify", bootstrap_servers, topics, f"c-{unique}", tmp_path / "classifier.log"
        )
        with running(clf):
            clf.wait_ready()
            admin.create_partitions({topics.classifier_requests: 3})
            wait_for("3 partitions assigned", lambda: "assigned: [1, 2]" in clf.log(10**7), 30)
            producer = KafkaProducer(bootstrap_servers=bootstrap_servers, max_request_size=BIG * 2)
            for i in range(12):
                request = {"id": f"r{i}", "sequence": [0, 0, 0, 0, 1, i % 2]}
                producer.send(
                    topics.classifier_requests, json.dumps(request).encode(), f"r{i}".encode()
                )
            producer.send(topics.classifier_requests, big_value(), b"big", partition=0)
            producer.send(
                topics.classifier_requests,
                b'{"id": "after", "sequence": [1]}',
                b"after",
                partition=0,
            )
            producer.flush()
            producer.close()
            answers = read_topic(bootstrap_servers, topics.classifier_predictions, expected=13)
            dead = read_topic(bootstrap_servers, topics.dead_letter, expected=1)
            assert clf.terminate() == 0
    assert {r.key.decode() for r in answers} == {f"r{i}" for i in range(12)} | {"after"}
    assert_cut_dead_letter(dead)


# --- a record past the fetch limits -------------------------------------------------------

BIG = 3 * 1024 * 1024


def big_value() -> bytes:
    return b'{"x": "' + b"a" * BIG + b'"}'


def raise_record_limit(admin: KafkaAdminClient, topic: str) -> None:
    limit = {"max.message.bytes": str(4 * 1024 * 1024)}
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=limit)
    admin.alter_configs([resource], raise_on_unknown=False)


def assert_cut_dead_letter(dead: list) -> None:
    """One dead letter `oversized`, cut to 64 KiB, with the record's full size in a header."""
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["reason"] == "oversized"
    assert int(headers["original_value_bytes"]) == len(big_value())
    assert len(dead[0].value) == 64 * 1024


def test_forecaster_dead_letters_a_record_past_the_fetch_limit_and_carries_on(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    end = "2000-02-29"
    offline = offline_run(data_file, forecaster_model, START, end)
    group = f"g-{unique}"
    fc = forecaster(bootstrap_servers, topics, group, tmp_path)
    with (
        running(fc),
        Progress(bootstrap_servers) as progress,
        admin_client(bootstrap_servers) as admin,
    ):
        raise_record_limit(admin, topics.observations)
        fc.wait_ready()
        producer = KafkaProducer(bootstrap_servers=bootstrap_servers, max_request_size=BIG * 2)
        producer.send(topics.observations, big_value(), b"silso").get(30)
        producer.close()
        finish(replay_range(bootstrap_servers, topics, data_file.path, tmp_path, START, end))
        progress.wait_finished(group, topics, offline.observations + 1, 60, fc)
        forecasts, evaluations = read_results(bootstrap_servers, topics)
        dead = read_topic(bootstrap_servers, topics.dead_letter, expected=1)
        assert fc.terminate() == 0
    assert_matches(offline, forecasts, evaluations)
    assert_cut_dead_letter(dead)
