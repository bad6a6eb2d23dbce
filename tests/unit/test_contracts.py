"""The committed JSON Schemas under schemas/ are current, valid, and say what the decoders do."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import jsonschema
import pytest
from jsonschema import Draft202012Validator

from sunspots.wire import contracts, schemas

pytestmark = pytest.mark.unit

FOLDER = Path(__file__).resolve().parents[2] / "schemas"
TODAY = date(2026, 11, 29)


def _validator(name: str) -> Draft202012Validator:
    document = json.loads((FOLDER / name).read_text())
    return Draft202012Validator(document, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_the_committed_documents_are_the_generated_ones() -> None:
    assert contracts.stale(FOLDER) == [], "run: python -m sunspots.wire.contracts --write schemas/"
    assert sorted(p.name for p in FOLDER.glob("*.json")) == sorted(contracts.documents())


def test_the_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    assert contracts.main(["--write", str(tmp_path)]) == 0
    assert contracts.main(["--check", str(tmp_path)]) == 0
    (tmp_path / "forecast.json").write_text("{}\n")
    assert contracts.main(["--check", str(tmp_path)]) == 1


@pytest.mark.parametrize("name", sorted(contracts.documents()))
def test_every_document_is_a_valid_json_schema(name: str) -> None:
    Draft202012Validator.check_schema(json.loads((FOLDER / name).read_text()))


def _forecast() -> schemas.Forecast:
    return schemas.Forecast(
        "silso", date(2000, 1, 11), 51.5, date(2000, 1, 10), "lstm-w10-abc", 40.0, 63.0, 50.0
    )


def test_messages_the_code_writes_validate() -> None:
    obs = schemas.Observation("silso", date(2000, 1, 1), None, None, 0, True)
    fc = _forecast()
    samples = {
        "observation.json": obs.encode(),
        "forecast.json": fc.encode(),
        "evaluation.json": schemas.Evaluation.score(fc, 60.0).encode(),
        "classifier-request.json": schemas.encode_classifier_request("r1", [0, 1]),
        "classifier-prediction.json": schemas.ClassifierPrediction(
            7, 1, [0.1, 0.8, 0.05, 0.05], "clf-abc"
        ).encode(),
        "state.json": schemas.SeriesSnapshot(
            "silso", 12, schemas.WindowState(10, date(2000, 1, 10), [1.0] * 10, fc)
        ).encode(),
    }
    for name, raw in samples.items():
        _validator(name).validate(json.loads(raw))


def test_the_minimal_observation_the_decoder_takes_the_schema_takes() -> None:
    """The published document and the decoder agree on the minimum: series, date and number,
    nothing unknown."""
    minimal = {"series": "silso", "date": "2000-01-01", "sunspot_number": None}
    validator = _validator("observation.json")
    validator.validate(minimal)
    schemas.decode_observation(json.dumps(minimal), today=TODAY)
    for name in minimal:
        short = {k: v for k, v in minimal.items() if k != name}
        assert not validator.is_valid(short)
        with pytest.raises(schemas.SchemaError, match="missing_field"):
            schemas.decode_observation(json.dumps(short), today=TODAY)
    assert not validator.is_valid({**minimal, "comment": "hi"})


def test_inputs_may_omit_the_schema_version_outputs_may_not() -> None:
    request = {"id": "r1", "sequence": [[0], [1]]}
    _validator("classifier-request.json").validate(request)
    forecast = json.loads(_forecast().encode())
    del forecast["schema_version"]
    with pytest.raises(jsonschema.ValidationError):
        _validator("forecast.json").validate(forecast)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sunspot_number": -1.0}, "negative_value"),
        ({"sunspot_number": 1000.5}, "absurd_value"),
        ({"observations": 100_001}, "absurd_value"),
        ({"series": ""}, "bad_id"),
        ({"series": "x" * 257}, "bad_id"),
        ({"series": "tab\there"}, "bad_id"),
        ({"series": "line\n"}, "bad_id"),
        ({"date": "2001-02-30"}, "bad_date"),
        ({"provisional": 0}, "wrong_type"),
        ({"comment": "hi"}, "unknown_field"),
        ({"schema_version": 2}, "unknown_version"),
    ],
)
def test_what_the_decoder_rejects_the_schema_rejects(change: dict, reason: str) -> None:
    body = json.loads(schemas.Observation("silso", date(2000, 1, 1), 5.0, 1.0, 3, False).encode())
    body.update(change)
    with pytest.raises(schemas.SchemaError) as info:
        schemas.decode_observation(json.dumps(body), today=TODAY)
    assert info.value.reason == reason
    assert not _validator("observation.json").is_valid(body)


def test_dead_letter_headers_document_names_every_reason() -> None:
    document = json.loads((FOLDER / contracts.DEAD_LETTER_HEADERS).read_text())
    assert document["properties"]["reason"]["enum"] == list(schemas.DEAD_LETTER_REASONS)
    headers = {
        "reason": "internal_error",
        "detail": "OverflowError: int too large",
        "source_topic": "sunspots.observations",
        "source_partition": "0",
        "source_offset": "12",
    }
    _validator(contracts.DEAD_LETTER_HEADERS).validate(headers)
    with pytest.raises(jsonschema.ValidationError):
        _validator(contracts.DEAD_LETTER_HEADERS).validate({**headers, "reason": "whatever"})
