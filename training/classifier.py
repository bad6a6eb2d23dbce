"""The lesson's toy LSTM sequence classifier, trained and exported for the classifier service.

Six length-6 sequences over {0..3}; the class is the non-zero value they contain. The model
and loss mirror the lesson (LSTM(128, dropout 0.2) -> Dense(4, sigmoid), binary cross-entropy
on one-hot labels, 200 epochs). With so little data a seed can occasionally fail, so the
result is checked and training is retried with the next seed.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from sunspots.domain import lesson
from sunspots.domain.artifact import CLASSIFIER_KIND
from sunspots.domain.lstm import network_from_arrays
from training.export import network_arrays, write_artifact
from training.runtime import configure_tensorflow, epoch_logger, package_versions

log = logging.getLogger(__name__)

SEQUENCES = np.array(lesson.SEQUENCES, dtype=np.float32)
LABELS = np.array(lesson.CLASSES)
LESSON_EXAMPLE = (np.array(lesson.EXAMPLE, dtype=np.float32)[None, :, 0], lesson.EXAMPLE_CLASS)
MAX_VALUE = 3
CLASSES = list(range(MAX_VALUE + 1))


@dataclass(frozen=True)
class ClassifierConfig:
    """One classifier training run: seed, epochs and where the artifact goes."""

    seed: int = 0
    epochs: int = 200
    out: Path = Path("models")
    name: str = "sequence_classifier"
    attempts: int = 5
    threads: int = 2


def build_model(keras: Any) -> Any:
    """The lesson's classifier: an LSTM over sequences of any length, one sigmoid output per
    class."""
    model = keras.Sequential(
        [
            keras.Input(shape=(None, 1)),  # any length; the service pads/truncates to 6
            keras.layers.LSTM(128, dropout=0.2, recurrent_dropout=0.2),
            keras.layers.Dense(len(CLASSES), activation="sigmoid"),
        ]
    )
    model.compile(loss="binary_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def numpy_predictions(model: Any) -> tuple[np.ndarray, int]:
    """Classes of the training sequences and of the lesson example, via the serving path."""
    network = network_from_arrays(*network_arrays(model))
    train = np.argmax(network(SEQUENCES), axis=1)
    example = int(np.argmax(network(LESSON_EXAMPLE[0]), axis=1)[0])
    return train, example


def train_once(keras: Any, cfg: ClassifierConfig, seed: int) -> tuple[Any, bool, float]:
    """Train once with `seed`; the model, whether it classifies every training sequence and the
    lesson example right, and the seconds taken."""
    keras.utils.set_random_seed(seed)
    model = build_model(keras)
    onehot = np.eye(len(CLASSES), dtype=np.float32)[LABELS]
    started = time.perf_counter()
    model.fit(
        SEQUENCES[:, :, None],
        onehot,
        epochs=cfg.epochs,
        verbose=0,
        callbacks=[epoch_logger(cfg.epochs, every=50)],
    )
    train, example = numpy_predictions(model)
    ok = bool((train == LABELS).all() and example == LESSON_EXAMPLE[1])
    log.info(
        "seed %d: predicted %s (want %s), example -> %d (want %d)",
        seed,
        train.tolist(),
        LABELS.tolist(),
        example,
        LESSON_EXAMPLE[1],
    )
    return model, ok, time.perf_counter() - started


def train_classifier(cfg: ClassifierConfig) -> dict[str, Any]:
    """Train the sequence classifier and write its artifact; returns the metadata written beside
    it."""
    keras = configure_tensorflow(cfg.threads, cfg.seed)
    for attempt in range(cfg.attempts):
        seed = cfg.seed + attempt
        model, ok, seconds = train_once(keras, cfg, seed)
        if ok:
            break
        log.warning(
            "seed %d misclassified the lesson data; retraining with seed %d", seed, seed + 1
        )
    else:
        raise RuntimeError(f"no seed in {cfg.seed}..{seed} learned the lesson data")
    metadata = {
        "sequence_length": SEQUENCES.shape[1],
        "max_value": MAX_VALUE,
        "classes": CLASSES,
        "labels": {"sequences": SEQUENCES.astype(int).tolist(), "classes": LABELS.tolist()},
        "training": {
            "seed": seed,
            "first_seed": cfg.seed,
            "attempts": attempt + 1,
            "epochs": cfg.epochs,
            "seconds": round(seconds, 1),
            "loss": "binary_crossentropy on one-hot labels",
            "optimizer": "adam",
        },
        "versions": package_versions(),
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return write_artifact(model, cfg.out / cfg.name, CLASSIFIER_KIND, "lstm-clf", metadata)
