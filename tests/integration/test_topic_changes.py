"""Topics changed by an administrator while the services run, on the real broker.

Each test makes changes with an admin client while a forecaster or a classifier runs, one after
the other, then asserts the outcome the table of docs/guarantees.md promises: where the service carries on,
every day is forecast and scored exactly once, judged against the uninterrupted run computed
offline (tests.integration.offline); where it stops, exit code 8 and the one line that names
the topic and what to do; while a condition lasts, the reason on /readyz; never a record
skipped without a word (a dead letter, a counted line).

The test broker keeps Kafka's default `auto.create.topics.enable=true`: a service that asked
about a deleted topic would have it created again with the broker's defaults, so these tests
also show that the services never do (sunspots.kafka.clients, sunspots.kafka.compat.no_auto_create).
A changelog created again "wrongly" (one partition, not compacted) stands for what another
client's request makes of it on such a broker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kafka import KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic
from kafka.errors import KafkaError

from sunspots.domain.artifact import MODELS_DIR, load_forecaster
from sunspots.kafka.settings import Topics
from sunspots.kafka.topics import main as topics_main
from sunspots.lifecycle import records as registry
from support import http
from support.polling import wait_for
from support.run_progress import Progress
from support.run_topics import read_to_end, read_topic, topic_flags, unique_topics, values
from support.services import Service, consumer, forecaster, replay_range, running
from tests.integration.offline import OfflineRun, assert_matches, offline_run

COUNT = 4  # series silso-0..3: with 3 partitions every one of them maps to partition 1 or 2
START, MIDDLE, LATER, END = "2000-01-01", "2000-03-31", "2000-05-31", "2000-07-31"
BIG = 3 * 1024 * 1024  # a record past the consumers' 1 MiB fetch per partition
W27 = MODELS_DIR / "sunspot_lstm_w27.json"


# --- helpers ------------------------------------------------------------------------------


@contextmanager
def admin_client(bootstrap: str) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        yield admin
    finally:
        admin.close()


def describe(admin: KafkaAdminClient, topic: str) -> tuple[int, str | None]:
    """The topic's partitions and id now; (0, None) when it does not exist."""
    (found,) = admin.describe_topics([topic])
    if found["error_code"] != 0:
        return 0, None
    return len(found["partitions"]), found["topic_id"]


def partitions(admin: KafkaAdminClient, topic: str) -> int:
    return describe(admin, topic)[0]


def delete(admin: KafkaAdminClient, topic: str) -> str | None:
    """Delete a topic; its id before, once the brokers no longer describe it."""
    _, before = describe(admin, topic)
    admin.delete_topics([topic])
    wait_for(f"{topic} to be deleted", lambda: partitions(admin, topic) == 0, 30)
    return before


def create_again(admin: KafkaAdminClient, topic: str, old_id: str | None, count: int) -> None:
    """Create a deleted topic again with `count` partitions and the broker's defaults (what
    an auto-created topic gets), unless the service did first."""

    def created() -> bool:
        n, topic_id = describe(admin, topic)
        if n and topic_id != old_id:
            return True
        try:
            admin.create_topics([NewTopic(topic, count, 1)])
        except KafkaError:
            return False  # still being deleted, or just created by the service
        return True

    wait_for(f"{topic} created again", created, 30)


def replay(bootstrap: str, topics: Topics, data: Path, log_dir: Path, end: str, *extra: str):
    """The test's replay of COUNT series from START to `end`, as fast as the broker takes it;
    with `--resume`, only the days after those already on the topic."""
    series = ["--series-count", str(COUNT)]
    return replay_range(bootstrap, topics, data, log_dir, START, end, 0, *series, *extra)


def finish(service: Service, timeout: float = 60.0) -> None:
    """Run the producer to its end; raise with its log unless it exits 0."""
    code = service.start().wait(timeout)
    assert code == 0, service.log()


def log_count(service: Service, text: str) -> int:
    return service.log(tail=10**7).count(text)


def changes(service: Service, topic: str, change: str) -> float:
    return http.sample(
        service.metrics(), "sunspot_consumer_topic_changes_total", topic=topic, change=change
    )


def observations(data_file, model, end: str) -> int:
    return offline_run(data_file, model, START, end, count=COUNT).observations


def after(bootstrap: str, topic: str, marks: dict[int, int]) -> list[dict]:
    """The committed records of `topic` past `marks` (partition -> offset), decoded."""
    records = read_to_end(bootstrap, topic)
    return values([r for r in records if r.offset >= marks.get(r.partition, 0)])


def big_value() -> bytes:
    return b'{"x": "' + b"a" * BIG + b'"}'


def raise_record_limit(admin: KafkaAdminClient, topic: str) -> None:
    limit = {"max.message.bytes": str(4 * 1024 * 1024)}
    resource = ConfigResource(ConfigResourceType.TOPIC, topic, configs=limit)
    admin.alter_configs([resource], raise_on_unknown=False)


def assert_cut_dead_letter(dead: list) -> None:
    """One dead letter `oversized`, kept cut, with the record's full size in a header."""
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["reason"] == "oversized"
    assert int(headers["original_value_bytes"]) == len(big_value())
    assert len(dead[0].value) == 64 * 1024


def wait_reason(service: Service, reason: str) -> None:
    """/readyz answers 503 with `reason` in its body."""

    def probe() -> bool:
        status, body = service.get("/readyz")
        return status == 503 and reason in body

    wait_for(f"/readyz to say {reason!r}", probe, 30)


def wait_ready(service: Service) -> None:
    wait_for("/readyz 200", lambda: service.get("/readyz")[0] == 200, 60)


def publish_champion(bootstrap: str, topic: str, artifact: Path) -> str:
    """A champion record of `artifact` on the models topic; its model version."""
    meta, weights = artifact.read_text(), artifact.with_suffix(".npz").read_bytes()
    record = registry.make_record("champion", meta, weights, "test@host")
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024)
    producer.send(topic, registry.encode(record), b"champion").get(30)
    producer.close()
    return load_forecaster(artifact).model_version


# --- the forecaster carries on ------------------------------------------------------------


def test_forecaster_carries_on_through_added_partitions_and_deleted_outputs_and_changelog(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    """One forecaster (--create-topics true) meets, between replays: partitions added to its
    changelog (it continues) and to its observations (it grows the changelog; each series'
    later records arrive on a new partition and its state follows); its forecasts topic
    deleted (created again); its changelog deleted and created again as a broker's auto-create
    would (one partition, not compacted: put right, every state written to it again, even
    with no record arriving); a restart from that changelog; its models topic deleted (the
    model in place keeps serving) and a champion published on the new one (it serves).
    Every day is scored exactly once and every forecast made after the forecasts topic came
    back is there exactly once."""
    topics = create_topics(unique_topics(unique), partitions=1)
    group = f"g-{unique}"
    offline = offline_run(data_file, forecaster_model, START, END, count=COUNT)
    fc = forecaster(bootstrap_servers, topics, group, tmp_path)
    feed = (bootstrap_servers, topics, data_file.path, tmp_path)
    with (
        running(fc),
        Progress(bootstrap_servers) as progress,
        admin_client(bootstrap_servers) as admin,
    ):
        fc.wait_ready()
        finish(replay(*feed, MIDDLE))
        progress.wait_finished(
            group, topics, observations(data_file, forecaster_model, MIDDLE), 60, fc
        )
        admin.create_partitions({topics.state: 2})  # more than it needs: nothing to do
        admin.create_partitions({topics.observations: 3})
        wait_for("the changelog grown to 3", lambda: partitions(admin, topics.state) == 3, 30)
        wait_for("partitions 1, 2 restored", lambda: "assigned: [1, 2]" in fc.log(10**7), 30)

        delete(admin, topics.forecasts)
        wait_for("forecasts created again", lambda: partitions(admin, topics.forecasts) == 3, 30)
        finish(replay(*feed, LATER, "--resume"))
        progress.wait_finished(
            group, topics, observations(data_file, forecaster_model, LATER), 60, fc
        )

        old = delete(admin, topics.state)
        create_again(admin, topics.state, old, 1)
        wait_for(
            "every series written again to the changelog",
            lambda: len({r.key for r in read_to_end(bootstrap_servers, topics.state)}) == COUNT,
            30,
        )
        state_partitions = partitions(admin, topics.state)
        policy = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topics.state, {"cleanup.policy": None})],
            config_filter="all",
        )["topic"][topics.state]["cleanup.policy"]["value"]
        rewritten = http.sample(fc.metrics(), "sunspot_consumer_rewritten_states_total")
        assert fc.terminate() == 0
        fc.start().wait_ready()  # restored from the changelog written again
        finish(replay(*feed, END, "--resume"))
        progress.wait_finished(group, topics, offline.observations, 60, fc)
        evaluations = values(read_to_end(bootstrap_servers, topics.evaluations))
        forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
        keys = {r.key.decode() for r in read_topic(bootstrap_servers, topics.observations)}
        # None: no day sent twice by the resumed replays, none applied out of order.
        dead = read_to_end(bootstrap_servers, topics.dead_letter)

        delete(admin, topics.models)
        wait_for("the models topic back", lambda: partitions(admin, topics.models) == 1, 30)
        wait_for(
            "the follower restarted", lambda: "followed from its beginning" in fc.log(10**7), 30
        )
        version = publish_champion(bootstrap_servers, topics.models, W27)
        wait_for(
            f"{version} serving",
            lambda: (
                http.sample(
                    fc.metrics(), "sunspot_model_info", model_version=version, role="champion"
                )
                == 1
            ),
            30,
        )
        assert fc.get("/readyz")[0] == 200
        added = changes(fc, topics.observations, "partitions_added")
        assert fc.terminate() == 0
    since = {k: v for k, v in offline.forecasts.items() if v["window_end"] > MIDDLE}
    assert_matches(
        OfflineRun(offline.observations, since, offline.evaluations), forecasts, evaluations
    )
    assert len(keys) == COUNT and dead == []
    assert state_partitions == 3 and policy == "compact"
    assert rewritten == COUNT
    log = fc.log(10**7)
    assert log.count("grew from 1 to 3 partitions while the service ran") == 1
    assert log.count(f"the state changelog {topics.state} lost the states it held") == 1
    assert log.count(f"topic {topics.forecasts}: it did not exist (a topic it writes") == 1
    assert added == 0  # counted by the first run, before the restart
    assert "Traceback" not in log


@pytest.mark.fault
def test_changelog_deleted_in_the_middle_of_a_transaction_loses_and_repeats_nothing(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    """The changelog deleted while a batch's transaction writes to it: the commit cannot
    finish (20 s, the step's limit), the batch is rewound with the states held as they were
    at the last commit (not read back from a changelog that lost them), the changelog is
    created again and every state written to it; every day is forecast and scored once."""
    topics = create_topics(unique_topics(unique), partitions=2)
    group = f"g-{unique}"
    offline = offline_run(data_file, forecaster_model, START, END, count=COUNT)
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, "--max-poll-records", "20")
    slow = replay_range(
        bootstrap_servers,
        topics,
        data_file.path,
        tmp_path,
        START,
        END,
        40,
        "--series-count",
        str(COUNT),
    )
    with (
        running(fc),
        running(slow),
        Progress(bootstrap_servers) as progress,
        admin_client(bootstrap_servers) as admin,
    ):
        fc.wait_ready()
        progress.wait_consumed(group, topics.observations, offline.observations // 4, 60, fc)
        delete(admin, topics.state)
        assert slow.wait(120) == 0, slow.log()
        progress.wait_finished(group, topics, offline.observations, 120, fc)
        evaluations = values(read_to_end(bootstrap_servers, topics.evaluations))
        forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
        state = {r.key for r in read_to_end(bootstrap_servers, topics.state)}
        assert fc.terminate() == 0
    assert_matches(offline, forecasts, evaluations)
    assert len(state) == COUNT
    log = fc.log(10**7)
    assert "the states held are kept (the changelog lost them)" in log, log
    assert log.count(f"the state changelog {topics.state} lost the states it held") == 1


def test_moved_series_start_afresh_on_the_instance_that_holds_their_new_partition(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    """Two instances, one partition (b stands by); partitions added: b takes new ones, and
    each series whose key now maps there starts afresh on b, counted and told once: its first
    window - 1 days there have no forecast (its window fills again), every other forecast is
    there once, with the offline value; the series that stay with a lose nothing."""
    topics = create_topics(unique_topics(unique), partitions=1)
    group = f"g-{unique}"
    offline = offline_run(data_file, forecaster_model, START, LATER, count=COUNT)
    every = ("--series-metrics", "all")  # b's series, named on its /metrics
    a = forecaster(bootstrap_servers, topics, group, tmp_path, *every, instance="a")
    b = forecaster(bootstrap_servers, topics, group, tmp_path, *every, instance="b")
    feed = (bootstrap_servers, topics, data_file.path, tmp_path)
    with (
        running(a),
        Progress(bootstrap_servers) as progress,
        admin_client(bootstrap_servers) as admin,
    ):
        a.wait_ready()  # a holds the one partition, b joins as a standby
        with running(b):
            wait_for("b to join", lambda: "the models topic" in b.log(10**7), 60)
            finish(replay(*feed, MIDDLE))
            first = observations(data_file, forecaster_model, MIDDLE)
            progress.wait_finished(group, topics, first, 60, a)
            admin.create_partitions({topics.observations: 3})
            wait_for("b assigned a partition", lambda: "partitions assigned" in b.log(10**7), 60)
            finish(replay(*feed, LATER, "--resume"))
            progress.wait_finished(group, topics, offline.observations, 60, a, b)
            forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
            samples = b.metrics()
            assert a.terminate() == 0 and b.terminate() == 0
    on_b = {
        dict(labels)["series"]
        for name, labels in samples
        if name == "sunspot_series_observations_total"
    }
    assert on_b, "b took no series: the test proves nothing"
    assert http.sample(samples, "sunspot_consumer_moved_series_total") == len(on_b)
    assert b.log(10**7).count("started afresh here") == 1
    made = {(f["series"], f["target_date"]): f for f in forecasts}
    assert len(made) == len(forecasts)  # none twice
    for series in (f"silso-{i}" for i in range(COUNT)):
        want = sorted(
            ((k, v) for k, v in offline.forecasts.items() if k[0] == series),
            key=lambda kv: kv[1]["window_end"],
        )
        if series in on_b:
            later = [kv for kv in want if kv[1]["window_end"] > MIDDLE]
            refilling = {k for k, _ in later[: forecaster_model.window - 1]}
            want = [kv for kv in want if kv[0] not in refilling]
        assert {k for k, _ in want} == {k for k in made if k[0] == series}, series
        for key, expected in want:
            assert made[key]["forecast"] == pytest.approx(expected["forecast"], abs=1e-4), key


# --- the forecaster stops where it may not mend ---------------------------------------------


def test_without_create_topics_a_change_it_may_not_mend_stops_with_exit_8(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    """Without --create-topics: partitions added to the observations stop the forecaster with
    exit code 8 and one line naming both topics, both counts and the command that fixes it;
    that command (`sunspots-topics --partitions 3`) grows every topic, and the forecaster
    runs again; an output topic deleted stops it with exit code 8, naming the topic."""
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
        assert partitions(admin, topics.state) == 3 and partitions(admin, topics.forecasts) == 3
        assert partitions(admin, topics.dead_letter) == 1  # one partition by its spec
        fc.start().wait_ready()
        delete(admin, topics.evaluations)
        assert fc.wait(60) == 8
        assert log_count(fc, f"topic {topics.evaluations} does not exist (a topic it writes") == 1
        assert partitions(admin, topics.evaluations) == 0  # not created again by asking


# --- the input topic: records deleted, a record past the limits, the topic deleted ----------


def test_forecaster_tells_unread_records_dead_letters_a_huge_one_and_waits_out_a_deleted_input(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    """A 3 MiB observation (the topic takes 4 MiB) is a dead letter, kept cut, and the replay
    after it is forecast as offline. Records deleted before they were read (delete_records past
    the group's offset while it was stopped): one line with the offsets and the count, counted,
    and the rest is read. The observations topic deleted: /readyz says so while it lasts, told
    once; created again and replayed, it is read from its beginning and the states of the
    earlier topic are dropped (one line, counted), so every day is forecast once again."""
    topics = create_topics(unique_topics(unique), partitions=2)
    group = f"g-{unique}"
    first = offline_run(data_file, forecaster_model, START, MIDDLE, count=COUNT)
    fc = forecaster(bootstrap_servers, topics, group, tmp_path)
    feed = (bootstrap_servers, topics, data_file.path, tmp_path)
    with (
        running(fc),
        Progress(bootstrap_servers) as progress,
        admin_client(bootstrap_servers) as admin,
    ):
        raise_record_limit(admin, topics.observations)
        fc.wait_ready()
        producer = KafkaProducer(bootstrap_servers=bootstrap_servers, max_request_size=BIG * 2)
        producer.send(topics.observations, big_value(), b"silso-0").get(30)
        producer.close()
        finish(replay(*feed, MIDDLE))
        progress.wait_finished(group, topics, first.observations + 1, 60, fc)
        evaluations = values(read_to_end(bootstrap_servers, topics.evaluations))
        forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
        dead = read_to_end(bootstrap_servers, topics.dead_letter)
        assert_matches(first, forecasts, evaluations)
        assert_cut_dead_letter(dead)

        assert fc.terminate() == 0
        finish(replay(*feed, LATER, "--resume"))
        tp = TopicPartition(topics.observations, 0)
        committed = admin.list_group_offsets(group)[group][tp].offset
        admin.delete_records({tp: committed + 7})
        fc.start().wait_ready()
        total = sum(progress.partition_ends(topics.observations).values())
        progress.wait_finished(group, topics, total, 60, fc)
        unread = http.sample(
            fc.metrics(), "sunspot_consumer_unread_records_total", topic=topics.observations
        )
        assert unread == 7
        assert log_count(fc, "7 records were deleted before they were read") == 1
        assert f"the next offset to read was {committed}" in fc.log(10**7)

        marks = {t: progress.partition_ends(t) for t in (topics.forecasts, topics.evaluations)}
        old = delete(admin, topics.observations)
        reason = f"topic {topics.observations} does not exist"
        wait_reason(fc, reason)
        time.sleep(3)  # the window in which a flood of lines would show
        create_again(admin, topics.observations, old, 2)
        wait_ready(fc)
        finish(replay(*feed, MIDDLE))
        progress.wait_finished(group, topics, first.observations, 60, fc)
        again = (
            after(bootstrap_servers, topics.forecasts, marks[topics.forecasts]),
            after(bootstrap_servers, topics.evaluations, marks[topics.evaluations]),
        )
        stale = http.sample(fc.metrics(), "sunspot_consumer_stale_states_total")
        assert fc.terminate() == 0
    assert_matches(first, *again)
    assert stale == COUNT
    log = fc.log(10**7)
    assert log.count(f"topic {topics.observations} does not exist (deleted while") == 1
    assert log.count("series states on the changelog belonged to an earlier topic") == 1


# --- the classifier -----------------------------------------------------------------------


def test_classifier_through_added_partitions_a_huge_request_and_its_requests_deleted(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    """Partitions added to the requests: answered on every partition. A 3 MiB request is a
    dead letter, kept cut, and the next one is answered. The requests topic deleted: /readyz
    says so while it lasts; created again, its requests are answered."""
    topics = create_topics(unique_topics(unique), partitions=1)
    requests = topics.classifier_requests
    clf = consumer("classify", bootstrap_servers, topics, f"c-{unique}", tmp_path / "clf.log")
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, max_request_size=BIG * 2)

    def ask(name: str, partition: int | None = None) -> None:
        request = json.dumps({"id": name, "sequence": [0, 0, 0, 0, 1, 1]}).encode()
        producer.send(requests, request, name.encode(), partition=partition).get(30)

    with running(clf), admin_client(bootstrap_servers) as admin:
        raise_record_limit(admin, requests)
        clf.wait_ready()
        admin.create_partitions({requests: 3})
        wait_for("partitions 1, 2 assigned", lambda: "assigned: [1, 2]" in clf.log(10**7), 30)
        for i in range(12):
            ask(f"r{i}")
        producer.send(requests, big_value(), b"big", partition=0).get(30)
        ask("after", 0)
        answers = read_topic(bootstrap_servers, topics.classifier_predictions, expected=13)
        dead = read_topic(bootstrap_servers, topics.dead_letter, expected=1)

        old = delete(admin, requests)
        wait_reason(clf, f"topic {requests} does not exist")
        create_again(admin, requests, old, 1)
        wait_ready(clf)
        ask("again", 0)  # the producer still counts 3 partitions: the new topic has 1
        wait_for(
            "the request to the new topic answered",
            lambda: any(
                r.key == b"again"
                for r in read_to_end(bootstrap_servers, topics.classifier_predictions)
            ),
            60,
        )
        assert clf.terminate() == 0
    producer.close()
    assert {r.key.decode() for r in answers} == {f"r{i}" for i in range(12)} | {"after"}
    assert_cut_dead_letter(dead)
    assert log_count(clf, f"topic {requests} does not exist (deleted while") == 1
