"""The portable run (`make test-model-portable`) computes on another code path: the committed
model's forecasts under `tests.portable.PORTABLE_ENV` differ from this process's in their low
bits, and agree within the tests' tolerance for recomputed figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from tests.portable import PORTABLE_ENV

# The committed model's forecasts for the artifact's test years, and the BLAS kernel in use.
FORECASTS = """
import json, sys
import numpy as np
from threadpoolctl import threadpool_info
from sunspots.domain.artifact import load_forecaster
from sunspots.domain.data import load_daily, select_range
model = load_forecaster()
test = model.metadata["splits"]["test"]
frame = select_range(load_daily(sys.argv[1]), "2000-01-01", test["last_date"])
windows = np.lib.stride_tricks.sliding_window_view(frame["sunspot_number"].to_numpy(), model.window)
blas = [i.get("architecture") for i in threadpool_info() if i.get("user_api") == "blas"]
json.dump({"forecasts": model.predict(windows).tolist(), "blas": blas}, sys.stdout)
"""


def _forecasts(data_path, portable: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_ENV}
    if portable:
        env.update(PORTABLE_ENV)
    done = subprocess.run(
        [sys.executable, "-c", FORECASTS, str(data_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_portable_settings_change_the_low_bits_of_the_forecasts(data_path) -> None:
    native, portable = _forecasts(data_path, False), _forecasts(data_path, True)
    assert portable["blas"] == [PORTABLE_ENV["OPENBLAS_CORETYPE"]], portable["blas"]
    a, b = np.array(native["forecasts"]), np.array(portable["forecasts"])
    changed = int(np.count_nonzero(a != b))
    # Measured here: 4,970 of 6,381 changed, by at most 3.4e-6. Fewer than a tenth changed
    # would mean the settings no longer reach the code the model runs.
    assert changed > len(a) // 10, f"only {changed} of {len(a)} forecasts changed"
    # float32 forecasts of values up to ~400: agreement within 1e-4 (tests.integration.offline).
    assert float(np.max(np.abs(a - b))) < 1e-4
