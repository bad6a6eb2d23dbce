"""Every schema's accept and reject cases, with the reason each rejection carries."""

from __future__ import annotations

import json
from datetime import date

import pytest

from sunspots import schemas
from sunspots.schemas import SchemaError

TODAY = date(2026, 11, 29)
OBS = {
    "schema_version": 1,
    "series": "silso",
    "date": "2000-01-01",
    "sunspot_number": 50.0,
    "std_dev": 5.5,
    "observations": 12,
    "provisional": False,
}


def _obs(**changes: object) -> bytes:
    body = {**OBS, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_observation_round_trip() -> None:
    obs = schemas.decode_observation(_obs(), key=b"silso", today=TODAY)
    assert obs == schemas.Observation("silso", date(2000, 1, 1), 50.0, 5.5, 12, False)
    assert schemas.decode_observation(obs.encode(), today=TODAY) == obs


def test_missing_value_is_null_and_ints_are_numbers() -> None:
    obs = schemas.decode_observation(_obs(sunspot_number=None, std_dev=None), today=TODAY)
    assert obs.sunspot_number is None and obs.std_dev is None
    assert schemas.decode_observation(_obs(sunspot_number=7), today=TODAY).sunspot_number == 7.0


def test_schema_version_defaults_to_one() -> None:
    assert schemas.decode_observation(_obs(schema_version=...), today=TODAY).series == "silso"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json", "not_json"),
        (b"\xff\xfe", "not_json"),
        (None, "not_json"),
        (b"[1, 2]", "not_object"),
        (_obs(schema_version=2), "unknown_version"),
        (_obs(schema_version="1"), "unknown_version"),
        (_obs(date=...), "missing_field"),
        (_obs(extra=1), "unknown_field"),
        (_obs(sunspot_number="12"), "wrong_type"),
        (_obs(sunspot_number=True), "wrong_type"),
        (_obs(observations=1.5), "wrong_type"),
        (_obs(provisional=0), "wrong_type"),
        (_obs(series=""), "wrong_type"),
        (
            b'{"series":"s","date":"2000-01-01","sunspot_number":NaN,"std_dev":1,'
            b'"observations":1,"provisional":false}',
            "non_finite",
        ),
        (
            b'{"series":"s","date":"2000-01-01","sunspot_number":Infinity,"std_dev":1,'
            b'"observations":1,"provisional":false}',
            "non_finite",
        ),
        (_obs(sunspot_number=-3), "negative_value"),
        (_obs(std_dev=-0.5), "negative_value"),
        (_obs(observations=-1), "negative_value"),
        (_obs(sunspot_number=1e6), "absurd_value"),
        (_obs(date="2000-13-01"), "bad_date"),
        (_obs(date="01/02/2000"), "bad_date"),
        (_obs(date=20000101), "bad_date"),
        (_obs(date="1200-01-01"), "bad_date"),
        (_obs(date="2031-01-01"), "future_date"),
        (_obs(series="x" * 70_000), "oversized"),
    ],
)
def test_observation_rejects(raw: bytes | None, reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        schemas.decode_observation(raw, today=TODAY)
    assert info.value.reason == reason
    assert info.value.detail


def test_observation_key_must_match_series() -> None:
    with pytest.raises(SchemaError) as info:
        schemas.decode_observation(_obs(), key=b"other", today=TODAY)
    assert info.value.reason == "key_mismatch"


def _forecast() -> schemas.Forecast:
    return schemas.Forecast(
        "silso", date(2000, 1, 11), 51.5, date(2000, 1, 10), "lstm-w10-abc", 40.0, 63.0, 50.0
    )


def test_forecast_round_trip_and_extra_fields_allowed() -> None:
    fc = _forecast()
    body = json.loads(fc.encode())
    assert body["target_date"] == "2000-01-11" and body["window_end"] == "2000-01-10"
    assert schemas.decode_forecast(fc.encode()) == fc
    body["something_new"] = [1, 2]
    assert schemas.decode_forecast(json.dumps(body)).forecast == 51.5


@pytest.mark.parametrize(
    "missing", ["series", "target_date", "forecast", "window_end", "model_version"]
)
def test_forecast_requires_fields(missing: str) -> None:
    body = json.loads(_forecast().encode())
    del body[missing]
    with pytest.raises(SchemaError, match="missing_field"):
        schemas.decode_forecast(json.dumps(body))


def test_evaluation_error_is_actual_minus_forecast() -> None:
    ev = schemas.Evaluation("silso", date(2000, 1, 11), 51.5, 60.0, "v", 40.0, 55.0, 50.0)
    body = schemas.decode_evaluation(ev.encode())
    assert body["error"] == pytest.approx(8.5)
    assert body["persistence_error"] == pytest.approx(10.0)
    assert not ev.covered
    del body["actual"]
    with pytest.raises(SchemaError, match="missing_field"):
        schemas.decode_evaluation(json.dumps(body))


@pytest.mark.parametrize(
    ("sequence", "expected"),
    [
        ([0, 1, 1, 0, 0, 0], (0, 1, 1, 0, 0, 0)),
        ([[0], [0], [0], [0], [0], [1]], (0, 0, 0, 0, 0, 1)),
        ([3.0, 2], (3, 2)),
    ],
)
def test_classifier_request_forms(sequence: list, expected: tuple) -> None:
    req = schemas.decode_classifier_request(json.dumps({"id": "r1", "sequence": sequence}))
    assert req == schemas.ClassifierRequest("r1", expected)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"sequence": [1]}, "missing_field"),
        ({"id": None, "sequence": [1]}, "wrong_type"),
        ({"id": True, "sequence": [1]}, "wrong_type"),
        ({"id": "a", "sequence": []}, "bad_sequence"),
        ({"id": "a", "sequence": [1, 9]}, "bad_sequence"),
        ({"id": "a", "sequence": [1, -1]}, "bad_sequence"),
        ({"id": "a", "sequence": [[1, 2]]}, "bad_sequence"),
        ({"id": "a", "sequence": [0.5]}, "wrong_type"),
        ({"id": "a", "sequence": ["1"]}, "wrong_type"),
        ({"id": "a", "sequence": "0,1"}, "wrong_type"),
        ({"id": "a", "sequence": [0] * 5000}, "oversized"),
        ({"id": "a", "sequence": [0], "x": 1}, "unknown_field"),
    ],
)
def test_classifier_request_rejects(body: dict, reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        schemas.decode_classifier_request(json.dumps(body))
    assert info.value.reason == reason


def test_classifier_prediction_round_trip() -> None:
    pred = schemas.ClassifierPrediction(7, 1, [0.1, 0.8, 0.05, 0.05], "clf-abc")
    assert schemas.decode_classifier_prediction(pred.encode()) == pred
    assert json.loads(pred.encode())["schema_version"] == 1
