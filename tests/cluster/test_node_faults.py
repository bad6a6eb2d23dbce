"""Node faults on a three-node cluster: the forecaster and the producer ride them out exactly once.

Each test replays a range of days onto topics the forecaster creates itself (so with the
cluster's three replicas and two in sync), hits one node while the replay runs, and then judges
the read_committed outputs against the uninterrupted (offline) run: every target date forecast
once and scored once, none missing, none extra, values equal. The fault must land mid-stream:
committed evaluations exist before it and the replay is still sending after it. The time from
the fault to the next batch committed is printed as the time to resume.
"""

from __future__ import annotations

import itertools
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from sunspots import data
from sunspots.artifact import DEFAULT_FORECASTER, load_forecaster
from sunspots.broker.cluster import LocalCluster
from sunspots.settings import Topics
from support.polling import wait_for
from support.services import Service, forecaster, producer
from support.topics import read_topic, unique_topics, values

BATCH = 200  # --max-poll-records: many small transactions, so a fault lands inside one


def offline_forecasts(data_path: Path, start: str, end: str) -> dict[str, float]:
    """Target date -> forecast of an uninterrupted run, from the offline batched model."""
    model = load_forecaster(os.environ.get("SUNSPOTS_MODEL") or DEFAULT_FORECASTER)
    frame = data.select_range(data.load_daily(data_path), start, end)
    series = frame["sunspot_number"].to_numpy(dtype=np.float64)
    assert not np.isnan(series).any(), "the range must have no missing day"
    windows = np.lib.stride_tricks.sliding_window_view(series, model.window)
    targets = (frame["date"] + np.timedelta64(1, "D")).dt.date.tolist()[model.window - 1 :]
    return {d.isoformat(): float(p) for d, p in zip(targets, model.predict(windows), strict=True)}


@dataclass
class Replay:
    """One forecaster and one paced replay on the cluster, with the means to judge them."""

    cluster: LocalCluster
    topics: Topics
    group: str
    expected: dict[str, float]
    forecaster: Service
    producer: Service
    log: list[str] = field(default_factory=list)

    faults: list[tuple[str, float]] = field(default_factory=list)  # (what, when: epoch s)

    @property
    def transactional_id(self) -> str:
        return f"{self.group}-{self.group}-a"  # <group>-<instance id>, as the service names it

    def committed_evaluations(self) -> int:
        """Evaluations readable downstream now (read_committed end offset)."""
        reader = KafkaConsumer(
            bootstrap_servers=self.cluster.live_bootstrap(),
            isolation_level="read_committed",
            request_timeout_ms=15_000,
        )
        try:
            tp = TopicPartition(self.topics.evaluations, 0)
            return int(reader.end_offsets([tp])[tp])
        finally:
            reader.close()

    def wait_committed(self, count: int, timeout: float = 300.0) -> float:
        """Wait until more than `count` evaluations are committed; return the seconds taken."""
        started = time.monotonic()
        wait_for(
            f"more than {count} committed evaluations",
            lambda: self.committed_evaluations() > count,
            timeout,
            interval=0.5,
        )
        return time.monotonic() - started

    def fault(self, name: str, action: Callable[[], None]) -> None:
        """Run `action` mid-stream: committed output exists before it, the replay is still
        sending when it begins, and more output is committed after it."""
        before = self.committed_evaluations()
        assert before > 0, f"{name}: no committed output before the fault"
        assert self.producer.process is not None and self.producer.process.poll() is None, (
            f"{name}: the replay had ended before the fault"
        )
        self.faults.append((name, time.time()))
        action()
        after = self.committed_evaluations()
        sending = self.producer.process.poll() is None
        # While the replay runs, at least one more full batch; once it is over, any progress.
        self.wait_committed(max(before, after) + (BATCH if sending else 0))
        self.log.append(f"{name}: {before} evaluations committed before, {after} right after")

    def stalls(self, evaluations: list) -> list[str]:
        """For each fault, the longest gap between consecutive committed evaluations (by
        their Kafka timestamps) from the fault to the next fault: the time to resume."""
        stamps = sorted(e.timestamp / 1000 for e in evaluations)
        bounds = [when for _, when in self.faults] + [float("inf")]
        report = []
        for (name, when), until in zip(self.faults, bounds[1:], strict=True):
            inside = [when, *(t for t in stamps if when <= t < until)]
            gap = (
                max(b - a for a, b in itertools.pairwise(inside))
                if len(inside) > 1
                else float("nan")
            )
            report.append(f"{name}: output stalled for at most {gap:.1f} s")
        return report

    def finish(self) -> None:
        """The replay ends cleanly and the outputs equal the uninterrupted run's."""
        assert self.producer.wait(600) == 0, self.producer.log()
        live = self.cluster.live_bootstrap()
        n = len(self.expected)
        forecasts = values(read_topic(live, self.topics.forecasts, expected=n, timeout=300))
        records = read_topic(live, self.topics.evaluations, expected=n - 1)
        evaluations = values(records)
        assert self.forecaster.terminate(60) == 0, self.forecaster.log()
        print("\n" + "\n".join(self.log + self.stalls(records)))
        targets = Counter(f["target_date"] for f in forecasts)
        scored = Counter(e["date"] for e in evaluations)
        assert max(targets.values()) == 1 and max(scored.values()) == 1, "an output repeated"
        assert set(targets) == set(self.expected), "forecasts missing or unexpected"
        # The last forecast (for the day after the range) has no actual yet.
        assert set(scored) == set(self.expected) - {max(self.expected)}
        worst = max(abs(f["forecast"] - self.expected[f["target_date"]]) for f in forecasts)
        assert worst < 1e-4  # float32 network; see tests/integration/test_faults.py
        for e in evaluations:
            assert abs(e["forecast"] - self.expected[e["date"]]) < 1e-4


def start_replay(
    cluster: LocalCluster,
    tmp_path: Path,
    unique: str,
    data_path: Path,
    start: str,
    end: str,
    speed: int,
) -> Replay:
    topics = unique_topics(unique)
    group = f"g-{unique}"
    fc = forecaster(
        cluster.bootstrap_servers, topics, group, tmp_path, "--max-poll-records", str(BATCH)
    )
    fc.start()
    try:
        fc.wait_ready(180)
        assert_replicated(cluster, topics)
    except BaseException:
        fc.kill()
        raise
    replay = producer(
        cluster.bootstrap_servers,
        topics,
        data_path,
        tmp_path / "producer.log",
        "--start",
        start,
        "--end",
        end,
        "--speed",
        str(speed),
    ).start()
    run = Replay(cluster, topics, group, offline_forecasts(data_path, start, end), fc, replay)
    try:
        run.wait_committed(BATCH)
    except BaseException:
        fc.kill()
        replay.kill()
        raise
    return run


def assert_replicated(cluster: LocalCluster, topics: Topics) -> None:
    """The forecaster created its topics with the cluster's three replicas."""
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap_servers)
    try:
        for described in admin.describe_topics([topics.observations, topics.state]):
            for part in described["partitions"]:
                assert len(part["replica_nodes"]) == 3, described
    finally:
        admin.close()


def test_leader_of_the_observations_partition_killed_and_kept_down(
    cluster, tmp_path, unique, data_path
) -> None:
    run = start_replay(cluster, tmp_path, unique, data_path, "1990-01-01", "2004-12-31", 250)
    try:
        leader = cluster.leader(run.topics.observations)
        run.fault(f"SIGKILL node {leader}, leader of observations", cluster.node(leader).kill)
        assert not cluster.node(leader).running
        run.finish()
    finally:
        run.forecaster.kill()
        run.producer.kill()


def test_transaction_coordinator_killed(cluster, tmp_path, unique, data_path) -> None:
    run = start_replay(cluster, tmp_path, unique, data_path, "1990-01-01", "2004-12-31", 250)
    try:
        coordinator = cluster.transaction_coordinator(run.transactional_id)
        run.fault(
            f"SIGKILL node {coordinator}, transaction coordinator",
            cluster.node(coordinator).kill,
        )
        run.finish()
    finally:
        run.forecaster.kill()
        run.producer.kill()


def test_rolling_restart_of_every_node(cluster, tmp_path, unique, data_path) -> None:
    run = start_replay(cluster, tmp_path, unique, data_path, "1940-01-01", "2004-12-31", 100)
    try:
        for node_id, node in cluster.nodes.items():

            def restart(node=node) -> None:
                node.stop()
                node.start()

            run.fault(f"rolling restart of node {node_id}", restart)
        run.finish()
    finally:
        run.forecaster.kill()
        run.producer.kill()


def test_a_node_paused_past_every_timeout_then_resumed(
    cluster, tmp_path, unique, data_path
) -> None:
    """SIGSTOP for longer than the group session (10 s), the broker session (9 s) and the
    clients' request timeout (30 s): the node is neither dead nor answering."""
    run = start_replay(cluster, tmp_path, unique, data_path, "1985-01-01", "2004-12-31", 150)
    try:
        leader = cluster.leader(run.topics.observations)

        def pause() -> None:
            cluster.node(leader).pause()
            time.sleep(35)  # the fault itself: how long the node stays frozen
            cluster.node(leader).resume()

        run.fault(f"SIGSTOP node {leader} (leader of observations) for 35 s", pause)
        run.finish()
    finally:
        run.forecaster.kill()
        run.producer.kill()
