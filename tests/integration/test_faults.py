"""Fault tests on the real broker: hard kills, a broker bounce, a consumer leaving a group.

In every case the read_committed view of the output topics must hold exactly one forecast and
one evaluation per target date, with the values of an uninterrupted run.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from sunspots import data
from sunspots.artifact import DEFAULT_FORECASTER, load_forecaster
from sunspots.broker import LocalBroker
from support.http import sample
from support.polling import wait_for
from support.services import forecaster, producer, running
from support.topics import read_topic, unique_topics, values

pytestmark = pytest.mark.fault


def _expected(data_path: Path, start: str, end: str | None = None) -> dict[str, float]:
    """Forecast per target date of an uninterrupted run, from the offline batched model."""
    model = load_forecaster(os.environ.get("SUNSPOTS_MODEL") or DEFAULT_FORECASTER)
    frame = data.select_range(data.load_daily(data_path), start, end)
    series = frame["sunspot_number"].to_numpy(dtype=np.float64)
    assert not np.isnan(series).any()
    windows = np.lib.stride_tricks.sliding_window_view(series, model.window)
    predictions = model.predict(windows)
    targets = (frame["date"] + np.timedelta64(1, "D")).dt.date.tolist()[model.window - 1 :]
    return {d.isoformat(): float(p) for d, p in zip(targets, predictions, strict=True)}


def _account(expected: dict[str, float], forecasts: list[dict], evaluations: list[dict]) -> dict:
    targets = Counter(f["target_date"] for f in forecasts)
    scored = Counter(e["date"] for e in evaluations)
    report = {
        "expected": len(expected),
        "found": len(targets),
        "duplicates": sum(c - 1 for c in targets.values()) + sum(c - 1 for c in scored.values()),
        "missing": len(set(expected) - set(targets)),
        "unexpected": len(set(targets) - set(expected)),
        "evaluations": len(evaluations),
    }
    print(f"\naccounting: {report}")
    return report


def test_forecaster_killed_five_times_during_a_full_replay(
    bootstrap_servers, create_topics, unique, data_path, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    expected = _expected(data_path, "1850-01-01")
    rng = random.Random(unique)
    group = f"g-{unique}"
    started = time.monotonic()
    # Small batches mean many transactions, so the kills land between and inside commits.
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, "--max-poll-records", "300")
    fc.start().wait_ready()
    replay = producer(
        bootstrap_servers, topics, data_path, tmp_path / "producer.log", "--start", "1850-01-01"
    ).start()
    at: list[int] = []  # evaluations made before each kill: proof the kills hit a live stream
    try:
        while len(at) < 5:
            time.sleep(rng.uniform(0.5, 2.5))
            at.append(int(sample(fc.metrics(), "sunspot_evaluations_total", series="silso")))
            fc.kill()
            fc.start().wait_ready()
        assert replay.process.wait(300) == 0, replay.log()
        forecasts = values(
            read_topic(bootstrap_servers, topics.forecasts, expected=len(expected), timeout=300)
        )
        evaluations = values(
            read_topic(
                bootstrap_servers, topics.evaluations, expected=len(expected) - 1, timeout=120
            )
        )
        assert fc.terminate() == 0
    finally:
        fc.kill()
        replay.kill()
    print(
        f"\n{len(at)} SIGKILLs, {time.monotonic() - started:.1f} s; evaluations by the "
        f"killed instance before each kill: {at}"
    )
    report = _account(expected, forecasts, evaluations)
    assert report["duplicates"] == report["missing"] == report["unexpected"] == 0
    # The last forecast (for the day after the data ends) has no actual yet.
    assert report["evaluations"] == len(expected) - 1
    # The network computes in float32, and BLAS sums a product differently for different batch
    # sizes, so a forecast from a batch of 300 and one from a batch of 64,000 agree to float32
    # precision (values reach 400: about 1e-5), not to the last bit. The parity test uses the
    # same bound.
    worst = max(abs(f["forecast"] - expected[f["target_date"]]) for f in forecasts)
    assert worst < 1e-4


def test_broker_killed_and_restarted_mid_replay(data_path, tmp_path, unique) -> None:
    """A broker of its own, so the bounce cannot disturb other tests."""
    broker = LocalBroker(workdir=tmp_path / "kafka").start()
    topics = unique_topics(unique)
    start, end = "1995-01-01", "2005-12-31"
    expected = _expected(data_path, start, end)
    expected.pop(max(expected))  # the day after `end` is forecast but never scored
    try:
        fc = forecaster(broker.bootstrap_servers, topics, f"g-{unique}", tmp_path)
        replay = producer(
            broker.bootstrap_servers,
            topics,
            data_path,
            tmp_path / "producer.log",
            "--start",
            start,
            "--end",
            end,
            "--speed",
            "1000",
        )
        with running(fc):
            fc.wait_ready()
            replay.start()
            time.sleep(2.0)
            broker.kill()
            wait_for(
                "/readyz to answer 503 while the broker is down",
                lambda: fc.get("/readyz")[0] == 503,
                60,
            )
            time.sleep(2.0)
            before = sample(fc.metrics(), "sunspot_evaluations_total", series="silso")
            broker.start()
            restarted = time.monotonic()
            wait_for(
                "the forecaster to resume after the broker came back",
                lambda: sample(fc.metrics(), "sunspot_evaluations_total", series="silso") > before,
                120,
            )
            resumed = time.monotonic() - restarted
            wait_for("/readyz to recover", lambda: fc.get("/readyz")[0] == 200, 60)
            assert replay.process.wait(300) == 0, replay.log()
            forecasts = values(
                read_topic(
                    broker.bootstrap_servers,
                    topics.forecasts,
                    expected=len(expected) + 1,
                    timeout=180,
                )
            )
            evaluations = values(
                read_topic(
                    broker.bootstrap_servers,
                    topics.evaluations,
                    expected=len(expected),
                    timeout=120,
                )
            )
            assert fc.terminate() == 0
        replay.kill()
    finally:
        broker.cleanup()
    print(f"\npipeline resumed {resumed:.1f} s after the restarted broker was ready")
    report = _account(expected, [f for f in forecasts if f["target_date"] in expected], evaluations)
    assert len(forecasts) == len(expected) + 1
    assert report["duplicates"] == report["missing"] == report["unexpected"] == 0
    assert report["evaluations"] == len(expected)


def test_two_consumers_share_four_partitions_and_survive_a_kill(
    bootstrap_servers, create_topics, unique, data_path, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique), partitions=4)
    group = f"g-{unique}"
    series_count, shift, start, end = 8, 27, "2000-01-01", "2001-12-31"
    frame = data.select_range(data.load_daily(data_path), start, end)
    days = len(frame)
    model_window = load_forecaster(os.environ.get("SUNSPOTS_MODEL") or DEFAULT_FORECASTER).window
    # Series i starts i × shift days late; its windows end on its 10th day onwards.
    expected = {f"silso-{i}": days - i * shift - model_window + 1 for i in range(series_count)}
    a = forecaster(bootstrap_servers, topics, group, tmp_path, instance="a")
    b = forecaster(bootstrap_servers, topics, group, tmp_path, instance="b")
    replay = producer(
        bootstrap_servers,
        topics,
        data_path,
        tmp_path / "producer.log",
        "--start",
        start,
        "--end",
        end,
        "--speed",
        "100",
        "--series-count",
        str(series_count),
        "--series-shift-days",
        str(shift),
    )
    with running(a), running(b):
        a.wait_ready()
        b.wait_ready()
        replay.start()
        time.sleep(2.0)
        b.kill()
        time.sleep(3.0)
        b.start().wait_ready()
        assert replay.process.wait(120) == 0, replay.log()
        forecasts = values(
            read_topic(
                bootstrap_servers, topics.forecasts, expected=sum(expected.values()), timeout=180
            )
        )
        served = {"a": a.metrics(), "b": b.metrics()}
        assert a.terminate() == 0 and b.terminate() == 0
    per_series = Counter(f["series"] for f in forecasts)
    pairs = Counter((f["series"], f["target_date"]) for f in forecasts)
    print(f"\nforecasts per series: {dict(sorted(per_series.items()))}")
    assert dict(per_series) == expected
    assert max(pairs.values()) == 1
    # Both instances served some series: the partitions really were shared.
    for name, samples in served.items():
        assert any(k[0] == "sunspot_forecasts_total" and v > 0 for k, v in samples.items()), name


def test_a_zombie_with_the_same_instance_id_is_fenced_and_stops(
    bootstrap_servers, create_topics, unique, data_path, tmp_path
) -> None:
    """A paused instance whose id was taken over must not write once it wakes: it exits."""
    topics = create_topics(unique_topics(unique))
    group = f"g-{unique}"
    (tmp_path / "twin").mkdir()
    zombie = forecaster(bootstrap_servers, topics, group, tmp_path, instance="a")
    twin = forecaster(bootstrap_servers, topics, group, tmp_path / "twin", instance="a")
    with running(zombie):
        zombie.wait_ready()
        zombie.process.send_signal(signal.SIGSTOP)
        with running(twin):
            twin.wait_ready()  # same group.instance.id and transactional id: it takes over
            producer(
                bootstrap_servers,
                topics,
                data_path,
                tmp_path / "producer.log",
                "--start",
                "2010-01-01",
                "--end",
                "2010-03-31",
            ).start().process.wait(60)
            evaluations = values(read_topic(bootstrap_servers, topics.evaluations, expected=80))
            zombie.process.send_signal(signal.SIGCONT)
            assert zombie.process.wait(60) == 3, zombie.log()
            assert "another instance runs as" in zombie.log()
            time.sleep(2)  # anything the zombie could have written would be committed by now
            evaluations = values(read_topic(bootstrap_servers, topics.evaluations, expected=80))
            assert twin.process.poll() is None, twin.log()
            assert twin.terminate() == 0
    dates = [e["date"] for e in evaluations]
    assert len(dates) == len(set(dates)) == 80
