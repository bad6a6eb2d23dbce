"""`python -m sunspots.broker start|stop|status|fetch`: the local Kafka broker for people.

`start` runs the broker in the background on 127.0.0.1 (port 9092 unless told otherwise) and
records its pid and directory in the cache, so that `stop` can shut it down cleanly later.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from sunspots.broker import BrokerError, LocalBroker, classpath_dir
from sunspots.cli import Parser, env_flag, kafka_env, port
from sunspots.data import default_cache_dir

log = logging.getLogger("sunspots.broker")


def _state_file() -> Path:
    return default_cache_dir() / "broker-state.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _read_state() -> dict | None:
    path = _state_file()
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    return state if _alive(state["pid"]) else None


def start(port: int, heap: str) -> int:
    state = _read_state()
    if state:
        log.info("broker already running: pid %s on 127.0.0.1:%s", state["pid"], state["port"])
        return 0
    started = time.monotonic()
    broker = LocalBroker(port=port, heap=heap).start(detach=True)
    assert broker.process is not None
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(
        json.dumps({"pid": broker.process.pid, "port": broker.port, "workdir": str(broker.workdir)})
    )
    log.info(
        "Kafka %s ready on %s in %.1f s (pid %s, log %s)",
        broker.version,
        broker.bootstrap_servers,
        time.monotonic() - started,
        broker.process.pid,
        broker.log_file,
    )
    return 0


def stop(timeout: float = 60.0) -> int:
    state = _read_state()
    if not state:
        log.info("no broker running")
        _state_file().unlink(missing_ok=True)
        return 0
    os.kill(state["pid"], signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(state["pid"]):
        os.kill(state["pid"], signal.SIGKILL)
    shutil.rmtree(state["workdir"], ignore_errors=True)
    _state_file().unlink(missing_ok=True)
    log.info("broker stopped")
    return 0


def status() -> int:
    state = _read_state()
    if state:
        sys.stdout.write(f"running: pid {state['pid']} on 127.0.0.1:{state['port']}\n")
        return 0
    sys.stdout.write("not running\n")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = Parser(prog="sunspots-broker", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "fetch"])
    env_flag(parser, "--port", 9092, "broker port on 127.0.0.1", type=port, env=kafka_env("--port"))
    env_flag(parser, "--heap", "768m", "JVM heap for the broker", env=kafka_env("--heap"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "fetch":
            log.info("Kafka jars in %s", classpath_dir())
            return 0
        if args.command == "start":
            return start(args.port, args.heap)
        if args.command == "stop":
            return stop()
        return status()
    except BrokerError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
