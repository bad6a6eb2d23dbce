"""End-to-end pipeline: the real replay producer and forecaster on one broker.

    .venv/bin/python -m bench.pipeline [--data FILE] [--bootstrap-servers HOST:PORT]

Runs `python -m consumer forecast` and `python -m producer` as subprocesses, exactly as a user
would, on fresh topics:

- full replay (once per processing mode): every observation from 1850-01-01 to the end of the
  data (about 64k) at full speed. Wall time runs from the first observation's Kafka timestamp
  (CreateTime, set by the producer at send) to the moment a read_committed consumer in this
  process sees the last expected evaluation — i.e. until the last evaluation is committed and
  readable downstream. Throughput = observations / wall time.
- baseline (exactly once, with `--baseline REF`): the same full replay served by the
  forecaster of commit REF of this repository (`git archive`), in the same run, so that the
  consumer's CPU per observation and the replay's wall time can be compared before and after
  a change on a machine whose load varies from run to run. That forecaster is given only the
  flags it lists in its `--help` (an earlier one knows fewer); a commit that cannot be had, or
  whose forecaster does not serve the replay, is skipped with one line saying why.
- paced (exactly once): a fresh series at `--speed 100` (100 obs/s) for `--paced-seconds`.
  Latency of each forecast = its record timestamp − the timestamp of the observation that
  completed its window (matched by date): the time the forecaster took to see, batch, predict
  and send it. `visible` latency adds the transaction commit and the downstream fetch: the
  time a read_committed reader in this process received the forecast − the observation's
  timestamp. Both clocks are this machine's. `loop_ms` says where the forecaster's loop spent a
  batch, from its own metrics (`bench.common.loop_ms`): the mean from poll to commit, and of it
  the transaction's steps (send + offsets + commit). A paced replay sends each observation at
  once (no linger), as `producer --speed` does.

Peak RSS of the forecaster is its /proc/<pid>/status VmHWM; CPU is its user+system time
(`cpu_s`, start-up included). `cpu_us_per_obs` is the CPU the forecaster spent from the moment
it was ready (model loaded, partitions assigned) to the moment the last evaluation was
readable, per observation: the consumer's cost of one observation, less sensitive to other
load on the machine than wall time. The forecaster's own /metrics give the time spent in the
model (`sunspot_inference_seconds`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS,
    broker,
    consumer_service,
    default_data,
    from_tree,
    known_flags_only,
    loop_ms,
    percentile,
    report,
    rss_peak_mib,
    source_tree,
    write,
)
from sunspots.domain.artifact import DEFAULT_FORECASTER, load_forecaster
from sunspots.domain.data import load_daily, select_range
from sunspots.domain.window import SeriesWindow
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.topics import create_topics
from support.http import total
from support.run_topics import read_to_end, read_topic, reader, unique_topics
from support.services import Service, run_producer

COLUMNS = [
    "scenario",
    "observations",
    "evaluations",
    "seconds",
    "obs_per_s",
    "p50_ms",
    "p99_ms",
    "visible_p50_ms",
    "visible_p99_ms",
    "rss_peak_mib",
    "cpu_s",
    "cpu_us_per_obs",
    "inference_s",
    "batches",
    "loop_ms",
]
REPLAY_START = "1850-01-01"
PACED_START = "2000-01-01"


def expected_counts(data: str, start: str, end: str | None, window: int) -> tuple[int, int, int]:
    """(observations, forecasts, evaluations) the forecaster must produce for a replay."""
    frame = select_range(load_daily(data), start, end)
    state = SeriesWindow(window)
    forecasts = evaluations = 0
    for day, value in zip(frame["date"].dt.date, frame["sunspot_number"], strict=True):
        step = state.apply(day, None if value != value else float(value))  # NaN → missing
        evaluations += step.scored is not None
        state.pending = True if step.ready is not None else None
        forecasts += step.ready is not None
    return len(frame), forecasts, evaluations


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds of a live process from /proc; None once it has exited."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return round((int(fields[11]) + int(fields[12])) / ticks, 2)  # utime + stime


@dataclass
class Watcher:
    """A read_committed reader in a thread: what a downstream consumer sees, and when."""

    kafka: KafkaSettings
    topic: str
    expected: int
    keep_values: bool = False
    received: list[tuple[float, int, bytes | None]] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.consumer = reader(self.kafka.bootstrap_servers, self.topic)  # fetches 16 MiB
        self.consumer.poll(timeout_ms=100)  # connect and fetch positions before timing starts
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.stop.is_set() and len(self.received) < self.expected:
                batch = self.consumer.poll(timeout_ms=100)
                now = time.time()
                for part in batch.values():
                    for r in part:
                        self.received.append(
                            (now, r.timestamp, r.value if self.keep_values else None)
                        )
            if len(self.received) >= self.expected:
                self.done.set()
        finally:
            self.consumer.close()

    def wait(self, timeout: float) -> bool:
        finished = self.done.wait(timeout)
        self.stop.set()
        self.thread.join(10)
        return finished


def replay(kafka: KafkaSettings, data: str, log_path: Path, *extra: str) -> float:
    """Run the replay producer to completion; returns its wall time in seconds."""
    started = time.monotonic()
    run_producer(kafka.bootstrap_servers, kafka.topics, data, log_path, *extra, timeout=None)
    return time.monotonic() - started


def fresh_topics(kafka: KafkaSettings, prefix: str) -> KafkaSettings:
    topics = unique_topics(f"{prefix}-{uuid.uuid4().hex[:8]}")
    settings = KafkaSettings(kafka.bootstrap_servers, topics, kafka.security)
    create_topics(settings)
    return settings


def service_row(fc: Service, row: dict[str, Any]) -> dict[str, Any]:
    """Add the forecaster's peak RSS, CPU seconds, inference seconds and batch count to `row`,
    and return it."""
    metrics = fc.metrics()
    row["rss_peak_mib"] = rss_peak_mib(fc.pid)
    row["cpu_s"] = cpu_seconds(fc.pid)
    row["inference_s"] = round(total(metrics, "sunspot_inference_seconds_sum"), 3)
    row["batches"] = int(total(metrics, "sunspot_inference_seconds_count"))
    return row


def full_replay(
    args: argparse.Namespace, base: KafkaSettings, processing: str, tree: Path | None = None
) -> dict[str, Any]:
    """Replay the data through a forecaster in `processing` mode (the one of `tree` if given) and
    time it to the last evaluation; raises RuntimeError if not all are committed in time."""
    kafka = fresh_topics(base, "pipe")
    model = load_forecaster(DEFAULT_FORECASTER)
    n_obs, _, n_eval = expected_counts(args.data, args.start, args.end, model.window)
    suffix = ".baseline" if tree else ""
    log = args.logs / f"pipeline.{processing}{suffix}.forecaster.log"
    fc = consumer_service("forecast", kafka, log, "--processing", processing)
    if tree is not None:
        fc = known_flags_only(from_tree(fc, tree))
    try:
        fc.start().wait_ready(90)
        watcher = Watcher(kafka, kafka.topics.evaluations, n_eval)
        cpu_ready = cpu_seconds(fc.pid)
        extra = ["--start", args.start] + (["--end", args.end] if args.end else [])
        producer_s = replay(kafka, args.data, args.logs / "pipeline.producer.log", *extra)
        if not watcher.wait(args.timeout):
            raise RuntimeError(f"{len(watcher.received)} of {n_eval} evaluations committed")
        cpu_done = cpu_seconds(fc.pid)
        # The first observation: reading stops at the first records that arrive.
        first_record = read_topic(kafka.bootstrap_servers, kafka.topics.observations, 1, idle=0)
        first = first_record[0].timestamp / 1000.0
        last_seen = watcher.received[n_eval - 1][0]
        seconds = last_seen - first
        scenario = f"full replay, {processing.replace('_', ' ')}"
        row = {
            "scenario": f"{scenario}, baseline {args.baseline}" if tree else scenario,
            "observations": n_obs,
            "evaluations": len(watcher.received),
            "seconds": round(seconds, 3),
            "obs_per_s": round(n_obs / seconds, 1),
            "producer_s": round(producer_s, 3),
        }
        if cpu_ready is not None and cpu_done is not None:
            row["cpu_us_per_obs"] = round((cpu_done - cpu_ready) / n_obs * 1e6, 1)
        return service_row(fc, row)
    finally:
        fc.stop()


def paced(args: argparse.Namespace, base: KafkaSettings) -> dict[str, Any]:
    """Replay at `args.rate` observations a second for `args.paced_seconds`, exactly once: the
    observation-to-forecast latency, in ms, as produced and as visible to a reader."""
    kafka = fresh_topics(base, "paced")
    model = load_forecaster(DEFAULT_FORECASTER)
    start = date.fromisoformat(PACED_START)
    end = start + timedelta(days=int(args.rate * args.paced_seconds) - 1)
    n_obs, n_fc, n_eval = expected_counts(
        args.data, start.isoformat(), end.isoformat(), model.window
    )
    log = args.logs / "pipeline.paced.forecaster.log"
    fc = consumer_service("forecast", kafka, log, "--processing", "exactly_once")
    try:
        fc.start().wait_ready(90)
        watcher = Watcher(kafka, kafka.topics.forecasts, n_fc, keep_values=True)
        idle = fc.metrics()
        replay(
            kafka,
            args.data,
            args.logs / "pipeline.producer.log",
            "--start",
            start.isoformat(),
            "--end",
            end.isoformat(),
            "--speed",
            str(args.rate),
        )
        if not watcher.wait(args.timeout):
            raise RuntimeError(f"{len(watcher.received)} of {n_fc} forecasts committed")
        sent = {
            json.loads(r.value)["date"]: r.timestamp / 1000.0
            for r in read_to_end(kafka.bootstrap_servers, kafka.topics.observations)
        }
        produced, visible = [], []
        for seen, stamp, value in watcher.received:
            assert value is not None
            obs_sent = sent[json.loads(value)["window_end"]]
            produced.append((stamp / 1000.0 - obs_sent) * 1000.0)
            visible.append((seen - obs_sent) * 1000.0)
        row = {
            "scenario": f"paced {args.rate:g} obs/s, exactly once",
            "observations": n_obs,
            "evaluations": n_eval,
            "forecasts": len(produced),
            "seconds": round(args.paced_seconds, 1),
            "obs_per_s": args.rate,
            "p50_ms": percentile(produced, 50, 1),
            "p99_ms": percentile(produced, 99, 1),
            "max_ms": round(max(produced), 1),
            "visible_p50_ms": percentile(visible, 50, 1),
            "visible_p99_ms": percentile(visible, 99, 1),
            "loop_ms": loop_ms(idle, fc.metrics()),
        }
        return service_row(fc, row)
    finally:
        fc.stop()


def baseline(args: argparse.Namespace, base: KafkaSettings) -> list[dict[str, Any]]:
    """The full replay, exactly once, served by the forecaster of commit `args.baseline`; no
    row, and one line saying why, when that commit cannot be had or its forecaster does not
    serve the replay (the comparison is a benchmark's extra, not its result)."""
    try:
        with source_tree(args.baseline) as tree:
            return [full_replay(args, base, "exactly_once", tree)]
    except (subprocess.CalledProcessError, OSError) as exc:  # a shallow clone, no git
        stderr = getattr(exc, "stderr", None)
        why = stderr.decode() if isinstance(stderr, bytes) else str(exc)
    except RuntimeError as exc:  # its forecaster exited, or committed too little in time
        why = str(exc)
    lines = [line for line in why.splitlines() if line.strip()] or ["no reason given"]
    told = lines[0] if len(lines) == 1 else f"{lines[0].rstrip(':')}: {lines[-1].strip()}"
    sys.stderr.write(f"baseline {args.baseline} skipped: {told}\n")
    return []


def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """The full replays in each processing mode, the baseline's if asked, then the paced run, in
    one report."""
    args.logs.mkdir(parents=True, exist_ok=True)
    base = KafkaSettings(bootstrap)
    rows = [full_replay(args, base, mode) for mode in args.processing]
    if args.baseline:
        rows.extend(baseline(args, base))
    if args.paced_seconds > 0:
        rows.append(paced(args, base))
    return report(
        "pipeline",
        rows,
        replay_start=args.start,
        replay_end=args.end,
        partitions=1,
        baseline=args.baseline,
    )


def build_parser() -> argparse.ArgumentParser:
    """The flags of `python -m bench.pipeline`: the replay range, the processing modes, the
    baseline, the paced run."""
    parser = argparse.ArgumentParser(prog="bench.pipeline", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", default=default_data(), help="SILSO daily CSV")
    parser.add_argument("--bootstrap-servers", help="a running broker; default: start one")
    parser.add_argument("--start", default=REPLAY_START, help="first date (1850-01-01)")
    parser.add_argument("--end", help="last date (default: end of data)")
    parser.add_argument(
        "--processing",
        nargs="+",
        default=["exactly_once", "at_least_once"],
        choices=["exactly_once", "at_least_once"],
    )
    parser.add_argument(
        "--baseline", metavar="REF", help="also replay with the forecaster of commit REF"
    )
    parser.add_argument("--rate", type=float, default=100.0, help="paced obs/s (100)")
    parser.add_argument("--paced-seconds", type=float, default=30.0, help="paced run (30 s)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per run (300 s)")
    parser.add_argument("--logs", type=Path, default=RESULTS, help="service logs (bench/results)")
    parser.add_argument("--out", type=Path, default=RESULTS / "pipeline.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.pipeline`: run on the given broker (or one started for it), write the
    report and print its table."""
    args = build_parser().parse_args(argv)
    with broker(args.bootstrap_servers) as bootstrap:
        result = run(args, bootstrap)
    write(result, args.out, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
