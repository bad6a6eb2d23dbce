"""Classifier service benchmark: requests per second and request→answer latency, end to end.

    .venv/bin/python -m bench.classifier                      # starts its own local broker
    .venv/bin/python -m bench.classifier --bootstrap-servers 127.0.0.1:9092

Starts `python -m consumer classify` (exactly-once, the committed model) on fresh topics, waits
for /readyz, then runs two scenarios through the `producer.classify` client:

- burst: N requests sent at once; throughput = N / (last answer − first send).
- paced: a steady R requests/s for D seconds; the latency a caller sees under light load.

Latency is from the client's `send()` to the moment its read_committed reply reader polled the
answer, so it includes producer batching, the service's poll and transaction commit, and the
reply fetch. `loop_ms` says where the service's loop spent a batch, from its own metrics
(`bench.common.loop_ms`). Prints a table and writes JSON to bench/results/classifier.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import broker, consumer_service, loop_ms
from producer.classify import Exchange, ReplyReader, exchange
from sunspots.kafka.clients import make_sender
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.topics import create_topics
from sunspots.wire.schemas import encode_classifier_request
from support.run_topics import unique_topics
from support.services import Service

REPO = Path(__file__).resolve().parents[1]
LESSON = [[0, 1, 1, 0, 0, 0], [0, 0, 0, 2, 2, 0], [0, 0, 0, 0, 3, 3]]


def _summary(name: str, result: Exchange, seconds: float) -> dict[str, Any]:
    latencies = np.array(result.latencies()) * 1000.0
    return {
        "scenario": name,
        "requests": len(result.sent_at),
        "answered": len(result.answers),
        "duplicates": result.duplicates,
        "seconds": round(seconds, 3),
        "requests_per_s": round(len(result.answers) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None,
        "max_ms": round(float(latencies.max()), 1) if len(latencies) else None,
    }


def burst(kafka: KafkaSettings, count: int, timeout: float, name: str = "burst") -> dict[str, Any]:
    """Send `count` requests at once and wait for their answers: the throughput row, timed from
    the first request sent to the last answer read."""
    requests = [(f"{name}-{i}", LESSON[i % len(LESSON)]) for i in range(count)]
    result = exchange(kafka, requests, timeout)
    first = min(result.sent_at.values())
    last = max(result.answered_at.values(), default=first)
    return _summary(name, result, last - first)


def paced(kafka: KafkaSettings, rate: float, duration: float, timeout: float) -> dict[str, Any]:
    """Send `rate` requests a second for `duration` seconds while reading answers: the latency
    row, with `rate` beside it."""
    total = int(rate * duration)
    result = Exchange()
    reader = ReplyReader(kafka, timeout)
    producer = make_sender(kafka, acks="all", linger_ms=0, compression_type=None)
    try:
        started = time.monotonic()
        sent = 0
        while sent < total:
            now = time.monotonic()
            while sent < total and started + sent / rate <= now:
                request_id = f"p-{sent}"
                result.sent_at[request_id] = time.monotonic()
                value = encode_classifier_request(request_id, LESSON[sent % len(LESSON)])
                producer.send(kafka.topics.classifier_requests, value, request_id.encode())
                sent += 1
            # Poll for answers until the next request is due (at least a little, never long).
            due_ms = (started + sent / rate - time.monotonic()) * 1000
            reader.poll_into(result, timeout_ms=int(min(max(due_ms, 1), 50)))
        producer.flush()
        reader.read_into(result, timeout)
        seconds = max(result.answered_at.values(), default=started) - started
    finally:
        producer.close()
        reader.close()
    return {**_summary(f"paced {rate:g}/s", result, seconds), "rate": rate}


def _measured(
    service: Service, scenario: Callable[..., dict[str, Any]], *args: Any
) -> dict[str, Any]:
    """A scenario's row, with where the service's loop spent each batch meanwhile."""
    before = service.metrics()
    row = scenario(*args)
    row["loop_ms"] = loop_ms(before, service.metrics())
    return row


def _table(rows: list[dict[str, Any]]) -> str:
    cols = ["scenario", "requests", "answered", "seconds", "requests_per_s", "p50_ms", "p99_ms",
            "max_ms", "loop_ms"]  # fmt: skip
    widths = [max(len(c), *(len(str(r.get(c))) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(str(row.get(c)).ljust(w) for c, w in zip(cols, widths, strict=True)))
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """The classifier service on topics of its own: a warm-up burst not counted, then the burst
    and paced rows in one report."""
    kafka = KafkaSettings(bootstrap, unique_topics(f"bench-{uuid.uuid4().hex[:8]}"))
    create_topics(kafka, args.partitions)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    service = consumer_service("classify", kafka, args.out.with_suffix(".service.log")).start()
    try:
        service.wait_ready(90.0)
        # Warm-up: connections, group join and the first transaction are not what is measured.
        burst(kafka, min(200, args.requests), args.timeout, "warm-up")
        rows = [_measured(service, burst, kafka, args.requests, args.timeout)]
        rows.append(_measured(service, paced, kafka, args.rate, args.duration, args.timeout))
    finally:
        service.stop()
    return {
        "benchmark": "classifier",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "partitions": args.partitions,
        "processing": "exactly_once",
        "results": rows,
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.classifier`: run on the given broker (or one started for it), write the
    JSON report to `--out` and print its table."""
    parser = argparse.ArgumentParser(prog="bench.classifier", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--bootstrap-servers", help="a running broker; default: start one")
    parser.add_argument("--requests", type=int, default=5000, help="burst size (default 5000)")
    parser.add_argument("--rate", type=float, default=200.0, help="paced requests/s (200)")
    parser.add_argument("--duration", type=float, default=10.0, help="paced seconds (10)")
    parser.add_argument("--partitions", type=int, default=1, help="topic partitions (1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="answer timeout (120 s)")
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/classifier.json")
    args = parser.parse_args(argv)
    with broker(args.bootstrap_servers) as bootstrap:
        report = run(args, bootstrap)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    sys.stdout.write(_table(report["results"]))
    sys.stdout.write(f"written to {args.out}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
