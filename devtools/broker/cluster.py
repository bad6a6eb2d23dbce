"""A local three-node Apache Kafka cluster with production-like replication, for fault tests.

Users run the services on replicated clusters, so the cluster tests must too: three KRaft
processes, each broker and controller (a static quorum of three voters), formatted with one
cluster id. Settings are those of a production cluster that tolerates one lost node: every
topic gets three replicas by default and needs two in sync to accept a write; the internal
topics (consumer offsets, transaction state) likewise; no unclean leader election, so an
acknowledged record is never lost to a stale replica. Each node can be killed (SIGKILL),
paused (SIGSTOP), resumed and restarted on its own data.

The helpers `leader` and `transaction_coordinator` tell a test which node to hit: the leader
of a partition, and the node that coordinates a transactional id.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from kafka.admin import KafkaAdminClient

from devtools.broker import (
    KAFKA_VERSION,
    TEST_TUNING,
    BrokerError,
    LocalBroker,
    _cluster_id,
    free_port,
)

CLUSTER_HEAP = "512m"
# Internal topics with three partitions each (Kafka's default is 50): coordinators are spread
# over the nodes as in production, and the first group join or transaction is quick.
INTERNAL_PARTITIONS = 3

REPLICATION = {
    "default.replication.factor": "3",
    "min.insync.replicas": "2",
    "offsets.topic.replication.factor": "3",
    "transaction.state.log.replication.factor": "3",
    "transaction.state.log.min.isr": "2",
    "share.coordinator.state.topic.replication.factor": "3",
    "share.coordinator.state.topic.min.isr": "2",
    "unclean.leader.election.enable": "false",
}


def cluster_node_properties(
    node_id: int, port: int, controller_port: int, voters: str, log_dir: Path
) -> dict[str, str]:
    """One node's server.properties: broker and controller on 127.0.0.1, with the cluster's
    replication and the tests' tuning."""
    return {
        "process.roles": "broker,controller",
        "node.id": str(node_id),
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "offsets.topic.num.partitions": str(INTERNAL_PARTITIONS),
        "transaction.state.log.num.partitions": str(INTERNAL_PARTITIONS),
        **REPLICATION,
        **TEST_TUNING,
    }


class LocalCluster:
    """`size` KRaft nodes on 127.0.0.1 with production-like replication settings."""

    def __init__(
        self,
        size: int = 3,
        workdir: Path | None = None,
        heap: str = CLUSTER_HEAP,
        version: str = KAFKA_VERSION,
        ports: list[int] | None = None,
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sunspots-cluster-"))
        ports = ports or [free_port() for _ in range(size)]
        controller_ports = [free_port() for _ in range(size)]
        voters = ",".join(f"{i + 1}@127.0.0.1:{cp}" for i, cp in enumerate(controller_ports))
        cluster_id = _cluster_id()
        self.nodes: dict[int, LocalBroker] = {}
        for i, (port, controller_port) in enumerate(zip(ports, controller_ports, strict=True)):
            node_id, node_dir = i + 1, self.workdir / f"node-{i + 1}"
            props = cluster_node_properties(
                node_id, port, controller_port, voters, node_dir / "data"
            )
            self.nodes[node_id] = LocalBroker(
                port,
                controller_port,
                node_dir,
                heap,
                version,
                properties=props,
                cluster_id=cluster_id,
            )

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap_servers for node in self.nodes.values())

    def start(self, timeout: float = 240.0) -> LocalCluster:
        """Start every node together (a quorum needs a majority before any node is ready)."""
        started = time.monotonic()
        for node in self.nodes.values():
            if not node.running:
                node.launch()
        for node in self.nodes.values():
            node.wait_ready(max(1.0, timeout - (time.monotonic() - started)))
        return self

    def node(self, node_id: int) -> LocalBroker:
        if node_id not in self.nodes:
            raise BrokerError(f"no node {node_id} in this cluster")
        return self.nodes[node_id]

    def live_bootstrap(self) -> str:
        """Bootstrap addresses of the nodes that are running."""
        return ",".join(n.bootstrap_servers for n in self.nodes.values() if n.running)

    def _admin(self) -> KafkaAdminClient:
        return KafkaAdminClient(bootstrap_servers=self.live_bootstrap(), request_timeout_ms=10_000)

    def leader(self, topic: str, partition: int = 0) -> int:
        """The node id leading `topic`'s `partition` now."""
        admin = self._admin()
        try:
            for described in admin.describe_topics([topic]):
                for part in described["partitions"]:
                    if part["partition_index"] == partition:
                        return int(part["leader_id"])
        finally:
            admin.close()
        raise BrokerError(f"{topic}[{partition}] not found")

    def transaction_coordinator(self, transactional_id: str) -> int:
        """The node that coordinates `transactional_id`'s transactions now (the id must have
        been initialised by a transactional producer)."""
        admin = self._admin()
        try:
            return int(
                admin.describe_transactions([transactional_id])[transactional_id].coordinator_id
            )
        finally:
            admin.close()

    def stop(self) -> None:
        for node in self.nodes.values():
            node.resume()
        for node in self.nodes.values():
            node.stop()

    def cleanup(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
