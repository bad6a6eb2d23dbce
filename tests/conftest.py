"""Shared test fixtures: the SILSO data file and tier markers taken from the test's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "SN_d_tot_V2.0.csv"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder is the tier: tests/unit -> unit, tests/model -> model, tests/integration -> integration, tests/cluster -> cluster.
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if len(parts) > 1 and parts[0] in {"unit", "model", "integration", "cluster"}:
            item.add_marker(parts[0])


@pytest.fixture(scope="session")
def data_path() -> Path:
    path = Path(os.environ.get("SUNSPOTS_DATA", DEFAULT_DATA))
    if not path.is_file():
        pytest.fail(f"SILSO data file not found at {path}; set SUNSPOTS_DATA")
    return path
