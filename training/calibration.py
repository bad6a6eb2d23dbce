"""The interval section of a forecaster artifact: calibrated on the validation years, judged on
the test years, and recomputed for a committed artifact without retraining.

Training and `python -m training calibrate` both call `interval_section`, so a retrained
artifact and a recalibrated one carry the same section for the same weights. The test years are
run through `sunspots.domain.intervals.sequential` in date order, exactly as the forecaster streams
them; the constant band of earlier artifacts (the validation residuals' 5 % and 95 %
quantiles around every forecast) is scored beside it, as the baseline.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sunspots.domain.artifact import (
    FORECASTER_KIND,
    ForecasterModel,
    Scaling,
    load_network,
    read_metadata,
)
from sunspots.domain.data import load_daily
from sunspots.domain.intervals import (
    Calibration,
    Intervals,
    band_table,
    format_table,
    sequential,
)
from training.dataset import Splits, WindowSet, build_splits

log = logging.getLogger(__name__)

BASELINE_QUANTILES = (0.05, 0.95)


@dataclass(frozen=True)
class IntervalRun:
    """A run of forecasts over consecutive windows with both intervals: adaptive and constant."""

    windows: WindowSet
    forecast: np.ndarray
    adaptive: Intervals
    constant: tuple[np.ndarray, np.ndarray]

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """Both intervals' band tables as JSON rows, for the artifact's interval section."""
        last, y = self.windows.x[:, -1], self.windows.y
        lower, upper = self.constant
        return {
            "adaptive": [
                r.to_json()
                for r in band_table(
                    last, self.forecast, y, self.adaptive.lower, self.adaptive.upper
                )
            ],
            "constant": [r.to_json() for r in band_table(last, self.forecast, y, lower, upper)],
        }

    def markdown(self) -> str:
        """Both intervals' band tables in Markdown, for the training log."""
        last, y = self.windows.x[:, -1], self.windows.y
        lower, upper = self.constant
        a = self.adaptive
        return (
            "adaptive (locally scaled conformal + ACI):\n"
            + format_table(band_table(last, self.forecast, y, a.lower, a.upper))
            + "\n\nconstant band (validation residual quantiles):\n"
            + format_table(band_table(last, self.forecast, y, lower, upper))
        )


def constant_offsets(served: ForecasterModel, validation: WindowSet) -> tuple[float, float]:
    """The baseline band: the validation residuals' 5 % and 95 % quantiles."""
    residual = validation.y - served.predict(validation.x)
    low, high = (float(q) for q in np.quantile(residual, BASELINE_QUANTILES))
    return low, high


def interval_run(
    served: ForecasterModel, calibration: Calibration, windows: WindowSet, offsets: tuple
) -> IntervalRun:
    """Both intervals over consecutive windows, the adaptive one sequentially in date order."""
    forecast = served.predict(windows.x)
    adaptive = sequential(calibration, windows.x, forecast, windows.y)
    constant = (np.maximum(forecast + offsets[0], 0.0), forecast + offsets[1])
    return IntervalRun(windows, forecast, adaptive, constant)


def calibrate(served: ForecasterModel, splits: Splits) -> tuple[Calibration, dict[str, Any]]:
    """The calibration from the validation years and the artifact's interval section."""
    val = splits.validation
    calibration = Calibration.fit(val.x, served.predict(val.x), val.y)
    offsets = constant_offsets(served, val)
    run = interval_run(served, calibration, splits.test, offsets)
    section = calibration.to_json()
    quantiles = section.pop("quantiles")
    section["calibrated_on"] = {
        "split": "validation",
        "first_target": splits.periods["validation"]["first_target"],
        "last_target": splits.periods["validation"]["last_target"],
        "scores": len(val),
    }
    section["test"] = {
        "first_target": splits.periods["test"]["first_target"],
        "last_target": splits.periods["test"]["last_target"],
        **run.tables(),
        "constant_offsets": list(offsets),
    }
    section["quantiles"] = quantiles
    log.info("interval on the test years:\n%s", run.markdown())
    return calibration, section


def model_without_interval(path: Path) -> tuple[Path, dict[str, Any], ForecasterModel]:
    """A committed artifact's serving model, whatever its interval section holds."""
    json_path, meta = read_metadata(path, FORECASTER_KIND)
    placeholder = Calibration((0.0, 0.0))
    model = ForecasterModel(
        window=int(meta["window"]),
        model_version=str(meta["model_version"]),
        calibration=placeholder,
        metadata=meta,
        network=load_network(json_path, meta),
        scaling=Scaling.from_metadata(meta, json_path),
    )
    return json_path, meta, model


def artifact_splits(meta: dict[str, Any], data: str) -> Splits:
    """The splits the artifact was trained on, from its own metadata."""
    periods = meta["splits"]
    return build_splits(
        load_daily(data),
        int(meta["window"]),
        meta["data"]["end"],
        int(periods["validation"]["first_target"][:4]),
        int(periods["test"]["first_date"][:4]),
        meta["data"]["start"],
    )


def recalibrate(path: Path, data: str, reports: Path | None) -> dict[str, Any]:
    """Rewrite a committed artifact's interval section from its weights, nothing else."""
    json_path, meta, model = model_without_interval(path)
    splits = artifact_splits(meta, data)
    calibration, section = calibrate(model, splits)
    meta["interval"] = section
    # The constant band's coverage, now in the interval section with the adaptive one's.
    meta["metrics"]["test"].pop("interval_coverage", None)
    json_path.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    log.info("wrote the interval section of %s", json_path)
    if reports is not None:
        from training.report import update_forecaster_report

        base = reports / json_path.stem
        served = ForecasterModel(
            model.window,
            model.model_version,
            calibration,
            meta,
            model.network,
            model.scaling,
        )
        update_forecaster_report(base, meta, splits, served)
    return meta


FLOOR_CANDIDATES = (1.0, 2.0, 4.0, 8.0)


def floor_study(model: ForecasterModel, splits: Splits) -> str:
    """How the volatility floor was chosen, on the validation years alone: for each candidate,
    calibrated and run on the validation years, the band table; the floor whose worst band is
    nearest 90 % wins, ties by the mean interval score."""
    val = splits.validation
    forecast = model.predict(val.x)
    out, ranked = [], []
    for floor in FLOOR_CANDIDATES:
        calibration = Calibration.fit(val.x, forecast, val.y, floor)
        run = sequential(calibration, val.x, forecast, val.y)
        rows = band_table(val.x[:, -1], forecast, val.y, run.lower, run.upper)
        worst = max(abs(r.coverage - 0.9) for r in rows[:-1])
        ranked.append((round(worst, 3), rows[-1].winkler, floor))
        out.append(f"floor {floor:g}: worst band {100 * worst:.1f} points from 90 %\n")
        out.append(format_table(rows) + "\n\n")
    out.append(f"chosen: floor {min(ranked)[2]:g}")
    return "".join(out)


def replay_run(model: ForecasterModel, data: str, start: str, end: str | None) -> IntervalRun:
    """What a replay of `start`..`end` into a fresh forecaster gives, computed offline: every
    forecast whose target is in the range, with both intervals, in date order."""
    from sunspots.domain.data import select_range
    from training.dataset import window_set

    windows = window_set(select_range(load_daily(data), start, end), model.window)
    offsets = model.metadata["interval"]["test"]["constant_offsets"]
    return interval_run(model, model.calibration, windows, (offsets[0], offsets[1]))
