"""Poison input on the real broker: every kind of bad record is dead-lettered, counted, and
costs no good record around it."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from kafka import KafkaProducer

from sunspots.schemas import Observation
from support.services import forecaster, running
from support.topics import read_topic, unique_topics, values

D0 = date(2001, 1, 1)


def _good(day: int) -> tuple[bytes, bytes]:
    obs = Observation("silso", D0 + timedelta(days=day), 40.0 + day, 2.0, 12, False)
    return b"silso", obs.encode()


def _body(**changes: object) -> bytes:
    body = json.loads(_good(6)[1])
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def _raw(value: str) -> bytes:
    return _good(6)[1].replace(b'"sunspot_number":46.0', f'"sunspot_number":{value}'.encode())


POISON = {
    "not_json": (b"silso", b"{not json"),
    "tombstone": (b"silso", None),
    "not_object": (b"silso", b"[1, 2, 3]"),
    "wrong_type": (b"silso", _body(sunspot_number="46")),
    "missing_field": (b"silso", _body(date=...)),
    "unknown_field": (b"silso", _body(comment="hi")),
    "nan": (b"silso", _raw("NaN")),
    "infinity": (b"silso", _raw("Infinity")),
    "negative": (b"silso", _body(sunspot_number=-4.0)),
    "absurd": (b"silso", _body(sunspot_number=25_000.0)),
    "future_date": (b"silso", _body(date="2199-01-01")),
    "malformed_date": (b"silso", _body(date="2001-02-30")),
    "unknown_version": (b"silso", _body(schema_version=7)),
    "oversized": (b"silso", _body(series="silso" + " " * 70_000)),
    "wrong_key": (b"sunspots", _body()),
    "duplicate": _good(5),  # day 5 again, right after day 5
    "out_of_order": _good(2),  # an earlier day
}
REASON = {
    "not_json": "not_json",
    "tombstone": "not_json",
    "not_object": "not_object",
    "wrong_type": "wrong_type",
    "missing_field": "missing_field",
    "unknown_field": "unknown_field",
    "nan": "non_finite",
    "infinity": "non_finite",
    "negative": "negative_value",
    "absurd": "absurd_value",
    "future_date": "future_date",
    "malformed_date": "bad_date",
    "unknown_version": "unknown_version",
    "oversized": "oversized",
    "wrong_key": "key_mismatch",
    "duplicate": "duplicate",
    "out_of_order": "out_of_order",
}


@pytest.mark.parametrize("kind", sorted(POISON))
def test_poison_is_dead_lettered_and_costs_nothing(
    kind, bootstrap_servers, create_topics, unique, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    # Days 0..11 with the poison between day 5 (offset 5) and day 6: windows end on 9..11.
    records = [_good(d) for d in range(6)] + [POISON[kind]] + [_good(d) for d in range(6, 12)]
    with running(forecaster(bootstrap_servers, topics, f"g-{unique}", tmp_path)) as fc:
        fc.wait_ready()
        producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, acks="all", max_request_size=2 * 1024 * 1024
        )
        for key, value in records:
            producer.send(topics.observations, key=key, value=value)
        producer.flush()
        producer.close()
        forecasts = values(read_topic(bootstrap_servers, topics.forecasts, expected=3, idle=1))
        evaluations = read_topic(bootstrap_servers, topics.evaluations, expected=2, idle=0.5)
        dead = read_topic(bootstrap_servers, topics.dead_letter, expected=1, idle=0.5)
        metrics = fc.metrics()
        assert fc.process.poll() is None, "the forecaster died on poison"
        assert fc.terminate() == 0
    assert [f["window_end"][-2:] for f in forecasts] == ["10", "11", "12"]
    assert len(evaluations) == 2
    assert len(dead) == 1
    headers = dict(dead[0].headers)
    assert headers["reason"].decode() == REASON[kind]
    assert headers["detail"]
    assert headers["source_topic"].decode() == topics.observations
    assert headers["source_partition"] == b"0" and headers["source_offset"] == b"6"
    assert dead[0].value == POISON[kind][1] and dead[0].key == POISON[kind][0]
    assert metrics[("sunspot_dead_letters_total", (("reason", REASON[kind]),))] == 1
    assert metrics[("sunspot_observations_total", ())] == 12
    assert metrics[("sunspot_series_observations_total", (("series", "silso"),))] == 12
