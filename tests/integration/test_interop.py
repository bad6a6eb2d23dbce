"""Producers and readers the project did not write, against its services on the real broker.

librdkafka (kcat) writes observations and classifier requests in every codec Kafka has, Kafka's
own Java client (tests/interop/KafkaInterop.java) writes them in zstd with idempotence, and the
project's own producers (the replay, the classifier client) write them with each
`--compression-type`. One forecaster and one classifier, shared by the module, read them all:
every day is forecast once and scored once with the values of the offline run, every request
is answered once with its class. Every batch is looked up on the broker, so each producer is
shown to have written the codec it was asked for and the services to have read it. The
services' outputs (the forecaster's in zstd by its flag, the classifier's in gzip by
KAFKA_COMPRESSION_TYPE), read read_committed by kcat and by the Java consumer, equal what the
project's own reader reads; so do the model commands' records, each in the codec it was told.
"""

from __future__ import annotations

import json
import math
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator
from kafka.admin import KafkaAdminClient

from producer.classify import exchange
from producer.replay import ReplayConfig, Replayer
from sunspots.domain import lesson
from sunspots.domain.data import load_daily, select_range
from sunspots.kafka.codecs import COMPRESSION_TYPES
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.kafka.topics import create_topics
from support.logdirs import StoredBatch, stored_batches
from support.polling import wait_for
from support.run_progress import Progress
from support.run_topics import read_results, read_to_end, unique_topics, values
from support.services import REPO, Service, consumer, forecaster
from tests.integration.interop import (
    NULL,
    java_produce,
    java_read,
    kcat_produce,
    kcat_read,
    project_read,
    require_tools,
)
from tests.integration.offline import OfflineRun, assert_matches, combined, offline_run
from tests.integration.test_models_topic import W27, command

# 15 days a series: with the model's 10-day window, 6 forecasts of which 5 are scored.
START, END, DAYS = "2014-01-01", "2014-01-15", 15
PARTITIONS = 3
FORECASTER_CODEC, CLASSIFIER_CODEC = "zstd", "gzip"  # the services' outputs
JAVA_CODEC = "zstd"
# Each writer's requests: the lesson's sequences five times over, so that each writer's keys
# put several in a partition's batch (a producer keeps a batch uncompressed where its codec
# would not make it smaller: one or two small records).
SEQUENCES = lesson.SEQUENCES * 5
CLASSES = lesson.CLASSES * 5
# A batch of at least this many records of one writer is in the writer's codec.
SEVERAL = 4
OBSERVATION = Draft202012Validator(json.loads((REPO / "schemas/observation.json").read_text()))
REQUEST = Draft202012Validator(json.loads((REPO / "schemas/classifier-request.json").read_text()))


def name(writer: str, codec: str) -> str:
    """The series, and the prefix of the request ids, that `writer` sends in `codec`."""
    return f"{writer}-{codec}"


@dataclass
class Run:
    """What the module's services were sent and what they committed."""

    bootstrap: str
    topics: Topics
    offline: dict[str, OfflineRun]  # series -> what the forecaster must publish for it
    requests: dict[str, int]  # request id -> the class it must get
    client_ids: dict[str, str]  # the classifier clients' request ids -> client-<codec>
    forecasts: list[dict]
    evaluations: list[dict]
    predictions: list[dict]

    def batches(self, topic: str) -> list[StoredBatch]:
        return stored_batches(self.bootstrap, topic)


def observations(frame, series: str) -> list[tuple[str, str]]:
    """(key, JSON value) of each day of `frame`, written by hand to the published schema."""
    records = []
    for day, value, std, count, provisional in zip(
        frame["date"].dt.date,
        frame["sunspot_number"],
        frame["std_dev"],
        frame["observations"],
        frame["provisional"],
        strict=True,
    ):
        record = {
            "schema_version": 1,
            "series": series,
            "date": day.isoformat(),
            "sunspot_number": float(value),
            "std_dev": None if math.isnan(std) else float(std),
            "observations": int(count),
            "provisional": bool(provisional),
        }
        OBSERVATION.validate(record)
        records.append((series, json.dumps(record, separators=(",", ":"))))
    return records


def requests(prefix: str) -> list[tuple[str, str]]:
    """(key, JSON value) of a request for each of `SEQUENCES`, ids `<prefix>-<i>`."""
    records = []
    for i, sequence in enumerate(SEQUENCES):
        request = {"id": f"{prefix}-{i}", "sequence": sequence}
        REQUEST.validate(request)
        records.append((request["id"], json.dumps(request)))
    return records


def _services(bootstrap: str, topics: Topics, token: str, log_dir: Path) -> list[Service]:
    """The forecaster, writing zstd by its flag, and the classifier, gzip by its variable."""
    fc = forecaster(
        bootstrap, topics, f"interop-{token}", log_dir, "--compression-type", FORECASTER_CODEC
    )
    cl = consumer(
        "classify",
        bootstrap,
        topics,
        f"interop-cl-{token}",
        log_dir / "classifier.log",
        instance_id=f"interop-cl-{token}",
        env={"KAFKA_COMPRESSION_TYPE": CLASSIFIER_CODEC},
    )
    return [fc, cl]


def _replay(kafka: KafkaSettings, data: Path, codec: str) -> None:
    """The replay producer (what `sunspots-producer --compression-type <codec>` runs once its
    flags are read) sends its own series, in this process."""
    config = ReplayConfig(str(data), START, END, series=name("replay", codec))
    with_codec = replace(kafka, compression_type=codec)
    assert Replayer(with_codec, config, threading.Event()).run().ok


def _ask(kafka: KafkaSettings, codec: str) -> dict[str, str]:
    """The classifier client (what `sunspots-producer classify --compression-type <codec>`
    runs) asks its requests, in this process: each answered once, with its lesson class.
    Returns its request ids -> client-<codec>."""
    writer = name("client", codec)
    asked = [(f"{writer}-{i}", sequence) for i, sequence in enumerate(SEQUENCES)]
    result = exchange(replace(kafka, compression_type=codec), asked, timeout=120)
    assert not result.missing and result.duplicates == 0, writer
    assert [result.answers[i].predicted_class for i, _ in asked] == CLASSES
    return dict.fromkeys(result.answers, writer)


def _send(kafka: KafkaSettings, frame, data: Path) -> dict[str, str]:
    """Every writer's observations and requests; the slow ones (the Java client's start, the
    clients that wait for their answers) in threads beside the rest. Returns the classifier
    clients' request ids -> client-<codec>."""
    topics, bootstrap = kafka.topics, kafka.bootstrap_servers
    java = name("java", JAVA_CODEC)
    java_records = [(topics.observations, *r) for r in observations(frame, java)]
    java_records += [(topics.classifier_requests, *r) for r in requests(java)]
    with ThreadPoolExecutor(max_workers=1 + len(COMPRESSION_TYPES)) as pool:
        java_sent = pool.submit(java_produce, bootstrap, java_records, JAVA_CODEC)
        asked = [pool.submit(_ask, kafka, codec) for codec in COMPRESSION_TYPES]
        for codec in COMPRESSION_TYPES:
            kcat = name("kcat", codec)
            kcat_produce(bootstrap, topics.observations, observations(frame, kcat), codec)
            kcat_produce(bootstrap, topics.classifier_requests, requests(kcat), codec)
            _replay(kafka, data, codec)
        java_sent.result()
        return {i: writer for future in asked for i, writer in future.result().items()}


def _wait_committed(kafka: KafkaSettings, services: list[Service], groups, count: int) -> None:
    """Until the forecaster has committed all `count` series' days and the classifier all
    their requests, and no transaction is open on their outputs."""
    fc, cl = services
    topics = kafka.topics
    with Progress(kafka.bootstrap_servers) as progress:
        progress.wait_finished(groups[0], topics, count * DAYS, 120, fc)
        requests_sent = count * len(SEQUENCES)
        progress.wait_consumed(groups[1], topics.classifier_requests, requests_sent, 120, cl)
        wait_for(
            "the classifier's last commit to reach the predictions",
            lambda: progress.ends(topics.classifier_predictions).open == 0,
            60,
        )


@pytest.fixture(scope="module")
def run(bootstrap_servers: str, data_file, forecaster_model, tmp_path_factory) -> Iterator[Run]:
    require_tools()
    token = uuid.uuid4().hex[:10]
    kafka = KafkaSettings(bootstrap_servers, unique_topics(token))
    made = create_topics(kafka, PARTITIONS)
    services = _services(bootstrap_servers, kafka.topics, token, tmp_path_factory.mktemp("interop"))
    frame = select_range(load_daily(data_file.path), START, END)
    assert len(frame) == DAYS
    try:
        for service in services:
            service.start()  # they get ready while the records are sent
        client_ids = _send(kafka, frame, data_file.path)
        writers = len(COMPRESSION_TYPES) * 2 + 1  # kcat and the project's in each codec, Java
        groups = (f"interop-{token}", f"interop-cl-{token}")
        _wait_committed(kafka, services, groups, writers)
        forecasts, evaluations = read_results(bootstrap_servers, kafka.topics)
        predictions = values(read_to_end(bootstrap_servers, kafka.topics.classifier_predictions))
        for service in services:
            assert service.terminate() == 0, service.log()
        series = [name(w, c) for w in ("kcat", "replay") for c in COMPRESSION_TYPES]
        series.append(name("java", JAVA_CODEC))
        foreign = [name("kcat", c) for c in COMPRESSION_TYPES] + [name("java", JAVA_CODEC)]
        yield Run(
            bootstrap_servers,
            kafka.topics,
            {s: offline_run(data_file, forecaster_model, START, END, series=s) for s in series},
            {f"{w}-{i}": cls for w in foreign for i, cls in enumerate(CLASSES)},
            client_ids,
            forecasts,
            evaluations,
            predictions,
        )
    finally:
        for service in services:
            service.stop()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
        admin.delete_topics(made)
        admin.close()


def _assert_forecast_once(run: Run, series: list[str]) -> None:
    """Every day of these series forecast once and scored once, with the offline values."""
    wanted = set(series)
    assert_matches(
        combined([run.offline[s] for s in series]),
        [f for f in run.forecasts if f["series"] in wanted],
        [e for e in run.evaluations if e["series"] in wanted],
    )


def _each_in_its_codec(batches: list[StoredBatch], writer_of: dict[str, str]) -> None:
    """Every batch of `SEVERAL` or more records of one writer (`<who>-<codec>`, by the record
    keys it wrote) is stored in the writer's codec, and every writer has such a batch."""
    writers = set(writer_of.values())
    codecs: dict[str, set[str]] = defaultdict(set)
    for batch in batches:
        owners = {writer_of.get(key.decode()) if key else None for key in batch.keys}
        if len(batch.keys) >= SEVERAL and owners <= writers:
            (owner,) = owners  # one producer's batch
            codecs[owner].add(batch.codec)
    assert codecs == {w: {w.split("-")[1]} for w in writers}


def test_kcat_writes_every_codec_and_every_day_is_forecast_and_scored_once(run: Run) -> None:
    series = [name("kcat", codec) for codec in COMPRESSION_TYPES]
    _assert_forecast_once(run, series)
    _each_in_its_codec(run.batches(run.topics.observations), {s: s for s in series})


def test_the_java_client_writes_zstd_idempotent_and_every_day_is_forecast_once(run: Run) -> None:
    java = name("java", JAVA_CODEC)
    _assert_forecast_once(run, [java])
    batches = run.batches(run.topics.observations)
    _each_in_its_codec(batches, {java: java})
    # Idempotence: the broker gave the Java producer an id; kcat, not idempotent, has none.
    ids = {b.producer_id for b in batches if java.encode() in b.keys}
    assert ids and all(i >= 0 for i in ids)
    kcat = name("kcat", "lz4").encode()
    assert {b.producer_id for b in batches if kcat in b.keys} == {-1}


def test_every_foreign_request_is_answered_once_with_its_class(run: Run) -> None:
    answers = Counter(p["id"] for p in run.predictions)
    sent = {**run.requests, **dict.fromkeys(run.client_ids, 0)}
    assert set(answers) == set(sent) and set(answers.values()) == {1}
    for p in run.predictions:
        if p["id"] in run.requests:
            assert p["predicted_class"] == run.requests[p["id"]], p
    writers = {request_id: request_id.rsplit("-", 1)[0] for request_id in run.requests}
    _each_in_its_codec(run.batches(run.topics.classifier_requests), writers)


def test_the_projects_producers_write_each_codec_and_kcat_reads_it(run: Run) -> None:
    series = [name("replay", codec) for codec in COMPRESSION_TYPES]
    _assert_forecast_once(run, series)
    _each_in_its_codec(run.batches(run.topics.observations), {s: s for s in series})
    # The classifier clients' requests; their answers were checked from their output.
    _each_in_its_codec(run.batches(run.topics.classifier_requests), run.client_ids)
    sent = {
        run.topics.observations: sum(r.observations for r in run.offline.values()),
        run.topics.classifier_requests: len(run.requests) + len(run.client_ids),
    }
    for topic, count in sent.items():
        read = kcat_read(run.bootstrap, topic)
        assert len(read) == count and read == project_read(run.bootstrap, topic), topic


def test_outputs_read_committed_by_kcat_and_java_equal_the_projects_reader(run: Run) -> None:
    topics = run.topics
    outputs = {
        topics.forecasts: FORECASTER_CODEC,
        topics.evaluations: FORECASTER_CODEC,
        topics.classifier_predictions: CLASSIFIER_CODEC,
    }
    by_java = java_read(run.bootstrap, *outputs)
    for topic, codec in outputs.items():
        ours = project_read(run.bootstrap, topic)
        assert ours and all(NULL not in (key, value) for _, _, _, key, value in ours)
        assert kcat_read(run.bootstrap, topic) == ours, f"kcat on {topic}"
        assert by_java[topic] == ours, f"the Java consumer on {topic}"
        # Written in the service's codec: kafka-python keeps a batch uncompressed only when the
        # codec would not make it smaller, which a batch of several records always is.
        several = [b for b in run.batches(topic) if not b.control and len(b.keys) > 1]
        assert several and {b.codec for b in several} == {codec}, topic


def test_the_model_commands_write_the_codec_they_are_told_and_kcat_reads_it(
    bootstrap_servers: str, create_topics, unique: str
) -> None:
    require_tools()
    kafka = KafkaSettings(bootstrap_servers, create_topics(unique_topics(unique)))
    for args in (
        ("publish", str(W27), "--role", "challenger", "--compression-type", "zstd"),
        ("promote", "--compression-type", "gzip"),
    ):
        done = command(kafka, *args)
        assert done.returncode == 0, done.stderr
    topic = kafka.topics.models
    read = kcat_read(bootstrap_servers, topic)
    assert read == project_read(bootstrap_servers, topic)
    # The challenger; then, in one transaction, the same model as champion and the
    # challenger's tombstone.
    assert [(key, value == NULL) for *_, key, value in read] == [
        ("challenger", False),
        ("champion", False),
        ("challenger", True),
    ]
    written = [(b.codec, b.keys) for b in stored_batches(bootstrap_servers, topic) if not b.control]
    assert written[0] == ("zstd", (b"challenger",))
    # The champion's batch; the tombstone may follow in a batch of its own, which no codec
    # makes smaller, so it stays uncompressed.
    assert written[1][0] == "gzip" and written[1][1][0] == b"champion"
