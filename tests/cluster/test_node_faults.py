"""Node faults on a three-node cluster: the forecaster and the producer ride them out exactly once.

Each test replays a range of days onto topics the forecaster creates itself (so with the
cluster's three replicas and two in sync), hits one node while the replay runs, and then judges
the read_committed outputs against the uninterrupted (offline) run with the same full
comparison as every fault test (tests.integration.offline.assert_matches): every forecast and
evaluation once, none missing, none extra, every field equal, the interval's bounds included, so
a lost or reset adaptive interval level fails. The fault must land mid-stream and in flight:
committed evaluations exist before it, the forecaster is frozen inside an open transaction (as
the broker sees it) while the fault begins and let go right after, and the replay goes on
sending after it (the observations topic grows past its end at the fault). The time from the
fault to the next batch committed is printed as the time to resume.
"""

from __future__ import annotations

import itertools
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient

from devtools.broker.cluster import LocalCluster
from sunspots.domain.artifact import ForecasterModel
from sunspots.kafka.settings import Topics
from support.polling import retrying, wait_for
from support.run_progress import Progress, freeze_inside_transaction
from support.run_topics import read_topic, unique_topics, values
from support.services import Service, forecaster, producer
from tests.datafacts import DataFile
from tests.integration.offline import OfflineRun, assert_matches, offline_run

BATCH = 200  # --max-poll-records: many small transactions, so a fault lands inside one
# How long an end offset is asked for, through a leader election after a node is killed (the
# node's session timeout and the election; each read itself gives up after 15 s).
END_OFFSET_WAIT_S = 120.0


@dataclass
class Replay:
    """One forecaster and one paced replay on the cluster, with the means to judge them."""

    cluster: LocalCluster
    topics: Topics
    group: str
    expected: OfflineRun
    forecaster: Service
    producer: Service
    log: list[str] = field(default_factory=list)

    faults: list[tuple[str, float]] = field(default_factory=list)  # (what, when: epoch s)

    @property
    def transactional_id(self) -> str:
        return f"{self.group}-{self.group}-a"  # <group>-<instance id>, as the service names it

    def committed_evaluations(self) -> int:
        """Evaluations readable downstream now (read_committed end offset)."""
        return self._end(self.topics.evaluations, "read_committed")

    def sent(self) -> int:
        """Observations the replay has written so far (the topic's high watermark)."""
        return self._end(self.topics.observations, "read_uncommitted")

    def _end(self, topic: str, isolation: str) -> int:
        """The partition's end offset; asked again (with a fresh reader of the nodes alive)
        while it times out: read right after a node is killed, it waits for the election of
        the partition's new leader, which the node's session timeout delays."""
        return retrying(
            f"the end offset of {topic} ({isolation})",
            lambda: self._end_once(topic, isolation),
            END_OFFSET_WAIT_S,
        )

    def _end_once(self, topic: str, isolation: str) -> int:
        reader = KafkaConsumer(
            bootstrap_servers=self.cluster.live_bootstrap(),
            isolation_level=isolation,
            request_timeout_ms=15_000,
        )
        try:
            tp = TopicPartition(topic, 0)
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

    def fault(
        self, name: str, onset: Callable[[], None], recover: Callable[[], None] = lambda: None
    ) -> None:
        """Begin a fault mid-stream and in flight: committed output exists before it, the
        replay is still sending, and `onset` (a node killed, stopped or paused) begins while
        the forecaster is frozen inside an open transaction; the forecaster is let go, then
        `recover` runs (a node started or resumed). Afterwards more output is committed and
        the replay has sent more than it had at the fault."""
        before = self.committed_evaluations()
        assert before > 0, f"{name}: no committed output before the fault"
        assert self.producer.process is not None and self.producer.process.poll() is None, (
            f"{name}: the replay had ended before the fault"
        )
        with Progress(self.cluster.live_bootstrap()) as progress:
            moment = progress.forecaster_moments(self.group, self.topics, self.transactional_id)
            # On a loaded cluster most of a small batch's transaction is its commit (prepared,
            # markers being written): the freeze steps the process until a look lands inside.
            frozen = freeze_inside_transaction(
                self.forecaster, progress, moment, self.transactional_id, self.topics
            )
        self.faults.append((name, time.time()))
        begun = threading.Thread(target=onset)
        try:
            begun.start()
            begun.join(0.5)  # a kill or a pause is done; a graceful stop has been signalled
        finally:
            self.forecaster.process.send_signal(signal.SIGCONT)
        begun.join()
        recover()
        after = self.committed_evaluations()
        sending = self.producer.process.poll() is None
        # While the replay runs, at least one more full batch; once it is over, any progress.
        self.wait_committed(max(before, after) + (BATCH if sending else 0))
        wait_for(
            f"{name}: the replay to send past {frozen.produced} observations",
            lambda: self.sent() > frozen.produced,
            300,
            interval=0.5,
        )
        assert frozen.in_transaction
        self.log.append(
            f"{name}: {before} evaluations committed before; frozen at {frozen.describe()}; "
            f"{after} committed right after"
        )

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
        n = len(self.expected.forecasts)
        forecasts = values(read_topic(live, self.topics.forecasts, expected=n, timeout=300))
        records = read_topic(live, self.topics.evaluations, expected=len(self.expected.evaluations))
        assert self.forecaster.terminate(60) == 0, self.forecaster.log()
        print("\n" + "\n".join(self.log + self.stalls(records)))
        assert_matches(self.expected, forecasts, values(records))


def start_replay(
    cluster: LocalCluster,
    tmp_path: Path,
    unique: str,
    data: tuple[DataFile, ForecasterModel],
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
    data_file, model = data
    replay = producer(
        cluster.bootstrap_servers,
        topics,
        data_file.path,
        tmp_path / "producer.log",
        "--start",
        start,
        "--end",
        end,
        "--speed",
        str(speed),
    ).start()
    run = Replay(cluster, topics, group, offline_run(data_file, model, start, end), fc, replay)
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
    cluster, tmp_path, unique, data_file, forecaster_model
) -> None:
    run = start_replay(
        cluster, tmp_path, unique, (data_file, forecaster_model), "1990-01-01", "2004-12-31", 250
    )
    try:
        leader = cluster.leader(run.topics.observations)
        run.fault(f"SIGKILL node {leader}, leader of observations", cluster.node(leader).kill)
        assert not cluster.node(leader).running
        run.finish()
    finally:
        run.forecaster.kill()
        run.producer.kill()


def test_transaction_coordinator_killed(
    cluster, tmp_path, unique, data_file, forecaster_model
) -> None:
    run = start_replay(
        cluster, tmp_path, unique, (data_file, forecaster_model), "1990-01-01", "2004-12-31", 250
    )
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


def test_rolling_restart_of_every_node(
    cluster, tmp_path, unique, data_file, forecaster_model
) -> None:
    run = start_replay(
        cluster, tmp_path, unique, (data_file, forecaster_model), "1940-01-01", "2004-12-31", 200
    )  # fast enough that a transaction is open often (each fault begins inside one)
    try:
        for node_id, node in cluster.nodes.items():
            run.fault(f"rolling restart of node {node_id}", node.stop, node.start)
        run.finish()
    finally:
        run.forecaster.kill()
        run.producer.kill()


def test_a_node_paused_past_every_timeout_then_resumed(
    cluster, tmp_path, unique, data_file, forecaster_model
) -> None:
    """SIGSTOP for longer than the group session (10 s), the broker session (9 s) and the
    clients' request timeout (30 s): the node is neither dead nor answering."""
    run = start_replay(
        cluster, tmp_path, unique, (data_file, forecaster_model), "1985-01-01", "2004-12-31", 150
    )
    try:
        leader = cluster.leader(run.topics.observations)
        node = cluster.node(leader)
        paused = time.monotonic()

        def pause() -> None:
            nonlocal paused
            paused = time.monotonic()
            node.pause()

        def resume() -> None:
            time.sleep(max(0.0, 35 - (time.monotonic() - paused)))  # frozen for 35 s
            node.resume()

        run.fault(f"SIGSTOP node {leader} (leader of observations) for 35 s", pause, resume)
        run.finish()
    finally:
        run.forecaster.kill()
        run.producer.kill()
