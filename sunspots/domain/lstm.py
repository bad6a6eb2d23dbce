"""Pure-NumPy forward pass of a Keras LSTM followed by Dense layers, for TF-free serving.

The training code exports the Keras weights to an `.npz`; this module replays them exactly as
Keras does at inference time (gate order i, f, c, o; sigmoid recurrent activation; tanh
activation; dropout is a training-time only effect). Everything is batched over sequences so
that one call scores thousands of windows, and a single window costs a handful of small
matrix products.
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DTYPE = np.float32
BLOCK_ROWS = 512


# The thread-count setters of the OpenBLAS builds NumPy wheels bundle (scipy-openblas, 64-bit
# and 32-bit interfaces) and of a system OpenBLAS.
_BLAS_THREAD_SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def single_threaded_blas() -> bool:
    """Run NumPy's OpenBLAS on one thread in this process; False if it cannot be found.

    A serving process shares its cores with Kafka clients, the broker and other services. Our
    matrix products are small (≤ 512 × 64 by 64 × 256); OpenBLAS's worker threads gain nothing
    on them even on an idle machine, and on a busy one they spin waiting for a core — in the
    pipeline benchmark a batched model call took 10× longer than with one thread. The
    environment (OPENBLAS_NUM_THREADS) only counts before NumPy is imported, so the library's
    own setter is called instead, as threadpoolctl does. One thread computes every output
    element the same way, so the results are unchanged.
    """
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:  # not Linux: leave the default
        return False
    libraries = {
        line.split()[-1]
        for line in maps.splitlines()
        if "openblas" in line.rsplit("/", 1)[-1].lower() and line.split()[-1].startswith("/")
    }
    done = False
    for path in sorted(libraries):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for name in _BLAS_THREAD_SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter(1)
                done = True
                break
    return done


def sigmoid(x: np.ndarray) -> np.ndarray:
    # The tanh form never overflows in exp() for large negative inputs.
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


_ACTIVATIONS = {
    "linear": lambda x: x,
    "sigmoid": sigmoid,
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
}


@dataclass(frozen=True)
class LSTMLayer:
    """Keras LSTM weights with the gate columns reordered to (i, f, o, c) for speed."""

    kernel: np.ndarray
    recurrent_kernel: np.ndarray
    bias: np.ndarray
    units: int

    @classmethod
    def from_keras(
        cls, kernel: np.ndarray, recurrent_kernel: np.ndarray, bias: np.ndarray
    ) -> LSTMLayer:
        """The NumPy network from a trained Keras model's weights (the serving path needs no
        TensorFlow)."""
        units = recurrent_kernel.shape[0]
        if kernel.shape[1] != 4 * units or recurrent_kernel.shape != (units, 4 * units):
            raise ValueError(
                f"LSTM weight shapes do not agree: kernel {kernel.shape}, "
                f"recurrent {recurrent_kernel.shape}, bias {bias.shape}"
            )
        if bias.shape != (4 * units,):
            raise ValueError(f"LSTM bias shape {bias.shape} != ({4 * units},)")
        # Keras stores (i, f, c, o); putting the three sigmoid gates side by side lets one
        # vectorised sigmoid cover them.
        order = np.concatenate(
            [
                np.arange(0, 2 * units),
                np.arange(3 * units, 4 * units),
                np.arange(2 * units, 3 * units),
            ]
        )
        return cls(
            kernel=np.ascontiguousarray(kernel[:, order], dtype=DTYPE),
            recurrent_kernel=np.ascontiguousarray(recurrent_kernel[:, order], dtype=DTYPE),
            bias=np.ascontiguousarray(bias[order], dtype=DTYPE),
            units=units,
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """(n, steps, features) -> final hidden state (n, units)."""
        out = np.empty((x.shape[0], self.units), dtype=DTYPE)
        # Row blocks keep the per-step temporaries in cache; whole-batch arrays are several
        # MB each and every elementwise op would stream them through memory.
        for start in range(0, x.shape[0], BLOCK_ROWS):
            stop = start + BLOCK_ROWS
            out[start:stop] = self._block(x[start:stop])
        return out

    def _block(self, x: np.ndarray) -> np.ndarray:
        n, steps, _ = x.shape
        u = self.units
        # Input projections for every step at once; only the recurrence has to loop.
        projected = np.ascontiguousarray(np.swapaxes(x, 0, 1)) @ self.kernel + self.bias
        h = np.zeros((n, u), dtype=DTYPE)
        c = np.zeros((n, u), dtype=DTYPE)
        z = np.empty((n, 4 * u), dtype=DTYPE)
        tmp = np.empty((n, u), dtype=DTYPE)
        for step in range(steps):
            np.matmul(h, self.recurrent_kernel, out=z)
            z += projected[step]
            sig = z[:, : 3 * u]
            # sigmoid(x) = 0.5 * tanh(0.5 x) + 0.5, in place
            sig *= 0.5
            np.tanh(sig, out=sig)
            sig *= 0.5
            sig += 0.5
            cand = z[:, 3 * u :]
            np.tanh(cand, out=cand)
            c *= z[:, u : 2 * u]
            np.multiply(z[:, :u], cand, out=tmp)
            c += tmp
            np.tanh(c, out=h)
            h *= z[:, 2 * u : 3 * u]
        return h


@dataclass(frozen=True)
class DenseLayer:
    """A dense layer's weights, run in NumPy."""

    kernel: np.ndarray
    bias: np.ndarray
    activation: str = "linear"

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"unsupported Dense activation {self.activation!r}")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return _ACTIVATIONS[self.activation](x @ self.kernel + self.bias)


@dataclass(frozen=True)
class Network:
    """An LSTM followed by Dense layers; `__call__` maps (n, steps, features) to (n, outputs)."""

    lstm: LSTMLayer
    dense: tuple[DenseLayer, ...]

    @property
    def input_features(self) -> int:
        return self.lstm.kernel.shape[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=DTYPE)
        if x.ndim == 2:
            x = x[:, :, None]
        if x.ndim != 3 or x.shape[2] != self.input_features:
            raise ValueError(
                f"expected input (n, steps, {self.input_features}), got shape {x.shape}"
            )
        out = self.lstm(x)
        for layer in self.dense:
            out = layer(out)
        return out


def network_from_arrays(
    layers: Sequence[Mapping[str, Any]], arrays: Mapping[str, np.ndarray]
) -> Network:
    """Build a Network from the JSON layer spec and the `<name>/<weight>` arrays of the .npz.

    `layers` is a list like `[{"type": "lstm", "name": "lstm"}, {"type": "dense", "name":
    "dense_0", "activation": "linear"}]`; the first must be the LSTM.
    """
    if not layers or layers[0].get("type") != "lstm":
        raise ValueError("network spec must start with an LSTM layer")
    if any(spec.get("type") != "dense" for spec in layers[1:]):
        raise ValueError("only Dense layers may follow the LSTM")

    def get(name: str, weight: str) -> np.ndarray:
        key = f"{name}/{weight}"
        if key not in arrays:
            raise ValueError(f"weights file has no array {key!r}")
        return np.asarray(arrays[key])

    first = layers[0]["name"]
    lstm = LSTMLayer.from_keras(
        get(first, "kernel"), get(first, "recurrent_kernel"), get(first, "bias")
    )
    dense = tuple(
        DenseLayer(
            kernel=get(spec["name"], "kernel").astype(DTYPE),
            bias=get(spec["name"], "bias").astype(DTYPE),
            activation=spec.get("activation", "linear"),
        )
        for spec in layers[1:]
    )
    width = lstm.units
    for layer in dense:
        if layer.kernel.shape[0] != width or layer.bias.shape != (layer.kernel.shape[1],):
            raise ValueError(f"Dense kernel {layer.kernel.shape} does not follow width {width}")
        width = layer.kernel.shape[1]
    return Network(lstm=lstm, dense=dense)
