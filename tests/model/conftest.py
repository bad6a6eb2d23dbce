"""Fixtures for the model tier: the committed artifacts and the test windows they are scored on."""

from __future__ import annotations

import pytest

from sunspots.domain.artifact import MODELS_DIR


@pytest.fixture(scope="session")
def keras():
    """Keras with bounded threads: the model tier shares two cores with other jobs."""
    from training.runtime import configure_tensorflow

    return configure_tensorflow(threads=2, seed=0)


@pytest.fixture(scope="session")
def models_dir():
    return MODELS_DIR
