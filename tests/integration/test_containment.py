"""No record stops the line, on the real broker: poison at the head of a partition, a restart.

Before containment, each of these records crashed the forecaster (or the classifier) before
its batch was committed; the restarted service read the same record first and crashed again,
and the partition stopped for good. Here they sit at offsets 0.. of the only partition; the
service is SIGKILLed once the first half is committed (the poison with it) and started again
on the second half, and:
- the process stays up and /readyz answers 200;
- every good record's forecasts and evaluations are there exactly once (nothing around the
  poison lost, nothing doubled by the restart);
- each poison record is exactly one dead letter, with its reason and its original bytes.

The records above are rejected by the decoders. A record whose processing raises is put in by
support.processor_faults: its batch is bisected on the real broker, and a SIGKILL that lands
while it is still uncommitted makes the restart meet it again
(`test_a_record_the_processor_raises_on_is_bisected_out_across_a_sigkill`).
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from kafka import KafkaProducer

from sunspots.wire.schemas import MAX_KEPT_BYTES, MAX_MESSAGE_BYTES
from support.http import sample
from support.polling import wait_for
from support.processor_faults import HOLD_ENV, MARK
from support.run_progress import Progress
from support.run_topics import read_to_end, read_topic, unique_topics
from support.services import consumer, forecaster, running

D0 = date(2003, 3, 1)
DAYS = 40
SERIES = ("silso", "other")


def _obs(series: str, day: int, value: object = None) -> bytes:
    body = {
        "schema_version": 1,
        "series": series,
        "date": (D0 + timedelta(days=day)).isoformat(),
        "sunspot_number": 30.0 + day if value is None else value,
        "std_dev": 1.0,
        "observations": 9,
        "provisional": False,
    }
    return json.dumps(body).encode()


def _raw_number(text: bytes) -> bytes:
    return _obs("silso", 0).replace(b'"sunspot_number": 30.0', b'"sunspot_number": ' + text)


# Crash classes the fuzzer found, each with the reason it is dead-lettered with now.
HEAD_POISON: list[tuple[bytes | None, bytes, str]] = [
    (b"silso", _raw_number(b"1" + b"0" * 400), "absurd_value"),  # OverflowError
    (b"silso", b"[" * 50_000, "not_object"),  # RecursionError in the old parser
    (b"silso", b'{"schema_version":' + b"[" * 50_000, "oversized"),  # RecursionError in msgspec
    (None, _obs("silso", 0).replace(b'"silso"', b'"\\ud800"'), "not_json"),  # unencodable key
    (None, _obs("sil\x00so", 0), "bad_id"),  # a control character in an id
    (b"\xff\xfe", _obs("silso", 0), "bad_key"),  # a key that is not UTF-8
    # Near the broker's 1 MiB limit: whole, with its headers, its dead letter could not be
    # published, and the loop rewound and retried it for ever.
    (b"silso", b"x" * 1_048_400, "oversized"),
]


def _send(bootstrap: str, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, max_request_size=2 * 1024 * 1024
    )
    for key, value in records:
        producer.send(topic, key=key, value=value, partition=0)
    producer.flush()
    producer.close()


def _good(days: range) -> list[tuple[bytes | None, bytes]]:
    return [(s.encode(), _obs(s, d)) for d in days for s in SERIES]


def test_poison_at_the_head_of_a_partition_and_a_restart_never_stop_the_line(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    group = f"g-{unique}"
    half = DAYS // 2
    # A third series past --max-series 2, mid-stream: refused, the two others carry on.
    third = (b"third", _obs("third", 0), "too_many_series")
    first = [(k, v) for k, v, _ in HEAD_POISON] + _good(range(half)) + [third[:2]]
    _send(bootstrap_servers, topics.observations, first)
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, "--max-series", "2")
    with running(fc):
        fc.wait_ready()
        expected_first = len(SERIES) * (half - 10)  # evaluations of days 10..half-1
        wait_for(
            "the first half's evaluations",
            lambda: len(read_to_end(bootstrap_servers, topics.evaluations)) >= expected_first,
            120,
            interval=1.0,
        )
        fc.kill()  # SIGKILL: whatever was in flight is aborted and done again
        _send(bootstrap_servers, topics.observations, _good(range(half, DAYS)))
        fc.start().wait_ready()
        expected = len(SERIES) * (DAYS - 10)
        evaluations = read_topic(bootstrap_servers, topics.evaluations, expected, idle=2)
        forecasts = read_topic(bootstrap_servers, topics.forecasts, expected + 2, idle=1)
        dead = read_topic(bootstrap_servers, topics.dead_letter, len(HEAD_POISON) + 1, idle=1)
        assert fc.process.poll() is None, "the forecaster died"
        assert fc.get("/readyz")[0] == 200
        assert fc.terminate() == 0

    # Every window from day 0 on: the good record right after the poison was not lost.
    assert _days(forecasts, "window_end") == {s: list(range(9, DAYS)) for s in SERIES}
    assert _days(evaluations, "date") == {s: list(range(10, DAYS)) for s in SERIES}
    assert [r.key for r in forecasts if r.key not in {b"silso", b"other"}] == []
    found = [
        (r.key, r.value, dict(r.headers)["reason"].decode(), int(dict(r.headers)["source_offset"]))
        for r in dead
    ]
    poison = [*HEAD_POISON, (third[0], third[1], third[2])]
    offsets = [*range(len(HEAD_POISON)), len(first) - 1]
    assert sorted(found, key=lambda f: f[3]) == [
        (key, _kept(value), reason, offset)
        for (key, value, reason), offset in zip(poison, offsets, strict=True)
    ]


def _kept(value: bytes) -> bytes:
    """What a dead letter keeps of a value (consumer.output: a record too large is cut)."""
    return value if len(value) <= MAX_KEPT_BYTES else value[:MAX_MESSAGE_BYTES]


def _days(records: list, field: str, series: tuple[str, ...] = SERIES) -> dict[str, list[int]]:
    """Per series, the days (from D0) of `field` in the records, sorted, repeats kept."""
    out: dict[str, list[int]] = {s: [] for s in series}
    for r in records:
        body = json.loads(r.value)
        out[body["series"]].append((date.fromisoformat(body[field]) - D0).days)
    return {s: sorted(v) for s, v in out.items()}


def test_a_record_the_processor_raises_on_is_bisected_out_across_a_sigkill(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    """A valid observation whose processing raises (support.processor_faults) in a batch of
    good ones: the batch is split down to it on the real broker. The service is SIGKILLed
    while that batch is in hand, its offsets not committed; the restart reads it again and
    bisects it again. Then every good record's forecast and evaluation is there exactly once,
    and the marked record is exactly one `internal_error` dead letter."""
    topics = create_topics(unique_topics(unique))
    group = f"g-{unique}"
    first = _good(range(15))
    marked = (MARK, _obs(MARK.decode(), 15))
    second = [*_good(range(15, 20)), marked, *_good(range(20, DAYS))]
    marked_offset = len(first) + len(_good(range(15, 20)))
    total = len(first) + len(second)
    _send(bootstrap_servers, topics.observations, first)
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, module="support.processor_faults")
    fc.env[HOLD_ENV] = "60"  # the first run holds the marked record's batch until it is killed
    with running(fc), Progress(bootstrap_servers) as progress:
        fc.wait_ready()
        progress.wait_consumed(group, topics.observations, len(first), 120, fc)
        _send(bootstrap_servers, topics.observations, second)
        wait_for("the marked batch in hand", lambda: "processor fault: holding" in fc.log(), 60)
        held_at = progress.consumed(group, topics.observations)
        fc.kill()
        killed_at = progress.consumed(group, topics.observations)
        # Nothing of the marked record's batch was committed, before or after the kill.
        assert held_at == killed_at == len(first) <= marked_offset
        fc.env[HOLD_ENV] = "0"
        fc.start().wait_ready()
        progress.wait_finished(group, topics, total, 120, fc)
        internal = sample(fc.metrics(), "sunspot_dead_letters_total", reason="internal_error")
        assert fc.get("/readyz")[0] == 200
        assert fc.terminate() == 0
    assert internal == 1.0
    forecasts = read_to_end(bootstrap_servers, topics.forecasts)
    evaluations = read_to_end(bootstrap_servers, topics.evaluations)
    dead = read_to_end(bootstrap_servers, topics.dead_letter)
    assert _days(forecasts, "window_end") == {s: list(range(9, DAYS)) for s in SERIES}
    assert _days(evaluations, "date") == {s: list(range(10, DAYS)) for s in SERIES}
    assert [(r.key, r.value) for r in dead] == [marked]
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert (headers["reason"], headers["source_offset"]) == ("internal_error", str(marked_offset))
    assert headers["detail"] == f"ProcessorFault: marked record at offset {marked_offset}"
    # Bisected: batches of more than one record raised, then the marked record alone.
    sizes = [int(n) for n in re.findall(r"raising on a batch of (\d+) records", fc.log(10**6))]
    # The first run was killed while holding, before it raised: these are the restart's.
    assert max(sizes) > 1 and sizes.count(1) == 1, sizes


CLASSIFIER_POISON: list[tuple[bytes | None, bytes, str]] = [
    (b"p0", b"[" * 50_000, "not_object"),
    (None, b'{"id":"\\ud800","sequence":[1]}', "not_json"),
    (b"p2", b'{"id":"r","sequence":[1' + b"0" * 5000 + b"]}", "bad_sequence"),
    (None, b'{"id":1' + b"0" * 400 + b',"sequence":[1]}', "bad_id"),
    (b"\xff", b'{"id":"r4","sequence":[1]}', "bad_key"),
    (b"p5", b'{"schema_version":' + b"[" * 50_000, "oversized"),
]


def test_classifier_poison_at_the_head_of_a_partition_and_a_restart(
    bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    good = [
        (f"g{i}".encode(), json.dumps({"id": f"g{i}", "sequence": [i % 4]}).encode())
        for i in range(20)
    ]
    first = [(k, v) for k, v, _ in CLASSIFIER_POISON] + good[:10]
    _send(bootstrap_servers, topics.classifier_requests, first)
    clf = consumer(
        "classify",
        bootstrap_servers,
        topics,
        f"g-{unique}",
        tmp_path / "classifier.log",
        instance_id=f"g-{unique}-a",
    )
    with running(clf):
        clf.wait_ready()
        wait_for(
            "the first answers",
            lambda: len(read_to_end(bootstrap_servers, topics.classifier_predictions)) >= 10,
            120,
            interval=1.0,
        )
        clf.kill()
        _send(bootstrap_servers, topics.classifier_requests, good[10:])
        clf.start().wait_ready()
        answers = read_topic(bootstrap_servers, topics.classifier_predictions, 20, idle=2)
        dead = read_topic(bootstrap_servers, topics.dead_letter, len(CLASSIFIER_POISON), idle=1)
        assert clf.process.poll() is None and clf.get("/readyz")[0] == 200
        assert clf.terminate() == 0
    assert sorted(json.loads(a.value)["id"] for a in answers) == sorted(f"g{i}" for i in range(20))
    assert sorted(
        (int(dict(r.headers)["source_offset"]), dict(r.headers)["reason"].decode(), r.key, r.value)
        for r in dead
    ) == [(i, reason, key, value) for i, (key, value, reason) in enumerate(CLASSIFIER_POISON)]
