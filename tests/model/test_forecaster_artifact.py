"""The committed forecaster artifacts: loadable without TF, honest metadata, Keras-exact."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from sunspots.domain.artifact import DEFAULT_FORECASTER, ArtifactError, load_forecaster
from sunspots.domain.data import load_daily
from tests.datafacts import KNOWN_BYTES, KNOWN_SHA256
from tests.tolerance import differences
from training.dataset import build_splits
from training.export import weights_digest

ARTIFACTS = ["sunspot_lstm", "sunspot_lstm_w27"]


@pytest.fixture(scope="module", params=ARTIFACTS)
def artifact(request, models_dir):
    return load_forecaster(models_dir / f"{request.param}.json")


@pytest.fixture(scope="module")
def splits_for(data_path):
    frame = load_daily(data_path)
    cache = {}

    def get(model):
        key = (model.window, model.metadata["data"]["end"])
        if key not in cache:
            cache[key] = build_splits(frame, model.window, model.metadata["data"]["end"])
        return cache[key]

    return get


def test_default_artifact_is_the_window_10_service_model():
    model = load_forecaster(DEFAULT_FORECASTER)
    assert model.window == 10
    assert model.model_version.startswith("lstm-w10-")


def test_metadata_is_complete(artifact):
    meta = artifact.metadata
    for key in (
        "window",
        "scaling",
        "interval",
        "splits",
        "metrics",
        "training",
        "data",
        "versions",
        "model_version",
        "weights_sha256",
    ):
        assert key in meta, key
    for split in ("train", "fit", "validation", "test"):
        assert meta["splits"][split]["windows"] > 0
    assert meta["training"]["epochs_run"] >= meta["training"]["best_epoch"] >= 1
    assert {"numpy", "keras"} <= set(meta["versions"])
    test = meta["metrics"]["test"]
    assert {"lstm", "persistence", f"ridge_ar{artifact.window}"} <= set(test)
    low, high = artifact.calibration.offsets(artifact.calibration.alpha)
    assert low < 0 < high


def test_model_version_is_derived_from_the_weights(artifact, models_dir):
    with np.load(models_dir / artifact.metadata["weights_file"]) as data:
        digest = weights_digest({k: data[k] for k in data.files})
    assert artifact.model_version == f"lstm-w{artifact.window}-{digest[:12]}"


def test_default_split_counts_match_the_lesson():
    model = load_forecaster(DEFAULT_FORECASTER)
    splits = model.metadata["splits"]
    assert (splits["train"]["values"], splits["test"]["values"]) == (55160, 6391)
    assert (splits["train"]["windows"], splits["test"]["windows"]) == (55150, 6381)
    assert splits["validation"]["first_target"] == "1990-01-01"


def test_artifacts_name_their_data_file_not_a_path_on_the_training_machine(artifact):
    """The artifacts say which file they were trained on: the known SILSO file, by name, size
    and sha256 (the tests' data may be a newer file: they pin only dates and date ranges)."""
    data = artifact.metadata["data"]
    assert data["file"] == "SN_d_tot_V2.0.csv"
    assert data["bytes"] == KNOWN_BYTES
    assert data["sha256"] == KNOWN_SHA256
    assert "/" not in json.dumps(data)


def test_the_training_range_is_the_same_in_the_data_in_use(artifact, splits_for, data_file):
    """The artifact's split, recomputed from the file in use over the artifact's fixed range of
    dates, gives the counts it recorded: a newer SILSO file has the same days there."""
    splits = splits_for(artifact)
    recorded = artifact.metadata["splits"]
    counts = {name: len(getattr(splits, name).y) for name in ("fit", "validation", "test")}
    assert counts == {n: recorded[n]["windows"] for n in counts}, data_file.note


def test_test_rmse_recomputed_from_data_matches_metadata(artifact, splits_for, data_file):
    splits = splits_for(artifact)
    forecast = artifact.predict(splits.test.x)
    rmse = float(np.sqrt(np.mean((splits.test.y - forecast) ** 2)))
    recorded = artifact.metadata["metrics"]["test"]
    # Recomputed here, committed from the training machine: the float32 forecasts differ in
    # their low bits across CPUs (tests/tolerance.py), and the RMSE (about 14) by far less
    # than 1e-3; a changed model or data moves it by more.
    assert rmse == pytest.approx(recorded["lstm"]["rmse"], abs=1e-3), data_file.note
    assert rmse < recorded["persistence"]["rmse"]
    assert rmse < recorded[f"ridge_ar{artifact.window}"]["rmse"]
    persistence = np.sqrt(np.mean((splits.test.y - splits.test.x[:, -1]) ** 2))
    # Inputs only, in float64: a mean summed in another order (SIMD width) differs by ~1e-15.
    assert persistence == pytest.approx(recorded["persistence"]["rmse"], abs=1e-9), data_file.note


def test_numpy_serving_matches_keras_on_all_test_windows(artifact, splits_for, keras, models_dir):
    splits = splits_for(artifact)
    net = keras.models.load_model(models_dir / artifact.metadata["keras_file"], compile=False)
    s = artifact.scaling
    x = ((splits.test.x - s.input_mean) / s.input_scale).astype(np.float32)[:, :, None]
    out = net.predict(x, batch_size=2048, verbose=0)[:, 0].astype(np.float64)
    keras_forecast = splits.test.x[:, -1] + out * s.target_scale + s.target_mean
    # Two float32 implementations on this machine (Keras's kernels, NumPy's BLAS): they agree
    # to float32 precision of values up to ~400, not to the bit.
    np.testing.assert_allclose(artifact.predict(splits.test.x), keras_forecast, rtol=0, atol=1e-4)


def test_predict_one_agrees_with_the_batch(artifact, splits_for):
    x = splits_for(artifact).test.x[:5]
    batch = artifact.predict(x)
    # float32 BLAS may sum in another order for one row than for a block of rows.
    assert [artifact.predict_one(list(row)) for row in x] == pytest.approx(batch, abs=1e-4)
    with pytest.raises(ValueError, match="shape"):
        artifact.predict(np.zeros((2, artifact.window + 1)))


def test_serving_path_never_imports_tensorflow():
    code = (
        "import sys; from sunspots.domain.artifact import load_forecaster, load_classifier;"
        "m = load_forecaster(); m.predict_one([50.0] * m.window); load_classifier();"
        "assert not any(n.split('.')[0] in ('tensorflow', 'keras') for n in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
def copy_of_default(tmp_path):
    for suffix in (".json", ".npz"):
        shutil.copy(DEFAULT_FORECASTER.with_suffix(suffix), tmp_path)
    return tmp_path / DEFAULT_FORECASTER.name


def _edit(path, **changes):
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta))


def test_loads_from_the_base_path_too(copy_of_default):
    assert load_forecaster(copy_of_default.with_suffix("")).window == 10


def test_missing_files_are_reported(tmp_path, copy_of_default):
    with pytest.raises(ArtifactError, match="not found"):
        load_forecaster(tmp_path / "nope.json")
    copy_of_default.with_suffix(".npz").unlink()
    with pytest.raises(ArtifactError, match="weights file not found"):
        load_forecaster(copy_of_default)


def test_checksum_mismatch_is_reported(copy_of_default):
    npz = copy_of_default.with_suffix(".npz")
    payload = bytearray(npz.read_bytes())
    payload[len(payload) // 2] ^= 0xFF
    npz.write_bytes(bytes(payload))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_forecaster(copy_of_default)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 99}, "format_version"),
        ({"kind": "sequence-classifier"}, "expected a 'sunspot-forecaster'"),
        ({"window": 0}, "window"),
        ({"scaling": {"target": "residual"}}, "input_mean"),
        ({"interval": {"lower": -1.0, "upper": 1.0}}, "recalibrate"),
        ({"interval": {"method": "adaptive-conformal"}}, "incomplete"),
    ],
)
def test_bad_metadata_is_reported(copy_of_default, changes, message):
    _edit(copy_of_default, **changes)
    with pytest.raises(ArtifactError, match=message):
        load_forecaster(copy_of_default)


def test_unparseable_metadata_is_reported(copy_of_default):
    copy_of_default.write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_forecaster(copy_of_default)


def test_the_interval_section_is_what_calibration_computes_from_the_weights(
    artifact, models_dir, data_path, data_file
):
    """`python -m training calibrate` (and training, which calls the same code) would write
    the committed section; its test-year table is the sequential run's. Recomputed from
    float32 forecasts on a CPU other than the one that trained the artifact, its figures agree
    with the committed ones within tests.tolerance's bound, not to the bit; counts and names
    exactly."""
    from training.calibration import artifact_splits, calibrate, model_without_interval

    _, meta, model = model_without_interval(models_dir / f"{artifact.metadata['weights_file']}")
    splits = artifact_splits(meta, str(data_path))
    calibration, section = calibrate(model, splits)
    assert differences(calibration, artifact.calibration) == [], data_file.note
    recorded = artifact.metadata["interval"]
    found = differences(json.loads(json.dumps(section)), recorded)
    assert found == [], data_file.note
    overall = section["test"]["adaptive"][-1]
    assert overall["band"] == "all" and overall["days"] == len(splits.test)
    assert abs(overall["coverage"] - 0.9) < 0.02
