"""The classifier processor: `{"id", "sequence"}` requests in, one prediction per request out.

Per poll batch it decodes every request (flat `[0,1,1,0,0,0]` or the lesson's nested
`[[0],[1],[1],[0],[0],[0]]`), makes ONE model call for all valid requests of the batch and
publishes `{"id", "predicted_class", "probabilities", "model_version"}` on the predictions
topic under the request's record key (or the id when the request had no key), so callers can
correlate by id. Invalid requests go to the dead-letter topic with a reason; the batch goes on.

Sequence length: the LSTM takes any length (input shape `(None, 1)`) but was trained on
sequences of exactly `model.sequence_length` (6) steps whose leading steps are zero. So a
shorter sequence is padded with leading zeros to that length — the same shape the training
sequences already have — and every request of a batch fits one `(n, 6)` model call. A longer
sequence is rejected with reason `bad_sequence` rather than truncated, because dropping steps
would silently throw away the information the class depends on (the non-zero values).

`probabilities` are the model's per-class sigmoid outputs for classes `model.classes`
(0..3) as trained in the lesson: one score per class, not normalised to sum to 1.

A batch is atomic (consumer.processor): its metrics and dead-letter counts change only once
every answer is made and encoded, so `consumer.containment` can process it again in halves.
The record key an answer goes out under must be UTF-8 (`bad_key` otherwise).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from consumer.metrics import ClassifierMetrics
from consumer.output import Output
from consumer.processor import DeadLetters, Record
from sunspots.kafka.settings import Topics
from sunspots.wire.schemas import (
    ClassifierPrediction,
    ClassifierRequest,
    SchemaError,
    check_key,
    decode_classifier_request,
)

log = logging.getLogger(__name__)


class ClassifierModel(Protocol):
    """What the classifier needs of a model: sunspots.domain.artifact.ClassifierModel is one."""

    @property
    def sequence_length(self) -> int: ...

    @property
    def max_value(self) -> int: ...

    @property
    def classes(self) -> list[int]: ...

    @property
    def model_version(self) -> str: ...

    def predict_proba(self, sequences: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class _Valid:
    """A decoded request with the key its answer is published under."""

    request: ClassifierRequest
    key: bytes


def pad_sequence(sequence: tuple[int, ...], length: int) -> tuple[int, ...]:
    """Left-pad with zeros to `length`; a longer sequence raises SchemaError(bad_sequence)."""
    if len(sequence) > length:
        raise SchemaError(
            "bad_sequence",
            f"sequence has {len(sequence)} steps; the model was trained on {length}",
        )
    return (0,) * (length - len(sequence)) + sequence


class Classifier:
    """A runner Processor without state: each request is answered on its own."""

    def __init__(self, model: ClassifierModel, topics: Topics, metrics: ClassifierMetrics) -> None:
        self.model = model
        self.topics = topics
        self.metrics = metrics
        self.dead_letters = DeadLetters(topics.dead_letter, metrics.dead_letters)
        metrics.model_info.labels(model.model_version).set(1)

    def process(self, records: list[Record]) -> list[Output]:
        """One answer per request, its dead letters counted only if the batch goes out; on any
        failure they are discarded and the error raised, so the batch can run again."""
        try:
            outputs, predictions, seconds = self._process(records)
        except BaseException:
            self.dead_letters.discard()
            raise
        self.metrics.requests.inc(len(records))
        if predictions:
            self.metrics.inference.observe(seconds)
        for prediction in predictions:
            self.metrics.predictions.labels(str(prediction.predicted_class)).inc()
        self.dead_letters.commit()
        return outputs

    def changelog(self) -> list[Output]:
        """Nothing: the classifier keeps no state."""
        return []

    def isolate(self, record: Record, exc: Exception) -> Output:
        self.metrics.requests.inc()
        return self.dead_letters.isolate(record, exc)

    def _process(
        self, records: list[Record]
    ) -> tuple[list[Output], list[ClassifierPrediction], float]:
        dead: list[Output] = []
        valid: list[_Valid] = []
        for record in records:
            item = self.dead_letters.decode(record, self._decode, dead)
            if item is not None:
                valid.append(item)
        started = time.perf_counter()
        predictions = self._predict([v.request for v in valid])
        seconds = time.perf_counter() - started
        answers = [
            Output(self.topics.classifier_predictions, p.encode(), v.key)
            for v, p in zip(valid, predictions, strict=True)
        ]
        return [*answers, *dead], predictions, seconds

    def _decode(self, record: Record) -> _Valid:
        request = decode_classifier_request(record.value, self.model.max_value)
        padded = pad_sequence(request.sequence, self.model.sequence_length)
        if record.key is None:
            key = str(request.id).encode()
        else:
            check_key(record.key)
            key = record.key
        return _Valid(ClassifierRequest(request.id, padded), key)

    def _predict(self, requests: list[ClassifierRequest]) -> list[ClassifierPrediction]:
        if not requests:
            return []
        sequences = np.array([r.sequence for r in requests], dtype=np.int64)
        probabilities = np.asarray(self.model.predict_proba(sequences), dtype=np.float64)
        # argmax over the columns, mapped to the model's class labels (column i = classes[i]).
        classes = np.asarray(self.model.classes)[np.argmax(probabilities, axis=1)]
        return [
            ClassifierPrediction(
                request.id,
                int(cls),
                # The network computes in float32: more than 6 decimals would be noise.
                [round(float(p), 6) for p in probs],
                self.model.model_version,
            )
            for request, cls, probs in zip(requests, classes.tolist(), probabilities, strict=True)
        ]

    # --- no state: nothing to restore or forget on a rebalance -----------------------------

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes | None]]) -> None:
        return None

    def revoke(self, partitions: set[int]) -> None:
        return None
