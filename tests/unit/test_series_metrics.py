"""The per-series metrics: which series `--series-metrics` selects, what the collector reads from
a series' live state, and a scrape on another thread while the loop changes the states."""

from __future__ import annotations

import argparse
import threading
from datetime import date

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from consumer.series_metrics import (
    DEFAULT_SERIES_METRICS,
    SeriesSelection,
    series_selection,
)
from sunspots.kafka.settings import DEFAULT_SERIES, Topics
from tests.unit.records import CALIBRATION, Record, observations, transaction

pytestmark = pytest.mark.unit


class LastPlusOne:
    window = 3
    model_version = "test-v1"
    calibration = CALIBRATION

    def predict(self, windows: np.ndarray) -> np.ndarray:
        return windows[:, -1] + 1.0


def _forecaster(registry: CollectorRegistry, selection: str) -> Forecaster:
    return Forecaster(
        LastPlusOne(),
        Topics(),
        ForecasterMetrics(registry),
        rolling=10,
        today=lambda: date(2026, 1, 1),
        series_metrics=SeriesSelection.parse(selection),
    )


@pytest.mark.parametrize(
    ("text", "picked"),
    [
        ("none", set()),
        ("", set()),
        ("all", {"silso", "silso-0", "silso-12", "other"}),
        ("silso", {"silso"}),
        (" silso-12 , other ", {"silso-12", "other"}),
        ("silso-1*", {"silso-12"}),
        ("silso-?,oth[e]r", {"silso-0", "other"}),
        (DEFAULT_SERIES_METRICS, {"silso", "silso-0"}),
    ],
)
def test_a_selection_picks_names_and_globs(text: str, picked: set[str]) -> None:
    held = {name: object() for name in ("silso", "silso-0", "silso-12", "other")}
    selection = SeriesSelection.parse(text)
    chosen = {name for name, state in held.items() if state in _pick(selection, held)}
    assert chosen == picked


def test_a_selection_selects_the_names_it_picks() -> None:
    held = {name: object() for name in ("silso", "silso-0", "silso-12", "other")}
    for text in ("none", "all", "silso", "silso-1*", "silso-?,oth[e]r", DEFAULT_SERIES_METRICS):
        selection = SeriesSelection.parse(text)
        picked = {name for name, state in held.items() if state in _pick(selection, held)}
        assert {name for name in held if selection.selects(name)} == picked, text


def _pick(selection: SeriesSelection, held: dict) -> list:
    class Named:
        def __init__(self, name: str, state: object) -> None:
            self.name, self.state = name, state

    wrapped = {name: Named(name, state) for name, state in held.items()}
    return [w.state for w in selection.pick(wrapped)]  # type: ignore[arg-type]


def test_the_default_names_the_producers_series_and_stays_bounded() -> None:
    # The producer's one series, and the first of a --series-count replay: never more than two
    # of the 10,000 series silso-0..silso-9999 are exported one by one.
    default = SeriesSelection.parse(DEFAULT_SERIES_METRICS)
    assert default.names == {DEFAULT_SERIES, f"{DEFAULT_SERIES}-0"} and not default.patterns
    many = {f"{DEFAULT_SERIES}-{i}": object() for i in range(10_000)}
    assert len(_pick(default, many)) == 1


@pytest.mark.parametrize("text", ["a,,b", "all,x", "none,silso", ","])
def test_a_bad_list_is_a_start_up_error(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        series_selection(text)


def test_the_collector_reads_the_live_state() -> None:
    registry = CollectorRegistry()
    fc = _forecaster(registry, "s")
    transaction(fc, observations([10, 20, 30, 40, 50]))
    transaction(fc, observations([1, 2, 3], series="t"))
    sample = registry.get_sample_value
    state = fc.series["s"]
    assert sample("sunspot_series") == 2
    assert sample("sunspot_actual_value", {"series": "s"}) == 50
    pending = state.window.pending["champion"]
    assert sample("sunspot_forecast_value", {"series": "s"}) == pending.forecast == 51
    assert sample("sunspot_forecast_error", {"series": "s"}) == 9  # 50 − (40 + 1)
    assert sample("sunspot_forecast_interval_alpha", {"series": "s"}) == pytest.approx(0.11)
    assert sample("sunspot_series_observations_total", {"series": "s"}) == 5
    assert sample("sunspot_drift_detected", {"series": "s", "role": "champion"}) == 0
    assert sample("sunspot_drift_detected_series", {"role": "champion"}) == 0
    # "t" is not selected: counted in the fleet, no sample of its own.
    assert sample("sunspot_actual_value", {"series": "t"}) is None
    assert sample("sunspot_observations_total") == 8


def test_only_the_selected_series_keep_rolling_scores() -> None:
    """The rolling scores are read only by the per-series metrics: a series not selected keeps
    none (most of a series' memory), and is scored all the same: its interval level and drift
    test move, its evaluations are published and counted fleet-wide. So is one restored from the
    changelog."""
    registry = CollectorRegistry()
    fc = _forecaster(registry, "s")
    transaction(fc, observations([10, 20, 30, 40, 50]) + observations([10, 20, 30, 40, 50], "t"))
    kept, unkept = fc.series["s"].roles["champion"], fc.series["t"].roles["champion"]
    assert kept.score is not None and kept.score.figures().evaluations == 2
    assert unkept.score is None
    assert (unkept.interval.level, unkept.drift.seen) == (kept.interval.level, kept.drift.seen)
    assert kept.drift.seen == 2
    sample = registry.get_sample_value
    assert sample("sunspot_forecast_rmse", {"series": "s"}) == pytest.approx(9.0)
    assert sample("sunspot_forecast_rmse", {"series": "t"}) is None
    assert sample("sunspot_evaluations_total") == 4

    restored = _forecaster(CollectorRegistry(), "s")
    for name in ("s", "t"):
        state = fc.series[name]
        restored.restore(0, [(state.key, state.snapshot())])
    transaction(restored, observations([60], "s", start=5) + observations([60], "t", start=5))
    assert restored.series["s"].roles["champion"].score.figures().evaluations == 1
    assert restored.series["t"].roles["champion"].score is None


def test_a_scrape_while_the_loop_changes_the_states_never_fails() -> None:
    """The HTTP thread scrapes while the loop adds series, scores, revokes and restores them:
    every scrape completes, and no counter it reads ever goes back."""
    registry = CollectorRegistry()
    fc = _forecaster(registry, "all")
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: dict[str, float] = {}

    def scrape() -> None:
        while not stop.is_set():
            try:
                generate_latest(registry)
                value = registry.get_sample_value("sunspot_observations_total") or 0.0
                assert value >= seen.get("fleet", 0.0)
                seen["fleet"] = value
            except BaseException as exc:  # handed to the main thread
                errors.append(exc)
                return

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for day in range(40):
            batch: list[Record] = []
            for i in range(50):
                batch += observations([float(day % 7 + i)], series=f"s{i}", start=day)
            state = [(o.key, o.value) for o in transaction(fc, batch) if o.topic == Topics().state]
            if day % 10 == 9:  # a rewind: every series released, then restored
                fc.revoke({0})
                fc.restore(0, state)
    finally:
        stop.set()
        scraper.join(10)
    assert not errors, errors[0]
    assert registry.get_sample_value("sunspot_observations_total") == 2000
