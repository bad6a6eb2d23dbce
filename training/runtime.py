"""TensorFlow start-up shared by the training commands: thread limits, seeding, epoch logging.

TensorFlow is imported here, lazily, so that nothing outside training pays for it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

log = logging.getLogger(__name__)


def configure_tensorflow(threads: int, seed: int) -> Any:
    """Import TF with bounded threads (the box is shared) and seed every RNG; return keras."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        # TF fixes its pools at the first op; a second run in one process keeps the first.
        log.debug("TensorFlow already initialised; thread settings unchanged")
    keras.utils.set_random_seed(seed)
    return keras


def epoch_logger(total_epochs: int, every: int = 1) -> Any:
    """A Keras callback that reports progress through `logging` instead of a progress bar."""
    import keras

    class EpochLogger(keras.callbacks.Callback):
        """Logs each `every`th epoch, and the last, with its seconds and metrics."""

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self._started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            """Log the epoch's seconds and metrics when it is an `every`th one or the last."""
            if (epoch + 1) % every and epoch + 1 != total_epochs:
                return
            metrics = " ".join(f"{k}={v:.5f}" for k, v in sorted((logs or {}).items()))
            log.info(
                "epoch %d/%d %.1fs %s",
                epoch + 1,
                total_epochs,
                time.perf_counter() - self._started,
                metrics,
            )

    return EpochLogger()


def package_versions() -> dict[str, str]:
    """Versions of Python and the training packages installed, for the artifact's metadata;
    packages not installed are left out."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in ("numpy", "pandas", "tensorflow", "tensorflow-cpu", "keras", "scikit-learn"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions
