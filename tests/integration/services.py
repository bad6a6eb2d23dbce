"""Run the real services as subprocesses in integration tests, and read topics back.

Tests start `python -m consumer forecast` and `python -m producer` exactly as a user would,
with their own topic names and group ids, and read results with read_committed consumers.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kafka import KafkaConsumer, TopicPartition

from consumer.health import scrape, wait_ready
from sunspots.broker import free_port
from sunspots.settings import TOPIC_ENV, Topics

REPO = Path(__file__).resolve().parents[2]


def unique_topics(token: str) -> Topics:
    return Topics(**{name: f"{name.replace('_', '-')}-{token}" for name in TOPIC_ENV})


def topic_flags(topics: Topics) -> list[str]:
    flags = []
    for name in TOPIC_ENV:
        flags += [f"--topic-{name.replace('_', '-')}", getattr(topics, name)]
    return flags


class Service:
    """A service subprocess with its /metrics port; output goes to a log file."""

    def __init__(self, args: list[str], log_path: Path, port: int | None = None) -> None:
        self.args = args
        self.log_path = log_path
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Service:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.args],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = 60.0) -> Service:
        assert self.port is not None
        try:
            wait_ready(self.port, self.process, timeout)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}:\n{self.log()}") from None
        return self

    def metrics(self) -> dict[tuple[str, tuple], float]:
        """Samples of /metrics as {(name, sorted label items): value}."""
        assert self.port is not None
        return scrape(self.port)

    def terminate(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]


def forecaster(
    bootstrap: str,
    topics: Topics,
    group: str,
    log_dir: Path,
    *extra: str,
    instance: str = "a",
) -> Service:
    port = free_port()
    args = [
        "-m",
        "consumer",
        "forecast",
        "--bootstrap-servers",
        bootstrap,
        "--group",
        group,
        "--instance-id",
        f"{group}-{instance}",
        "--metrics-port",
        str(port),
        *topic_flags(topics),
        *extra,
    ]
    return Service(args, log_dir / f"forecaster-{instance}.log", port)


def run_producer(
    bootstrap: str, topics: Topics, data: Path, *extra: str, timeout: float = 300.0
) -> subprocess.CompletedProcess[str]:
    args = [
        sys.executable,
        "-m",
        "producer",
        "--data",
        str(data),
        "--bootstrap-servers",
        bootstrap,
        *topic_flags(topics),
        *extra,
    ]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@contextmanager
def running(service: Service) -> Iterator[Service]:
    service.start()
    try:
        yield service
    finally:
        if service.process and service.process.poll() is None:
            service.kill()


def read_topic(
    bootstrap: str,
    topic: str,
    expected: int | None = None,
    timeout: float = 120.0,
    idle: float = 3.0,
) -> list:
    """All committed records of `topic`: until `expected` are read (then `idle` seconds more,
    to catch any extra), or until nothing new arrives for `idle` seconds when not given."""
    reader = KafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        enable_auto_commit=False,
        group_id=None,
    )
    partitions = reader.partitions_for_topic(topic) or set()
    reader.assign([TopicPartition(topic, p) for p in partitions])
    reader.seek_to_beginning()
    records: list = []
    deadline = time.monotonic() + timeout
    last_new = time.monotonic()
    try:
        while time.monotonic() < deadline:
            batch = reader.poll(timeout_ms=250)
            for part in batch.values():
                records.extend(part)
            if batch:
                last_new = time.monotonic()
            enough = expected is None or len(records) >= expected
            if enough and time.monotonic() - last_new > idle:
                break
    finally:
        reader.close()
    return records


def values(records: list) -> list[dict]:
    return [json.loads(r.value) for r in records]


def wait_for(predicate: object, timeout: float, message: str, interval: float = 0.25) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise AssertionError(message)
