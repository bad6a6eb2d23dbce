"""Load model artifacts (JSON metadata + NumPy weights) without TensorFlow, and refuse bad ones.

A forecaster artifact is `<base>.json` + `<base>.npz`: the JSON names the weights file and its
sha256, the window, the input/target scaling and the 90 % interval's calibration
(`sunspots.domain.intervals.Calibration`, in the `interval` section); the `.npz` holds the LSTM/Dense
weights replayed by `sunspots.domain.lstm`. An artifact arrives either as two files
(`load_forecaster(path)`, at start-up) or as metadata and weights bytes (`model_from_bytes`,
from the models topic, `sunspots.lifecycle.records`); both go through the same checks.

Every inconsistency raises `ArtifactError`, whose message names the file (or record) and what
is wrong, and whose `reason` is one word of `ARTIFACT_REASONS` for counting refusals: a service fails at
start-up, or keeps its current model, rather than serve garbage. The checks: the kind and
format version, the metadata's fields, the weights' sha256, the weights' arrays (present,
floating point, finite, of the shapes `network.layers` declares, and no larger expanded than
`MAX_WEIGHTS_BYTES`), and the network's inputs and outputs for the kind of model.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sunspots.domain.intervals import Calibration
from sunspots.domain.lstm import Network, network_from_arrays

FORMAT_VERSION = 1
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
DEFAULT_FORECASTER = MODELS_DIR / "sunspot_lstm.json"
DEFAULT_CLASSIFIER = MODELS_DIR / "sequence_classifier.json"

FORECASTER_KIND = "sunspot-forecaster"
CLASSIFIER_KIND = "sequence-classifier"

# The weights' arrays, expanded: the committed artifacts hold about 0.1 and 0.3 MB. A compressed
# `.npz` could expand to far more than it weighs; it is refused before it is read.
MAX_WEIGHTS_BYTES = 16 * 1024 * 1024

# Why an artifact is refused: the label of a refusal counter, so a small fixed set.
NOT_FOUND = "not_found"  # a file is missing
UNREADABLE = "unreadable"  # metadata that is not a JSON object, or a file that cannot be read
WRONG_KIND = "wrong_kind"  # another kind of model (a classifier where a forecaster belongs)
UNKNOWN_FORMAT = "unknown_format"  # a format version this code does not read
BAD_METADATA = "bad_metadata"  # a field missing or out of range
BAD_HASH = "bad_hash"  # the weights do not match the sha256 the metadata gives
BAD_WEIGHTS = "bad_weights"  # not a NumPy `.npz` of floating-point arrays, or an array missing
NON_FINITE_WEIGHTS = "non_finite_weights"  # a NaN or infinite weight
BAD_SHAPES = "bad_shapes"  # arrays that do not have the shapes `network.layers` declares
OVERSIZED = "oversized"  # weights that expand past MAX_WEIGHTS_BYTES
ARTIFACT_REASONS = (
    NOT_FOUND,
    UNREADABLE,
    WRONG_KIND,
    UNKNOWN_FORMAT,
    BAD_METADATA,
    BAD_HASH,
    BAD_WEIGHTS,
    NON_FINITE_WEIGHTS,
    BAD_SHAPES,
    OVERSIZED,
)


class ArtifactError(ValueError):
    """A model artifact is missing, malformed, of another kind or version, or fails a check.
    `reason` says which, in one word (`ARTIFACT_REASONS`, and `sunspots.lifecycle.records.RECORD_REASONS` for records)."""

    def __init__(self, message: str, reason: str = BAD_METADATA) -> None:
        super().__init__(message)
        self.reason = reason


def metadata_path(path: str | Path) -> Path:
    """The `.json` of an artifact given its JSON, its `.npz`/`.keras`, or its base path."""
    path = Path(path)
    if path.suffix == ".json":
        return path
    if path.suffix in (".npz", ".keras"):
        return path.with_suffix(".json")
    return path.with_name(path.name + ".json")


def _require(meta: Mapping[str, Any], key: str, where: object) -> Any:
    if key not in meta:
        raise ArtifactError(f"{where}: metadata has no {key!r}")
    return meta[key]


def _section(meta: Mapping[str, Any], key: str, where: object) -> Mapping[str, Any]:
    """`meta[key]`, which must be a JSON object."""
    value = _require(meta, key, where)
    if not isinstance(value, Mapping):
        raise ArtifactError(f"{where}: {key!r} must be a JSON object, got {value!r}")
    return value


def read_metadata(path: str | Path, kind: str) -> tuple[Path, dict[str, Any]]:
    """The JSON path of the artifact at `path` and its checked metadata."""
    json_path = metadata_path(path)
    if not json_path.is_file():
        raise ArtifactError(f"model metadata not found: {json_path}", NOT_FOUND)
    try:
        meta = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{json_path}: unreadable metadata: {exc}", UNREADABLE) from None
    return json_path, check_metadata(meta, kind, json_path)


def check_metadata(meta: Any, kind: str, where: object) -> dict[str, Any]:
    """`meta` if it is a JSON object of `kind`, in this format version, with the fields every
    artifact has; ArtifactError otherwise. `where` names the file or record in messages."""
    if not isinstance(meta, dict):
        raise ArtifactError(f"{where}: metadata must be a JSON object", UNREADABLE)
    if meta.get("kind") != kind:
        raise ArtifactError(
            f"{where}: expected a {kind!r} artifact, got {meta.get('kind')!r}", WRONG_KIND
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: format_version {meta.get('format_version')!r} is not supported "
            f"(this code reads {FORMAT_VERSION}); retrain or upgrade",
            UNKNOWN_FORMAT,
        )
    for key in ("model_version", "weights_file", "weights_sha256", "network"):
        _require(meta, key, where)
    return meta


def read_weights(json_path: Path, meta: Mapping[str, Any]) -> tuple[Path, bytes]:
    """The path and bytes of the `.npz` the metadata at `json_path` names."""
    npz_path = json_path.parent / str(meta["weights_file"])
    if not npz_path.is_file():
        raise ArtifactError(f"{json_path}: weights file not found: {npz_path}", NOT_FOUND)
    try:
        return npz_path, npz_path.read_bytes()
    except OSError as exc:
        raise ArtifactError(f"{npz_path}: unreadable weights: {exc}", UNREADABLE) from None


def load_network(json_path: Path, meta: Mapping[str, Any]) -> Network:
    """Read the `.npz` the metadata at `json_path` names, verify it, and build the network."""
    npz_path, payload = read_weights(json_path, meta)
    return network_from_bytes(meta, payload, npz_path)


def network_from_bytes(meta: Mapping[str, Any], payload: bytes, where: object) -> Network:
    """Verify the weights' sha256, arrays and shapes against the metadata; build the network."""
    layers = _require(_section(meta, "network", where), "layers", where)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != meta["weights_sha256"]:
        raise ArtifactError(
            f"{where}: checksum mismatch (sha256 {actual[:12]}..., metadata says "
            f"{str(meta['weights_sha256'])[:12]}...); the weights and metadata do not belong together",
            BAD_HASH,
        )
    arrays = _arrays(payload, where)
    _check_shapes(layers, arrays, where)
    try:
        return network_from_arrays(layers, arrays)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ArtifactError(f"{where}: bad weights: {exc}", BAD_WEIGHTS) from None


def _arrays(payload: bytes, where: object) -> dict[str, np.ndarray]:
    """The `.npz`'s arrays: floating point, finite, and no larger expanded than the limit."""
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            expanded = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ArtifactError(
            f"{where}: bad weights: not an .npz archive ({exc})", BAD_WEIGHTS
        ) from None
    if expanded > MAX_WEIGHTS_BYTES:
        raise ArtifactError(
            f"{where}: weights expand to {expanded} bytes, limit {MAX_WEIGHTS_BYTES}", OVERSIZED
        )
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (ValueError, KeyError, TypeError, OSError, zipfile.BadZipFile) as exc:
        raise ArtifactError(f"{where}: bad weights: {exc}", BAD_WEIGHTS) from None
    for key, array in arrays.items():
        if array.dtype.kind != "f":
            raise ArtifactError(
                f"{where}: bad weights: {key} holds {array.dtype}, not floating point", BAD_WEIGHTS
            )
        if not np.isfinite(array).all():
            bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
            raise ArtifactError(
                f"{where}: {key} holds {bad} NaN or infinite weights", NON_FINITE_WEIGHTS
            )
    return arrays


def _check_shapes(layers: Any, arrays: Mapping[str, np.ndarray], where: object) -> None:
    """Each layer's arrays have the shapes its `units` declare, and no array is left over."""
    if (
        not isinstance(layers, list)
        or not layers
        or not all(isinstance(s, Mapping) for s in layers)
    ):
        raise ArtifactError(f"{where}: network.layers must be a non-empty list of objects")
    expected: dict[str, tuple[int, ...]] = {}
    width: int | None = None
    for spec in layers:
        name, units = spec.get("name"), spec.get("units")
        if not isinstance(name, str) or not isinstance(units, int) or units < 1:
            raise ArtifactError(f"{where}: layer {spec!r} needs a name and positive units")
        if spec.get("type") == "lstm":
            kernel = arrays.get(f"{name}/kernel")
            features = kernel.shape[0] if kernel is not None and kernel.ndim == 2 else -1
            expected[f"{name}/kernel"] = (features, 4 * units)
            expected[f"{name}/recurrent_kernel"] = (units, 4 * units)
            expected[f"{name}/bias"] = (4 * units,)
        else:
            expected[f"{name}/kernel"] = (width or -1, units)
            expected[f"{name}/bias"] = (units,)
        width = units
    for key, shape in expected.items():
        if key not in arrays:
            raise ArtifactError(
                f"{where}: bad weights: weights file has no array {key!r}", BAD_WEIGHTS
            )
        if arrays[key].shape != shape:
            raise ArtifactError(
                f"{where}: {key} has shape {arrays[key].shape}, network.layers declares {shape}",
                BAD_SHAPES,
            )
    extra = sorted(set(arrays) - set(expected))
    if extra:
        raise ArtifactError(f"{where}: arrays no layer declares: {', '.join(extra)}", BAD_SHAPES)


def _number(meta: Mapping[str, Any], key: str, where: object) -> float:
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
    def from_metadata(cls, meta: Mapping[str, Any], where: object) -> Scaling:
        """The scaling section of an artifact's metadata; ArtifactError, naming `where`, for a
        missing or non-numeric value, a target other than the residual, or a factor not positive."""
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
        """The next day's sunspot number for each window, shape (n,); ValueError unless the
        windows are (n, window)."""
        x = np.asarray(windows, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.window:
            raise ValueError(f"expected windows of shape (n, {self.window}), got {x.shape}")
        s = self.scaling
        out = self.network((x - s.input_mean) / s.input_scale)[:, 0].astype(np.float64)
        return x[:, -1] + out * s.target_scale + s.target_mean

    def predict_one(self, window: Sequence[float]) -> float:
        return float(self.predict(np.asarray(window, dtype=np.float64)[None, :])[0])


def load_forecaster(path: str | Path = DEFAULT_FORECASTER) -> ForecasterModel:
    """The forecaster artifact at `path` (its `.json`, `.npz` or base path)."""
    return _forecaster(*_read_file(path, FORECASTER_KIND))


def _forecaster(
    meta: dict[str, Any], payload: bytes, where: object, weights_where: object
) -> ForecasterModel:
    """Check the metadata (named `where` in messages), then the weights (`weights_where`)."""
    window = _require(meta, "window", where)
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ArtifactError(f"{where}: window must be a positive integer, got {window!r}")
    try:
        calibration = Calibration.from_json(_section(meta, "interval", where))
    except ValueError as exc:
        raise ArtifactError(f"{where}: {exc}") from None
    scaling = Scaling.from_metadata(meta, where)
    network = network_from_bytes(meta, payload, weights_where)
    if network.input_features != 1 or network.dense[-1].kernel.shape[1] != 1:
        raise ArtifactError(
            f"{where}: forecaster network must map 1 feature to 1 output", BAD_SHAPES
        )
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
        """Class probabilities, shape (n, classes), for sequences of shape (n, length) or
        (n, length, 1); ValueError for any other shape."""
        x = np.asarray(sequences, dtype=np.float64)
        if x.ndim == 3 and x.shape[2] == 1:
            x = x[:, :, 0]
        if x.ndim != 2:
            raise ValueError(f"expected sequences of shape (n, length), got {x.shape}")
        return self.network(x).astype(np.float64)

    def predict(self, sequences: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes)[np.argmax(self.predict_proba(sequences), axis=1)]


def load_classifier(path: str | Path = DEFAULT_CLASSIFIER) -> ClassifierModel:
    """The classifier artifact at `path` (its `.json`, `.npz` or base path)."""
    return _classifier(*_read_file(path, CLASSIFIER_KIND))


def _classifier(
    meta: dict[str, Any], payload: bytes, where: object, weights_where: object
) -> ClassifierModel:
    length = _require(meta, "sequence_length", where)
    max_value = _require(meta, "max_value", where)
    classes = _require(meta, "classes", where)
    if not isinstance(length, int) or length < 1 or not isinstance(max_value, int):
        raise ArtifactError(f"{where}: bad sequence_length {length!r} or max_value {max_value!r}")
    network = network_from_bytes(meta, payload, weights_where)
    if not isinstance(classes, list) or len(classes) != network.dense[-1].kernel.shape[1]:
        raise ArtifactError(
            f"{where}: classes {classes!r} do not match the network outputs", BAD_SHAPES
        )
    return ClassifierModel(
        sequence_length=length,
        max_value=max_value,
        classes=[int(c) for c in classes],
        model_version=str(meta["model_version"]),
        metadata=meta,
        network=network,
    )


Model = ForecasterModel | ClassifierModel

# Kind -> the checks and construction of a model of that kind (after `check_metadata`).
_LOADERS = {FORECASTER_KIND: _forecaster, CLASSIFIER_KIND: _classifier}


def _read_file(path: str | Path, kind: str) -> tuple[dict[str, Any], bytes, Path, Path]:
    """The checked metadata of the artifact at `path`, its weights' bytes, and both paths."""
    json_path, meta = read_metadata(path, kind)
    npz_path, payload = read_weights(json_path, meta)
    return meta, payload, json_path, npz_path


def model_from_bytes(meta: Any, payload: bytes, where: object = "model record") -> Model:
    """The model of metadata (a parsed JSON object) and `.npz` bytes, of the kind the metadata
    names, checked as a file is; `where` names the record in messages."""
    kind = meta.get("kind") if isinstance(meta, dict) else None
    kind = kind if kind in _LOADERS else FORECASTER_KIND  # any other kind is refused as wrong
    return _LOADERS[kind](check_metadata(meta, kind, where), payload, where, where)


def read_artifact(path: str | Path, kind: str) -> tuple[Model, bytes]:
    """The model of `kind` at `path`, checked, and the bytes of its weights file, as they are
    published on the models topic."""
    meta, payload, json_path, npz_path = _read_file(path, kind)
    return _LOADERS[kind](meta, payload, json_path, npz_path), payload
