"""The model lifecycle on the real broker, with the real services and commands: a challenger
published during a replay, shadow-scored, then promoted, in one forecaster process; a refused
record on the way; and a SIGKILL in the middle of a switch.

Judged by exact counts and values against the offline runs of both models: every target date
forecast and scored once on the serving topics, each by the model serving at that moment, the
window-27 model's forecasts equal to its offline ones from its first (the 64-value history
leaves no warm-up), and the shadow topics holding the challenger's forecasts up to the switch.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, date, datetime, timedelta

import msgspec
import pytest
from kafka import KafkaProducer

from sunspots.domain.artifact import load_forecaster
from sunspots.domain.data import load_daily, select_range
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.lifecycle import records as registry
from sunspots.wire.schemas import Observation
from support.http import sample
from support.polling import wait_for
from support.run_progress import Progress, freeze_inside_transaction
from support.run_topics import read_to_end, unique_topics, values
from support.services import forecaster, instance_id, replay_range
from tests.integration.offline import OfflineRun, offline_run
from tests.integration.test_models_topic import W10, W27
from tests.integration.test_models_topic import command as models_command

START, END = "2000-01-01", "2002-12-31"
SPEED = 60.0  # days a second: about 18 s of replay, time for the commands to land mid-stream


def command(bootstrap: str, topics: Topics, *args: str) -> None:
    """`python -m training ARGS` on this test's models topic; raises unless it exits 0."""
    done = models_command(KafkaSettings(bootstrap, topics), *args)
    assert done.returncode == 0, done.stderr


def bad_hash_record() -> bytes:
    """A challenger record of the window-27 model whose weights do not match their sha256."""
    meta = W27.read_text()
    weights = W27.with_suffix(".npz").read_bytes()
    record = registry.make_record("challenger", meta, weights, "test@host")
    return registry.encode(msgspec.structs.replace(record, weights_sha256="0" * 64))


def first_seen(bootstrap: str, topic: str, version: str, timeout: float = 60.0) -> float:
    """When a record of `version` was first read from `topic` (time.monotonic())."""
    wait_for(
        f"a forecast of {version} on {topic}",
        lambda: any(f["model_version"] == version for f in values(read_to_end(bootstrap, topic))),
        timeout,
        interval=0.1,
    )
    return time.monotonic()


@pytest.fixture(scope="module")
def offline(data_file) -> dict[str, OfflineRun]:
    return {
        name: offline_run(data_file, load_forecaster(path), START, END)
        for name, path in (("w10", W10), ("w27", W27))
    }


def _versions() -> tuple[str, str]:
    return load_forecaster(W10).model_version, load_forecaster(W27).model_version


def _check_served(forecasts: list[dict], evaluations: list[dict], offline) -> str:
    """Every date once, by w10 then w27 (one switch), each equal to its model's offline
    forecast; every evaluation once, under the version that made its forecast. Returns the
    first target date the new champion forecast."""
    v10, v27 = _versions()
    dates = [f["target_date"] for f in forecasts]
    assert sorted(dates) == sorted(t for _, t in offline["w10"].forecasts)  # each once
    by_date = sorted(forecasts, key=lambda f: f["target_date"])
    made_by = [f["model_version"] for f in by_date]
    switch = made_by.index(v27)
    assert switch > 0 and made_by == [v10] * switch + [v27] * (len(made_by) - switch)
    for f in by_date:
        run = offline["w10" if f["model_version"] == v10 else "w27"]
        assert f["forecast"] == pytest.approx(
            run.forecasts[("silso", f["target_date"])]["forecast"]
        )
    versions = {f["target_date"]: f["model_version"] for f in forecasts}
    scored = [e["date"] for e in evaluations]
    assert sorted(scored) == sorted(t for _, t in offline["w10"].evaluations)
    assert all(e["model_version"] == versions[e["date"]] for e in evaluations)
    return by_date[switch]["target_date"]


def test_a_challenger_is_shadow_scored_then_promoted_in_the_same_process(
    bootstrap_servers, unique, create_topics, data_file, offline, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique))
    group = f"lifecycle-{unique}"
    v10, v27 = _versions()
    fc = forecaster(bootstrap_servers, topics, group, tmp_path).start()
    replay = replay_range(bootstrap_servers, topics, data_file.path, tmp_path, START, END, SPEED)
    try:
        fc.wait_ready(120)
        with Progress(bootstrap_servers) as progress:
            replay.start()
            progress.wait_consumed(group, topics.observations, 150, 120, fc)
            refused = KafkaProducer(bootstrap_servers=bootstrap_servers)
            refused.send(topics.models, key=b"challenger", value=bad_hash_record()).get(30)
            refused.close()
            command(bootstrap_servers, topics, "publish", str(W27), "--role", "challenger")
            progress.wait_consumed(group, topics.observations, 500, 120, fc)
            command(bootstrap_servers, topics, "promote")
            promoted = time.monotonic()
            latency = first_seen(bootstrap_servers, topics.forecasts, v27) - promoted
            progress.wait_finished(group, topics, offline["w10"].observations, 120, fc)
        fc.check_running()  # never restarted: the switches happened in this process
        metrics = fc.metrics()
    finally:
        replay.stop()
        fc.stop()

    forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
    evaluations = values(read_to_end(bootstrap_servers, topics.evaluations))
    switched = _check_served(forecasts, evaluations, offline)

    shadow = values(read_to_end(bootstrap_servers, topics.forecasts_shadow))
    shadow_scored = values(read_to_end(bootstrap_servers, topics.evaluations_shadow))
    shadow_dates = [f["target_date"] for f in shadow]
    assert shadow and {f["model_version"] for f in shadow} == {v27}
    first = date.fromisoformat(shadow_dates[0])
    expected = [(first + timedelta(days=i)).isoformat() for i in range(len(shadow))]
    assert shadow_dates == expected  # consecutive days, each once
    assert date.fromisoformat(switched) == date.fromisoformat(shadow_dates[-1]) + timedelta(1)
    for f in shadow:
        assert f["forecast"] == pytest.approx(
            offline["w27"].forecasts[("silso", f["target_date"])]["forecast"]
        )
    # Scored like the champion's, but the last shadow forecast was dropped with its lane.
    assert [e["date"] for e in shadow_scored] == shadow_dates[:-1]
    assert {e["model_version"] for e in shadow_scored} == {v27}

    assert sample(metrics, "sunspot_model_rejections_total", reason="bad_hash") == 1
    assert sample(metrics, "sunspot_model_switches_total", role="challenger") == 1
    assert sample(metrics, "sunspot_model_switches_total", role="champion") == 1
    assert sample(metrics, "sunspot_model_info", model_version=v27, role="champion") == 1
    assert sample(metrics, "sunspot_model_info", model_version=v10, role="champion") == 0
    print(
        f"\nshadow: {len(shadow)} forecasts; switch on {switched}; promote to first "
        f"forecast of {v27}: {latency:.2f} s"
    )


def test_exactly_once_across_a_sigkill_in_the_middle_of_a_switch(
    bootstrap_servers, unique, create_topics, data_file, offline, tmp_path
) -> None:
    """The new champion is applied in the process (its log says so), then the process is
    frozen inside an open transaction, as the broker sees it, and SIGKILLed there: the kill
    lands exactly at that moment, with the switch made and a batch in flight."""
    topics = create_topics(unique_topics(unique))
    group = f"switch-kill-{unique}"
    instance = instance_id(group, "a")
    v27 = _versions()[1]
    fc = forecaster(bootstrap_servers, topics, group, tmp_path).start()
    replay = replay_range(bootstrap_servers, topics, data_file.path, tmp_path, START, END, SPEED)
    try:
        fc.wait_ready(120)
        with Progress(bootstrap_servers) as progress:
            moment = progress.forecaster_moments(group, topics, instance)
            replay.start()
            progress.wait_consumed(group, topics.observations, 300, 120, fc)
            command(bootstrap_servers, topics, "publish", str(W27), "--role", "champion")
            switched = f"champion: {v27} now runs"
            wait_for("the new champion applied", lambda: switched in fc.log(10**6), 60)
            frozen = freeze_inside_transaction(fc, progress, moment, instance, topics)
            fc.kill()  # SIGKILL while frozen: the kill lands at `frozen`
            committed = values(read_to_end(bootstrap_servers, topics.forecasts))
            new_before_kill = sum(f["model_version"] == v27 for f in committed)
            fc.start()
            # Restarted with --model w10, it serves the topic's champion and says so once.
            told = f"the champion on the models topic {topics.models} ({v27}) serves, not the model"
            wait_for("the override told", lambda: told in fc.log(10**6), 60)
            progress.wait_finished(group, topics, offline["w10"].observations, 180, fc)
        fc.check_running()
    finally:
        replay.stop()
        fc.stop()
    forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
    evaluations = values(read_to_end(bootstrap_servers, topics.evaluations))
    _check_served(forecasts, evaluations, offline)
    assert frozen.in_transaction  # a batch in flight, after the switch
    assert 0 < frozen.consumed < offline["w10"].observations  # the kill landed mid-stream
    print(
        f"\nkilled at {frozen.describe()}; {new_before_kill} forecasts of the new champion "
        "committed before the kill"
    )


SHIFT_FROM = date(2012, 1, 1)
SHIFT_SCALE = 1 / 0.6  # SILSO's own change of scale in 2015 (version 1 to 2)


def send_series(bootstrap: str, topic: str, frame, series: str, scale_from: date | None) -> int:
    """The frame's days as observations of `series`, each value times SHIFT_SCALE from
    `scale_from` on (a test producer's injected change of the stream's scale)."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, acks="all")
    sent = 0
    for day, value in zip(frame["date"].dt.date, frame["sunspot_number"], strict=True):
        if scale_from is not None and day >= scale_from:
            value = value * SHIFT_SCALE
        obs = Observation(series, day, None if value != value else float(value), None, 1, False)
        producer.send(topic, key=series.encode(), value=obs.encode())
        sent += 1
    producer.flush()
    producer.close()
    return sent


def test_drift_fires_after_a_change_of_scale_and_never_on_the_clean_stream(
    bootstrap_servers, unique, create_topics, data_file, tmp_path
) -> None:
    """`clean`: 2000-01-01 to the end of the data as SILSO gives it (its first 2000–2017
    years are the seed's test period: the detector is causal, so no alarm on the whole stream
    means none on that prefix either). `scaled`: 2000-01-01 to 2013-12-31, times 1/0.6 from
    2012-01-01 (two years after the change; a test of the detector, not of the sun).

    The clean stream is also the interval table of docs/intervals.md, streamed: its evaluations up to
    2026-01-31 are counted per activity band here, from their own `lower`, `upper`, `actual`
    and `persistence` (the window's last value), with no project code, and each band's
    coverage must be within the 87-93 % docs/intervals.md promises."""
    topics = create_topics(unique_topics(unique))
    group = f"drift-{unique}"
    frame = select_range(load_daily(data_file.path), "2000-01-01", None)
    sent = sum(
        send_series(bootstrap_servers, topics.observations, rows, name, shift)
        for name, rows, shift in (
            ("clean", frame, None),
            ("scaled", select_range(frame, "2000-01-01", "2013-12-31"), SHIFT_FROM),
        )
    )
    # Both series exported with their own metrics, so the alarm can be told apart by series.
    exported = ["--series-metrics", "clean,scaled"]
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, *exported).start()
    try:
        with Progress(bootstrap_servers) as progress:
            progress.wait_finished(group, topics, sent, 180, fc)
        metrics = fc.metrics()
    finally:
        fc.stop()
    champion = {"role": "champion"}
    # One alarm over both series (the fleet-wide count), and it was the scaled series'.
    assert sample(metrics, "sunspot_drift_alarms_total", **champion) == 1
    alarm_date = "sunspot_drift_last_alarm_timestamp_seconds"
    assert (metrics.get((alarm_date, (("role", "champion"), ("series", "clean"))))) is None
    when = sample(
        metrics, "sunspot_drift_last_alarm_timestamp_seconds", series="scaled", **champion
    )
    delay = (datetime.fromtimestamp(when, UTC).date() - SHIFT_FROM).days
    assert 0 <= delay <= 30
    clean = [
        e
        for e in values(read_to_end(bootstrap_servers, topics.evaluations))
        if e["series"] == "clean"
    ]
    clean_peak = max(clean, key=lambda e: abs(e["error"]))
    _assert_band_coverage([e for e in clean if e["date"] <= "2026-01-31"])
    print(
        f"\ndrift: alarm {delay} days after the change of scale on {SHIFT_FROM}; no alarm on "
        f"{len(frame)} clean days (largest error {clean_peak['error']:.1f} on {clean_peak['date']})"
    )


# The activity bands of docs/intervals.md by the window's last value, and the coverage each must reach.
BANDS = [("0-10", 0, 10), ("10-50", 10, 50), ("50-100", 50, 100), ("100-150", 100, 150)]
BANDS += [("150+", 150, float("inf"))]
BAND_COVERAGE = (0.87, 0.93)


def _assert_band_coverage(evaluations: list[dict]) -> None:
    """Each band's share of actuals inside [lower, upper] within BAND_COVERAGE."""
    table = []
    for name, low, high in BANDS:
        inside = [
            e["lower"] <= e["actual"] <= e["upper"]
            for e in evaluations
            if low <= e["persistence"] < high
        ]
        table.append((name, len(inside), sum(inside) / max(len(inside), 1)))
    print("\n" + "; ".join(f"{n}: {c:.1%} of {d}" for n, d, c in table))
    assert sum(d for _, d, _ in table) == len(evaluations)
    for name, days, coverage in table:
        assert days > 1000 and BAND_COVERAGE[0] <= coverage <= BAND_COVERAGE[1], (name, table)


def test_the_forecaster_promotes_a_better_challenger_once_by_itself(
    bootstrap_servers, unique, create_topics, data_file, offline, tmp_path
) -> None:
    """With --auto-promote, a challenger published before the replay: both models score the
    same days from the first the window-27 model forecasts, and the first time the challenger's
    RMSE over the last 20 of them is below the champion's the forecaster publishes the
    promotion with its batch, once. The day is checked exactly: the RMSEs the forecaster logged
    are those of the 20 days up to the first win recomputed from the published evaluations,
    and the promotion record was written between the changelog records of the batch before
    and the batch after the one that scored that day (one changelog record per batch: one
    series). How soon the new champion serves after that is timing (the models topic read back
    at a batch boundary): printed."""
    topics = create_topics(unique_topics(unique))
    group = f"promote-{unique}"
    v10, v27 = _versions()
    command(bootstrap_servers, topics, "publish", str(W27), "--role", "challenger")
    flags = ["--auto-promote", "true", "--promote-days", "20", "--promote-margin", "0"]
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, *flags).start()
    replay = replay_range(bootstrap_servers, topics, data_file.path, tmp_path, START, END, SPEED)
    try:
        fc.wait_ready(120)
        with Progress(bootstrap_servers) as progress:
            replay.start()
            progress.wait_finished(group, topics, offline["w10"].observations, 180, fc)
        metrics = fc.metrics()
        logged = re.findall(PROMOTING, fc.log(10**7))
    finally:
        replay.stop()
        fc.stop()

    models = read_to_end(bootstrap_servers, topics.models)
    written = [
        (r.key, None if r.value is None else registry.decode(r.key, r.value)) for r in models
    ]
    assert [k for k, _ in written] == [b"challenger", b"champion", b"challenger"]
    promoted = written[1][1]
    assert promoted.model_version == v27 and written[2][1] is None  # the challenger retired
    assert "automatic promotion" in promoted.record.published_by
    assert sample(metrics, "sunspot_model_promotions_total") == 1

    forecasts = values(read_to_end(bootstrap_servers, topics.forecasts))
    evaluations = values(read_to_end(bootstrap_servers, topics.evaluations))
    switched = _check_served(forecasts, evaluations, offline)
    shadow = values(read_to_end(bootstrap_servers, topics.evaluations_shadow))
    both = {e["date"]: e for e in evaluations if e["model_version"] == v10}
    pairs = [(e["date"], both[e["date"]]["error"], e["error"]) for e in shadow if e["date"] in both]
    # The rule's decision, recomputed from what was published: the first day on which the
    # challenger's RMSE over the last 20 days scored by both was below the champion's; the
    # promotion went out with that day's batch, so the new champion serves soon after.
    wins = [
        i
        for i in range(20, len(pairs) + 1)
        if _rmse(pairs[i - 20 : i], 2) < _rmse(pairs[i - 20 : i], 1)
    ]
    assert wins
    decided_on = date.fromisoformat(pairs[wins[0] - 1][0])
    window = pairs[wins[0] - 20 : wins[0]]
    assert logged == [(v27, f"{_rmse(window, 2):.2f}", f"{_rmse(window, 1):.2f}", "20")]
    batches = [
        (date.fromisoformat(json.loads(r.value)["window"]["last_date"]), r.timestamp)
        for r in read_to_end(bootstrap_servers, topics.state)
    ]
    deciding = next(i for i, (last, _) in enumerate(batches) if last >= decided_on)
    assert 0 < deciding < len(batches) - 1
    assert batches[deciding - 1][1] <= models[1].timestamp < batches[deciding + 1][1]
    assert decided_on < date.fromisoformat(switched)
    print(
        f"\nautomatic promotion decided on {decided_on}, {wins[0]} days scored by both; the "
        f"new champion served from {switched}"
    )


PROMOTING = (
    r"promoting challenger (\S+): RMSE ([0-9.]+) against the champion's ([0-9.]+) over the "
    r"last (\d+) days"
)


def _rmse(pairs: list[tuple[str, float, float]], which: int) -> float:
    return (sum(p[which] ** 2 for p in pairs) / len(pairs)) ** 0.5
