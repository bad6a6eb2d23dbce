"""Scale-out on a three-node cluster: three forecasters share four partitions, one is killed and
restarted mid-stream, and every series is forecast and scored exactly once.

The topics are created as an administrator would, with `sunspots-topics --partitions 4` (the
cluster's three replicas, two in sync). Eight series spread over the four partitions (the key
is the series id); the replay runs paced, so the kill lands while input is still arriving. The
kill is proven to have landed in flight, as the broker sees it (support.run_progress): committed
output before it, input not yet consumed after it. Afterwards the read_committed outputs must
equal the uninterrupted run computed offline (tests.integration.offline): every forecast and
evaluation of every series once, with its values.
"""

from __future__ import annotations

import time
from collections import defaultdict

from bench.common import rss_peak_mib
from devtools.broker.cluster import LocalCluster
from producer.resume import partition_of
from support import http
from support.polling import wait_for
from support.run_progress import Progress
from support.run_topics import read_results, read_to_end, topic_flags, unique_topics
from support.services import Service, forecaster, instance_id, python_service, replay_range
from tests.integration.offline import assert_matches, offline_run

PARTITIONS, SERIES, SHIFT = 4, 8, 27
START, END, SPEED = "2000-01-01", "2003-12-31", 40  # about 37 s of replay
INSTANCES = ("a", "b", "c")
BATCH = "200"  # --max-poll-records: many transactions, so the kill lands near one


def _forecasts_made(service: Service) -> float:
    return http.total(service.metrics(), "sunspot_forecasts_total")


def test_three_instances_on_four_partitions_one_killed_and_restarted(
    cluster: LocalCluster, tmp_path, unique, data_file, forecaster_model
) -> None:
    bootstrap = cluster.bootstrap_servers
    topics = unique_topics(unique)
    group = f"g-{unique}"
    split = ["--partitions", str(PARTITIONS)]
    made = python_service(
        ["sunspots.kafka.topics", "--bootstrap-servers", bootstrap, *topic_flags(topics), *split],
        tmp_path / "topics.log",
    ).start()
    assert made.wait(120) == 0, made.log()
    offline = offline_run(data_file, forecaster_model, START, END, count=SERIES, shift_days=SHIFT)
    total = offline.observations
    fleet = {
        name: forecaster(bootstrap, topics, group, tmp_path, "--max-poll-records", BATCH,
                         "--create-topics", "false", instance=name)
        for name in INSTANCES
    }  # fmt: skip
    replay = replay_range(
        bootstrap, topics, data_file.path, tmp_path, START, END, SPEED,
        "--series-count", str(SERIES), "--series-shift-days", str(SHIFT),
    )  # fmt: skip
    victim = fleet["b"]
    try:
        with Progress(bootstrap) as progress:
            moment = progress.forecaster_moments(group, topics, instance_id(group, "b"))
            for service in fleet.values():
                service.start()
            for service in fleet.values():
                service.wait_ready(180)
            replay.start()
            wait_for(
                "every instance to forecast, and a quarter of the input committed",
                lambda: (
                    all(_forecasts_made(s) > 0 for s in fleet.values())
                    and progress.consumed(group, topics.observations) >= total // 4
                ),
                300,
            )
            before = moment()
            aimed = progress.aim_at_open_transaction(instance_id(group, "b"), topics.forecasts, 5)
            victim.kill()
            killed = time.monotonic()
            after = moment()
            # The stream runs on while b is away, so its partitions have input waiting.
            wait_for(
                "more input while b is down",
                lambda: progress.ends(topics.observations).written >= after.produced + SERIES * 8,
                120,
            )
            victim.start().wait_ready(180)
            back = time.monotonic() - killed
            assert replay.wait(600) == 0, replay.log()
            progress.wait_finished(group, topics, total, 600, *fleet.values())
            forecasts, evaluations = read_results(bootstrap, topics)
            served = {name: _forecasts_made(s) for name, s in fleet.items()}
            observations = read_to_end(bootstrap, topics.observations)
        for service in fleet.values():
            assert service.terminate(60) == 0, service.log()
    finally:
        for service in (*fleet.values(), replay):
            service.kill()
    print(f"\n{SERIES} series, {total} observations, {PARTITIONS} partitions, 3 instances")
    print(f"b killed at: {before.describe()}")
    print(f"right after: {after.describe()} (aimed at an open transaction: {aimed})")
    print(f"b ready again {back:.1f} s after the kill; forecasts made since start: {served}")
    peaks = {n: rss_peak_mib(node.process.pid) for n, node in cluster.nodes.items() if node.process}
    print(f"cluster nodes' peak resident memory (MiB): {peaks}")
    assert before.outputs[topics.evaluations].committed > 0, "no output before the kill"
    assert after.consumed < total, "no input left after the kill"
    assert_matches(offline, forecasts, evaluations)
    # Each series lives in the partition its key hashes to, as `--resume` assumes.
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in observations:
        partitions[record.key.decode()].add(record.partition)
    assert {s: {partition_of(s, PARTITIONS)} for s in partitions} == dict(partitions)
    assert len({p for ps in partitions.values() for p in ps}) == PARTITIONS
    # All three instances did work: the restarted one too (its static membership got its
    # partitions back, or the others handed them over).
    assert all(n > 0 for n in served.values()), served
