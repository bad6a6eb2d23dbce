"""Cluster-tier fixtures: one three-node Kafka cluster for the module, healed after each test.

The cluster tests kill, pause and restart nodes; every test leaves the cluster as it found it
(all nodes running, none paused), so the next one starts from a healthy cluster.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from devtools.broker.cluster import LocalCluster


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    started = time.monotonic()
    cluster = LocalCluster().start()
    print(f"\nthree-node cluster ready in {time.monotonic() - started:.1f} s")
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(autouse=True)
def healed(cluster: LocalCluster) -> Iterator[None]:
    yield
    for node in cluster.nodes.values():
        node.resume()
    down = [node for node in cluster.nodes.values() if not node.running]
    for node in down:
        node.launch()
    for node in down:
        node.wait_ready()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
