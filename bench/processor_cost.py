"""The forecaster's own CPU per observation as the number of series grows, without Kafka.

    .venv/bin/python -m bench.processor_cost [--series 1 1000 10000] [--observations 200000]
        [--batch 500] [--without snapshot copy]

(A series gives at most 9,000 days from 2000-01-01: later ones would lie in the future, which
the forecaster turns away; the single series is measured on those.)

bench.many_series measures the whole service; this isolates the processor (the side of the
seam that never publishes): the real `Forecaster` on the committed model takes synthetic daily
observations of S series, in batches of `--batch` records as the loop would hand them over
(one series: consecutive days; S series: one day of each in turn), after a warm-up that fills
every window. Per observation: the CPU time of `process` (on each slice of a batch, whole series
each, as the loop hands them over) and of `changelog` after it, and the outputs they return, of
which changelog records. With one series a batch writes one changelog record; with many, one per
series it touched, and each touched series is copied for the batch's atomicity. What those two
cost a touched series is timed apart, over every series held once the run is over (the median of
three rounds): `snapshot_us`, the changelog value's encoding, and `copy_us`, the copy kept for a
rollback. Beside them the service pays one more send through kafka-python's producer per
changelog record (bench.codecs gives its CPU per record), which no processor-side saving
removes.

The process's collector is set as the consumer sets its own (`settle_garbage_collector`),
and collects between batches as the consumer's loop does (`collect_between_batches`, its
CPU counted with the batch's).
`--without` answers "what if this step were free": `snapshot` has every changelog value be a
constant instead of the encoded state, `copy` has a batch keep the state itself instead of a
copy (so a failed batch could not be rolled back). Both only measure; the rows say which were
left out.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

from bench.common import machine
from bench.state_record import forecaster, per_state
from consumer.forecaster import Forecaster
from consumer.output import Output
from consumer.runner import DEFAULT_SLICE_RECORDS
from consumer.series import SeriesState
from consumer.slicing import batch_outputs
from sunspots.process.garbage import collect_between_batches, settle_garbage_collector
from sunspots.wire.schemas import Observation
from support.records import Record

WARM_DAYS = 20  # past the longest model input, so every later observation forecasts and scores
MAX_DAYS = 9000  # from 2000-01-01, all before today: a date in the future is a dead letter


def records(series: int, days: int) -> list[Record]:
    """`days` days of `series` synthetic series, one day of every series at a time."""
    out, offset = [], 0
    for day in range(days):
        when = date(2000, 1, 1) + timedelta(days=day)
        for i in range(series):
            name = f"silso-{i}"
            value = 50.0 + ((day * 7 + i * 13) % 97) / 2
            obs = Observation(name, when, value, 1.0, 20, False).encode()
            out.append(Record(obs, name.encode(), offset))
            offset += 1
    return out


def transaction(fc: Forecaster, batch: list[Record]) -> list[Output]:
    """A batch's outputs as the loop makes them (consumer.slicing.batch_outputs: in slices of
    whole series, then the changelog); `batch` is emptied."""
    return list(batch_outputs(fc, batch, DEFAULT_SLICE_RECORDS))


def measure(series: int, observations: int, batch: int) -> dict[str, Any]:
    """CPU µs and outputs per observation of `process`, past the warm-up."""
    days = WARM_DAYS + max(1, min(observations // series, MAX_DAYS))
    fed = records(series, days)
    fc = forecaster(challenger=False)
    warm = WARM_DAYS * series
    for start in range(0, warm, batch):
        transaction(fc, fed[start : min(start + batch, warm)])
        collect_between_batches()
    timed = fed[warm:]
    outputs = changelog = 0
    # Of `process` and the collections between batches: counting the outputs is not the
    # forecaster's work.
    cpu = 0.0
    for start in range(0, len(timed), batch):
        began = time.process_time()
        made = transaction(fc, timed[start : start + batch])
        cpu += time.process_time() - began
        outputs += len(made)
        changelog += sum(1 for o in made if o.topic == fc.topics.state)
        made.clear()  # the loop frees a batch's outputs before it collects
        began = time.process_time()
        collect_between_batches()
        cpu += time.process_time() - began
    states = list(fc.series.values())
    return {
        "series": series,
        "observations": len(timed),
        "cpu_us_per_obs": round(cpu / len(timed) * 1e6, 1),
        "outputs_per_obs": round(outputs / len(timed), 2),
        "changelog_records_per_obs": round(changelog / len(timed), 3),
        "snapshot_us": per_state(states, SeriesState.snapshot),
        "copy_us": per_state(states, SeriesState.copy),
    }


# What `--without` puts in place of each step: a constant changelog value, the state itself.
FREE: dict[str, Callable[[SeriesState], object]] = {
    "snapshot": lambda state: b"{}",
    "copy": lambda state: state,
}


@contextmanager
def without(steps: list[str]) -> Iterator[None]:
    """The forecaster with each of `steps` made free (see the module's doc), put back after."""
    saved = {step: getattr(SeriesState, step) for step in steps}
    try:
        for step in steps:
            setattr(SeriesState, step, FREE[step])
        yield
    finally:
        for step, method in saved.items():
            setattr(SeriesState, step, method)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.processor_cost`: one row per series count, each with its ratio to the
    first; the JSON is printed."""
    parser = argparse.ArgumentParser(prog="bench.processor_cost", description=__doc__)
    parser.add_argument("--series", type=int, nargs="+", default=[1, 1000, 10000])
    parser.add_argument("--observations", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--without", nargs="*", choices=tuple(FREE), default=[])
    args = parser.parse_args(argv)
    settle_garbage_collector()
    # A first run warms the process (lazy imports, the numeric library's first calls), which
    # would otherwise be charged to the first count.
    measure(args.series[0], args.observations, args.batch)
    with without(args.without):
        rows = [measure(n, args.observations, args.batch) for n in args.series]
    for row in rows:
        row["ratio_to_first"] = round(row["cpu_us_per_obs"] / rows[0]["cpu_us_per_obs"], 2)
        row["without"] = args.without
    print(json.dumps({"benchmark": "processor_cost", "machine": machine(), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
