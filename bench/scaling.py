"""Scale-out: forecaster throughput with 1, 2 and 3 instances.

    .venv/bin/python -m bench.scaling [--data FILE] [--bootstrap-servers HOST:PORT]

Throughput. One broker (a local single-node one started here unless one is given), topics
with 6 partitions, so that 1, 2 and 3 instances each own an equal share, and 16 series spread
over them by their keys. N instances of `consumer forecast` start in one group (exactly once)
and wait, each with its partitions, until `python -m producer` replays the input at full
speed. Throughput = observations ÷ the time from the first one sent (its record timestamp) to
the moment the group has committed the last one and its outputs are readable. Over that time
the CPU seconds of each instance, of the broker (found by its listening port) and of the
producer, and the machine's busy share, say where the time goes: with fewer cores than
processes, instances only share the cores, they do not add any. The load average at the end
of each run says how much else the machine was doing.

What one series costs (memory, /metrics, CPU per observation and restore as the series grow
to 10,000 in one instance) is bench.many_series.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.common import RESULTS, default_data, measure, report, rss_peak_mib
from bench.pipeline import cpu_seconds
from sunspots.domain.data import load_daily, select_range
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.topics import create_topics
from support.http import total
from support.run_progress import Progress
from support.run_topics import reader, unique_topics
from support.services import Service, forecaster, producer

COLUMNS = [
    "scenario",
    "observations",
    "seconds",
    "obs_per_s",
    "speedup",
    "instance_cpu_s",
    "model_s",
    "broker_cpu_s",
    "producer_cpu_s",
    "machine_busy",
    "load",
    "obs_per_batch",
    "rss_mib",
]


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def listening_pid(port: int) -> int | None:
    """The process listening on TCP `port` on this machine (one of this user's), if any."""
    inodes = set()
    for sockets in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(sockets).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f"socket:[{cols[9]}]")
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if any(str(fd.readlink()) in inodes for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:
            continue
    return None


class Cpu:
    """CPU seconds of some processes and the machine's busy share between two readings."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.start = self._read()

    def _read(self) -> tuple[dict[str, float | None], tuple[int, int]]:
        return {k: cpu_seconds(p) if p else None for k, p in self.pids.items()}, machine_busy()

    def since(self) -> tuple[dict[str, float | None], float]:
        """CPU seconds of each process since the first reading (None where one has exited), and
        the machine's busy share meanwhile."""
        (now, (busy, total)), (then, (busy0, total0)) = self._read(), self.start
        spent = {
            k: round(now[k] - then[k], 2) if now[k] is not None and then[k] is not None else None
            for k in self.pids
        }
        return spent, round((busy - busy0) / max(1, total - total0), 2)


def _topics(bootstrap: str, partitions: int) -> KafkaSettings:
    kafka = KafkaSettings(bootstrap, unique_topics(uuid.uuid4().hex[:8]))
    create_topics(kafka, partitions)
    return kafka


def _fleet(kafka: KafkaSettings, n: int, logs: Path, tag: str) -> tuple[str, list[Service]]:
    group = f"bench-{tag}-{uuid.uuid4().hex[:6]}"
    services = [
        forecaster(
            kafka.bootstrap_servers, kafka.topics, group, logs / tag, "--create-topics", "false",
            instance=chr(ord("a") + i),
        )
        for i in range(n)
    ]  # fmt: skip
    (logs / tag).mkdir(parents=True, exist_ok=True)
    return group, services


def replay(args: argparse.Namespace, kafka: KafkaSettings, series: int, *span: str) -> Service:
    """The producer replaying `span` for `series` series at full speed (not started)."""
    return producer(
        kafka.bootstrap_servers,
        kafka.topics,
        args.data,
        args.logs / f"scaling.producer.{uuid.uuid4().hex[:6]}.log",
        "--series-count",
        str(series),
        "--series-shift-days",
        str(args.shift),
        *span,
    )


def replayed(args: argparse.Namespace, service: Service, kafka: KafkaSettings) -> int:
    """Wait for a started replay to end; the records on the observations topic."""
    if service.wait(args.timeout) != 0:
        raise RuntimeError(f"the producer failed:\n{service.log()}")
    with Progress(kafka.bootstrap_servers) as progress:
        return progress.ends(kafka.topics.observations).written


def first_sent(kafka: KafkaSettings) -> float:
    """The epoch second the first observation was sent (its CreateTime)."""
    consumer = reader(kafka.bootstrap_servers, kafka.topics.observations)
    try:
        while True:
            for part in consumer.poll(timeout_ms=1000, max_records=50).values():
                return min(r.timestamp for r in part) / 1000
    finally:
        consumer.close()


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def throughput(args: argparse.Namespace, bootstrap: str, n: int, baseline: float | None) -> dict:
    """N instances ready on empty topics, then the input replayed at full speed; throughput
    from the first observation sent to the last one committed."""
    kafka = _topics(bootstrap, args.partitions)
    group, fleet = _fleet(kafka, n, args.logs, f"scaling-{n}")
    broker_pid = listening_pid(int(bootstrap.rsplit(":", 1)[1]))
    feed = replay(args, kafka, args.series, "--start", args.start, "--end", args.end)
    with ExitStack() as stack, Progress(bootstrap) as progress:
        for service in fleet:
            stack.callback(service.stop)
            service.start()
        for service in fleet:
            service.wait_ready(args.timeout)
        cpu = Cpu({"broker": broker_pid, **{s.name: s.pid for s in fleet}})
        before = children_cpu()
        stack.callback(feed.stop)
        records = replayed(args, feed.start(), kafka)
        producer_cpu = children_cpu() - before  # the producer is the only child waited for
        progress.wait_finished(group, kafka.topics, records, args.timeout, *fleet)
        seconds = time.time() - first_sent(kafka)
        spent, busy = cpu.since()
        rss = [rss_peak_mib(s.pid) for s in fleet]
        samples = [s.metrics() for s in fleet]
    calls = sum(total(m, "sunspot_batch_size_count") for m in samples)
    model_s = sum(total(m, "sunspot_inference_seconds_sum") for m in samples)
    rate = records / seconds
    return {
        "scenario": f"{n} instance{'s' if n > 1 else ''}, {args.partitions} partitions",
        "instances": n,
        "observations": records,
        "seconds": round(seconds, 2),
        "obs_per_s": round(rate),
        "speedup": round(rate / baseline, 2) if baseline else 1.0,
        "instance_cpu_s": [spent[s.name] for s in fleet],
        "model_s": round(model_s, 2),
        "broker_cpu_s": spent["broker"],
        "producer_cpu_s": round(producer_cpu, 2),
        "machine_busy": busy,
        "load": round(os.getloadavg()[0], 1),
        "batches": int(calls),
        "obs_per_batch": round(records / calls) if calls else None,
        "rss_mib": rss,
    }


def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """The throughput with each number of instances, each row compared with the first; the report
    names the broker, partitions, series and days."""
    args.logs.mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    for n in args.instances:
        rows.append(throughput(args, bootstrap, n, rows[0]["obs_per_s"] if rows else None))
    days = len(select_range(load_daily(args.data), args.start, args.end))
    return report(
        "scaling",
        rows,
        broker="one local KRaft node" if not args.bootstrap_servers else args.bootstrap_servers,
        partitions=args.partitions,
        series=args.series,
        days=days,
        replay_start=args.start,
        replay_end=args.end,
    )


def build_parser() -> argparse.ArgumentParser:
    """The flags of `python -m bench.scaling`: the range, partitions, series and instance counts."""
    parser = argparse.ArgumentParser(prog="bench.scaling", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", default=default_data(), help="SILSO daily CSV")
    parser.add_argument("--bootstrap-servers", help="a running broker; default: start one")
    parser.add_argument("--start", default="1990-01-01", help="first date (1990-01-01)")
    parser.add_argument("--end", default="2019-12-31", help="last date (2019-12-31)")
    parser.add_argument("--partitions", type=int, default=6, help="of the topics (6)")
    parser.add_argument("--series", type=int, default=16, help="series replayed (16)")
    parser.add_argument("--shift", type=int, default=27, help="days between series (27)")
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--timeout", type=float, default=600.0, help="per run (600 s)")
    parser.add_argument("--logs", type=Path, default=RESULTS, help="service logs (bench/results)")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaling.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    measure(build_parser().parse_args(argv), run, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
