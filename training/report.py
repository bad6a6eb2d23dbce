"""Training reports: loss curves and forecast-vs-actual PNGs plus the numbers as JSON.

The numbers include the interval's table by activity band for the test years (coverage, mean
width, interval score, RMSE; adaptive and constant band), as in the artifact's interval section.

PNGs are rendered small (low dpi, thin lines) because they are committed to the repo.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from sunspots.domain.artifact import ForecasterModel
from sunspots.domain.intervals import Calibration, sequential
from training.dataset import Splits

log = logging.getLogger(__name__)

DPI = 80


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # headless: never try to open a window
    import matplotlib.pyplot as plt

    return plt


def _years(split: dict[str, Any]) -> str:
    return f"{split['first_target'][:4]}-{split['last_target'][:4]}"


def plot_losses(path: Path, history: dict[str, list[float]], meta: dict[str, Any]) -> None:
    """Plot the fit and validation loss per epoch with the best epoch marked, as a PNG at `path`."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = np.arange(1, len(history["loss"]) + 1)
    splits, best_epoch = meta["splits"], meta["training"]["best_epoch"]
    ax.plot(epochs, history["loss"], label=f"fit ({_years(splits['fit'])})")
    ax.plot(epochs, history["val_loss"], label=f"validation ({_years(splits['validation'])})")
    ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("Huber loss (scaled)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def plot_test(
    path: Path,
    splits: Splits,
    forecast: np.ndarray,
    calibration: Calibration,
    meta: dict[str, Any],
) -> None:
    """Plot the test years' forecast against the actual values, and the last year zoomed with the
    interval as the service publishes it, as a PNG at `path`."""
    plt = _pyplot()
    test = meta["metrics"]["test"]
    fig, (top, zoom) = plt.subplots(2, 1, figsize=(8, 5.5))
    dates = splits.test.target_dates
    for ax, sl in ((top, slice(None)), (zoom, slice(-365, None))):
        ax.plot(dates[sl], splits.test.y[sl], lw=0.5, color="black", label="actual")
        ax.plot(dates[sl], forecast[sl], lw=0.5, color="tab:orange", label="forecast")
        ax.set_ylabel("sunspot number")
    # The interval as the service publishes it: adapted day by day from the first test day.
    run = sequential(calibration, splits.test.x, forecast, splits.test.y)
    zoom.fill_between(
        dates[-365:],
        run.lower[-365:],
        run.upper[-365:],
        alpha=0.25,
        color="tab:orange",
        lw=0,
        label="90% interval",
    )
    zoom.legend(fontsize=8)
    top.set_title(
        f"test {dates[0].year}-{dates[-1].year}: RMSE lstm {test['lstm']['rmse']:.2f}, "
        f"persistence {test['persistence']['rmse']:.2f} (last year zoomed below)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def write_forecaster_report(
    base: Path,
    meta: dict[str, Any],
    history: dict[str, list[float]],
    splits: Splits,
    forecast: np.ndarray,
    calibration: Calibration,
) -> None:
    """Write the report beside `base`: the loss and test plots and the metrics JSON."""
    base.parent.mkdir(parents=True, exist_ok=True)
    plot_losses(base.with_name(base.name + "_loss.png"), history, meta)
    plot_test(base.with_name(base.name + "_test.png"), splits, forecast, calibration, meta)
    _write_numbers(base, meta, history)
    log.info("wrote report %s_{metrics.json,loss.png,test.png}", base)


def _write_numbers(base: Path, meta: dict[str, Any], history: dict[str, list[float]]) -> None:
    numbers = {
        key: meta[key]
        for key in ("model_version", "window", "splits", "metrics", "interval", "training", "data")
    }
    numbers["history"] = history
    base.with_name(base.name + "_metrics.json").write_text(json.dumps(numbers, indent=2) + "\n")


def update_forecaster_report(
    base: Path, meta: dict[str, Any], splits: Splits, served: ForecasterModel
) -> None:
    """After a recalibration: the numbers and the test plot again, the loss history kept."""
    numbers = base.with_name(base.name + "_metrics.json")
    history = json.loads(numbers.read_text())["history"] if numbers.is_file() else {}
    base.parent.mkdir(parents=True, exist_ok=True)
    forecast = served.predict(splits.test.x)
    plot_test(base.with_name(base.name + "_test.png"), splits, forecast, served.calibration, meta)
    _write_numbers(base, meta, history)
    log.info("updated report %s_{metrics.json,test.png}", base)
