"""Training end to end on a small slice, through the CLI, into a temporary directory."""

from __future__ import annotations

import json

import pytest

from sunspots.domain.artifact import load_classifier, load_forecaster
from training.__main__ import main


def test_forecaster_cli_writes_a_loadable_artifact_and_report(tmp_path, data_path, keras):
    out, reports = tmp_path / "models", tmp_path / "reports"
    argv = [
        "forecaster",
        "--data",
        str(data_path),
        "--start",
        "1984-01-01",
        "--end",
        "2001-12-31",
        "--epochs",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
        "--reports",
        str(reports),
        "--log-level",
        "WARNING",
    ]
    assert main(argv) == 0
    model = load_forecaster(out / "sunspot_lstm.json")
    meta = model.metadata
    assert model.window == 10
    assert meta["training"]["seed"] == 3
    assert meta["training"]["epochs_run"] == 2
    assert meta["splits"]["fit"]["first_target"] == "1984-01-11"
    assert meta["splits"]["validation"]["first_target"] == "1990-01-01"
    assert meta["splits"]["test"]["last_target"] == "2001-12-31"
    assert meta["data"]["sha256"]
    assert meta["data"]["file"] == data_path.name
    for key in ("rmse", "mae"):
        assert meta["metrics"]["test"]["lstm"][key] > 0
        assert meta["metrics"]["test"]["ridge_ar10"][key] > 0
    assert (out / "sunspot_lstm.keras").is_file()
    numbers = json.loads((reports / "sunspot_lstm_metrics.json").read_text())
    assert numbers["model_version"] == model.model_version
    for png in ("sunspot_lstm_loss.png", "sunspot_lstm_test.png"):
        assert 0 < (reports / png).stat().st_size < 300_000
    assert [row["band"] for row in numbers["interval"]["test"]["adaptive"]] == [
        "0-10",
        "10-50",
        "50-100",
        "100-150",
        "150+",
        "all",
    ]
    # Recalibrating the fresh artifact from its weights rewrites the same bytes.
    written = (out / "sunspot_lstm.json").read_bytes()
    calibrate = ["calibrate", str(out / "sunspot_lstm.json"), "--data", str(data_path)]
    assert main([*calibrate, "--reports", str(reports), "--log-level", "WARNING"]) == 0
    assert (out / "sunspot_lstm.json").read_bytes() == written


def test_window_variant_gets_its_own_name(tmp_path, data_path, keras):
    argv = [
        "forecaster",
        "--data",
        str(data_path),
        "--start",
        "1988-01-01",
        "--end",
        "2000-12-31",
        "--window",
        "5",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--reports",
        str(tmp_path),
        "--log-level",
        "WARNING",
    ]
    assert main(argv) == 0
    model = load_forecaster(tmp_path / "sunspot_lstm_w5")
    assert model.window == 5
    assert model.model_version.startswith("lstm-w5-")


def test_classifier_cli_writes_a_loadable_artifact(tmp_path, keras):
    assert main(["classifier", "--out", str(tmp_path), "--log-level", "WARNING"]) == 0
    model = load_classifier(tmp_path / "sequence_classifier.json")
    assert model.predict([[0, 0, 0, 0, 0, 1]]).tolist() == [1]


def test_bad_split_years_fail_clearly(tmp_path, data_path):
    argv = [
        "forecaster",
        "--data",
        str(data_path),
        "--validation-from",
        "2000",
        "--out",
        str(tmp_path),
    ]
    with pytest.raises(ValueError, match="must precede"):
        main(argv)


def test_seed_study_writes_a_summary(tmp_path, data_path, keras):
    argv = [
        "seeds",
        "--data",
        str(data_path),
        "--start",
        "1988-01-01",
        "--end",
        "2000-12-31",
        "--seeds",
        "4,5",
        "--epochs",
        "1",
        "--out",
        str(tmp_path),
        "--reports",
        str(tmp_path),
        "--log-level",
        "WARNING",
    ]
    assert main(argv) == 0
    study = json.loads((tmp_path / "sunspot_lstm_seeds.json").read_text())
    assert [run["seed"] for run in study["runs"]] == [4, 5]
    assert study["test_rmse_mean"] > 0
    assert not (tmp_path / "sunspot_lstm.json").exists()  # the study keeps no models
