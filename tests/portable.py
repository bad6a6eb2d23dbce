"""Another CPU, on this one: the settings that make NumPy, OpenBLAS and TensorFlow take other
code paths, so that a test comparing a recomputed figure with a committed one to the bit fails
here, not first on someone else's machine.

`python -m tests.portable ARGS` runs pytest with ARGS under these settings (`make
test-model-portable`, which CI runs after `make test`):

* `NPY_DISABLE_CPU_FEATURES`: NumPy's AVX2 and AVX-512 loops off (x86-64-v2 only), so exp and
  tanh take other SIMD loops;
* `OPENBLAS_CORETYPE=Sandybridge`: NumPy's bundled OpenBLAS uses its AVX kernels instead of the
  one it picks for this CPU (SkylakeX here), so a float32 matrix product sums in another order;
* `TF_ENABLE_ONEDNN_OPTS=0`: TensorFlow's plain kernels instead of oneDNN's, for the Keras side
  of the parity tests.

On this machine they change 4,970 of the 6,381 test-year forecasts of the committed model in
their low bits (by at most 3.4e-6): `tests/model/test_portability.py` checks that they still
do, or the portable run proves nothing.
"""

from __future__ import annotations

import os
import sys

PORTABLE_ENV = {
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL X86_V3",
    "OPENBLAS_CORETYPE": "Sandybridge",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}


def main(argv: list[str]) -> None:
    """Replace this process with pytest under PORTABLE_ENV."""
    os.environ.update(PORTABLE_ENV)
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
