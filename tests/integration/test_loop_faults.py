"""No silent stall, on the real broker: a client stuck inside poll, a partition that stops
progressing, a batch the client cannot read.

Each service runs as users run it, with one fault in its Kafka client (`support.client_faults`:
the test entry point that wraps kafka-python, never a production flag), and short bounds
(`--stall-timeout`, `--stall-limit`, `--shutdown-grace` of seconds) so that each test takes
seconds. What is checked is what an operator sees: the log line, /readyz, /metrics, the exit
code, and the group's committed offsets on the broker.
"""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from kafka import KafkaProducer

from consumer.stops import EXIT_INPUT, EXIT_STALLED
from sunspots.kafka.settings import Topics
from support.http import sample
from support.polling import wait_for
from support.run_progress import Progress
from support.run_topics import unique_topics
from support.services import Service, consumer, running

pytestmark = pytest.mark.fault

GRACE_S = 3


def _send(bootstrap: str, topic: str, partition: int, count: int) -> None:
    """`count` records onto one partition, acknowledged (plain bytes: any record is progress,
    a dead letter included)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(count):
        producer.send(topic, key=f"k{i}".encode(), value=b"not json", partition=partition)
    producer.flush()
    producer.close()


def _service(
    mode: str, bootstrap: str, topics: Topics, group: str, tmp_path: Path, fault: str, *flags: str
) -> Service:
    log_path = tmp_path / f"{mode}.log"
    return consumer(mode, bootstrap, topics, group, log_path, *flags, fault=fault)


def _lines(service: Service, text: str) -> list[str]:
    return [line for line in service.log(tail=10**7).splitlines() if text in line]


def _source(mode: str, topics: Topics) -> str:
    return topics.observations if mode == "forecast" else topics.classifier_requests


@pytest.mark.parametrize(("mode", "fault"), [("forecast", "spin@1"), ("classify", "block@1")])
def test_a_service_stuck_inside_poll_is_reported_and_ends_within_the_grace_on_sigterm(
    bootstrap_servers, create_topics, unique, tmp_path, mode: str, fault: str
) -> None:
    topics = create_topics(unique_topics(unique))
    group, source = f"g-{unique}", _source(mode, topics)
    flags = ("--shutdown-grace", str(GRACE_S), "--stall-timeout", "2")
    service = _service(mode, bootstrap_servers, topics, group, tmp_path, fault, *flags)
    with running(service), Progress(bootstrap_servers) as progress:
        service.wait_ready(90)
        _send(bootstrap_servers, source, 0, 1)
        progress.wait_consumed(group, source, 1, 60, service)
        # The poll after that batch never returns: the next record waits for ever.
        _send(bootstrap_servers, source, 0, 1)
        # The watchdog sees it from its own thread, the loop's thread being stuck in the client.
        warning = wait_for(
            "the watchdog's WARNING line",
            lambda: _lines(service, f"partition 0 of {source}: no progress for") or None,
            30,
        )
        assert "with 1 record waiting (the loop is polling)" in warning[0]
        status, body = service.get("/readyz")
        assert status == 503 and f"stalled=partition 0 of {source} (1 record waiting" in body
        sent = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        code = service.wait(GRACE_S + 20)
        took = time.monotonic() - sent
        consumed = progress.consumed(group, source)
    print(f"\n{mode} ({fault}): exit {code} {took:.1f} s after SIGTERM (grace {GRACE_S} s)")
    assert code == EXIT_STALLED, service.log()
    assert took >= GRACE_S  # it waited the grace out, as promised, before giving up
    (line,) = _lines(service, "still polling")
    assert " ERROR " in line and line.endswith(
        f"still polling {GRACE_S} s after SIGTERM; exiting without committing: the batch in "
        "hand is processed again after a restart"
    )
    assert consumed == 1  # the second record was never read, so never committed


def test_a_second_signal_ends_a_stuck_service_at_once(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    group, source = f"g-{unique}", topics.classifier_requests
    grace = 120  # far longer than the test may take: only the second signal can end it
    flags = ("--shutdown-grace", str(grace))
    service = _service("classify", bootstrap_servers, topics, group, tmp_path, "spin@1", *flags)
    with running(service), Progress(bootstrap_servers) as progress:
        service.wait_ready(90)
        _send(bootstrap_servers, source, 0, 1)
        progress.wait_consumed(group, source, 1, 60, service)  # the next poll spins
        sent = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        wait_for("the first signal to be told", lambda: _lines(service, "SIGTERM rec") or None, 30)
        service.process.send_signal(signal.SIGINT)
        code = service.wait(60)
        took = time.monotonic() - sent
    print(f"\nexit {code} {took:.1f} s after the first signal (grace {grace} s)")
    assert code == EXIT_STALLED, service.log()
    assert took < grace
    (line,) = _lines(service, "SIGINT again")
    assert " ERROR " in line and line.endswith(
        "SIGINT again while polling; exiting without committing: the batch in hand is processed "
        "again after a restart"
    )


def test_a_stalled_partition_is_reported_with_its_lag_and_ends_the_service_past_the_limit(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique), partitions=2)
    group, source = f"g-{unique}", topics.observations
    flags = ("--stall-timeout", "2", "--stall-limit", "8", "--shutdown-grace", "5")
    service = _service("forecast", bootstrap_servers, topics, group, tmp_path, "pause:1", *flags)
    with running(service), Progress(bootstrap_servers) as progress:
        service.wait_ready(90)
        _send(bootstrap_servers, source, 0, 4)
        _send(bootstrap_servers, source, 1, 7)  # partition 1 is paused in the client
        progress.wait_consumed(group, source, 4, 60, service)
        wait_for(
            "the WARNING line for partition 1",
            lambda: _lines(service, f"partition 1 of {source}: no progress for") or None,
            30,
        )
        metrics = service.metrics()
        status, body = service.get("/readyz")
        waiting = progress.ends(source).committed - progress.consumed(group, source)
        code = service.wait(60)
    (warning,) = _lines(service, f"WARNING consumer.watchdog: partition 1 of {source}: no progr")
    # The loop keeps turning over partition 0: the line names the step it was in when told.
    turning = r"with 7 records waiting \(the loop is (polling|following the models and topics)\)"
    assert re.search(turning, warning), warning
    labels = {"topic": source}
    # The lag metric is what the broker says is waiting: 7 on partition 1, none on 0.
    assert waiting == 7
    assert sample(metrics, "sunspot_consumer_lag", partition="1", **labels) == waiting
    assert sample(metrics, "sunspot_consumer_lag", partition="0", **labels) == 0
    assert ("sunspot_consumer_lag", (("partition", "0"), ("topic", source))) in metrics
    assert sample(metrics, "sunspot_consumer_stalled", partition="1", **labels) == 1
    assert sample(metrics, "sunspot_consumer_stalled", partition="0", **labels) == 0
    assert sample(metrics, "sunspot_consumer_stalls_total") == 1
    assert status == 503 and f"stalled=partition 1 of {source} (7 records waiting" in body
    # Past the limit: one line, and the loop, alive, stops gracefully with EXIT_STALLED.
    assert code == EXIT_STALLED, service.log()
    (stopped,) = _lines(service, "stopping past the stall limit")
    assert f" ERROR consumer: partition 1 of {source}: no progress for " in stopped
    assert "with 7 records waiting while the loop was polling" in stopped
    assert _lines(service, "still polling") == []  # it ended within its grace


@pytest.mark.parametrize("fault", ["codec:snappy", "crc@3"])
def test_a_batch_the_client_cannot_decode_stops_the_service_with_where_it_is(
    bootstrap_servers, create_topics, unique, tmp_path, fault: str
) -> None:
    topics = create_topics(unique_topics(unique))
    group, source = f"g-{unique}", topics.observations
    # codec: as on an installation without python-snappy, the batch a real one by kcat; crc:
    # kafka-python's CRC check fails from offset 3 on, as on a batch damaged on the brokers.
    service = _service("forecast", bootstrap_servers, topics, group, tmp_path, fault)
    with running(service), Progress(bootstrap_servers) as progress:
        service.wait_ready(90)
        _send(bootstrap_servers, source, 0, 3)  # offsets 0-2: processed
        progress.wait_consumed(group, source, 3, 60, service)
        if fault.startswith("codec"):
            _kcat_snappy(bootstrap_servers, source, count=3)  # offsets 3-5, one snappy batch
        else:
            _send(bootstrap_servers, source, 0, 3)
        code = service.wait(60)
        consumed = progress.consumed(group, source)
    assert code == EXIT_INPUT, service.log()
    (line,) = _lines(service, "cannot read")
    print(f"\n{line}")
    assert " ERROR " in line
    assert f"cannot read partition 0 of {source} at offset 3: " in line
    if fault.startswith("codec"):
        assert "UnsupportedCodecError: Libraries for snappy compression codec not found; " in line
        assert "pip install 'kafka-python[snappy]'" in line
    else:
        assert "CorruptRecordError: Record batch for partition" in line
        assert (
            f"kafka-consumer-groups.sh --bootstrap-server {bootstrap_servers} --group {group} "
            f"--topic {source}:0 --reset-offsets --to-offset" in line
        )
    assert "Traceback" not in service.log(tail=10**7)
    assert consumed == 3  # nothing lost: the group has not moved past the batch


def _kcat_snappy(bootstrap: str, topic: str, count: int) -> None:
    """`count` records in one snappy batch on partition 0, written by kcat (librdkafka), the
    way the user who found the stall wrote them. Values that compress: librdkafka sends a
    batch uncompressed when snappy would not make it smaller."""
    lines = "".join(f"k{i}:{'x' * 400}\n" for i in range(count))
    command = ["kcat", "-b", bootstrap, "-t", topic, "-p", "0", "-P", "-K", ":", "-z", "snappy"]
    command += ["-X", "linger.ms=100"]
    subprocess.run(command, input=lines.encode(), check=True, timeout=30)
