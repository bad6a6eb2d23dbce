"""State snapshots across versions: what an upgraded forecaster makes of the changelog records
an earlier version wrote, and what lets an earlier version read the records this one writes.

docs/upgrading.md gives the rolling upgrade and rollback these facts allow. The snapshots of
earlier versions are written out here as those versions wrote them (the commits are named in
CHANGELOG.md): 0.1.0's window as long as the model's input, with the one model's pending
forecast in it and no roles, interval or topic id; 0.2.0's 64-value history and roles, without
a topic id.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from prometheus_client import CollectorRegistry

from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from sunspots.wire.schemas import decode_snapshot
from tests.unit.records import D0, observations, transaction
from tests.unit.test_forecaster import TOPICS, LastPlusOne


def forecaster() -> Forecaster:
    metrics = ForecasterMetrics(CollectorRegistry())
    return Forecaster(LastPlusOne(), TOPICS, metrics, rolling=10, today=lambda: date(2026, 1, 1))


def day(n: int) -> str:
    return (D0 + timedelta(days=n)).isoformat()


def snapshot_010() -> bytes:
    """Series `s` after offsets 0-2 (days 0-2: 10, 11, 12) as 0.1.0 wrote it (stdlib json)."""
    pending = {
        "schema_version": 1,
        "series": "s",
        "target_date": day(3),
        "forecast": 13.0,
        "lower": 11.0,
        "upper": 15.0,
        "window_end": day(2),
        "persistence": 12.0,
        "model_version": LastPlusOne.model_version,
    }
    window = {"size": 3, "last_date": day(2), "values": [10.0, 11.0, 12.0], "pending": pending}
    return json.dumps({"series": "s", "offset": 3, "window": window}).encode()


def on(outputs: list, topic: str) -> list[dict]:
    return [json.loads(o.value) for o in outputs if o.topic == topic]


def test_a_010_snapshot_restores_its_values_offset_and_pending_forecast() -> None:
    fc = forecaster()
    fc.restore(0, [(b"s", snapshot_010())])
    assert "s" in fc.series
    # An at-least-once replay of a record the state already reflects is not applied again.
    assert on(transaction(fc, observations([12.0], start=2)), TOPICS.forecasts) == []
    out = transaction(fc, observations([13.0], start=3))
    # The pending forecast of 0.1.0 is scored as the champion's; the next one follows at once
    # (no warm-up: the restored values fill the window).
    (evaluation,) = on(out, TOPICS.evaluations)
    assert (evaluation["date"], evaluation["forecast"], evaluation["actual"]) == (day(3), 13, 13)
    (forecast,) = on(out, TOPICS.forecasts)
    assert (forecast["target_date"], forecast["forecast"]) == (day(4), 14.0)
    # What it writes back is this version's snapshot: roles and the longer history.
    (state,) = [o for o in out if o.topic == TOPICS.state]
    snap = decode_snapshot(state.value)
    assert snap.roles is not None and set(snap.roles) == {"champion"}
    assert snap.window.size == 64 and snap.window.values == [10.0, 11.0, 12.0, 13.0]


def test_a_020_snapshot_without_a_topic_id_restores() -> None:
    written = [
        o for o in transaction(forecaster(), observations([1, 2, 3])) if o.topic == TOPICS.state
    ]
    as_020 = {k: v for k, v in json.loads(written[0].value).items() if k != "topic_id"}
    fc = forecaster()
    fc.restore(0, [(b"s", json.dumps(as_020).encode())])
    assert "s" in fc.series
    out = transaction(fc, observations([4], start=3))
    assert [e["date"] for e in on(out, TOPICS.evaluations)] == [day(3)]


def test_a_snapshot_with_fields_this_version_does_not_know_still_decodes() -> None:
    """What makes a rollback keep the state: a snapshot of a later version, with a field added,
    is read for the fields this version knows (0.2.0 reads 0.3.0's `topic_id` the same way)."""
    written = [
        o for o in transaction(forecaster(), observations([1, 2, 3])) if o.topic == TOPICS.state
    ]
    later = json.loads(written[0].value)
    later["a_field_of_a_later_version"] = {"anything": [1, 2]}
    later["roles"]["champion"]["another"] = 1
    fc = forecaster()
    fc.restore(0, [(b"s", json.dumps(later).encode())])
    assert "s" in fc.series and fc.series["s"].window.last_date == D0 + timedelta(days=2)


def test_an_unreadable_snapshot_costs_its_series_only() -> None:
    fc = forecaster()
    good = [
        o for o in transaction(forecaster(), observations([1, 2, 3])) if o.topic == TOPICS.state
    ]
    fc.restore(0, [(b"x", b'{"series": "x", "window": 3}'), (b"s", good[0].value)])
    assert set(fc.series) == {"s"}
