"""The compose file's three-node Kafka (profile `cluster`, docker/cluster.env) on real nodes.

No Docker engine runs here, so the three `kafka*` services' settings run on the harness's
broker jars instead: their KAFKA_* variables become server.properties as the apache/kafka image
does it (tests.integration.monitoring_helpers), and storage is formatted with their
CLUSTER_ID. Only what cannot hold outside containers changes: each node's host name becomes
127.0.0.1 and each (host, container port) pair a free port of its own, in the listeners, the
advertised listeners and the quorum alike.

On those nodes: node 1's healthcheck (bash, as in the image) passes with the three nodes up and
fails with one down, the services' set-up creates topics with three replicas and two in sync, a
transactional producer commits, and with one node killed acknowledged writes go on.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient

from devtools.broker import LocalBroker, free_port
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.topics import create_topics
from support.polling import wait_for
from support.run_topics import read_to_end, unique_topics
from tests.integration.monitoring_helpers import image_env_to_properties
from tests.unit.test_compose import (
    active,
    cluster_env,
    environment,
    kafka_nodes,
    kafka_probe,
    load_compose,
)

ADDRESS = re.compile(r"(?P<head>^|,|://|@)(?P<host>[A-Za-z0-9.-]*):(?P<port>\d+)")


class Addresses:
    """(host, container port) of the compose network -> a free port on 127.0.0.1."""

    def __init__(self, hosts: dict[str, str]) -> None:
        self.hosts = hosts  # a node's listeners bind on "" (every interface): its host name
        self.ports: dict[tuple[str, str], int] = {}

    def rewrite(self, value: str, host: str) -> str:
        def local(match: re.Match[str]) -> str:
            key = (match["host"] or host, match["port"])
            if key not in self.ports:
                self.ports[key] = free_port()
            return f"{match['head']}127.0.0.1:{self.ports[key]}"

        return ADDRESS.sub(local, value)

    def of(self, host: str, port: str) -> str:
        return f"127.0.0.1:{self.ports[(host, port)]}"


def _node(env: dict[str, str], hostname: str, addresses: Addresses, workdir: Path) -> LocalBroker:
    props = image_env_to_properties(env)
    for key in ("listeners", "advertised.listeners", "controller.quorum.voters"):
        props[key] = addresses.rewrite(props[key], hostname)
    props["log.dirs"] = str(workdir / "data")
    props["log.cleaner.dedupe.buffer.size"] = "8388608"
    port = int(addresses.rewrite(f"{hostname}:19092", hostname).rsplit(":", 1)[1])
    return LocalBroker(
        port, workdir=workdir, heap="384m", properties=props, cluster_id=env["CLUSTER_ID"]
    )


@pytest.fixture(scope="module")
def compose_cluster(tmp_path_factory) -> Iterator[tuple[dict[str, LocalBroker], Addresses]]:
    compose = active(load_compose(env=cluster_env()), {"cluster"})
    services = kafka_nodes(compose)
    hostnames = {name: svc["hostname"] for name, svc in services.items()}
    addresses = Addresses(hostnames)
    root = tmp_path_factory.mktemp("compose-cluster")
    nodes = {
        name: _node(environment(svc), hostnames[name], addresses, root / name)
        for name, svc in services.items()
    }
    try:
        for node in nodes.values():
            node.launch()
        for node in nodes.values():
            node.wait_ready(240)
        yield nodes, addresses
    finally:
        for node in nodes.values():
            node.cleanup()


def _node1_healthy(compose: dict, addresses: Addresses) -> bool:
    """Node 1's healthcheck command, run by bash on the nodes' local addresses."""
    script, probed = kafka_probe(compose["services"]["kafka"])
    local = ",".join(addresses.of(*a.split(":")) for a in probed.split(","))
    bash = shutil.which("bash")
    assert bash
    return (
        subprocess.run([bash, "-c", script, local], capture_output=True, timeout=30).returncode == 0
    )


def test_compose_cluster_settings_make_a_replicated_cluster(compose_cluster, unique) -> None:
    nodes, addresses = compose_cluster
    compose = load_compose(env=cluster_env())
    # Node 1's healthcheck probes every node.
    assert len(kafka_probe(compose["services"]["kafka"])[1].split(",")) == 3
    assert _node1_healthy(compose, addresses)

    # The services bootstrap from every node's INTERNAL listener, as the compose file says.
    app = environment(compose["services"]["topics"])["KAFKA_BOOTSTRAP_SERVERS"]
    bootstrap = ",".join(addresses.of(*a.split(":")) for a in app.split(","))
    kafka = KafkaSettings(bootstrap, unique_topics(unique))
    create_topics(kafka, partitions=3)
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        for described in admin.describe_topics([kafka.topics.observations, kafka.topics.state]):
            for part in described["partitions"]:
                assert len(part["replica_nodes"]) == 3 and len(part["isr_nodes"]) == 3
    finally:
        admin.close()

    # Transactions work: the transaction log has the replicas it asks for.
    producer = KafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"compose-{unique}")
    producer.init_transactions()
    producer.begin_transaction()
    producer.send(kafka.topics.observations, key=b"k", value=b"committed")
    producer.commit_transaction()
    producer.close()

    # One node lost: two replicas remain in sync, so acks=all writes go on.
    nodes["kafka-3"].kill()
    try:
        # Node 1 reports itself unhealthy while a node is down.
        wait_for("node 1 unhealthy", lambda: not _node1_healthy(compose, addresses), 90, interval=2)
        plain = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=20_000)
        plain.send(kafka.topics.observations, key=b"k", value=b"with a node down").get(60)
        plain.close()
        # The committed record's commit marker is written by its transaction's coordinator
        # after the commit returns. If the node killed was that coordinator and had not written
        # it yet, the node that takes over the transaction log writes it once it has loaded the
        # log, and until then a read_committed reader's end stops before the record: read
        # again until both are there, for a bounded while.
        expected = [b"committed", b"with a node down"]
        seen: list[bytes] = []

        def both_read() -> bool:
            seen[:] = [r.value for r in read_to_end(bootstrap, kafka.topics.observations)]
            return seen == expected

        cause: TimeoutError | None = None  # the bound's, or a read's own
        try:
            wait_for("both records read, read_committed", both_read, 60, interval=1)
        except TimeoutError as exc:
            cause = exc
        assert seen == expected, cause
    finally:
        nodes["kafka-3"].start()
