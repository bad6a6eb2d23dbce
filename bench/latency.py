"""The real-time latency floor on this machine: a bare transactional round trip, paced.

    .venv/bin/python -m bench.latency [--bootstrap-servers HOST:PORT] [--rates 100 200]

The least a service of this design can do per record on this broker: one fetch, one
transaction with the offsets, one commit, read back by a read_committed reader. A bare loop
with no model runs in a process of its own, as a service does, built from the services' own
clients and settings (`sunspots.kafka.clients`: the group member, the transactional producer; the
runner's poll timeout and batch size): per poll, one transaction in which every record is
sent again to an output topic and the offsets are added (`send_offsets_to_transaction`),
then committed. This process sends records at R per second with the paced replay's producer
(`producer.replay.replay_producer`, as `bench.pipeline`'s paced run does) and reads the output
with a read_committed reader (`sunspots.kafka.clients.make_reader`) on a thread of its own.

Latency of a record = the moment the reader received it − the moment it was sent (the same
clock: one machine). The loop stamps each transaction's steps, so each record's latency splits
into: `to_poll` (sent → the loop's poll returned it: the producer's request, the fetch, and the
wait for the transaction before it), `send`, `offsets`, `commit` (the transaction's steps), and
`to_reader` (commit returned → the reader had it: the coordinator's commit markers and the
reader's fetch). Stage columns read "p50 / p99" in ms. The first `--warmup` seconds (connections,
coordinator look-ups) are not counted.

`python -m bench` sets each floor beside the services' paced figures (bench.pipeline's paced
run, bench.classifier's paced run) and their target, p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import REPO, RESULTS, measure, percentile, report
from bench.kafka_ceiling import create
from consumer.runner import RunnerConfig
from producer.replay import replay_producer
from sunspots.kafka import clients
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.types import OffsetAndMetadata, TopicPartition
from sunspots.process.deadline import Deadline

COLUMNS = [
    "scenario",
    "records",
    "transactions",
    "p50_ms",
    "p99_ms",
    "max_ms",
    "to_poll_ms",
    "send_ms",
    "offsets_ms",
    "commit_ms",
    "to_reader_ms",
]
STAGES = ("to_poll", "send", "offsets", "commit", "to_reader")
RUNNER = RunnerConfig(source_topic="", group_id="", instance_id="")
READY = "ready"


def bare_loop(kafka: KafkaSettings, source: str, output: str, count: int, timeout: float) -> None:
    """The loop process: says READY once its partition is assigned, turns until `count` records
    are committed, then prints one JSON line: each transaction's record ids and step stamps."""
    group = f"floor-{uuid.uuid4().hex[:8]}"
    consumer = clients.make_consumer(kafka, group, group, RUNNER.max_poll_records)
    producer = clients.make_producer(kafka, group, RUNNER.transaction_timeout_ms, (output,))
    consumer.subscribe([source])
    deadline = Deadline(timeout)
    while not consumer.assignment():
        consumer.poll(timeout_ms=RUNNER.poll_timeout_ms)
        if deadline.expired():
            raise TimeoutError(f"no partition of {source} assigned in {timeout:g} s")
    print(READY, flush=True)
    stamps: list[dict[str, Any]] = []
    done = 0
    try:
        while done < count and not deadline.expired():
            polled = consumer.poll(timeout_ms=RUNNER.poll_timeout_ms)
            at = {"polled": time.time()}
            if not polled:
                continue
            offsets = {tp: OffsetAndMetadata(p[-1].offset + 1, "", -1) for tp, p in polled.items()}
            ids = [int(r.value) for part in polled.values() for r in part]
            producer.begin_transaction()
            for part in polled.values():
                for record in part:
                    producer.send(output, value=record.value, key=record.key)
            at["sent"] = time.time()
            producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
            at["offsets"] = time.time()
            producer.commit_transaction()
            at["committed"] = time.time()
            stamps.append({"ids": ids, **at})
            done += len(ids)
    finally:
        producer.close()
        consumer.close()
    print(json.dumps(stamps), flush=True)


class Reader:
    """A read_committed reader of the output on a thread: when each record id arrived."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self.consumer = clients.make_reader(kafka)
        tp = TopicPartition(topic, 0)
        self.consumer.assign([tp])
        self.consumer.seek_to_beginning(tp)
        self.consumer.poll(timeout_ms=100)  # connected and positioned before timing starts
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set():
                for part in self.consumer.poll(timeout_ms=100).values():
                    now = time.time()
                    for record in part:
                        self.seen[int(record.value)] = now
        finally:
            self.consumer.close()

    def wait(self, count: int, timeout: float) -> None:
        """Wait until `count` ids have arrived or `timeout` seconds pass, then stop the reader's
        thread; the caller checks `seen` for what came."""
        deadline = Deadline(timeout)
        while len(self.seen) < count and not deadline.expired():
            time.sleep(0.05)
        self.stop.set()
        self.thread.join(10)


def send_paced(kafka: KafkaSettings, topic: str, rate: float, count: int) -> dict[int, float]:
    """Send records 0..count-1 at `rate` per second; when each was sent."""
    producer = replay_producer(kafka, paced=True)
    sent: dict[int, float] = {}
    started = time.monotonic()
    try:
        for i in range(count):
            while (ahead := started + i / rate - time.monotonic()) > 0:
                time.sleep(ahead)
            sent[i] = time.time()
            producer.send(topic, value=str(i).encode(), key=b"floor")
        producer.flush()
    finally:
        producer.close()
    return sent


def _loop_process(
    kafka: KafkaSettings, source: str, output: str, count: int, timeout: float
) -> subprocess.Popen[str]:
    """The bare loop, started and ready (its partition assigned)."""
    command = [sys.executable, "-m", "bench.latency", "loop", "--bootstrap-servers"]
    command += [kafka.bootstrap_servers, "--source", source, "--output", output]
    command += ["--count", str(count), "--timeout", str(timeout)]
    loop = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert loop.stdout is not None
    line = loop.stdout.readline().strip()
    if line != READY:
        loop.kill()
        raise RuntimeError(f"the bare loop did not start: {line or loop.wait()}")
    return loop


def floor(
    kafka: KafkaSettings, rate: float, seconds: float, warmup: float, timeout: float
) -> dict[str, Any]:
    """One paced run of the bare loop at `rate`; its row."""
    token = uuid.uuid4().hex[:8]
    source, output = f"floor-in-{token}", f"floor-out-{token}"
    create(kafka, source, output)
    warm, count = int(rate * warmup), int(rate * (warmup + seconds))
    loop = _loop_process(kafka, source, output, count, timeout)
    try:
        reader = Reader(kafka, output)
        sent = send_paced(kafka, source, rate, count)
        reader.wait(count, timeout)
        stdout, _ = loop.communicate(timeout=timeout)
    finally:
        if loop.poll() is None:
            loop.kill()
    if loop.returncode != 0 or not stdout.strip():
        raise RuntimeError(f"the bare loop exited with {loop.returncode} (its error is above)")
    transactions = json.loads(stdout.strip().splitlines()[-1])
    return row(rate, sent, reader.seen, transactions, warm)


def row(
    rate: float,
    sent: dict[int, float],
    seen: dict[int, float],
    transactions: list[dict[str, Any]],
    warm: int,
) -> dict[str, Any]:
    """The latency of every record past the warm-up, whole and by stage, in ms."""
    stages: dict[str, list[float]] = {stage: [] for stage in STAGES}
    total: list[float] = []
    counted = 0
    for t in transactions:
        ids = [i for i in t["ids"] if i >= warm and i in seen]
        counted += bool(ids)
        for i in ids:
            # Each stage runs from one stamp to the next.
            stamps = (sent[i], t["polled"], t["sent"], t["offsets"], t["committed"], seen[i])
            total.append(stamps[-1] - stamps[0])
            for stage, begun, ended in zip(STAGES, stamps, stamps[1:], strict=False):
                stages[stage].append(ended - begun)

    def ms(values: list[float], q: float) -> float | None:
        return percentile([v * 1000 for v in values], q, 1)

    out: dict[str, Any] = {
        "scenario": f"floor {rate:g}/s",
        "rate": rate,
        "records": len(total),
        "transactions": counted,
        "p50_ms": ms(total, 50),
        "p99_ms": ms(total, 99),
        "max_ms": round(max(total) * 1000, 1) if total else None,
    }
    for stage, values in stages.items():
        out[f"{stage}_ms"] = f"{ms(values, 50)} / {ms(values, 99)}"
    return out


def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    kafka = KafkaSettings(bootstrap)
    rows = [floor(kafka, rate, args.seconds, args.warmup, args.timeout) for rate in args.rates]
    return report("latency", rows, seconds=args.seconds, warmup=args.warmup, partitions=1)


def build_parser() -> argparse.ArgumentParser:
    """The flags of `python -m bench.latency`: the rates, the seconds counted at each, and the
    warm-up not counted."""
    parser = argparse.ArgumentParser(prog="bench.latency", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--bootstrap-servers", help="a running broker; default: start one")
    parser.add_argument("--rates", type=float, nargs="+", default=[100.0, 200.0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per rate, counted (20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="first seconds not counted")
    parser.add_argument("--timeout", type=float, default=120.0, help="per rate (120 s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json")
    return parser


def loop_main(argv: list[str]) -> int:
    """The `loop` subcommand: the bare transactional loop in a process of its own, as the service
    runs."""
    parser = argparse.ArgumentParser(prog="bench.latency loop")
    for flag in ("--bootstrap-servers", "--source", "--output"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--timeout", type=float, required=True)
    args = parser.parse_args(argv)
    kafka = KafkaSettings(args.bootstrap_servers)
    bare_loop(kafka, args.source, args.output, args.count, args.timeout)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.latency`, or its `loop` subcommand when the first argument is "loop"."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["loop"]:
        return loop_main(argv[1:])
    measure(build_parser().parse_args(argv), run, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
