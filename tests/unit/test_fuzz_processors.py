"""Property-based fuzzing of both processors, with the real committed models and real metrics.

Each processor runs as the services run it (inside `consumer.containment.Contained`) on a
fresh `CollectorRegistry`, over a few batches of records that mix valid streams with hostile
records. Invariants, batch after batch:
- `process` returns; it never raises;
- every record is either dead-lettered exactly once, with a reason from DEAD_LETTER_REASONS, or applied:
  a record the decoder rejects is a dead letter with the decoder's reason;
- every output encodes: its key is UTF-8 text (the series or the request's key), its value
  decodes as its topic's message and encodes back to the same bytes; a dead letter carries the
  original key and value and headers that follow schemas/dead-letter-headers.json;
- the dead-letter counter equals the dead letters published, the observation counter the
  observations applied, and the live series stay within the limit.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import jsonschema
import msgspec
import pytest
from hypothesis import event, example, given, target
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from consumer.classifier import Classifier
from consumer.containment import Contained
from consumer.forecaster import Forecaster
from consumer.metrics import ClassifierMetrics, ForecasterMetrics
from consumer.output import Output
from sunspots.domain.artifact import load_classifier, load_forecaster
from sunspots.kafka.settings import Topics
from sunspots.wire import schemas
from sunspots.wire.schemas import DEAD_LETTER_REASONS, SchemaError
from tests.unit.fuzzing import (
    TODAY,
    observation_stream,
    processor_settings,
    request_bytes,
    request_keys,
    valid_run_settings,
    valid_runs,
)
from tests.unit.records import Record

pytestmark = pytest.mark.unit

TOPICS = Topics()
MAX_SERIES = 3
HEADERS = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas/dead-letter-headers.json").read_text()
)
FORECASTER = load_forecaster()
CLASSIFIER = load_classifier()


def _batches(records: list[tuple[bytes | None, bytes | None]], cuts: list[int]) -> list[list]:
    stream = [Record(v, k, i) for i, (k, v) in enumerate(records)]
    bounds = sorted({0, len(stream), *(c % (len(stream) + 1) for c in cuts)})
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def _dead_letters(outputs: list[Output], records: list[Record]) -> dict[int, str]:
    """source offset -> reason of each dead letter; checks their headers and bytes."""
    by_offset = {r.offset: r for r in records}
    found: dict[int, str] = {}
    for out in outputs:
        if out.topic != TOPICS.dead_letter:
            continue
        headers = {name: value.decode("utf-8") for name, value in out.headers}
        jsonschema.validate(headers, HEADERS)
        offset = int(headers["source_offset"])
        assert offset not in found, f"record {offset} dead-lettered twice"
        assert (out.key, out.value) == (by_offset[offset].key, by_offset[offset].value)
        assert "original_value_bytes" not in headers  # no record here is large enough
        found[offset] = headers["reason"]
    return found


def _round_trip(out: Output, struct: type[msgspec.Struct]) -> msgspec.Struct:
    message = msgspec.json.decode(out.value, type=struct)
    assert msgspec.json.encode(message) == out.value
    return message


@st.composite
def forecaster_input(draw: st.DrawFn) -> list[list[Record]]:
    return _batches(draw(observation_stream()), draw(st.lists(st.integers(0, 100), max_size=3)))


@processor_settings()
@given(batches=forecaster_input())
# A 400-digit sunspot number (OverflowError), a lone surrogate as series with no key (an
# output key that cannot be encoded), nesting past the parser's recursion limit.
@example(
    batches=[
        [
            Record(
                b'{"series":"a","date":"2000-01-01","sunspot_number":1' + b"0" * 400 + b","
                b'"std_dev":null,"observations":1,"provisional":false}',
                None,
                0,
            ),
            Record(
                b'{"series":"\\ud800","date":"2000-01-01","sunspot_number":1,'
                b'"std_dev":null,"observations":1,"provisional":false}',
                None,
                1,
            ),
            Record(b"[" * 50_000, b"a", 2),
        ]
    ]
)
def test_forecaster_turns_every_record_into_outputs_or_one_dead_letter(batches) -> None:
    made = _check_forecaster(batches)
    _record(made)


def _record(made: Counter[str]) -> None:
    """Tell Hypothesis's statistics (`--hypothesis-show-statistics`) how deep an example went."""
    event("forecast made" if made[TOPICS.forecasts] else "no forecast")
    event("evaluation made" if made[TOPICS.evaluations] else "no evaluation")
    target(float(made[TOPICS.evaluations]), label="evaluations")


# The share of valid-run examples that must reach a forecast and an evaluation: a strategy that
# stopped filling windows (or a forecaster that stopped forecasting) falls far below it.
DEEP_SHARE = 0.3


@st.composite
def valid_run_input(draw: st.DrawFn) -> list[list[Record]]:
    return _batches(draw(valid_runs()), draw(st.lists(st.integers(0, 100), max_size=3)))


def test_long_valid_runs_reach_forecasts_and_evaluations() -> None:
    """The invariants above on long, mostly valid runs, where the deep paths run: windows fill,
    forecasts are made and scored across batch boundaries. At least DEEP_SHARE of the examples
    must have made a forecast and an evaluation, or the round trips were never checked."""
    reached: list[bool] = []

    @valid_run_settings()
    @given(batches=valid_run_input())
    def run(batches: list[list[Record]]) -> None:
        made = _check_forecaster(batches)
        _record(made)
        reached.append(made[TOPICS.forecasts] > 0 and made[TOPICS.evaluations] > 0)

    run()
    share = sum(reached) / len(reached)
    assert share >= DEEP_SHARE, f"{share:.0%} of {len(reached)} examples forecast and scored"


def _check_forecaster(batches: list[list[Record]]) -> Counter[str]:
    """Run the batches through a contained forecaster, checking every invariant; the number
    of outputs per topic."""
    registry = CollectorRegistry()
    metrics = ForecasterMetrics(registry)
    forecaster = Forecaster(
        FORECASTER, TOPICS, metrics, rolling=5, today=lambda: TODAY, max_series=MAX_SERIES
    )
    contained = Contained(forecaster)
    dead_total = applied_total = 0
    made: Counter[str] = Counter()
    for batch in batches:
        outputs = contained.process(batch)
        dead = _dead_letters(outputs, batch)
        for record in batch:
            try:
                schemas.decode_observation(record.value, record.key, TODAY)
            except SchemaError as exc:
                assert dead.get(record.offset) == exc.reason
            else:
                if record.offset in dead:
                    assert dead[record.offset] in {"duplicate", "out_of_order", "too_many_series"}
                else:
                    applied_total += 1
        assert set(dead.values()) <= set(DEAD_LETTER_REASONS)
        dead_total += len(dead)
        for out in outputs:
            if out.topic == TOPICS.dead_letter:
                continue
            struct = {
                TOPICS.forecasts: schemas.Forecast,
                TOPICS.evaluations: schemas.Evaluation,
                TOPICS.state: schemas.SeriesSnapshot,
            }[out.topic]
            message = _round_trip(out, struct)
            made[out.topic] += 1
            assert out.key == message.series.encode("utf-8")
        assert len(forecaster.series) <= MAX_SERIES
    counted = Counter(
        {
            s.labels["reason"]: s.value
            for m in registry.collect()
            if m.name == "sunspot_dead_letters"
            for s in m.samples
            if s.name.endswith("_total")
        }
    )
    assert sum(counted.values()) == dead_total
    observed = sum(
        s.value
        for m in registry.collect()
        if m.name == "sunspot_observations"
        for s in m.samples
        if s.name.endswith("_total")
    )
    assert observed == applied_total
    return made


@st.composite
def classifier_input(draw: st.DrawFn) -> list[list[Record]]:
    records = draw(st.lists(st.tuples(request_keys, request_bytes), max_size=40))
    return _batches(records, draw(st.lists(st.integers(0, 100), max_size=3)))


@processor_settings()
@given(batches=classifier_input())
# A lone surrogate as id with no key (the answer's key cannot be encoded); nesting past the
# parser's recursion limit; a key that is not UTF-8.
@example(
    batches=[
        [
            Record(b'{"id":"\\ud800","sequence":[1]}', None, 0),
            Record(b"[" * 50_000, b"k", 1),
            Record(b'{"id":"r","sequence":[1]}', b"\xff", 2),
        ]
    ]
)
def test_classifier_answers_every_request_or_dead_letters_it_once(batches) -> None:
    registry = CollectorRegistry()
    classifier = Classifier(CLASSIFIER, TOPICS, ClassifierMetrics(registry))
    contained = Contained(classifier)
    for batch in batches:
        outputs = contained.process(batch)
        dead = _dead_letters(outputs, batch)
        answers = [o for o in outputs if o.topic == TOPICS.classifier_predictions]
        assert len(answers) + len(dead) == len(batch)
        for out in answers:
            prediction = _round_trip(out, schemas.ClassifierPrediction)
            assert prediction.predicted_class in CLASSIFIER.classes
            assert len(prediction.probabilities) == len(CLASSIFIER.classes)
            assert out.key is not None and out.key.decode("utf-8")
        for record in batch:
            try:
                schemas.decode_classifier_request(record.value, CLASSIFIER.max_value)
            except SchemaError as exc:
                assert dead.get(record.offset) == exc.reason
    assert registry.get_sample_value("classifier_requests_total") == sum(map(len, batches))
