"""The replay pipeline end to end on the real broker: producer → forecaster → topics + metrics."""

from __future__ import annotations

import json
import math
import os
import re
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from sunspots import data
from sunspots.artifact import DEFAULT_FORECASTER, load_forecaster
from sunspots.evaluation import rmse
from sunspots.schemas import Observation
from support.http import sample
from support.polling import wait_for
from support.services import forecaster, producer, run_producer, running
from support.topics import read_topic, unique_topics, values

SEED_START, SEED_END = "2000-01-01", "2017-06-30"


@pytest.fixture
def topics(unique: str, create_topics):
    return create_topics(unique_topics(unique))


def _replay(bootstrap: str, topics, data_path: Path, log_dir: Path, start: str, end: str) -> None:
    """Replay `start`..`end` at full speed; returns when the producer has finished."""
    run_producer(
        bootstrap, topics, data_path, log_dir / "producer.log", "--start", start, "--end", end
    )


def _metric(service, name: str, **labels: str) -> float:
    return sample(service.metrics(), name, **labels)


def test_replay_parity_with_the_offline_model(
    bootstrap_servers: str, topics, unique: str, data_path: Path, tmp_path: Path
) -> None:
    model = load_forecaster(os.environ.get("SUNSPOTS_MODEL") or DEFAULT_FORECASTER)
    frame = data.select_range(data.load_daily(data_path), SEED_START, SEED_END)
    values_ = frame["sunspot_number"].to_numpy(dtype=np.float64)
    n = len(values_) - model.window  # windows whose target date is inside the range
    offline = model.predict(np.lib.stride_tricks.sliding_window_view(values_, model.window)[:n])

    with running(forecaster(bootstrap_servers, topics, f"g-{unique}", tmp_path)) as fc:
        fc.wait_ready()
        _replay(bootstrap_servers, topics, data_path, tmp_path, SEED_START, SEED_END)
        evaluations = values(read_topic(bootstrap_servers, topics.evaluations, expected=n))
        forecasts = values(read_topic(bootstrap_servers, topics.forecasts, expected=n + 1))
        wait_for(
            "the metrics to catch up with the evaluations topic",
            lambda: _metric(fc, "sunspot_evaluations_total", series="silso") == n,
            30,
        )
        metrics = {
            name: _metric(fc, name, series="silso")
            for name in (
                "sunspot_observations_total",
                "sunspot_forecasts_total",
                "sunspot_evaluations_total",
            )
        }
        assert fc.terminate() == 0  # SIGTERM: finish, commit, close, exit 0

    assert n == 6381
    # One forecast per complete window: 6381 scored ones, and one for 2017-07-01 still waiting.
    by_target = {f["target_date"]: f for f in forecasts}
    assert len(forecasts) == len(by_target) == n + 1
    dates = frame["date"].dt.date.tolist()
    streamed = np.array([by_target[d.isoformat()]["forecast"] for d in dates[model.window :]])
    assert np.max(np.abs(streamed - offline)) < 1e-4
    assert len(evaluations) == len({e["date"] for e in evaluations}) == n
    streamed_rmse = rmse([e["error"] for e in evaluations])
    assert math.isclose(
        streamed_rmse, model.metadata["metrics"]["test"]["lstm"]["rmse"], abs_tol=1e-3
    )
    assert metrics == {
        "sunspot_observations_total": len(frame),
        "sunspot_forecasts_total": n + 1,
        "sunspot_evaluations_total": n,
    }


def _send(bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in items:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


def _obs(day: int, value: float | None, series: str = "silso") -> tuple[bytes, bytes]:
    obs = Observation(series, date(2001, 1, 1) + timedelta(days=day), value, None, 5, False)
    return series.encode(), obs.encode()


def _run_records(bootstrap, topics, unique, tmp_path, items, forecasts, evaluations=None):
    with running(forecaster(bootstrap, topics, f"g-{unique}", tmp_path)) as fc:
        fc.wait_ready()
        _send(bootstrap, topics.observations, items)
        fcs = values(read_topic(bootstrap, topics.forecasts, expected=forecasts))
        evs = values(read_topic(bootstrap, topics.evaluations, expected=evaluations, idle=1))
        dead = read_topic(bootstrap, topics.dead_letter, idle=1)
        metrics = fc.metrics()
        assert fc.terminate() == 0
    return fcs, evs, dead, metrics


def test_missing_value_resets_the_window(bootstrap_servers, topics, unique, tmp_path) -> None:
    # Days 0..11 valid, day 12 missing, days 13..24 valid: windows end on 9..11, then 22..24.
    items = [_obs(d, 50.0 + d) for d in range(12)] + [_obs(12, None)]
    items += [_obs(d, 50.0 + d) for d in range(13, 25)]
    fcs, evs, dead, metrics = _run_records(bootstrap_servers, topics, unique, tmp_path, items, 6)
    ends = [f["window_end"] for f in fcs]
    assert ends == [
        (date(2001, 1, 1) + timedelta(days=d)).isoformat() for d in (9, 10, 11, 22, 23, 24)
    ]
    # Scored: the forecasts for days 10, 11, 23, 24; the one for day 12 had no actual.
    assert [e["date"][-2:] for e in evs] == ["11", "12", "24", "25"]
    assert dead == []
    assert (
        metrics[("sunspot_window_resets_total", (("cause", "missing_value"), ("series", "silso")))]
        == 1
    )


def test_skipped_date_resets_the_window(bootstrap_servers, topics, unique, tmp_path) -> None:
    items = [_obs(d, 30.0) for d in range(11)] + [_obs(d, 30.0) for d in range(15, 25)]
    fcs, evs, _, metrics = _run_records(bootstrap_servers, topics, unique, tmp_path, items, 3)
    assert [f["window_end"][-2:] for f in fcs] == ["10", "11", "25"]
    assert len(evs) == 1  # day 10's forecast; day 11's target (day 11) never came
    assert (
        metrics[("sunspot_window_resets_total", (("cause", "skipped_date"), ("series", "silso")))]
        == 1
    )


def test_duplicate_and_out_of_order_dates_are_dead_lettered_not_applied(
    bootstrap_servers, topics, unique, tmp_path
) -> None:
    items = [_obs(d, 10.0 + d) for d in range(12)]
    items.insert(11, _obs(10, 99.0))  # the same date again
    items.insert(5, _obs(2, 99.0))  # a date from the past
    fcs, evs, dead, _ = _run_records(bootstrap_servers, topics, unique, tmp_path, items, 3, 2)
    assert [f["window_end"][-2:] for f in fcs] == ["10", "11", "12"]
    assert all(e["actual"] != 99.0 for e in evs)
    reasons = [dict(r.headers)["reason"] for r in dead]
    assert reasons == [b"out_of_order", b"duplicate"]
    headers = dict(dead[0].headers)
    assert headers["source_topic"] == topics.observations.encode()
    assert int(headers["source_offset"]) == 5


def test_restart_on_the_same_group_resumes_where_it_committed(
    bootstrap_servers, topics, unique, tmp_path, data_path
) -> None:
    group = f"g-{unique}"
    with running(forecaster(bootstrap_servers, topics, group, tmp_path)) as fc:
        fc.wait_ready()
        _replay(bootstrap_servers, topics, data_path, tmp_path, "2010-01-01", "2010-03-31")
        read_topic(bootstrap_servers, topics.evaluations, expected=90 - 10)
        assert fc.terminate() == 0
    # While it is down, the next quarter arrives; the restarted instance must pick up there,
    # with its window and pending forecast restored (no gap at the boundary).
    _replay(bootstrap_servers, topics, data_path, tmp_path, "2010-04-01", "2010-06-30")
    with running(forecaster(bootstrap_servers, topics, group, tmp_path)) as fc:
        fc.wait_ready()
        evs = values(read_topic(bootstrap_servers, topics.evaluations, expected=181 - 10))
        assert fc.terminate() == 0
    days = [e["date"] for e in evs]
    assert len(days) == len(set(days)) == 181 - 10
    assert days[0] == "2010-01-11" and days[-1] == "2010-06-30"
    assert json.dumps(sorted(days)) == json.dumps(days)


def test_at_least_once_mode_loses_nothing_across_a_hard_kill(
    bootstrap_servers, topics, unique, tmp_path, data_path
) -> None:
    """Without transactions a kill may repeat outputs, but no target date may go missing."""
    group = f"g-{unique}"
    mode = ("--processing", "at_least_once", "--max-poll-records", "50")
    with running(forecaster(bootstrap_servers, topics, group, tmp_path, *mode)) as fc:
        fc.wait_ready()
        _replay(bootstrap_servers, topics, data_path, tmp_path, "2012-01-01", "2012-12-31")
        wait_for(
            "progress before the kill",
            lambda: _metric(fc, "sunspot_evaluations_total", series="silso") > 100,
            60,
        )
        fc.kill()
    with running(forecaster(bootstrap_servers, topics, group, tmp_path, *mode)) as fc:
        fc.wait_ready()
        evs = values(read_topic(bootstrap_servers, topics.evaluations, expected=366 - 10))
        assert fc.terminate() == 0
    days = {e["date"] for e in evs}
    assert len(days) == 366 - 10  # every target date scored at least once
    print(f"\nat-least-once across a SIGKILL: {len(evs) - len(days)} repeated evaluations")


def test_producer_stopped_mid_replay_flushes_and_loses_nothing(
    bootstrap_servers, topics, data_path, tmp_path
) -> None:
    replay = producer(
        bootstrap_servers,
        topics,
        data_path,
        tmp_path / "producer.log",
        "--start",
        "1990-01-01",
        "--speed",
        "200",
    ).start()
    time.sleep(3.0)
    assert replay.terminate() == 0
    log = replay.log()
    summary = re.search(r"done: (\d+) sent, (\d+) delivered, 0 failed.*\(interrupted\)", log)
    assert summary, log
    sent, delivered = int(summary[1]), int(summary[2])
    assert 0 < sent == delivered < 13_000
    records = values(read_topic(bootstrap_servers, topics.observations, expected=sent, idle=1))
    assert len(records) == sent
    assert [r["date"] for r in records] == sorted(r["date"] for r in records)


def test_unreadable_state_stops_the_line_instead_of_forecasting_from_nothing(
    bootstrap_servers, topics, unique, tmp_path
) -> None:
    """A changelog that cannot be restored must not be replaced by empty windows."""
    _send(bootstrap_servers, topics.state, [(b"silso", b"{corrupt state")])
    _send(bootstrap_servers, topics.observations, [_obs(d, 20.0 + d) for d in range(15)])
    with running(forecaster(bootstrap_servers, topics, f"g-{unique}", tmp_path)) as fc:
        wait_for(
            "the restore failure to be reported",
            lambda: "restoring the state of partitions [0] failed" in fc.log(),
            60,
        )
        time.sleep(3.0)
        status, body = fc.get("/readyz")
        assert status == 503 and "assigned=False" in body
        assert fc.get("/healthz")[0] == 200  # alive, retrying: not a crash loop
        assert read_topic(bootstrap_servers, topics.forecasts, idle=1, timeout=5) == []
        assert fc.terminate() == 0
