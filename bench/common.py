"""Shared pieces of the benchmarks: the table format, machine facts, percentiles, JSON output,
and the services under test.

Every benchmark prints a plain fixed-width table to stdout and writes a JSON report with the
same keys as bench/classifier.py (`benchmark`, `at`, `machine`, `results`), so a later run can
be compared by ratio with an earlier one. The figures are only comparable as ratios within one
run: the machines are shared and noisy.
"""

from __future__ import annotations

import io
import itertools
import json
import os
import platform
import re
import subprocess
import sys
import tarfile
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from sunspots.kafka.settings import KafkaSettings
from support.datafile import data_source
from support.http import Samples, sample
from support.services import Service, consumer

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench/results"


def default_data() -> str:
    """The SILSO file the benchmarks read when `--data` is not given (support.datafile)."""
    return data_source()


def versions() -> dict[str, str]:
    """Versions of Python, the client libraries and the broker, so reports from different setups
    can be told apart; "absent" for a package not installed."""
    found = {"python": platform.python_version()}
    for dist in ("kafka-python", "numpy", "prometheus-client"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "absent"
    try:
        from devtools.broker import KAFKA_VERSION

        found["kafka-broker"] = KAFKA_VERSION
    except ImportError:  # pragma: no cover - the broker harness is part of the package
        pass
    return found


def machine() -> dict[str, Any]:
    """The facts of the machine a report was measured on: CPU count and model, platform,
    versions."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "platform": platform.platform(),
        "versions": versions(),
    }


def report(name: str, rows: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A benchmark's JSON report: its name, when, the machine, any extra keys, then its rows."""
    return {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        **extra,
        "results": rows,
    }


def table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    """Fixed-width columns; missing values print as '-'."""

    def cell(row: dict[str, Any], col: str) -> str:
        value = row.get(col)
        return "-" if value is None else str(value)

    widths = [max(len(c), *(len(cell(r, c)) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True))]
    for row in rows:
        lines.append("  ".join(cell(row, c).ljust(w) for c, w in zip(cols, widths, strict=True)))
    return "\n".join(lines) + "\n"


def write(report_: dict[str, Any], out: Path, cols: list[str]) -> None:
    """Write the JSON report and print its table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report_, indent=2) + "\n")
    sys.stdout.write(table(report_["results"], cols))
    sys.stdout.write(f"written to {out}\n")


def measure(
    args: Any, run: Callable[[Any, str], dict[str, Any]], columns: list[str]
) -> dict[str, Any]:
    """A benchmark's main: `run(args, bootstrap)` on the broker of `--bootstrap-servers` (or
    one started for it), then its report written to `--out` and its table printed."""
    with broker(args.bootstrap_servers) as bootstrap:
        result = run(args, bootstrap)
    write(result, args.out, columns)
    return result


def percentile(values: list[float] | np.ndarray, q: float, digits: int = 3) -> float | None:
    if len(values) == 0:
        return None
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), digits)


def loop_ms(before: Samples, after: Samples) -> str | None:
    """Where a service's loop spent a batch between two scrapes of its /metrics, from its loop
    metrics (consumer.loop_metrics): the mean poll-to-commit time of a batch, then the mean of
    each transaction step (send + offsets + commit; the rest is processing and the loop's own
    turn), in ms."""

    def mean(name: str, **labels: str) -> float | None:
        count = sample(after, f"{name}_count", **labels) - sample(before, f"{name}_count", **labels)
        total = sample(after, f"{name}_sum", **labels) - sample(before, f"{name}_sum", **labels)
        return total / count * 1000 if count else None

    batch = mean("sunspot_consumer_batch_seconds")
    if batch is None:
        return None
    steps = [
        mean("sunspot_consumer_publish_step_seconds", step=s) for s in ("send", "offsets", "commit")
    ]
    shown = " + ".join(f"{s:.1f}" for s in steps if s is not None)
    return f"{batch:.1f} ({shown})"


def rss_peak_mib(pid: int) -> float | None:
    """Peak resident set (VmHWM) of a live process, MiB; None once it has exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


@contextmanager
def broker(bootstrap: str | None, needed: bool = True) -> Iterator[str | None]:
    """The given broker, or a local one started for the benchmark and stopped after it."""
    if bootstrap or not needed:
        yield bootstrap
        return
    from devtools.broker import LocalBroker

    with LocalBroker() as local:
        yield local.bootstrap_servers


def consumer_service(mode: str, kafka: KafkaSettings, log_path: Path, *extra: str) -> Service:
    """`consumer <mode>` in a group of its own, on topics the benchmark has created (not started)."""
    group = f"bench-{uuid.uuid4().hex[:8]}"
    return consumer(
        mode,
        kafka.bootstrap_servers,
        kafka.topics,
        group,
        log_path,
        "--create-topics",
        "false",
        *extra,
        instance_id=group,
    )


@contextmanager
def source_tree(ref: str, repo: Path = REPO) -> Iterator[Path]:
    """The packages and models of commit `ref` of this repository, unpacked in a temporary
    folder: an earlier consumer to measure beside this one, in the same run."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{ref[:12]}-") as folder:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", ref, "consumer", "sunspots", "models"],
            capture_output=True,
            check=True,
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)


def known_flags_only(service: Service) -> Service:
    """`service` without the flags (each with its value) that its program does not list in its
    `--help`: an earlier commit's forecaster knows fewer flags than today's services are given
    (the shadow topics, the models topic), and refuses any it does not know. Every flag the
    services are given takes a value."""
    head = list(itertools.takewhile(lambda a: not a.startswith("--"), service.command))
    shown = subprocess.run(
        [*head, "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **service.env},
        cwd=REPO,
        timeout=60,
    ).stdout
    known = set(re.findall(r"--[a-z][a-z0-9-]*", shown))
    rest = service.command[len(head) :]
    pairs = [rest[i : i + 2] for i in range(0, len(rest), 2)]
    if any(len(pair) != 2 or not pair[0].startswith("--") for pair in pairs):
        raise ValueError(f"not flags each with a value: {rest}")
    service.command = head + [part for pair in pairs if pair[0] in known for part in pair]
    return service


def from_tree(service: Service, tree: Path) -> Service:
    """`service`, run from the packages in `tree` instead of this checkout: `-P` keeps the
    working directory off sys.path, so PYTHONPATH decides where `consumer` comes from."""
    python, *rest = service.command
    service.command = [python, "-P", *rest]
    service.env["PYTHONPATH"] = str(tree)
    return service
