"""The uninterrupted run, computed offline: what the forecaster must publish for a replay.

From the data file and the artifact in use, with no Kafka: every forecast (target date, value,
interval, persistence) and every evaluation (actual, error, persistence error) of each replayed
series, as an undisturbed service would publish them. Each series' intervals come from
`sunspots.domain.intervals.sequential`, in date order from a fresh adaptive level, as the training
evaluation computes them: a service that lost or reset a series' adaptive level publishes other
intervals, which `compare` finds. A disturbed run (killed consumers, a
bounced broker, a fenced zombie) must have committed exactly these, each once: `compare` says
what is missing, unexpected, repeated or off in value.

The network computes in float32, and BLAS sums a product differently for different batch sizes,
so a forecast from a batch of 300 and one from a batch of 64,000 agree to float32 precision
(values reach 400: about 1e-5), not to the last bit; values are compared within `TOLERANCE`,
as the parity test does. Actual and persistence values are inputs, compared exactly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np

from sunspots.domain import data
from sunspots.domain.artifact import ForecasterModel
from sunspots.domain.intervals import sequential
from tests.datafacts import COMPLETE_FROM, DataFile

TOLERANCE = 1e-4
Key = tuple[str, str]  # (series, date)

_FORECAST_FIELDS = ("forecast", "lower", "upper", "persistence")
_EVALUATION_FIELDS = (
    "forecast",
    "actual",
    "error",
    "lower",
    "upper",
    "persistence",
    "persistence_error",
)
_EXACT = {"actual", "persistence"}


@dataclass(frozen=True)
class OfflineRun:
    observations: int  # records the replay sends
    forecasts: dict[Key, dict[str, Any]]  # by (series, target_date)
    evaluations: dict[Key, dict[str, Any]]  # by (series, date)


def series_names(series: str, count: int) -> list[str]:
    """The replay's series ids: `series` alone, or `<series>-0` … `<series>-<count-1>`."""
    return [series] if count == 1 else [f"{series}-{i}" for i in range(count)]


def offline_run(
    data_file: DataFile,
    model: ForecasterModel,
    start: str,
    end: str | None = None,
    series: str = "silso",
    count: int = 1,
    shift_days: int = 27,
) -> OfflineRun:
    """The outputs of a replay of `start`..`end` (series i lagging i × `shift_days` days, as the
    producer sends them), from one batched model call."""
    frame = data.select_range(data.load_daily(data_file.path), start, end)
    dates = frame["date"].dt.date.tolist()
    values = frame["sunspot_number"].to_numpy(dtype=np.float64)
    assert not np.isnan(values).any(), (
        f"a value is missing between {start} and {end or 'the end'}; SILSO's file has none "
        f"from {COMPLETE_FROM} on {data_file.note}"
    )
    w = model.window
    windows, meta = [], []
    sent = 0
    for i, name in enumerate(series_names(series, count)):
        lag = i * shift_days
        days, own = dates[lag:], values[: max(0, len(values) - lag)]
        sent += len(own)
        for j in range(w - 1, len(own)):
            windows.append(own[j - w + 1 : j + 1])
            actual = float(own[j + 1]) if j + 1 < len(own) else None
            meta.append((name, days[j], float(own[j]), actual))
    predictions = model.predict(np.array(windows)) if windows else np.empty(0)
    lower, upper = _intervals(model, np.array(windows), predictions, meta)
    forecasts, evaluations = {}, {}
    for i, ((name, window_end, last, actual), value) in enumerate(
        zip(meta, predictions.tolist(), strict=True)
    ):
        target = (window_end + timedelta(days=1)).isoformat()
        made = {
            "forecast": value,
            "lower": float(lower[i]),
            "upper": float(upper[i]),
            "persistence": last,
            "window_end": window_end.isoformat(),
        }
        forecasts[(name, target)] = made
        if actual is not None:
            evaluations[(name, target)] = {
                **made,
                "actual": actual,
                "error": actual - value,
                "persistence_error": actual - last,
            }
    return OfflineRun(sent, forecasts, evaluations)


def combined(runs: list[OfflineRun]) -> OfflineRun:
    """Several replays of differently named series as one run: what a forecaster that read
    them all must publish."""
    return OfflineRun(
        sum(r.observations for r in runs),
        {key: value for r in runs for key, value in r.forecasts.items()},
        {key: value for r in runs for key, value in r.evaluations.items()},
    )


def _intervals(
    model: ForecasterModel, windows: np.ndarray, predictions: np.ndarray, meta: list[tuple]
) -> tuple[np.ndarray, np.ndarray]:
    """Each series' intervals, run in date order (its windows are consecutive in `meta`)."""
    lower, upper = np.empty(len(meta)), np.empty(len(meta))
    names = [m[0] for m in meta]
    for name in dict.fromkeys(names):
        rows = np.array([i for i, n in enumerate(names) if n == name])
        actuals = [meta[i][3] for i in rows]
        run = sequential(model.calibration, windows[rows], predictions[rows], actuals)
        lower[rows], upper[rows] = run.lower, run.upper
    return lower, upper


@dataclass
class Comparison:
    """One output topic's records against the offline run's."""

    what: str
    expected: int
    found: int = 0
    missing: list[Key] = field(default_factory=list)
    unexpected: list[Key] = field(default_factory=list)
    repeats: int = 0  # records beyond the first for their key
    repeated: list[Key] = field(default_factory=list)
    worst: float = 0.0  # the largest difference of a value field
    off: list[str] = field(default_factory=list)  # differences beyond the tolerance

    def describe(self) -> str:
        return (
            f"{self.what}: {self.found} of {self.expected} keys, {len(self.missing)} missing, "
            f"{len(self.unexpected)} unexpected, {self.repeats} repeated, worst difference "
            f"{self.worst:.2g}, {len(self.off)} off"
        )

    def problems(self, max_repeats: int = 0) -> list[str]:
        found = []
        if self.missing:
            found.append(f"{self.what} missing: {self.missing[:5]}")
        if self.unexpected:
            found.append(f"{self.what} unexpected: {self.unexpected[:5]}")
        if self.repeats > max_repeats:
            found.append(f"{self.what} repeated {self.repeats} times: {self.repeated[:5]}")
        if self.off:
            found.append(f"{self.what} off: {self.off[:5]}")
        return found


def compare(
    what: str, expected: dict[Key, dict[str, Any]], records: list[dict[str, Any]], date_field: str
) -> Comparison:
    """`records` (decoded JSON values) against `expected`, keyed by series and `date_field`."""
    fields = _EVALUATION_FIELDS if date_field == "date" else _FORECAST_FIELDS
    result = Comparison(what, len(expected))
    counts = Counter((r["series"], r[date_field]) for r in records)
    result.found = len(counts)
    result.missing = sorted(set(expected) - set(counts))
    result.unexpected = sorted(set(counts) - set(expected))
    result.repeated = sorted(k for k, n in counts.items() if n > 1)
    result.repeats = sum(n - 1 for n in counts.values())
    for record in records:
        want = expected.get((record["series"], record[date_field]))
        if want is None:
            continue
        for name in fields:
            diff = abs(record[name] - want[name])
            result.worst = max(result.worst, diff)
            if diff > (0.0 if name in _EXACT else TOLERANCE):
                key = (record["series"], record[date_field])
                result.off.append(f"{key} {name} {record[name]!r} != {want[name]!r}")
        if "window_end" in record and record["window_end"] != want["window_end"]:
            result.off.append(f"{record['target_date']} window_end {record['window_end']}")
    return result


def assert_matches(
    offline: OfflineRun,
    forecasts: list[dict[str, Any]],
    evaluations: list[dict[str, Any]],
    max_repeats: int = 0,
) -> tuple[Comparison, Comparison]:
    """Every offline forecast and evaluation is on the topics, with its values, nothing else is,
    and no key appears more than once beyond `max_repeats` in all."""
    compared = (
        compare("forecasts", offline.forecasts, forecasts, "target_date"),
        compare("evaluations", offline.evaluations, evaluations, "date"),
    )
    for c in compared:
        print(f"\n{c.describe()}")
    problems = [p for c in compared for p in c.problems(max_repeats)]
    assert not problems, "\n".join(problems)
    return compared
