"""Export a trained Keras LSTM(+Dense) model to the NumPy `.npz` + `.json` serving artifact.

The `.npz` holds `<layer>/<weight>` arrays that `sunspots.domain.lstm.network_from_arrays` replays;
the JSON records the layer spec, the sha256 of the `.npz` (checked at load time) and a
`model_version` derived from the weights, so two artifacts with equal weights share a version.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from sunspots.domain.artifact import FORMAT_VERSION

log = logging.getLogger(__name__)


def network_arrays(model: Any) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Layer spec and weight arrays of a Sequential LSTM -> Dense... model."""
    spec: list[dict[str, Any]] = []
    arrays: dict[str, np.ndarray] = {}
    for layer in model.layers:
        kind = type(layer).__name__
        weights = [np.asarray(w, dtype=np.float32) for w in layer.get_weights()]
        if kind == "LSTM":
            name = "lstm"
            spec.append({"type": "lstm", "name": name, "units": int(layer.units)})
            arrays.update(
                zip(
                    [f"{name}/kernel", f"{name}/recurrent_kernel", f"{name}/bias"],
                    weights,
                    strict=True,
                )
            )
        elif kind == "Dense":
            name = f"dense_{sum(s['type'] == 'dense' for s in spec)}"
            activation = layer.activation.__name__
            spec.append(
                {"type": "dense", "name": name, "units": int(layer.units), "activation": activation}
            )
            arrays.update(zip([f"{name}/kernel", f"{name}/bias"], weights, strict=True))
        else:
            raise ValueError(f"cannot export layer type {kind}")
    return spec, arrays


def weights_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of the weights as float32, in key order: the same weights always give the same
    model version."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(arrays[key], dtype=np.float32).tobytes())
    return digest.hexdigest()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def write_artifact(
    model: Any, base: Path, kind: str, version_prefix: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    """Write `<base>.keras`, `<base>.npz`, `<base>.json`; return the full metadata written."""
    base.parent.mkdir(parents=True, exist_ok=True)
    spec, arrays = network_arrays(model)
    payload = npz_bytes(arrays)
    keras_path, npz_path, json_path = (base.with_suffix(s) for s in (".keras", ".npz", ".json"))
    model.save(keras_path)
    npz_path.write_bytes(payload)
    full = {
        "kind": kind,
        "format_version": FORMAT_VERSION,
        "model_version": f"{version_prefix}-{weights_digest(arrays)[:12]}",
        "weights_file": npz_path.name,
        "weights_sha256": hashlib.sha256(payload).hexdigest(),
        "keras_file": keras_path.name,
        "network": {"layers": spec},
        **metadata,
    }
    json_path.write_text(json.dumps(full, indent=2, sort_keys=False) + "\n")
    log.info("wrote %s, %s, %s (%s)", keras_path, npz_path, json_path, full["model_version"])
    return full
