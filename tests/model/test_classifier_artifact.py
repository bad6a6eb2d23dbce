"""The committed toy classifier: learns the lesson's six sequences and matches Keras."""

from __future__ import annotations

import numpy as np
import pytest

from sunspots.domain.artifact import (
    DEFAULT_CLASSIFIER,
    ArtifactError,
    load_classifier,
    load_forecaster,
)
from training.classifier import LABELS, LESSON_EXAMPLE, SEQUENCES


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_metadata(classifier):
    assert classifier.sequence_length == 6
    assert classifier.max_value == 3
    assert classifier.classes == [0, 1, 2, 3]
    assert classifier.model_version.startswith("lstm-clf-")
    assert classifier.metadata["training"]["epochs"] == 200


def test_classifies_the_six_training_sequences(classifier):
    assert classifier.predict(SEQUENCES.astype(int)).tolist() == LABELS.tolist()


def test_classifies_the_lesson_example(classifier):
    assert classifier.predict([[0, 0, 0, 0, 0, 1]]).tolist() == [LESSON_EXAMPLE[1]]
    # The lesson feeds (n, steps, 1); the same shape is accepted.
    assert classifier.predict(np.array([[[0], [0], [0], [0], [0], [1]]])).tolist() == [1]


def test_probabilities_are_per_class_sigmoids(classifier):
    proba = classifier.predict_proba(SEQUENCES)
    assert proba.shape == (6, 4)
    assert ((proba >= 0) & (proba <= 1)).all()


def test_other_lengths_run(classifier):
    assert classifier.predict_proba(np.zeros((3, 9), dtype=int)).shape == (3, 4)


def test_numpy_matches_keras(classifier, keras, models_dir):
    net = keras.models.load_model(models_dir / classifier.metadata["keras_file"], compile=False)
    rng = np.random.default_rng(0)
    x = np.concatenate([SEQUENCES, rng.integers(0, 4, size=(50, 6))]).astype(np.float32)
    want = net.predict(x[:, :, None], verbose=0)
    np.testing.assert_allclose(classifier.predict_proba(x), want, rtol=0, atol=1e-4)


def test_kinds_are_not_interchangeable():
    with pytest.raises(ArtifactError, match="expected a 'sunspot-forecaster'"):
        load_forecaster(DEFAULT_CLASSIFIER)
