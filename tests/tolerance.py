"""Comparing numbers recomputed on this machine with numbers committed from another.

The committed artifacts' metadata (calibration quantiles, interval tables, metrics) was
computed on the machine that trained them. Recomputed here from the same weights and data, a
float32 network's output differs in its last bits wherever the CPU's instruction set or the
BLAS kernel sums in another order, and every figure derived from it follows. So a committed
figure and its recomputation are compared within a stated relative tolerance, while what is
exact by construction (counts, names, dates) is compared exactly.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

# The network computes in float32: its forecasts (values up to ~400) recomputed with another
# BLAS kernel or SIMD level differ by up to ~4e-6 (measured: 3.4e-6 between OpenBLAS's
# SkylakeX and Sandybridge kernels with NumPy's AVX2/AVX-512 loops off, `make
# test-model-portable`). Every figure derived from them moved by at most 1.5e-6 there (the
# interval quantiles, widths, Winkler scores, RMSE; near zero that is 6e-5 relative, so an
# absolute bound is needed); a retrained or changed model moves them by 1e-2 or more.
RECOMPUTED_ABS = 1e-5
RECOMPUTED_REL = 1e-6
# A rolling score keeps each interval width as a 4-byte float (sunspots.domain.evaluation):
# 24 bits, so each width, and the mean of positive widths, lies within 2**-24 ≈ 6e-8 relative
# of the double it came from; the bound leaves room for the mean's own rounding.
FLOAT32_REL = 1e-7


def differences(
    actual: Any,
    expected: Any,
    rel: float = RECOMPUTED_REL,
    abs_: float = RECOMPUTED_ABS,
    path: str = "",
) -> list[str]:
    """Where `actual` and `expected` (nested dicts, lists, tuples, dataclasses, numbers and
    strings) differ: floats by more than both `rel` relative and `abs_` absolute (`math.isclose`),
    anything else at all. Empty when they agree."""
    if dataclasses.is_dataclass(actual) and not isinstance(actual, type):
        actual = dataclasses.asdict(actual)
    if dataclasses.is_dataclass(expected) and not isinstance(expected, type):
        expected = dataclasses.asdict(expected)
    if isinstance(actual, dict) and isinstance(expected, dict):
        if actual.keys() != expected.keys():
            return [f"{path or '.'}: keys {sorted(actual)} != {sorted(expected)}"]
        return [
            d for k in actual for d in differences(actual[k], expected[k], rel, abs_, f"{path}.{k}")
        ]
    if isinstance(actual, list | tuple) and isinstance(expected, list | tuple):
        if len(actual) != len(expected):
            return [f"{path or '.'}: {len(actual)} items != {len(expected)}"]
        pairs = zip(actual, expected, strict=True)
        return [
            d
            for i, (a, e) in enumerate(pairs)
            for d in differences(a, e, rel, abs_, f"{path}[{i}]")
        ]
    if isinstance(actual, float) or isinstance(expected, float):
        numbers = isinstance(actual, int | float) and isinstance(expected, int | float)
        agree = numbers and math.isclose(actual, expected, rel_tol=rel, abs_tol=abs_)
    else:
        agree = actual == expected and type(actual) is type(expected)
    return [] if agree else [f"{path or '.'}: {actual!r} != {expected!r}"]
