"""`python -m devtools.broker start|stop|status|fetch`: the local Kafka broker for people.

`start` runs the broker in the background on 127.0.0.1 (port 9092 unless told otherwise) and
records its pids and directory in the cache, so that `stop` can shut it down cleanly later.
`start --nodes 3` runs a three-node cluster with production-like replication instead, on
ports 9092, 9093 and 9094 (devtools.broker.cluster).
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

from devtools.broker import BrokerError, LocalBroker, classpath_dir
from devtools.broker.cluster import LocalCluster
from sunspots.domain.data import default_cache_dir
from sunspots.process.cli import Parser, env_flag, kafka_env, port

log = logging.getLogger("devtools.broker")


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
    if "pids" not in state:
        return None
    return state if any(_alive(pid) for pid in state["pids"]) else None


def start(port: int, heap: str, nodes: int) -> int:
    """Start a detached broker (or a three-node cluster) and note its pids, bootstrap and work
    folder in the state file; does nothing if one is running already."""
    state = _read_state()
    if state:
        log.info("Kafka already running: pids %s on %s", state["pids"], state["bootstrap"])
        return 0
    started = time.monotonic()
    if nodes == 1:
        brokers = [LocalBroker(port=port, heap=heap).start(detach=True)]
        workdir = brokers[0].workdir
    else:
        cluster = LocalCluster(nodes, heap=heap, ports=[port + i for i in range(nodes)])
        for node in cluster.nodes.values():
            node.launch(detach=True)
        cluster.start()
        brokers, workdir = list(cluster.nodes.values()), cluster.workdir
    pids = [b.process.pid for b in brokers if b.process is not None]
    bootstrap = ",".join(b.bootstrap_servers for b in brokers)
    _state_file().parent.mkdir(parents=True, exist_ok=True)
    _state_file().write_text(
        json.dumps({"pids": pids, "bootstrap": bootstrap, "workdir": str(workdir)})
    )
    log.info(
        "Kafka %s ready on %s in %.1f s (pids %s, logs in %s)",
        brokers[0].version,
        bootstrap,
        time.monotonic() - started,
        pids,
        workdir,
    )
    return 0


def stop(timeout: float = 60.0) -> int:
    """Stop the noted broker (SIGTERM, SIGKILL after `timeout` seconds), delete its work folder
    and state file; 0 also when none is running."""
    state = _read_state()
    if not state:
        log.info("no broker running")
        _state_file().unlink(missing_ok=True)
        return 0
    for pid in state["pids"]:
        if _alive(pid):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in state["pids"]) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in state["pids"]:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
    shutil.rmtree(state["workdir"], ignore_errors=True)
    _state_file().unlink(missing_ok=True)
    log.info("Kafka stopped")
    return 0


def status() -> int:
    """Print whether a broker is running and where: 0 if so, 1 if not."""
    state = _read_state()
    if state:
        sys.stdout.write(f"running: pids {state['pids']} on {state['bootstrap']}\n")
        return 0
    sys.stdout.write("not running\n")
    return 1


def build_parser() -> Parser:
    """The command's flags, also read by the configuration reference (support/reference.py)."""
    parser = Parser(prog="python -m devtools.broker", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status", "fetch"])
    env_flag(parser, "--port", 9092, "broker port on 127.0.0.1", type=port, env=kafka_env("--port"))
    env_flag(parser, "--heap", "768m", "JVM heap for each broker", env=kafka_env("--heap"))
    env_flag(
        parser,
        "--nodes",
        1,
        "1: one broker; 3: a cluster with production-like replication",
        type=int,
        choices=[1, 3],
        env=kafka_env("--nodes"),
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m devtools.broker`: the command's exit status, 2 (with the reason) when the
    broker cannot be set up or started."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.command == "fetch":
            log.info("Kafka jars in %s", classpath_dir())
            return 0
        if args.command == "start":
            return start(args.port, args.heap, args.nodes)
        if args.command == "stop":
            return stop()
        return status()
    except BrokerError as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
