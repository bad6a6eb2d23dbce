"""Load the committed model artifacts (JSON metadata + NumPy weights) without TensorFlow.

A forecaster artifact is `<base>.json` + `<base>.npz`: the JSON names the weights file and its
sha256, the window, the input/target scaling and the 90 % interval's calibration
(`sunspots.intervals.Calibration`, in the `interval` section); the `.npz` holds
the LSTM/Dense weights replayed by `sunspots.lstm`. Every inconsistency raises
`ArtifactError` with a message that names the file and what is wrong, so a service fails at
start-up rather than serving garbage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sunspots.intervals import Calibration
from sunspots.lstm import Network, network_from_arrays

FORMAT_VERSION = 1
MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_FORECASTER = MODELS_DIR / "sunspot_lstm.json"
DEFAULT_CLASSIFIER = MODELS_DIR / "sequence_classifier.json"

FORECASTER_KIND = "sunspot-forecaster"
CLASSIFIER_KIND = "sequence-classifier"


class ArtifactError(ValueError):
    """A model artifact is missing, malformed, of another version, or fails its checksum."""


def metadata_path(path: str | Path) -> Path:
    """The `.json` of an artifact given its JSON, its `.npz`/`.keras`, or its base path."""
    path = Path(path)
    if path.suffix == ".json":
        return path
    if path.suffix in (".npz", ".keras"):
        return path.with_suffix(".json")
    return path.with_name(path.name + ".json")


def _require(meta: Mapping[str, Any], key: str, where: Path) -> Any:
    if key not in meta:
        raise ArtifactError(f"{where}: metadata has no {key!r}")
    return meta[key]


def _section(meta: Mapping[str, Any], key: str, where: Path) -> Mapping[str, Any]:
    """`meta[key]`, which must be a JSON object."""
    value = _require(meta, key, where)
    if not isinstance(value, Mapping):
        raise ArtifactError(f"{where}: {key!r} must be a JSON object, got {value!r}")
    return value


def read_metadata(path: str | Path, kind: str) -> tuple[Path, dict[str, Any]]:
    json_path = metadata_path(path)
    if not json_path.is_file():
        raise ArtifactError(f"model metadata not found: {json_path}")
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{json_path}: unreadable metadata: {exc}") from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"{json_path}: metadata must be a JSON object")
    if meta.get("kind") != kind:
        raise ArtifactError(f"{json_path}: expected a {kind!r} artifact, got {meta.get('kind')!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{json_path}: format_version {meta.get('format_version')!r} is not supported "
            f"(this code reads {FORMAT_VERSION}); retrain or upgrade"
        )
    for key in ("model_version", "weights_file", "weights_sha256", "network"):
        _require(meta, key, json_path)
    return json_path, meta


def load_network(json_path: Path, meta: Mapping[str, Any]) -> Network:
    """Read the `.npz` beside the JSON, verify its sha256, and build the NumPy network."""
    npz_path = json_path.parent / str(meta["weights_file"])
    if not npz_path.is_file():
        raise ArtifactError(f"{json_path}: weights file not found: {npz_path}")
    layers = _require(_section(meta, "network", json_path), "layers", json_path)
    try:
        payload = npz_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{npz_path}: unreadable weights: {exc}") from None
    actual = hashlib.sha256(payload).hexdigest()
    if actual != meta["weights_sha256"]:
        raise ArtifactError(
            f"{npz_path}: checksum mismatch (sha256 {actual[:12]}..., metadata says "
            f"{str(meta['weights_sha256'])[:12]}...); the weights and metadata do not belong together"
        )
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        return network_from_arrays(layers, arrays)
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        raise ArtifactError(f"{npz_path}: bad weights: {exc}") from None


def _number(meta: Mapping[str, Any], key: str, where: Path) -> float:
    value = _require(meta, key, where)
    if not isinstance(value, int | float) or not np.isfinite(value):
        raise ArtifactError(f"{where}: {key!r} must be a finite number, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Scaling:
    """Inputs are standardised; the network predicts the standardised change from the last value."""

    input_mean: float
    input_scale: float
    target_mean: float
    target_scale: float

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any], where: Path) -> Scaling:
        scaling = _section(meta, "scaling", where)
        if scaling.get("target") != "residual":
            raise ArtifactError(f"{where}: unsupported scaling target {scaling.get('target')!r}")
        values = {k: _number(scaling, k, where) for k in cls.__dataclass_fields__}
        if values["input_scale"] <= 0 or values["target_scale"] <= 0:
            raise ArtifactError(f"{where}: scaling factors must be positive: {scaling}")
        return cls(**values)


@dataclass(frozen=True)
class ForecasterModel:
    """Next-day sunspot forecaster: raw windows (oldest first) in, sunspot numbers out."""

    window: int
    model_version: str
    calibration: Calibration
    metadata: dict[str, Any] = field(repr=False)
    network: Network = field(repr=False)
    scaling: Scaling = field(repr=False)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        x = np.asarray(windows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.window:
            raise ValueError(f"expected windows of shape (n, {self.window}), got {x.shape}")
        s = self.scaling
        out = self.network((x - s.input_mean) / s.input_scale)[:, 0].astype(np.float64)
        return x[:, -1] + out * s.target_scale + s.target_mean

    def predict_one(self, window: Sequence[float]) -> float:
        return float(self.predict(np.asarray(window, dtype=np.float64)[None, :])[0])


def load_forecaster(path: str | Path = DEFAULT_FORECASTER) -> ForecasterModel:
    json_path, meta = read_metadata(path, FORECASTER_KIND)
    window = _require(meta, "window", json_path)
    if not isinstance(window, int) or window < 1:
        raise ArtifactError(f"{json_path}: window must be a positive integer, got {window!r}")
    try:
        calibration = Calibration.from_json(_section(meta, "interval", json_path))
    except ValueError as exc:
        raise ArtifactError(f"{json_path}: {exc}") from None
    scaling = Scaling.from_metadata(meta, json_path)
    network = load_network(json_path, meta)
    if network.input_features != 1 or network.dense[-1].kernel.shape[1] != 1:
        raise ArtifactError(f"{json_path}: forecaster network must map 1 feature to 1 output")
    return ForecasterModel(
        window=window,
        model_version=str(meta["model_version"]),
        calibration=calibration,
        metadata=meta,
        network=network,
        scaling=scaling,
    )


@dataclass(frozen=True)
class ClassifierModel:
    """The lesson's toy classifier: integer sequences in, class probabilities out."""

    sequence_length: int
    max_value: int
    classes: list[int]
    model_version: str
    metadata: dict[str, Any] = field(repr=False)
    network: Network = field(repr=False)

    def predict_proba(self, sequences: np.ndarray) -> np.ndarray:
        x = np.asarray(sequences, dtype=np.float64)
        if x.ndim == 3 and x.shape[2] == 1:
            x = x[:, :, 0]
        if x.ndim != 2:
            raise ValueError(f"expected sequences of shape (n, length), got {x.shape}")
        return self.network(x).astype(np.float64)

    def predict(self, sequences: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[np.argmax(self.predict_proba(sequences), axis=1)]


def load_classifier(path: str | Path = DEFAULT_CLASSIFIER) -> ClassifierModel:
    json_path, meta = read_metadata(path, CLASSIFIER_KIND)
    length = _require(meta, "sequence_length", json_path)
    max_value = _require(meta, "max_value", json_path)
    classes = _require(meta, "classes", json_path)
    if not isinstance(length, int) or length < 1 or not isinstance(max_value, int):
        raise ArtifactError(
            f"{json_path}: bad sequence_length {length!r} or max_value {max_value!r}"
        )
    network = load_network(json_path, meta)
    if not isinstance(classes, list) or len(classes) != network.dense[-1].kernel.shape[1]:
        raise ArtifactError(f"{json_path}: classes {classes!r} do not match the network outputs")
    return ClassifierModel(
        sequence_length=length,
        max_value=max_value,
        classes=[int(c) for c in classes],
        model_version=str(meta["model_version"]),
        metadata=meta,
        network=network,
    )
