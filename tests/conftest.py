"""Shared test fixtures: the SILSO data file with its facts, the forecaster artifact in use, and
tier markers taken from the test's folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from consumer.modes import FORECAST
from sunspots.domain.artifact import ForecasterModel, load_forecaster
from sunspots.domain.data import resolve_source, unavailable
from support.datafile import data_source
from tests.datafacts import DataFile

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The folder is the tier: tests/unit -> unit, tests/model -> model, tests/integration -> integration, tests/cluster -> cluster.
    for item in items:
        parts = Path(str(item.fspath)).relative_to(REPO / "tests").parts
        if len(parts) > 1 and parts[0] in {"unit", "model", "integration", "cluster"}:
            item.add_marker(parts[0])


# The exit code of a session that has no data file to run on (pytest's own are 0 to 5).
EXIT_NO_DATA = 6


@pytest.fixture(scope="session")
def data_path() -> Path:
    """The SILSO file as a local path: a URL is downloaded once into the cache, as the demo
    does. Without it the session ends at once, in one line, rather than failing every test."""
    try:
        return resolve_source(data_source())
    except OSError as exc:  # a missing path, or a download that failed (DataSourceError)
        pytest.exit(unavailable(exc), returncode=EXIT_NO_DATA)


@pytest.fixture(scope="session")
def data_file(data_path: Path) -> DataFile:
    """The data file in use, with a note saying which file it is."""
    return DataFile.at(data_path)


@pytest.fixture(scope="session")
def forecaster_model() -> ForecasterModel:
    """The forecaster artifact the services under test load: the one their environment names,
    or the committed default. Window sizes and offline forecasts come from it."""
    return load_forecaster(os.environ.get(FORECAST.model_env) or FORECAST.default_model)
