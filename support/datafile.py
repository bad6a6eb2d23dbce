"""Which SILSO file the tests and the benchmarks run on, when they are not told.

`SUNSPOTS_DATA` (a path or a URL) when set; else the shared copy beside the checkout
(`../shared/data/`) when there is one; else SILSO's live file, which `sunspots.domain.data` downloads
once into the cache. One rule for both, so a benchmark and a test of one checkout read the same
file.
"""

from __future__ import annotations

import os
from pathlib import Path

from sunspots.domain.data import DATA_ENV, SILSO_DAILY_URL

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "SN_d_tot_V2.0.csv"


def data_source() -> str:
    """`SUNSPOTS_DATA`, else the shared copy when present, else SILSO's URL."""
    named = os.environ.get(DATA_ENV)
    if named:
        return named
    return str(SHARED_DATA) if SHARED_DATA.is_file() else SILSO_DAILY_URL
