"""The replay pipeline end to end on the real broker: producer → forecaster → topics + metrics.

Each test waits until the forecaster's group has committed all its input (support.run_progress) and
then reads the outputs to their end, so what it checks is all the run will ever commit; the
values are compared with the offline run (tests.integration.offline).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaProducer

from sunspots.domain import data
from sunspots.domain.evaluation import rmse
from sunspots.domain.intervals import Intervals, sequential
from sunspots.wire.schemas import Observation
from support.http import sample
from support.polling import wait_for
from support.run_progress import Progress
from support.run_topics import read_results, read_to_end, unique_topics, values
from support.services import forecaster, instance_id, replay_range, run_producer, running
from tests.integration.offline import assert_matches, offline_run


@pytest.fixture
def topics(unique: str, create_topics):
    return create_topics(unique_topics(unique))


def _replay(bootstrap: str, topics, data_path: Path, log_dir: Path, start: str, end: str) -> None:
    """Replay `start`..`end` at full speed; returns when the producer has finished."""
    run_producer(
        bootstrap, topics, data_path, log_dir / "producer.log", "--start", start, "--end", end
    )


def test_replay_parity_with_the_offline_model(
    bootstrap_servers: str, topics, unique: str, data_file, forecaster_model, tmp_path: Path
) -> None:
    """The artifact's test years streamed through Kafka give its offline forecasts and
    intervals, one by one, and the test RMSE and interval coverage it reports."""
    model = forecaster_model
    test_years = model.metadata["splits"]["test"]
    start, end = test_years["first_date"], test_years["last_date"]
    frame = data.select_range(data.load_daily(data_file.path), start, end)
    values_ = frame["sunspot_number"].to_numpy(dtype=np.float64)
    n = len(values_) - model.window  # windows whose target date is inside the range
    windows = np.lib.stride_tricks.sliding_window_view(values_, model.window)
    forecasts_offline = model.predict(windows)
    # The training evaluation's intervals: in date order, the last forecast never scored.
    intervals = sequential(
        model.calibration, windows, forecasts_offline, [*values_[model.window :], None]
    )
    offline = forecasts_offline[:n]
    group = f"g-{unique}"

    with (
        running(forecaster(bootstrap_servers, topics, group, tmp_path)) as fc,
        Progress(bootstrap_servers) as progress,
    ):
        fc.wait_ready()
        _replay(bootstrap_servers, topics, data_file.path, tmp_path, start, end)
        progress.wait_finished(group, topics, len(frame), 120, fc)
        forecasts, evaluations = read_results(bootstrap_servers, topics)
        # The batch's metrics are set before its transaction commits.
        scraped = fc.metrics()
        # The series' own counts (silso is exported by default) and the fleet-wide ones.
        metrics = {
            name: sample(scraped, f"sunspot_series_{name}_total", series="silso")
            for name in ("observations", "forecasts", "evaluations")
        }
        fleet = {
            name: sample(scraped, f"sunspot_{name}_total")
            for name in ("observations", "forecasts", "evaluations")
        }
        assert fc.terminate() == 0  # SIGTERM: finish, commit, close, exit 0

    trained_on = model.metadata["data"]["sha256"]
    about = f"{data_file.note}; the artifact was trained on data sha256 {trained_on[:12]}…"
    assert n == test_years["windows"], f"{n} test windows, the artifact counted its own {about}"
    # One forecast per complete window: n scored ones, and one for the day after `end` waiting.
    by_target = {f["target_date"]: f for f in forecasts}
    assert len(forecasts) == len(by_target) == n + 1
    dates = frame["date"].dt.date.tolist()
    streamed = np.array([by_target[d.isoformat()]["forecast"] for d in dates[model.window :]])
    assert np.max(np.abs(streamed - offline)) < 1e-4
    streamed_all = [by_target[d.isoformat()] for d in [*dates[model.window :], _after(dates)]]
    _assert_same_intervals(streamed_all, forecasts_offline, intervals)
    assert len(evaluations) == len({e["date"] for e in evaluations}) == n
    streamed_rmse = rmse([e["error"] for e in evaluations])
    artifact_rmse = model.metadata["metrics"]["test"]["lstm"]["rmse"]
    # Streamed here, committed from the training machine: float32 forecasts differ in their
    # low bits across CPUs (tests/tolerance.py), the RMSE (about 14) by far less than 1e-3.
    assert math.isclose(streamed_rmse, artifact_rmse, abs_tol=1e-3), (
        f"streamed RMSE {streamed_rmse} against the artifact's {artifact_rmse} {about}"
    )
    assert metrics == fleet == {"observations": len(frame), "forecasts": n + 1, "evaluations": n}
    coverage = np.mean([e["lower"] <= e["actual"] <= e["upper"] for e in evaluations])
    reported = model.metadata["interval"]["test"]["adaptive"][-1]["coverage"]
    # Counted on the training machine: an actual within float32 noise of a bound may fall on
    # the other side here; 1e-3 is 6 of the 6,381 days, a broken interval moves it by more.
    assert math.isclose(coverage, reported, abs_tol=1e-3), (coverage, reported, about)


def _after(dates: list[date]) -> date:
    return dates[-1] + timedelta(days=1)


def _assert_same_intervals(
    streamed: list[dict], offline_forecast: np.ndarray, offline: Intervals
) -> None:
    """Bounds within the forecasts' float32 noise (see tests.integration.offline); the interval
    around its forecast, which the adaptive level and the window's volatility make, within
    1e-6."""
    n = len(streamed)
    forecast = np.array([f["forecast"] for f in streamed])
    lower = np.array([f["lower"] for f in streamed])
    upper = np.array([f["upper"] for f in streamed])
    want_lower, want_upper, want_forecast = offline.lower[:n], offline.upper[:n], offline_forecast
    assert np.max(np.abs(lower - want_lower)) < 1e-4
    assert np.max(np.abs(upper - want_upper)) < 1e-4
    assert np.max(np.abs((upper - forecast) - (want_upper - want_forecast))) < 1e-6
    floored = (lower == 0.0) | (want_lower == 0.0)  # the lower bound is floored at zero
    above = (forecast - lower)[~floored] - (want_forecast - want_lower)[~floored]
    assert np.max(np.abs(above)) < 1e-6


def _send(bootstrap: str, topic: str, items: list[tuple[bytes | None, bytes | None]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for key, value in items:
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()


D0 = date(2001, 1, 1)


def _day(day: int) -> str:
    return (D0 + timedelta(days=day)).isoformat()


def _obs(day: int, value: float | None, series: str = "silso") -> tuple[bytes, bytes]:
    obs = Observation(series, D0 + timedelta(days=day), value, None, 5, False)
    return series.encode(), obs.encode()


def _run_records(bootstrap, topics, unique, tmp_path, items):
    """Send `items`, wait until the forecaster has committed them all, and return what it
    published: forecasts, evaluations, dead letters, and its /metrics."""
    group = f"g-{unique}"
    with (
        running(forecaster(bootstrap, topics, group, tmp_path)) as fc,
        Progress(bootstrap) as progress,
    ):
        fc.wait_ready()
        _send(bootstrap, topics.observations, items)
        progress.wait_finished(group, topics, len(items), 60, fc)
        fcs, evs = read_results(bootstrap, topics)
        dead = read_to_end(bootstrap, topics.dead_letter)
        metrics = fc.metrics()
        assert fc.terminate() == 0
    return fcs, evs, dead, metrics


def test_missing_value_resets_the_window(
    bootstrap_servers, topics, unique, tmp_path, forecaster_model
) -> None:
    w = forecaster_model.window
    # Days 0..w+1 valid, day w+2 missing, w+2 more valid days: windows end on w-1, w, w+1,
    # then on 2w+2, 2w+3, 2w+4.
    items = [_obs(d, 50.0 + d) for d in range(w + 2)] + [_obs(w + 2, None)]
    items += [_obs(d, 50.0 + d) for d in range(w + 3, 2 * w + 5)]
    fcs, evs, dead, metrics = _run_records(bootstrap_servers, topics, unique, tmp_path, items)
    assert [f["window_end"] for f in fcs] == [
        _day(d) for d in (w - 1, w, w + 1, *range(2 * w + 2, 2 * w + 5))
    ]
    # Scored: the forecasts for days w, w+1, 2w+3, 2w+4; the one for day w+2 had no actual.
    assert [e["date"] for e in evs] == [_day(d) for d in (w, w + 1, 2 * w + 3, 2 * w + 4)]
    assert dead == []
    assert metrics[("sunspot_window_resets_total", (("cause", "missing_value"),))] == 1


def test_skipped_date_resets_the_window(
    bootstrap_servers, topics, unique, tmp_path, forecaster_model
) -> None:
    w = forecaster_model.window
    # Days 0..w, then days w+5..2w+4: the four days in between never come.
    items = [_obs(d, 30.0) for d in range(w + 1)] + [_obs(d, 30.0) for d in range(w + 5, 2 * w + 5)]
    fcs, evs, _, metrics = _run_records(bootstrap_servers, topics, unique, tmp_path, items)
    assert [f["window_end"] for f in fcs] == [_day(w - 1), _day(w), _day(2 * w + 4)]
    # Day w's forecast is scored; day w+1, the target of the next, never came.
    assert [e["date"] for e in evs] == [_day(w)]
    assert metrics[("sunspot_window_resets_total", (("cause", "skipped_date"),))] == 1


def test_duplicate_and_out_of_order_dates_are_dead_lettered_not_applied(
    bootstrap_servers, topics, unique, tmp_path, forecaster_model
) -> None:
    w = forecaster_model.window
    items = [_obs(d, 10.0 + d) for d in range(w + 2)]
    items.insert(w + 1, _obs(w, 99.0))  # the same date again
    items.insert(5, _obs(2, 99.0))  # a date from the past
    fcs, evs, dead, _ = _run_records(bootstrap_servers, topics, unique, tmp_path, items)
    assert [f["window_end"] for f in fcs] == [_day(w - 1), _day(w), _day(w + 1)]
    assert [e["date"] for e in evs] == [_day(w), _day(w + 1)]
    assert all(e["actual"] != 99.0 for e in evs)
    reasons = [dict(r.headers)["reason"] for r in dead]
    assert reasons == [b"out_of_order", b"duplicate"]
    headers = dict(dead[0].headers)
    assert headers["source_topic"] == topics.observations.encode()
    assert int(headers["source_offset"]) == 5
    # The original bytes, untouched.
    assert dead[0].value == items[5][1] and dead[1].value == items[w + 2][1]


def test_restart_on_the_same_group_resumes_where_it_committed(
    bootstrap_servers, topics, unique, tmp_path, data_file, forecaster_model
) -> None:
    group = f"g-{unique}"
    offline = offline_run(data_file, forecaster_model, "2010-01-01", "2010-06-30")
    first = offline_run(data_file, forecaster_model, "2010-01-01", "2010-03-31").observations
    with Progress(bootstrap_servers) as progress:
        with running(forecaster(bootstrap_servers, topics, group, tmp_path)) as fc:
            fc.wait_ready()
            _replay(bootstrap_servers, topics, data_file.path, tmp_path, "2010-01-01", "2010-03-31")
            progress.wait_consumed(group, topics.observations, first, 60, fc)
            assert fc.terminate() == 0
        # While it is down, the next quarter arrives; the restarted instance must pick up there,
        # with its window and pending forecast restored (no gap at the boundary).
        _replay(bootstrap_servers, topics, data_file.path, tmp_path, "2010-04-01", "2010-06-30")
        with running(forecaster(bootstrap_servers, topics, group, tmp_path)) as fc:
            fc.wait_ready()
            progress.wait_finished(group, topics, offline.observations, 60, fc)
            forecasts, evaluations = read_results(bootstrap_servers, topics)
            assert fc.terminate() == 0
    assert_matches(offline, forecasts, evaluations)
    # In date order, and 2010-04-01 scored against the forecast restored from the changelog.
    days = [e["date"] for e in evaluations]
    assert days == sorted(days) and "2010-04-01" in days


def test_at_least_once_mode_loses_nothing_across_a_hard_kill(
    bootstrap_servers, topics, unique, tmp_path, data_file, forecaster_model
) -> None:
    """Without transactions a kill may repeat the outputs of the batch in flight, but no target
    date may go missing, and nothing beyond that one batch may repeat."""
    group = f"g-{unique}"
    batch = 50
    mode = ("--processing", "at_least_once", "--max-poll-records", str(batch))
    start, end = "2012-01-01", "2012-12-31"
    offline = offline_run(data_file, forecaster_model, start, end)
    total = offline.observations
    # Paced: 366 days take about 9 s, so the kill lands while input is still arriving.
    replay = replay_range(bootstrap_servers, topics, data_file.path, tmp_path, start, end, 40)
    with Progress(bootstrap_servers) as progress:
        moment = progress.forecaster_moments(group, topics, instance_id(group, "a"))
        with running(forecaster(bootstrap_servers, topics, group, tmp_path, *mode)) as fc:
            fc.wait_ready()
            replay.start()
            progress.wait_consumed(group, topics.observations, total // 3, 60, fc)
            before = moment()
            fc.kill()
            after = moment()
        with running(forecaster(bootstrap_servers, topics, group, tmp_path, *mode)) as fc:
            fc.wait_ready()
            assert replay.wait(60) == 0, replay.log()
            progress.wait_finished(group, topics, total, 60, fc)
            forecasts, evaluations = read_results(bootstrap_servers, topics)
            assert fc.terminate() == 0
    print(f"\nkilled at: {before.describe()}\nafter it:  {after.describe()}")
    assert before.outputs[topics.evaluations].committed > 0
    assert after.consumed < total
    # Every target date is there with the offline values; repeats come from one batch at most.
    forecast_check, evaluation_check = assert_matches(
        offline, forecasts, evaluations, max_repeats=batch
    )
    print(
        f"at-least-once across a SIGKILL: {forecast_check.repeats} repeated forecasts, "
        f"{evaluation_check.repeats} repeated evaluations (one batch: {batch} observations)"
    )


def test_producer_stopped_mid_replay_flushes_and_loses_nothing(
    bootstrap_servers, topics, data_file, tmp_path
) -> None:
    start = "1990-01-01"
    days = len(data.select_range(data.load_daily(data_file.path), start, None))
    replay = replay_range(
        bootstrap_servers, topics, data_file.path, tmp_path, start, None, 200
    ).start()
    with Progress(bootstrap_servers) as progress:
        wait_for(
            "the producer to deliver its first records",
            lambda: replay.check_running() or progress.ends(topics.observations).written > 0,
            60,
        )
    assert replay.terminate() == 0
    log = replay.log()
    summary = re.search(r"done: (\d+) sent, (\d+) delivered, 0 failed.*\(interrupted\)", log)
    assert summary, log
    sent, delivered = int(summary[1]), int(summary[2])
    assert 0 < sent == delivered < days
    records = values(read_to_end(bootstrap_servers, topics.observations))
    assert len(records) == sent
    assert [r["date"] for r in records] == sorted(r["date"] for r in records)


def test_an_unreadable_changelog_record_costs_its_series_state_not_the_partition(
    bootstrap_servers, topics, unique, tmp_path
) -> None:
    """A changelog record no instance wrote (here: not JSON) is skipped with one warning: its
    series starts afresh, the partition's other series keep their state, the line runs."""
    group = f"g-{unique}"
    _send(bootstrap_servers, topics.state, [(b"silso", b"{corrupt state")])
    _send(
        bootstrap_servers,
        topics.observations,
        [_obs(d, 20.0 + d) for d in range(15)] + [_obs(d, 30.0 + d, "other") for d in range(12)],
    )
    with (
        running(forecaster(bootstrap_servers, topics, group, tmp_path)) as fc,
        Progress(bootstrap_servers) as progress,
    ):
        wait_for(
            "every observation to be committed",
            lambda: progress.consumed(group, topics.observations) == 27,
            90,
        )
        assert fc.get("/readyz")[0] == 200
        warnings = [line for line in fc.log().splitlines() if "skipped as unreadable" in line]
        assert len(warnings) == 1 and "partition 0: 1 changelog records" in warnings[0]
        assert "restoring the state of partitions" not in fc.log()
        assert fc.terminate() == 0
    forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
    # 15 values of silso from an empty window: forecasts from the 10th on (6); other: 3.
    by_series = Counter(f["series"] for f in forecasts)
    assert by_series == {"silso": 6, "other": 3}
