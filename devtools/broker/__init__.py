"""Real Apache Kafka brokers (KRaft) from Maven Central jars, for tests, demos and benchmarks.

No Docker engine runs on the development and CI machines, so the harness resolves the broker's
runtime classpath with `mvn` (cached outside git), formats a storage directory and runs
`kafka.Kafka` on 127.0.0.1 with a bounded heap. `LocalBroker` is one such process: by default
a single broker+controller with development settings; given its own properties, one node of a
`LocalCluster` (devtools.broker.cluster). It can be killed, paused and restarted on the same
ports and data, which the fault tests use.
"""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from importlib import resources
from pathlib import Path

from sunspots.domain.data import default_cache_dir

log = logging.getLogger(__name__)

KAFKA_VERSION = os.environ.get("SUNSPOTS_KAFKA_VERSION", "4.4.0")
LOG4J_VERSION = "2.24.3"
READY_LINE = "Kafka Server started"
DEFAULT_HEAP = "768m"


class BrokerError(RuntimeError):
    """The broker could not be set up or started; the message says what to do."""


def _require(tool: str, what: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise BrokerError(f"{tool} not found: install {what} to run the local Kafka broker")
    return path


def _java_major(java: str) -> int:
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    # `openjdk version "17.0.15"` or `"1.8.0_392"`
    quoted = out.split('"')[1] if '"' in out else "0"
    parts = quoted.split(".")
    return int(parts[1] if parts[0] == "1" else parts[0])


def classpath_dir(version: str = KAFKA_VERSION, cache_dir: Path | None = None) -> Path:
    """Resolve (once) and return the directory holding the broker's jars."""
    java = _require("java", "a Java 17+ runtime (apt-get install openjdk-17-jre-headless)")
    if _java_major(java) < 17:
        raise BrokerError("Kafka 4.x needs Java 17 or newer: install openjdk-17-jre-headless")
    root = (cache_dir or default_cache_dir()) / f"kafka-{version}"
    lib = root / "lib"
    if (root / ".complete").is_file():
        return lib
    mvn = _require("mvn", "Apache Maven (apt-get install maven)")
    root.mkdir(parents=True, exist_ok=True)
    pom = resources.files("devtools.broker").joinpath("pom.xml").read_text()
    pom = pom.replace("@KAFKA_VERSION@", version).replace("@LOG4J_VERSION@", LOG4J_VERSION)
    (root / "pom.xml").write_text(pom)
    log.info("fetching Kafka %s jars with Maven into %s", version, lib)
    cmd = [
        mvn,
        "-q",
        "-B",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={lib}",
        "-DincludeScope=runtime",
    ]
    done = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise BrokerError(f"mvn could not fetch Kafka {version}:\n{done.stdout}{done.stderr}")
    (root / ".complete").write_text(version)
    return lib


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cluster_id() -> str:
    # URL-safe base64 may start with "-", which the storage tool's argument parser takes for
    # an option (one format in 64 failed that way), so draw again in that case.
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


# A single node's internal topics: one replica, one partition each.
ONE_NODE_TOPICS = {
    "num.partitions": "1",
    "offsets.topic.replication.factor": "1",
    "offsets.topic.num.partitions": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "transaction.state.log.num.partitions": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
}


def single_node_properties(port: int, controller_port: int, log_dir: Path) -> dict[str, str]:
    """A development broker: one node, every internal topic with one replica."""
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        **ONE_NODE_TOPICS,
        **TEST_TUNING,
    }


# Settings every harness broker shares, single node or cluster node.
TEST_TUNING = {
    "group.initial.rebalance.delay.ms": "0",
    # Abort transactions past their timeout within a second, not ten, so that a test outage
    # longer than a transaction's timeout really costs the transaction.
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
    # The cleaner's 128 MiB default buffer is heap we do not need for test-sized topics.
    "log.cleaner.dedupe.buffer.size": "8388608",
    "message.max.bytes": "1048588",
}


def render_properties(props: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in props.items())


def server_properties(port: int, controller_port: int, log_dir: Path) -> str:
    return render_properties(single_node_properties(port, controller_port, log_dir))


class LocalBroker:
    """One KRaft process on 127.0.0.1, data in a temporary directory (or `workdir`).

    Without `properties` it is a single broker+controller with development settings; a
    cluster passes each node its own properties and the cluster's shared `cluster_id`.
    `format_args` go to the storage tool (e.g. `--add-scram` users).
    """

    def __init__(
        self,
        port: int | None = None,
        controller_port: int | None = None,
        workdir: Path | None = None,
        heap: str = DEFAULT_HEAP,
        version: str = KAFKA_VERSION,
        *,
        properties: dict[str, str] | None = None,
        cluster_id: str | None = None,
        format_args: tuple[str, ...] = (),
    ) -> None:
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sunspots-kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.heap = heap
        self.version = version
        self.cluster_id = cluster_id or _cluster_id()
        self.format_args = format_args
        self._properties = properties
        self.process: subprocess.Popen[bytes] | None = None
        self._formatted = False
        self._launched_at = 0

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

    def properties(self) -> dict[str, str]:
        if self._properties is not None:
            return dict(self._properties)
        return single_node_properties(self.port, self.controller_port, self.workdir / "data")

    def _java(self, lib: Path, main: str, *args: str, heap: str = "256m") -> list[str]:
        return [
            "java",
            f"-Xmx{heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp",
            f"{lib}/*",
            main,
            *args,
        ]

    def _format(self, lib: Path) -> None:
        props = self.workdir / "server.properties"
        props.write_text(render_properties(self.properties()))
        log4j = resources.files("devtools.broker").joinpath("log4j2.properties").read_text()
        (self.workdir / "log4j2.properties").write_text(log4j)
        cmd = self._java(
            lib,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            self.cluster_id,
            "-c",
            str(props),
            *self.format_args,
        )
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{done.stdout}{done.stderr}")
        self._formatted = True

    def start(self, timeout: float = 120.0, detach: bool = False) -> LocalBroker:
        """Start (or restart, on the same data) and wait until the broker serves clients."""
        self.launch(detach)
        self.wait_ready(timeout)
        return self

    def launch(self, detach: bool = False) -> None:
        """Start the process without waiting for it (a cluster starts its nodes together)."""
        lib = classpath_dir(self.version)
        if not self._formatted:
            self._format(lib)
        self._launched_at = self.log_file.stat().st_size if self.log_file.exists() else 0
        cmd = self._java(
            lib, "kafka.Kafka", str(self.workdir / "server.properties"), heap=self.heap
        )
        out = open(self.log_file, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
        )
        out.close()

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Wait for the ready line the launched process logs."""
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            with open(self.log_file, "rb") as fh:
                fh.seek(self._launched_at)
                if READY_LINE.encode() in fh.read():
                    return
            if self.process.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with {self.process.returncode}; see {self.log_file}"
                )
            time.sleep(0.2)
        self.stop()
        raise BrokerError(f"Kafka did not start within {timeout:.0f} s; see {self.log_file}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 60.0) -> None:
        """Controlled shutdown: SIGTERM, then wait (SIGKILL only if it hangs)."""
        if self.running:
            assert self.process is not None
            self.resume()  # a paused process cannot shut down
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Hard crash (SIGKILL), for fault tests; `start()` brings it back on the same data."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): alive but silent, like a long GC pause or a hung VM."""
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            assert self.process is not None
            self.process.send_signal(signal.SIGCONT)

    def cleanup(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
