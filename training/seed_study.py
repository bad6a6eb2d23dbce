"""Seed study: retrain the forecaster with several seeds and record the spread of test RMSE.

The committed artifact is one seed; this shows that its score is not a lucky draw. Models go
to a temporary directory; only the summary is written, to `<reports>/<name>_seeds.json`.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from training.forecaster import ForecasterConfig, train_forecaster

log = logging.getLogger(__name__)


def _summary(meta: dict[str, Any], window: int) -> dict[str, Any]:
    test, training = meta["metrics"]["test"], meta["training"]
    return {
        "seed": training["seed"],
        "model_version": meta["model_version"],
        "test_rmse": test["lstm"]["rmse"],
        "test_mae": test["lstm"]["mae"],
        "validation_rmse": meta["metrics"]["validation"]["lstm"]["rmse"],
        "epochs_run": training["epochs_run"],
        "seconds_per_epoch": training["seconds_per_epoch"],
        "persistence_rmse": test["persistence"]["rmse"],
        f"ridge_ar{window}_rmse": test[f"ridge_ar{window}"]["rmse"],
    }


def run_seed_study(cfg: ForecasterConfig, seeds: list[int]) -> dict[str, Any]:
    """Train the forecaster once per seed, the artifacts in a temporary folder: each run's
    summary, and the test RMSE's mean and max; written to the reports folder when one is set."""
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            log.info("seed study: window %d, seed %d", cfg.window, seed)
            meta = train_forecaster(replace(cfg, seed=seed, out=Path(tmp), reports=None))
            runs.append(_summary(meta, cfg.window))
    rmse = np.array([r["test_rmse"] for r in runs])
    study = {
        "window": cfg.window,
        "seeds": seeds,
        "runs": runs,
        "test_rmse_mean": float(rmse.mean()),
        "test_rmse_max": float(rmse.max()),
    }
    log.info("seed study: test RMSE %s, mean %.3f", np.round(rmse, 3).tolist(), rmse.mean())
    if cfg.reports is not None:
        cfg.reports.mkdir(parents=True, exist_ok=True)
        path = cfg.reports / f"{cfg.artifact_name}_seeds.json"
        path.write_text(json.dumps(study, indent=2) + "\n")
        log.info("wrote %s", path)
    return study
