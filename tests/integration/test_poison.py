"""Poison input on the real broker: every kind of bad record is dead-lettered, counted, and
costs no good record around it.

One forecaster reads one stream for all the kinds: each kind has its own series, days 0..11
with its poison record between day 5 and day 6, so each case is judged on its own series (its
forecasts, evaluations and dead letter) while a poison that cost more than itself would show
in its own series or another's.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.topics import create_topics
from sunspots.wire.schemas import Observation
from support.http import Samples
from support.run_topics import read_topic, unique_topics, values
from support.services import forecaster, running

D0 = date(2001, 1, 1)
Record = tuple[bytes | None, bytes | None]


def _good(series: str, day: int) -> Record:
    obs = Observation(series, D0 + timedelta(days=day), 40.0 + day, 2.0, 12, False)
    return series.encode(), obs.encode()


def _body(for_series: str, **changes: object) -> Record:
    body = json.loads(_good(for_series, 6)[1])
    body.update(changes)
    kept = {k: v for k, v in body.items() if v is not ...}
    return for_series.encode(), json.dumps(kept).encode()


def _raw(series: str, value: str) -> Record:
    good = _good(series, 6)[1]
    return series.encode(), good.replace(
        b'"sunspot_number":46.0', f'"sunspot_number":{value}'.encode()
    )


# Each kind of poison, made for a series, and the reason it is dead-lettered with.
POISON: dict[str, tuple[Callable[[str], Record], str]] = {
    "not_json": (lambda s: (s.encode(), b"{not json"), "not_json"),
    "tombstone": (lambda s: (s.encode(), None), "not_json"),
    "not_object": (lambda s: (s.encode(), b"[1, 2, 3]"), "not_object"),
    "wrong_type": (lambda s: _body(s, sunspot_number="46"), "wrong_type"),
    "missing_field": (lambda s: _body(s, date=...), "missing_field"),
    "unknown_field": (lambda s: _body(s, comment="hi"), "unknown_field"),
    "nan": (lambda s: _raw(s, "NaN"), "non_finite"),
    "infinity": (lambda s: _raw(s, "Infinity"), "non_finite"),
    "negative": (lambda s: _body(s, sunspot_number=-4.0), "negative_value"),
    "absurd": (lambda s: _body(s, sunspot_number=25_000.0), "absurd_value"),
    "future_date": (lambda s: _body(s, date="2199-01-01"), "future_date"),
    "malformed_date": (lambda s: _body(s, date="2001-02-30"), "bad_date"),
    "unknown_version": (lambda s: _body(s, schema_version=7), "unknown_version"),
    "oversized": (lambda s: (s.encode(), _body(s, series=s + " " * 70_000)[1]), "oversized"),
    "wrong_key": (lambda s: (b"sunspots", _body(s)[1]), "key_mismatch"),
    "duplicate": (lambda s: _good(s, 5), "duplicate"),  # day 5 again, right after day 5
    "out_of_order": (lambda s: _good(s, 2), "out_of_order"),  # an earlier day
}
KINDS = sorted(POISON)
PER_KIND = 13  # days 0..11 and the poison


def _series(kind: str) -> str:
    return f"s-{kind}"


def _records(kind: str) -> list[Record]:
    series = _series(kind)
    # Days 0..11 with the poison between day 5 and day 6: windows end on 9..11.
    head = [_good(series, d) for d in range(6)]
    return [*head, POISON[kind][0](series), *(_good(series, d) for d in range(6, 12))]


@dataclass(frozen=True)
class Stream:
    """What the forecaster published for the whole stream."""

    forecasts: list[dict]
    evaluations: list[dict]
    dead: list
    metrics: Samples
    topic: str


@pytest.fixture(scope="module")
def stream(bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stream]:
    tmp_path: Path = tmp_path_factory.mktemp("poison")
    unique = uuid.uuid4().hex[:10]
    topics = unique_topics(unique)
    made = create_topics(KafkaSettings(bootstrap_servers, topics))
    n = len(KINDS)
    try:
        fc_ = forecaster(
            bootstrap_servers, topics, f"g-{unique}", tmp_path, "--series-metrics", "all"
        )
        with running(fc_) as fc:
            fc.wait_ready()
            producer = KafkaProducer(
                bootstrap_servers=bootstrap_servers, acks="all", max_request_size=2 * 1024 * 1024
            )
            for kind in KINDS:
                for key, value in _records(kind):
                    producer.send(topics.observations, key=key, value=value)
            producer.flush()
            producer.close()
            forecasts = values(read_topic(bootstrap_servers, topics.forecasts, 3 * n, idle=1))
            evaluations = values(read_topic(bootstrap_servers, topics.evaluations, 2 * n, idle=0.5))
            dead = read_topic(bootstrap_servers, topics.dead_letter, expected=n, idle=0.5)
            metrics = fc.metrics()
            assert fc.process.poll() is None, "the forecaster died on poison"
            assert fc.terminate() == 0
        yield Stream(forecasts, evaluations, dead, metrics, topics.observations)
    finally:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
        admin.delete_topics(made)
        admin.close()


@pytest.mark.parametrize("kind", KINDS)
def test_poison_is_dead_lettered_and_costs_nothing(kind: str, stream: Stream) -> None:
    series = _series(kind)
    forecasts = [f for f in stream.forecasts if f["series"] == series]
    evaluations = [e for e in stream.evaluations if e["series"] == series]
    base = KINDS.index(kind) * PER_KIND
    dead = [
        r
        for r in stream.dead
        if int(dict(r.headers)["source_offset"]) // PER_KIND * PER_KIND == base
    ]
    assert [f["window_end"][-2:] for f in forecasts] == ["10", "11", "12"]
    assert len(evaluations) == 2
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    key, value = POISON[kind][0](series)
    assert headers["reason"].decode() == POISON[kind][1]
    assert headers["detail"]
    assert headers["source_topic"].decode() == stream.topic
    assert headers["source_partition"] == b"0"
    assert headers["source_offset"] == str(base + 6).encode()
    assert dead[0].value == value and dead[0].key == key
    # Every series has its own metrics here (--series-metrics all): 12 good days each.
    assert stream.metrics[("sunspot_series_observations_total", (("series", series),))] == 12


def test_every_poison_is_counted_once_under_its_reason(stream: Stream) -> None:
    expected = Counter(reason for _, reason in POISON.values())
    counted = {
        labels[0][1]: value
        for (name, labels), value in stream.metrics.items()
        if name == "sunspot_dead_letters_total"
    }
    assert counted == expected
    assert len(stream.dead) == len(KINDS)
    # The fleet's count: every good record of every series, none of the poison.
    assert stream.metrics[("sunspot_observations_total", ())] == 12 * len(KINDS)
