"""The services as subprocesses, started as a user starts them and stopped by signal.

The tests, the benchmarks and the demo run `python -m consumer ...` and `python -m producer`
(and the tests a Prometheus server) with the output in a log file, wait for /readyz, read
/metrics, and stop them with SIGTERM: a graceful stop that finishes, commits and exits 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from devtools.broker import free_port
from sunspots.kafka.settings import Topics
from support import http
from support.run_topics import topic_flags

REPO = Path(__file__).resolve().parents[1]


class Service:
    """A subprocess whose output is appended to a log file and, for a consumer, its HTTP port."""

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        self.port = port
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.log_path.stem

    @property
    def pid(self) -> int:
        return self._popen().pid

    def start(self) -> Service:
        """Start (or start again: a restart appends to the same log)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return self

    def log(self, tail: int = 5000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def check_running(self) -> None:
        """Raise with the end of the log if the process has exited."""
        code = self._popen().poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code}:\n{self.log()}")

    def get(self, path: str) -> tuple[int, str]:
        return http.get(self._port(), path)

    def wait_ready(self, timeout: float = 60.0, path: str = "/readyz") -> Service:
        """Wait until `path` answers 200; raise with the end of the log if it does not."""
        try:
            http.wait_ready(self._port(), self._popen(), timeout, path)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.name}: {exc}:\n{self.log()}") from None
        return self

    def metrics(self) -> http.Samples:
        return http.scrape(self._port())

    def wait(self, timeout: float | None) -> int:
        """The exit code; a process still running after `timeout` s is killed, and that raises."""
        try:
            return self._popen().wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            message = f"{self.name} still running after {timeout:g} s:\n{self.log()}"
            raise RuntimeError(message) from None

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code (0 for a graceful stop)."""
        if self._popen().poll() is None:
            self._popen().send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Clean-up: SIGTERM, SIGKILL if it outlives `timeout`, whatever the exit code."""
        if self.process is not None:
            with contextlib.suppress(RuntimeError):
                self.terminate(timeout)

    def kill(self) -> None:
        process = self._popen()
        if process.poll() is None:
            process.kill()
        process.wait()

    def _popen(self) -> subprocess.Popen[bytes]:
        if self.process is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.process

    def _port(self) -> int:
        if self.port is None:
            raise RuntimeError(f"{self.name} has no HTTP port")
        return self.port


@contextlib.contextmanager
def running(service: Service) -> Iterator[Service]:
    """Start `service`; kill it on the way out if it is still running."""
    service.start()
    try:
        yield service
    finally:
        service.kill()


def python_service(
    args: Sequence[str],
    log_path: Path,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
) -> Service:
    """`python -m <args>` with this interpreter (not started)."""
    return Service([sys.executable, "-m", *args], log_path, port, env)


def consumer(
    mode: str,
    bootstrap: str,
    topics: Topics,
    group: str,
    log_path: Path,
    *extra: str,
    instance_id: str | None = None,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    fault: str | None = None,
    module: str = "consumer",
) -> Service:
    """`python -m consumer <mode>` (forecast or classify) in `group`, on its own metrics port
    unless one is given, with `env` added to the environment (not started). With `fault`, the
    same service with a fault in its Kafka client (`support.client_faults`); `module` runs
    another entry point with the same arguments (`support.processor_faults`)."""
    port = port or free_port()
    identity = ["--instance-id", instance_id] if instance_id else []
    command = ["support.client_faults", fault] if fault else [module]
    args = [*command, mode, "--bootstrap-servers", bootstrap, "--group", group, *identity]
    args += ["--metrics-port", str(port), *topic_flags(topics), *extra]
    return python_service(args, log_path, port, env)


def instance_id(group: str, instance: str) -> str:
    """The `--instance-id` of `forecaster(..., instance=instance)` in `group`; it names the
    instance's transactional producer too, so the broker's transactions can be told apart."""
    return f"{group}-{instance}"


def forecaster(
    bootstrap: str,
    topics: Topics,
    group: str,
    log_dir: Path,
    *extra: str,
    instance: str = "a",
    module: str = "consumer",
) -> Service:
    """The forecaster as instance `<group>-<instance>`, logging to forecaster-<instance>.log."""
    log_path = log_dir / f"forecaster-{instance}.log"
    own_id = instance_id(group, instance)
    return consumer(
        "forecast", bootstrap, topics, group, log_path, *extra, instance_id=own_id, module=module
    )


def producer(
    bootstrap: str, topics: Topics, data: Path | str, log_path: Path, *extra: str
) -> Service:
    """`python -m producer` replaying `data` onto the topics (not started)."""
    args = ["producer", "--data", str(data), "--bootstrap-servers", bootstrap]
    return python_service([*args, *topic_flags(topics), *extra], log_path)


def replay_range(
    bootstrap: str,
    topics: Topics,
    data: Path | str,
    log_dir: Path,
    start: str,
    end: str | None = None,
    speed: float = 0.0,
    *extra: str,
) -> Service:
    """`python -m producer` replaying `start`..`end` (the end of the data if None) at `speed`
    days a second (0: as fast as the broker takes them), logging to `log_dir`/producer.log
    (not started)."""
    span = ["--start", start, *(["--end", end] if end else []), "--speed", str(speed)]
    return producer(bootstrap, topics, data, log_dir / "producer.log", *span, *extra)


def run_producer(
    bootstrap: str,
    topics: Topics,
    data: Path | str,
    log_path: Path,
    *extra: str,
    timeout: float | None = 300.0,
) -> None:
    """Replay to the end; raise with the end of the log unless the producer exits 0."""
    replay = producer(bootstrap, topics, data, log_path, *extra).start()
    code = replay.wait(timeout)
    if code != 0:
        raise RuntimeError(f"the producer exited with {code}:\n{replay.log()}")
