"""Inference per window: naive Keras predict, tf.function, and the NumPy serving path.

    .venv/bin/python -m bench.inference [--data FILE] [--no-keras]

Rows, on the committed forecaster (models/sunspot_lstm.*) and the test windows (2000-01-01 …
2017-06-30, the split the artifact was scored on):

- keras predict ×1: `model.predict` on one window, the naive way a notebook serves it;
- keras tf.function ×1: the same Keras model called through a traced `tf.function`;
- keras predict all: one `model.predict` over every test window, for scale;
- numpy serving ×B: `ForecasterModel.predict`, what the forecaster calls once per poll,
  on batches of B = 1, 32, 500 and all test windows;
- arithmetic bound: the network's FLOPs per window over this machine's measured float32
  matmul rate — what the cost would be if nothing but arithmetic mattered.

NumPy's OpenBLAS runs on one thread here, as in the services (sunspots.domain.lstm's
single_threaded_blas): with its default threads, on a shared machine, the batched rows measured
what its spinning workers cost (64–192 µs a window at a load average of 3, against 19 µs on
one thread), not what the forecaster pays.

TensorFlow is imported lazily and only here (the serving image has none); `--no-keras` or a
missing TensorFlow skips the Keras rows. Per-call times are wall clock (perf_counter_ns);
`per_window_us` is the median call time divided by the batch size.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import RESULTS, default_data, percentile, report, write
from sunspots.domain.artifact import DEFAULT_FORECASTER, ForecasterModel, load_forecaster
from sunspots.domain.data import load_daily, select_range
from sunspots.domain.lstm import single_threaded_blas

COLUMNS = ["path", "batch", "calls", "per_window_us", "p50_us", "p99_us", "max_us", "note"]
TEST_START, TEST_END = "2000-01-01", "2017-06-30"
# The targets, so the table can say how far off each one is.
TARGET_BATCHED_US = 20.0
TARGET_SINGLE_P99_US = 2000.0


def test_windows(data: str, window: int) -> np.ndarray:
    frame = select_range(load_daily(data), TEST_START, TEST_END)
    values = frame["sunspot_number"].to_numpy(dtype=np.float64)
    return np.lib.stride_tricks.sliding_window_view(values, window)[: len(values) - window]


def time_calls(call: Callable[[], Any], calls: int, budget_s: float) -> list[float]:
    """Call times in µs: `calls` calls, or fewer if `budget_s` runs out (at least 3)."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    for i in range(calls):
        started = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - started) / 1000.0)
        if i >= 2 and time.perf_counter() > deadline:
            break
    return times


def row(path: str, batch: int, times: list[float], note: str = "") -> dict[str, Any]:
    """A row of call times in µs: per window (the median call over the batch), p50, p99 and max."""
    p50 = percentile(times, 50, 1)
    return {
        "path": path,
        "batch": batch,
        "calls": len(times),
        "per_window_us": round(p50 / batch, 2) if p50 is not None else None,
        "p50_us": p50,
        "p99_us": percentile(times, 99, 1),
        "max_us": round(max(times), 1) if times else None,
        "note": note,
    }


def flops_per_window(model: ForecasterModel) -> int:
    """Multiply-adds ×2 of the matrix products, plus ~10 elementwise ops per LSTM unit."""
    lstm = model.network.lstm
    features, units = lstm.kernel.shape[0], lstm.units
    per_step = 2 * (features + units) * 4 * units + 10 * units
    dense = sum(2 * d.kernel.shape[0] * d.kernel.shape[1] for d in model.network.dense)
    return model.window * per_step + dense


def matmul_gflops(seconds: float = 0.5) -> float:
    """This machine's float32 matmul rate (512³ products), the best of a short run."""
    a = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        a @ a
        best = min(best, time.perf_counter() - started)
    return 2 * 512**3 / best / 1e9


def keras_rows(
    model_path: Path, serving: ForecasterModel, windows: np.ndarray, calls: int, budget: float
) -> list[dict[str, Any]]:
    """The Keras model's rows beside the serving path's, with its largest forecast difference
    from it as the note; one row saying so when TensorFlow is not installed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf  # lazily: only this benchmark needs it
    except ImportError:
        return [{"path": "keras", "batch": 1, "calls": 0, "note": "TensorFlow not installed"}]
    keras_file = model_path.with_name(str(serving.metadata["keras_file"]))
    keras_model = tf.keras.models.load_model(keras_file, compile=False)
    s = serving.scaling
    scaled = ((windows - s.input_mean) / s.input_scale).astype(np.float32)[:, :, None]
    one = scaled[:1]
    # Parity: the Keras output, unscaled, must be the serving path's forecast.
    keras_out = keras_model.predict(scaled, verbose=0)[:, 0].astype(np.float64)
    keras_forecast = windows[:, -1] + keras_out * s.target_scale + s.target_mean
    parity = float(np.max(np.abs(keras_forecast - serving.predict(windows))))
    note = f"max |keras - numpy| {parity:.1e} over {len(windows)} windows"
    keras_model.predict(one, verbose=0)  # first call builds the predict function
    predict = time_calls(lambda: keras_model.predict(one, verbose=0), calls, budget)
    traced = tf.function(lambda x: keras_model(x, training=False))
    tensor = tf.constant(one)
    traced(tensor)  # trace once
    fn_times = time_calls(lambda: traced(tensor).numpy(), calls * 20, budget)
    everything = time_calls(lambda: keras_model.predict(scaled, verbose=0), 5, budget)
    return [
        row("keras predict", 1, predict, note),
        row("keras tf.function", 1, fn_times),
        row("keras predict", len(windows), everything),
    ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Time the serving forecaster on one window and on batches, beside the float32 arithmetic
    bound, and check both serving targets."""
    single_threaded_blas()
    serving = load_forecaster(args.model)
    windows = test_windows(args.data, serving.window)
    rows: list[dict[str, Any]] = []
    if args.keras:
        rows += keras_rows(args.model, serving, windows, args.keras_calls, args.budget)
    one = windows[:1]
    single = time_calls(lambda: serving.predict(one), args.calls, args.budget)
    rows.append(row("numpy serving", 1, single))
    for batch in (32, 500, len(windows)):
        chunk = windows[:batch]
        calls = max(3, args.calls * 32 // batch)
        rows.append(
            row(
                "numpy serving",
                batch,
                time_calls(lambda c=chunk: serving.predict(c), calls, args.budget),
            )
        )
    flops = flops_per_window(serving)
    gflops = matmul_gflops()
    bound_us = flops / (gflops * 1e9) * 1e6
    rows.append(
        {
            "path": "arithmetic bound",
            "batch": None,
            "calls": None,
            "per_window_us": round(bound_us, 2),
            "note": f"{flops / 1e6:.3f} MFLOP/window at {gflops:.1f} GFLOP/s (float32 matmul)",
        }
    )
    batched = [r for r in rows if r["path"] == "numpy serving" and r["batch"] >= 500]
    best_batched = min(r["per_window_us"] for r in batched)
    single_p99 = next(r["p99_us"] for r in rows if r["path"] == "numpy serving")
    targets = {
        "batched_per_window_us": best_batched,
        "batched_target_us": TARGET_BATCHED_US,
        "batched_ok": best_batched <= TARGET_BATCHED_US,
        "single_p99_us": single_p99,
        "single_p99_target_us": TARGET_SINGLE_P99_US,
        "single_p99_ok": single_p99 <= TARGET_SINGLE_P99_US,
    }
    return report(
        "inference",
        rows,
        model_version=serving.model_version,
        test_windows=len(windows),
        mflop_per_window=round(flops / 1e6, 4),
        targets=targets,
    )


def build_parser() -> argparse.ArgumentParser:
    """The flags of `python -m bench.inference`; it needs no broker."""
    parser = argparse.ArgumentParser(prog="bench.inference", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", default=default_data(), help="SILSO daily CSV")
    parser.add_argument("--model", type=Path, default=DEFAULT_FORECASTER)
    parser.add_argument("--calls", type=int, default=5000, help="single-window calls (5000)")
    parser.add_argument("--keras-calls", type=int, default=50, help="Keras predict calls (50)")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per row at most (5)")
    parser.add_argument("--no-keras", dest="keras", action="store_false", help="skip Keras rows")
    parser.add_argument("--out", type=Path, default=RESULTS / "inference.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.inference`: the report written to `--out`, its table and the two targets
    printed."""
    args = build_parser().parse_args(argv)
    result = run(args)
    write(result, args.out, COLUMNS)
    t = result["targets"]
    sys.stdout.write(
        f"targets: batched {t['batched_per_window_us']} µs/window (≤ {TARGET_BATCHED_US:g}), "
        f"single p99 {t['single_p99_us']} µs (≤ {TARGET_SINGLE_P99_US:g})\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
