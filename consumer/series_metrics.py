"""The forecaster's per-series metrics, read from its live state when Prometheus scrapes.

`SeriesCollector` is a prometheus_client custom collector: at each scrape it reads the
`SeriesState` of the series `--series-metrics` names (`SeriesSelection`) and builds their
families (declared in consumer.metrics) from it, plus two fleet-wide gauges that need the live
state (the series held, the series in drift alarm). Nothing per series is kept in Prometheus'
own objects, so a series the instance lets go (a rebalance, a rewind) simply stops appearing,
and a batch costs the same whatever the number of series.

Threads: the scrape runs on the HTTP thread while the loop changes the states. No lock: the
loop's hot path stays as it is, and a scrape never waits for a batch. What makes the read
consistent enough, under CPython's global interpreter lock:
- the map of series is copied at once (`dict.copy`, one C call the lock does not interrupt),
  so a series added or dropped meanwhile never breaks the iteration;
- each series' values are read field by field, each read atomic (a float, an `array` slice, a
  dict `get`), and a rolling score is computed from copies of its buffers
  (sunspots.domain.evaluation.RollingScore.figures); so a series' figures may straddle a batch that
  commits during the scrape (its RMSE after it, its coverage before), never mix torn values;
- the counts change only when a batch succeeds (consumer.tally), so a counter never goes back;
  a gauge read in the middle of a batch that then fails shows a value the next scrape corrects.
"""

from __future__ import annotations

import argparse
import fnmatch
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from consumer import metrics as m
from consumer.series import RoleState, SeriesState
from sunspots.kafka.settings import DEFAULT_SERIES
from sunspots.lifecycle.lanes import Lanes
from sunspots.lifecycle.records import CHAMPION
from sunspots.wire.schemas import Forecast

NONE, ALL = "none", "all"
# The series the producer names by default: its one SILSO series, and the first of a
# `--series-count` replay (silso-0, silso-1, ...). So the sunspot deployment shows its series on
# the dashboard with no setting, while an instance of 10,000 series exports at most these two
# series' metrics: the rest is fleet-wide.
DEFAULT_SERIES_METRICS = f"{DEFAULT_SERIES},{DEFAULT_SERIES}-0"
_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class SeriesSelection:
    """The series whose own metrics are exported: none, all, or names and glob patterns."""

    names: frozenset[str] = frozenset()
    patterns: tuple[str, ...] = ()
    everything: bool = False
    _match: re.Pattern[str] | None = field(default=None, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.patterns:
            joined = "|".join(fnmatch.translate(p) for p in self.patterns)
            object.__setattr__(self, "_match", re.compile(joined))

    @classmethod
    def parse(cls, text: str) -> SeriesSelection:
        """`none`, `all`, or a comma list of series names and globs (`silso-*`);
        ValueError for an empty item or `none`/`all` among names."""
        items = [item.strip() for item in text.split(",")]
        if items in ([NONE], [""]):
            return cls()
        if items == [ALL]:
            return cls(everything=True)
        if "" in items:
            raise ValueError(f"an empty series name in {text!r}")
        if NONE in items or ALL in items:
            raise ValueError(f"{NONE!r} and {ALL!r} stand alone, not in a list: {text!r}")
        patterns = tuple(item for item in items if _GLOB.search(item))
        return cls(frozenset(item for item in items if item not in patterns), patterns)

    def __str__(self) -> str:
        if self.everything:
            return ALL
        return ",".join([*sorted(self.names), *self.patterns]) or NONE

    def selects(self, name: str) -> bool:
        """Whether the series `name` is exported with its own metrics."""
        if self.everything or name in self.names:
            return True
        return self._match is not None and self._match.match(name) is not None

    def pick(self, held: Mapping[str, SeriesState]) -> list[SeriesState]:
        """The selected series among `held`, in name order."""
        if self.everything:
            chosen = list(held.values())
        else:
            chosen = [held[name] for name in self.names if name in held]
            if self._match is not None:
                match = self._match.match
                chosen += [s for n, s in held.items() if n not in self.names and match(n)]
        return sorted(chosen, key=lambda state: state.name)


def series_selection(text: str) -> SeriesSelection:
    """`--series-metrics`'s type: a bad list is a start-up error naming the flag."""
    try:
        return SeriesSelection.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class SeriesCollector(Collector):
    """The per-series metrics of `series` (the forecaster's live map) for `selection`."""

    def __init__(
        self, series: Mapping[str, SeriesState], lanes: Lanes, selection: SeriesSelection
    ) -> None:
        self.series = series
        self.lanes = lanes
        self.selection = selection

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        """The live series and the drifting series per running role, then the per-series metrics
        of the selected series, from one copy of the map."""
        held = dict(self.series)  # one C-level copy (see the module's docstring)
        running = {lane.role: lane.version for lane in self.lanes.running}
        out = _Families()
        out.gauge(m.LIVE_SERIES, (), len(held))
        drifting = dict.fromkeys(running, 0)
        for state in held.values():
            for role, version in running.items():
                rs = state.roles.get(role)
                if rs is not None and rs.model_version == version and rs.drift.detected:
                    drifting[role] += 1
        for role, count in drifting.items():
            out.gauge(m.DRIFTING_SERIES, (role,), count)
        for state in self.selection.pick(held):
            _series(out, state, running)
        yield from out.families.values()


class _Families:
    """The families of one scrape, every declared one present even with no sample."""

    def __init__(self) -> None:
        self.families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
        declared = (
            *m.FLEET_FAMILIES,
            *m.SERIES_FAMILIES,
            *m.BAND_FAMILIES,
            *m.SCORE_FAMILIES,
            *m.DRIFT_FAMILIES,
        )
        for f in declared:
            kind = CounterMetricFamily if f.kind == m.COUNTER else GaugeMetricFamily
            self.families[f.name] = kind(f.name, f.help, labels=f.labels)

    def gauge(self, family: m.Family, labels: tuple[str, ...], value: float) -> None:
        if not math.isnan(value):
            self.families[family.name].add_metric(labels, value)

    counter = gauge


def _series(out: _Families, state: SeriesState, running: Mapping[str, str]) -> None:
    """One series' samples: its counts and last values, the champion's scores and interval,
    and each running model's scores and drift test."""
    name = (state.name,)
    counts = state.counts
    out.counter(m.SERIES_OBSERVATIONS, name, counts.observations)
    out.counter(m.SERIES_FORECASTS, name, counts.forecasts)
    out.counter(m.SERIES_EVALUATIONS, name, counts.evaluations)
    last = state.window.values[-1:]  # one slice: the window may be cleared meanwhile
    if last:
        out.gauge(m.ACTUAL_VALUE, name, last[0])
    pending = state.window.pending
    forecast = pending.get(CHAMPION) if pending else None
    if isinstance(forecast, Forecast):  # not an index into a batch in progress
        out.gauge(m.FORECAST_VALUE, name, forecast.forecast)
    for role, version in running.items():
        rs = state.roles.get(role)
        if rs is not None and rs.model_version == version:
            _role(out, state.name, role, rs)


def _role(out: _Families, series: str, role: str, rs: RoleState) -> None:
    # Only the series selected here keep rolling scores (consumer.series.SeriesState.scored).
    scores = rs.score.figures() if rs.score is not None else None
    if role == CHAMPION:
        name = (series,)
        out.gauge(m.ALPHA, name, rs.interval.level)
        if scores is not None and scores.evaluations:
            out.gauge(m.ERROR, name, scores.last_error)
            out.gauge(m.RMSE, name, scores.rmse)
            out.gauge(m.PERSISTENCE_RMSE, name, scores.persistence_rmse)
            out.gauge(m.COVERAGE, name, scores.coverage)
            out.gauge(m.WIDTH, name, scores.mean_width)
            for band, (days, coverage, width) in scores.bands.items():
                out.gauge(m.BAND_EVALUATIONS, (series, band), days)
                out.gauge(m.BAND_COVERAGE, (series, band), coverage)
                out.gauge(m.BAND_WIDTH, (series, band), width)
    if scores is not None and scores.evaluations:
        scored = (series, role, rs.model_version)
        out.gauge(m.MODEL_RMSE, scored, scores.rmse)
        reference = scores.persistence_rmse
        skill = 1.0 - scores.rmse / reference if reference > 0 else math.nan
        out.gauge(m.MODEL_SKILL, scored, skill)
        out.gauge(m.MODEL_COVERAGE, scored, scores.coverage)
    drift, key = rs.drift, (series, role)
    out.gauge(m.DRIFT_DETECTED, key, 1 if drift.detected else 0)
    out.gauge(m.DRIFT_STATISTIC, key, drift.statistic)
    if rs.last_alarm is not None:
        midnight = datetime.combine(rs.last_alarm, time(), UTC)
        out.gauge(m.DRIFT_ALARM_DATE, key, midnight.timestamp())
