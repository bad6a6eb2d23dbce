"""What one series' state costs on the changelog: the record's bytes and the time to encode it.

    .venv/bin/python -m bench.state_record --data FILE [--series 100] [--days 120]

Every batch writes one changelog record per series it touched (consumer.series.SeriesState's
snapshot: its 64-value history, each role's pending forecast, interval level and drift test),
so these two figures set the changelog's size (docs/scaling.md's plan) and the part of the CPU
per observation that grows with the series in a batch. In-process, no Kafka: the real
forecaster with the committed model takes `--days` days of the data file (from 2000-01-01) for
each of `--series` series, in batches of one day of every series, once with the champion alone
and once with a challenger (the same artifact under another version) beside it. The record is
key + value as the forecaster hands it to the producer (before compression); the encode time is
the CPU time of `snapshot()` per series, the median of `--repeats` rounds over every series
(`per_state`, which bench.processor_cost times its steps with too).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry

from bench.common import default_data, machine
from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from consumer.series import SeriesState
from sunspots.domain.artifact import DEFAULT_FORECASTER, load_forecaster
from sunspots.domain.data import load_daily, select_range
from sunspots.kafka.settings import Topics
from sunspots.lifecycle import records
from sunspots.wire.schemas import Observation
from support.records import Record

START = "2000-01-01"


def forecaster(challenger: bool) -> Forecaster:
    """The real forecaster on the committed model, with that model also as challenger if asked."""
    model = load_forecaster(DEFAULT_FORECASTER)
    fc = Forecaster(model, Topics(), ForecasterMetrics(CollectorRegistry()))
    if challenger:
        other = replace(model, model_version=f"{model.model_version}-challenger")
        record = records.ModelRecord(
            1, "challenger", "", other.model_version, "", "", b"", "", "", ""
        )
        fc.follow([records.Published(records.CHALLENGER, other, record)])
    return fc


def per_state(
    states: list[SeriesState], step: Callable[[SeriesState], object], rounds: int = 3
) -> float:
    """CPU µs of `step` on one series: the median of `rounds` rounds over every series (each
    round at least 20,000 calls)."""
    reps = max(1, 20_000 // len(states))
    times = []
    for _ in range(rounds):
        began = time.process_time()
        for _ in range(reps):
            for state in states:
                step(state)
        times.append((time.process_time() - began) / (reps * len(states)) * 1e6)
    return round(statistics.median(times), 2)


def measure(data: str, series: int, days: int, challenger: bool, repeats: int) -> dict[str, Any]:
    """The last batch's changelog records (bytes) and the snapshot's encoding time."""
    frame = select_range(load_daily(data), START, None).head(days)
    fc = forecaster(challenger)
    names = [f"silso-{i}" for i in range(series)]
    offset, out = 0, []
    for stamp, value in zip(frame["date"], frame["sunspot_number"], strict=True):
        when = stamp.date()
        batch = []
        for name in names:
            obs = Observation(name, when, float(value), None, None, None).encode()
            batch.append(Record(obs, name.encode(), offset))
            offset += 1
        out = fc.process(batch) + fc.changelog()
    sizes = [len(o.key or b"") + len(o.value or b"") for o in out if o.topic == fc.topics.state]
    states = list(fc.series.values())
    return {
        "roles": "champion and challenger" if challenger else "champion",
        "series": series,
        "days": days,
        "record_bytes_mean": round(statistics.mean(sizes), 1),
        "record_bytes_max": max(sizes),
        "encode_us": per_state(states, SeriesState.snapshot, repeats),
    }


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.state_record`: measure the champion alone, then with a challenger beside
    it; the JSON is printed, and written to `--out` if given."""
    parser = argparse.ArgumentParser(prog="bench.state_record", description=__doc__)
    parser.add_argument("--data", default=default_data(), help="SILSO daily CSV")
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    rows = [measure(args.data, args.series, args.days, c, args.repeats) for c in (False, True)]
    result = {"benchmark": "state_record", "machine": machine(), "rows": rows}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
