"""Every schema's accept and reject cases, with the reason each rejection carries."""

from __future__ import annotations

import json
from datetime import date

import pytest

from sunspots.wire import schemas
from sunspots.wire.schemas import SchemaError

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


def test_the_reasons_are_the_readmes() -> None:
    """The dead-letter reasons, written out as the table of docs/guarantees.md gives them: dashboards and
    replays select by them."""
    assert schemas.DEAD_LETTER_REASONS == (
        "not_json", "not_object", "unknown_version", "missing_field", "unknown_field",
        "wrong_type", "non_finite", "negative_value", "absurd_value", "bad_date", "future_date",
        "oversized", "bad_id", "bad_key", "key_mismatch", "duplicate", "out_of_order",
        "bad_sequence", "too_many_series", "internal_error",
    )  # fmt: skip


def test_observation_round_trip() -> None:
    obs = schemas.decode_observation(_obs(), key=b"silso", today=TODAY)
    assert obs == schemas.Observation("silso", date(2000, 1, 1), 50.0, 5.5, 12, False)
    assert schemas.decode_observation(obs.encode(), today=TODAY) == obs


def test_missing_value_is_null_and_ints_are_numbers() -> None:
    obs = schemas.decode_observation(_obs(sunspot_number=None, std_dev=None), today=TODAY)
    assert obs.sunspot_number is None and obs.std_dev is None
    assert schemas.decode_observation(_obs(sunspot_number=7), today=TODAY).sunspot_number == 7.0


def test_a_minimal_observation_is_series_date_and_number() -> None:
    """Another team's producer may send only the three fields the forecaster reads: the rest
    read as null, whether absent or null."""
    minimal = {"series": "silso", "date": "2000-01-01", "sunspot_number": 50.0}
    obs = schemas.decode_observation(json.dumps(minimal).encode(), key=b"silso", today=TODAY)
    assert obs == schemas.Observation("silso", date(2000, 1, 1), 50.0, None, None, None)
    assert (obs.std_dev, obs.observations, obs.provisional) == (None, None, None)
    nulls = _obs(std_dev=None, observations=None, provisional=None)
    assert schemas.decode_observation(nulls, today=TODAY) == obs
    assert schemas.decode_observation(obs.encode(), today=TODAY) == obs


@pytest.mark.parametrize("required", ["series", "date", "sunspot_number"])
def test_the_three_required_fields_stay_required(required: str) -> None:
    minimal = {"series": "silso", "date": "2000-01-01", "sunspot_number": 50.0}
    del minimal[required]
    with pytest.raises(SchemaError) as info:
        schemas.decode_observation(json.dumps(minimal).encode(), today=TODAY)
    assert info.value.reason == "missing_field"


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
        (_obs(std_dev=..., observations=..., provisional=..., extra=1), "unknown_field"),
        (_obs(sunspot_number="12"), "wrong_type"),
        (_obs(sunspot_number=True), "wrong_type"),
        (_obs(observations=1.5), "wrong_type"),
        (_obs(provisional=0), "wrong_type"),
        (_obs(series=""), "bad_id"),
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
    fc = schemas.Forecast(
        "silso", date(2000, 1, 11), 51.5, date(2000, 1, 10), "v", 40.0, 55.0, 50.0
    )
    ev = schemas.Evaluation.score(fc, 60.0)
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
        ({"id": "", "sequence": [1]}, "bad_id"),
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


HUGE = b"1" + b"0" * 400


@pytest.mark.parametrize(
    ("raw", "key", "reason"),
    [
        # Numbers past the float range, written as integers or with exponents.
        (
            _obs(sunspot_number=0).replace(b'"sunspot_number": 0', b'"sunspot_number": ' + HUGE),
            None,
            "absurd_value",
        ),
        (_obs(std_dev=0).replace(b'"std_dev": 0', b'"std_dev": -' + HUGE), None, "absurd_value"),
        (
            _obs(observations=0).replace(b'"observations": 0', b'"observations": ' + HUGE),
            None,
            "absurd_value",
        ),
        (
            _obs(sunspot_number=0).replace(b'"sunspot_number": 0', b'"sunspot_number": 1e400'),
            None,
            "absurd_value",
        ),
        (
            _obs(sunspot_number=0).replace(b'"sunspot_number": 0', b'"sunspot_number": -Infinity'),
            None,
            "non_finite",
        ),
        # Nesting deeper than any parser recurses, at the top and where the tag is read.
        (b"[" * 60_000, None, "not_object"),
        (b'{"schema_version":' + b"[" * 50_000, None, "oversized"),
        # Ids: control characters, a lone surrogate, too long; keys that are not UTF-8.
        (_obs(series="sil\x00so"), None, "bad_id"),
        (_obs(series="silso\n"), None, "bad_id"),
        (_obs(series="\x85"), None, "bad_id"),
        (_obs(series="x" * 257), None, "bad_id"),
        (_obs().replace(b'"silso"', b'"\\ud800"'), None, "not_json"),
        (_obs(), b"\xff\xfe", "bad_key"),
        (_obs(), b"silso" * 300, "bad_key"),
        (_obs(), "silso\ud800", "bad_key"),
        # Text in other encodings than UTF-8.
        (_obs().decode().encode("utf-16"), None, "not_json"),
    ],
)
def test_observations_no_earlier_decoder_survived(raw, key, reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        schemas.decode_observation(raw, key=key, today=TODAY)
    assert info.value.reason == reason


def test_ids_hold_any_printable_unicode() -> None:
    for series in ("\u00e9t\u00e9", "\u6f22\U0001f600", "a b", "x" * 256, "\u202e"):
        obs = schemas.decode_observation(_obs(series=series), key=series.encode(), today=TODAY)
        assert obs.series == series


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"id":1' + b"0" * 400 + b',"sequence":[1]}', "bad_id"),
        (b'{"id":9007199254740992,"sequence":[1]}', "bad_id"),
        (b'{"id":"a\\u0007","sequence":[1]}', "bad_id"),
        (b'{"id":"r","sequence":[1' + b"0" * 5000 + b"]}", "bad_sequence"),
        (b'{"id":"r","sequence":[1e400]}', "bad_sequence"),
        (b'{"id":"r","sequence":[' + b"[" * 50_000 + b"]}", "wrong_type"),
    ],
)
def test_classifier_requests_no_earlier_decoder_survived(body: bytes, reason: str) -> None:
    with pytest.raises(SchemaError) as info:
        schemas.decode_classifier_request(body)
    assert info.value.reason == reason


def test_an_output_with_a_non_finite_number_cannot_be_made() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        schemas.Forecast("s", date(2000, 1, 2), float("nan"), date(2000, 1, 1), "v", 0.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="non-finite"):
        schemas.ClassifierPrediction("r", 1, [0.5, float("inf")], "v")
