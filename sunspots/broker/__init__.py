"""A real single-node Apache Kafka broker (KRaft) from Maven Central jars, for tests and demos.

No Docker engine runs on the development and CI machines, so the harness resolves the broker's
runtime classpath with `mvn` (cached outside git), formats a storage directory and runs
`kafka.Kafka` on 127.0.0.1 with a bounded heap. It can also kill and restart the broker on the
same ports and data, which the fault tests use.
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

from sunspots.data import default_cache_dir

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
    pom = resources.files("sunspots.broker").joinpath("pom.xml").read_text()
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


def server_properties(port: int, controller_port: int, log_dir: Path) -> str:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(log_dir),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Abort transactions past their timeout within a second, not ten, so that a test
        # outage longer than a transaction's timeout really costs the transaction.
        "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
        # The cleaner's 128 MiB default buffer is heap we do not need for test-sized topics.
        "log.cleaner.dedupe.buffer.size": "8388608",
        "message.max.bytes": "1048588",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


class LocalBroker:
    """One KRaft broker+controller process on 127.0.0.1, data in a temporary directory."""

    def __init__(
        self,
        port: int | None = None,
        controller_port: int | None = None,
        workdir: Path | None = None,
        heap: str = DEFAULT_HEAP,
        version: str = KAFKA_VERSION,
    ) -> None:
        self.port = port or free_port()
        self.controller_port = controller_port or free_port()
        self._owns_workdir = workdir is None
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="sunspots-kafka-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.heap = heap
        self.version = version
        self.process: subprocess.Popen[bytes] | None = None
        self._formatted = False

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.workdir / "broker.log"

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
        props.write_text(server_properties(self.port, self.controller_port, self.workdir / "data"))
        log4j = resources.files("sunspots.broker").joinpath("log4j2.properties").read_text()
        (self.workdir / "log4j2.properties").write_text(log4j)
        cmd = self._java(
            lib, "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(props)
        )
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{done.stdout}{done.stderr}")
        self._formatted = True

    def start(self, timeout: float = 120.0, detach: bool = False) -> LocalBroker:
        """Start (or restart, on the same data) and wait until the broker serves clients."""
        lib = classpath_dir(self.version)
        if not self._formatted:
            self._format(lib)
        offset = self.log_file.stat().st_size if self.log_file.exists() else 0
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
        self._wait_ready(offset, timeout)
        return self

    def _wait_ready(self, offset: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            with open(self.log_file, "rb") as fh:
                fh.seek(offset)
                if READY_LINE.encode() in fh.read():
                    return
            if self.process.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with {self.process.returncode}; see {self.log_file}"
                )
            time.sleep(0.2)
        self.stop()
        raise BrokerError(f"Kafka did not start within {timeout:.0f} s; see {self.log_file}")

    def stop(self, timeout: float = 60.0) -> None:
        """Controlled shutdown: SIGTERM, then wait (SIGKILL only if it hangs)."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Hard crash (SIGKILL), for fault tests; `start()` brings it back on the same data."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
