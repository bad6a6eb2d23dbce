"""Fault tests on the real broker: hard kills, a broker bounce, a consumer leaving a group, a
zombie frozen while idle and in the middle of a batch.

Each fault but one is proven to have landed in flight: the broker is asked
(support.run_progress), right before and right after it, how much output was committed and how
much input was still waiting, and whether the instance's transaction was open; a fault that
hit before the stream began or after it ended fails the test. The exception is the zombie
frozen while idle, on purpose: it is frozen before the stream begins, to show that a paused
instance whose id was taken over never writes once it wakes. Afterwards the read_committed view
of the output topics must hold exactly the forecasts and evaluations of an uninterrupted run,
computed offline (tests.integration.offline): every target date once, every value as the
offline model gives it, the evaluations right after each restart included (a pending forecast
lost with a restart would leave its evaluation missing). Whether such a forecast was restored
from the changelog or made again from the restored window does not show in the outputs (both
give the same values); the changelog's unit tests prove the restore.
"""

from __future__ import annotations

import random
import signal
import time
from pathlib import Path

import pytest

from devtools.broker import LocalBroker
from sunspots.kafka.settings import Topics
from support import http
from support.polling import wait_for
from support.run_progress import Moment, Progress, freeze_inside_transaction
from support.run_topics import read_results, unique_topics
from support.services import Service, forecaster, instance_id, replay_range, running
from tests.integration.offline import assert_matches, offline_run

pytestmark = pytest.mark.fault


def test_forecaster_killed_five_times_during_a_full_replay(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    start = "1850-01-01"
    topics = create_topics(unique_topics(unique))
    offline = offline_run(data_file, forecaster_model, start)
    total = offline.observations
    rng = random.Random(unique)
    group = f"g-{unique}"
    instance = instance_id(group, "a")
    began = time.monotonic()
    # Small batches mean many transactions, so the kills land between and inside commits.
    fc = forecaster(bootstrap_servers, topics, group, tmp_path, "--max-poll-records", "300")
    replay = replay_range(bootstrap_servers, topics, data_file.path, tmp_path, start)
    kills: list[tuple[Moment, Moment, bool]] = []
    with Progress(bootstrap_servers) as progress:
        moment = progress.forecaster_moments(group, topics, instance)
        try:
            fc.start().wait_ready()
            replay.start()
            for k in range(1, 6):
                # Kill k lands when about k/6 of the input is committed: never before the
                # stream began nor after it ended, whatever the speed of the machine.
                target = int(total * rng.uniform(k - 0.3, k + 0.3) / 6)
                progress.wait_consumed(group, topics.observations, target, 300, fc)
                before = moment()
                aimed = progress.aim_at_open_transaction(instance, topics.forecasts, 5.0)
                fc.kill()
                kills.append((before, moment(), aimed))
                fc.start().wait_ready()
            assert replay.wait(300) == 0, replay.log()
            progress.wait_finished(group, topics, total, 300, fc)
            final = moment()
            forecasts, evaluations = read_results(bootstrap_servers, topics)
            assert fc.terminate() == 0
        finally:
            fc.kill()
            replay.kill()
    print(f"\n5 SIGKILLs during a replay of {total} days, {time.monotonic() - began:.0f} s")
    for n, (before, after, aimed) in enumerate(kills, 1):
        print(f"kill {n}: before: {before.describe()}")
        print(f"        after:  {after.describe()} (aimed at an open transaction: {aimed})")
    committed_at_end = final.outputs[topics.evaluations].committed
    for n, (before, after, _) in enumerate(kills, 1):
        assert before.outputs[topics.evaluations].committed > 0, f"kill {n}: no output before it"
        assert after.consumed < total, f"kill {n}: no input left after it"
        assert after.outputs[topics.evaluations].committed < committed_at_end, f"kill {n}"
    assert any(after.in_transaction for _, after, _ in kills), (
        "no kill landed inside an open transaction"
    )
    assert_matches(offline, forecasts, evaluations)
    # The last forecast (for the day after the data ends) has no actual yet.
    assert len(evaluations) == len(forecasts) - 1


def test_broker_killed_and_restarted_mid_replay(
    data_file, forecaster_model, tmp_path, unique
) -> None:
    """A broker of its own, so the bounce cannot disturb other tests. The forecaster rides the
    bounce out in one process: a transaction in flight waits for the broker's return and
    commits, or fails and is rewound and done again (which of the two depends on where the
    kill lands; the unit tests of the runner's paths prove each); either way the outputs are
    exactly the offline run's."""
    broker = LocalBroker(workdir=tmp_path / "kafka").start()
    topics = unique_topics(unique)
    start, end = "1995-01-01", "2005-12-31"
    offline = offline_run(data_file, forecaster_model, start, end)
    total = offline.observations
    group = f"g-{unique}"
    bootstrap = broker.bootstrap_servers
    try:
        fc = forecaster(bootstrap, topics, group, tmp_path)
        replay = replay_range(bootstrap, topics, data_file.path, tmp_path, start, end, 1000)
        with running(fc), Progress(bootstrap) as progress:
            moment = progress.forecaster_moments(group, topics, instance_id(group, "a"))
            fc.wait_ready()
            replay.start()
            progress.wait_consumed(group, topics.observations, total // 4, 120, fc)
            before = moment()
            broker.kill()
            wait_for(
                "/readyz to answer 503 while the broker is down",
                lambda: fc.get("/readyz")[0] == 503,
                60,
            )
            broker.start()
            restarted = time.monotonic()
            wait_for(
                "the forecaster to commit again after the broker came back",
                lambda: progress.consumed(group, topics.observations) > before.consumed,
                120,
            )
            resumed = time.monotonic() - restarted
            wait_for("/readyz to recover", lambda: fc.get("/readyz")[0] == 200, 60)
            assert replay.wait(300) == 0, replay.log()
            progress.wait_finished(group, topics, total, 180, fc)
            forecasts, evaluations = read_results(bootstrap, topics)
            assert fc.terminate() == 0
        replay.kill()
    finally:
        broker.cleanup()
    print(f"\nbroker killed at: {before.describe()}")
    print(f"pipeline committed again {resumed:.1f} s after the restarted broker was ready")
    assert before.outputs[topics.evaluations].committed > 0
    assert before.consumed < total
    assert_matches(offline, forecasts, evaluations)


def test_two_consumers_share_four_partitions_and_survive_a_kill(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    topics = create_topics(unique_topics(unique), partitions=4)
    group = f"g-{unique}"
    count, shift, start, end = 8, 27, "2000-01-01", "2001-12-31"
    offline = offline_run(data_file, forecaster_model, start, end, count=count, shift_days=shift)
    total = offline.observations
    a = forecaster(bootstrap_servers, topics, group, tmp_path, instance="a")
    b = forecaster(bootstrap_servers, topics, group, tmp_path, instance="b")
    replay = replay_range(
        bootstrap_servers,
        topics,
        data_file.path,
        tmp_path,
        start,
        end,
        100,
        "--series-count",
        str(count),
        "--series-shift-days",
        str(shift),
    )

    def forecasts_made(service: Service) -> float:
        return http.total(service.metrics(), "sunspot_forecasts_total")

    with running(a), running(b), Progress(bootstrap_servers) as progress:
        moment = progress.forecaster_moments(group, topics, instance_id(group, "b"))
        a.wait_ready()
        b.wait_ready()
        replay.start()
        wait_for(
            "both instances to forecast, and a quarter of the input committed",
            lambda: (
                forecasts_made(a) > 0
                and forecasts_made(b) > 0
                and progress.consumed(group, topics.observations) >= total // 4
            ),
            120,
        )
        before = moment()
        b_before = forecasts_made(b)
        b.kill()
        after = moment()
        # Let the stream run on while b is away (unless the replay has already ended), so
        # that its partitions wait for it.
        wait_for(
            "more input to arrive while b is down",
            lambda: (
                replay.process.poll() is not None
                or progress.ends(topics.observations).written >= after.produced + 4 * count
            ),
            60,
        )
        b.start().wait_ready()
        assert replay.wait(120) == 0, replay.log()
        progress.wait_finished(group, topics, total, 180, a, b)
        forecasts, evaluations = read_results(bootstrap_servers, topics)
        served = {"a": forecasts_made(a), "b": forecasts_made(b)}
        assert a.terminate() == 0 and b.terminate() == 0
    print(f"\nb killed after making {b_before:.0f} forecasts, at: {before.describe()}")
    print(f"after the kill: {after.describe()}; forecasts made after it: {served}")
    assert before.outputs[topics.evaluations].committed > 0 and b_before > 0
    assert after.consumed < total
    assert_matches(offline, forecasts, evaluations)
    # Both instances served some series after the restart too: the partitions were shared.
    assert served["a"] > 0 and served["b"] > 0, served


def _zombie_and_twin(
    bootstrap: str, topics: Topics, group: str, tmp_path: Path, *extra: str
) -> tuple[Service, Service]:
    """Two forecasters with the same instance id (so the same transactional id), logging apart."""
    (tmp_path / "twin").mkdir()
    zombie = forecaster(bootstrap, topics, group, tmp_path, *extra, instance="a")
    twin = forecaster(bootstrap, topics, group, tmp_path / "twin", *extra, instance="a")
    return zombie, twin


def _wake_and_expect_fenced(zombie: Service) -> None:
    zombie.process.send_signal(signal.SIGCONT)
    assert zombie.wait(60) == 3, zombie.log()
    assert "another instance runs as" in zombie.log()


def test_a_zombie_frozen_while_idle_is_fenced_and_stops(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    """A paused instance whose id was taken over must not write once it wakes: it exits."""
    topics = create_topics(unique_topics(unique))
    group = f"g-{unique}"
    start, end = "2010-01-01", "2010-03-31"
    offline = offline_run(data_file, forecaster_model, start, end)
    zombie, twin = _zombie_and_twin(bootstrap_servers, topics, group, tmp_path)
    with running(zombie), Progress(bootstrap_servers) as progress:
        zombie.wait_ready()
        zombie.process.send_signal(signal.SIGSTOP)
        with running(twin):
            twin.wait_ready()  # same group.instance.id and transactional id: it takes over
            replay = replay_range(bootstrap_servers, topics, data_file.path, tmp_path, start, end)
            assert replay.start().wait(60) == 0, replay.log()
            progress.wait_finished(group, topics, offline.observations, 60, twin)
            _wake_and_expect_fenced(zombie)
            # The zombie has exited: whatever it wrote is on the topics now.
            forecasts, evaluations = read_results(bootstrap_servers, topics)
            twin.check_running()
            assert twin.terminate() == 0
    assert_matches(offline, forecasts, evaluations)


def test_a_zombie_frozen_in_the_middle_of_a_batch_is_fenced_and_its_batch_never_shows(
    bootstrap_servers, create_topics, unique, data_file, forecaster_model, tmp_path
) -> None:
    """Frozen with a transaction open, the zombie's batch is aborted when the twin takes over,
    the twin processes it again from the committed state, and the zombie, woken, exits."""
    topics = create_topics(unique_topics(unique))
    group = f"g-{unique}"
    instance = instance_id(group, "a")
    start, end = "2008-01-01", "2010-12-31"
    offline = offline_run(data_file, forecaster_model, start, end)
    total = offline.observations
    zombie, twin = _zombie_and_twin(
        bootstrap_servers, topics, group, tmp_path, "--max-poll-records", "20"
    )
    replay = replay_range(bootstrap_servers, topics, data_file.path, tmp_path, start, end, 150)
    with running(zombie), Progress(bootstrap_servers) as progress:
        moment = progress.forecaster_moments(group, topics, instance)
        zombie.wait_ready()
        with running(replay):
            wait_for(
                "the zombie to commit output",
                lambda: progress.ends(topics.evaluations).committed > 0,
                60,
            )
            frozen = freeze_inside_transaction(zombie, progress, moment, instance, topics)
            with running(twin):
                twin.wait_ready()  # its producer's start fenced the zombie's, and aborted
                wait_for(
                    "the frozen transaction to be aborted",
                    lambda: all(
                        progress.ends(topic).committed >= ends.written
                        for topic, ends in frozen.outputs.items()
                    ),
                    60,
                )
                taken_over = moment()
                assert replay.wait(120) == 0, replay.log()
                progress.wait_finished(group, topics, total, 120, twin)
                _wake_and_expect_fenced(zombie)
                forecasts, evaluations = read_results(bootstrap_servers, topics)
                twin.check_running()
                assert twin.terminate() == 0
    print(f"\nzombie frozen at: {frozen.describe()}")
    print(f"twin took over:   {taken_over.describe()}")
    assert frozen.outputs[topics.evaluations].committed > 0 and frozen.consumed < total
    assert_matches(offline, forecasts, evaluations)
