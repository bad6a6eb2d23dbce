"""Shared test fixtures: the SILSO data file with its facts, the forecaster artifact in use, and
tier markers taken from the test's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consumer.modes import FORECAST
from sunspots.artifact import ForecasterModel, load_forecaster
from tests.datafacts import DEFAULT_DATA, DataFile

REPO = Path(__file__).resolve().parents[1]


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


@pytest.fixture(scope="session")
def data_file(data_path: Path) -> DataFile:
    """The data file in use, with the shared file's facts and a note saying which file it is."""
    return DataFile.at(data_path)


@pytest.fixture(scope="session")
def forecaster_model() -> ForecasterModel:
    """The forecaster artifact the services under test load: the one their environment names,
    or the committed default. Window sizes and offline forecasts come from it."""
    return load_forecaster(os.environ.get(FORECAST.model_env) or FORECAST.default_model)
