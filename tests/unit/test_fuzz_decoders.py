"""Property-based fuzzing of the input decoders: any bytes give a valid value or SchemaError.

Invariants, for every payload and key a producer could send:
- the decoder returns a valid value or raises `SchemaError` with a reason from DEAD_LETTER_REASONS —
  never another exception;
- a value it returns meets the schema: ids of 1..256 characters without control characters,
  finite numbers within their bounds, dates within range, a key equal to the series;
- the value encodes, and decodes back to an equal value;
- and the decoder is not merely safe but right: every valid observation (full, with null or
  without its optional fields), under its series as key or none, decodes to what was sent.

Each crash the fuzzer found in the decoders before they moved to msgspec is kept as an
`@example`, so it is tried first on every run.
"""

from __future__ import annotations

import json
import math
import re

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from sunspots.wire import schemas
from sunspots.wire.schemas import DEAD_LETTER_REASONS, SchemaError
from tests.unit.fuzzing import (
    TODAY,
    json_values,
    object_text,
    observation_bytes,
    observation_pairs,
    request_bytes,
    request_keys,
    valid_observations,
)

pytestmark = pytest.mark.unit

OBS = (
    b'{"series":"silso","date":"2001-01-07","sunspot_number":%s,"std_dev":0.5,'
    b'"observations":30,"provisional":false}'
)


def _valid_id(text: str) -> bool:
    return 1 <= len(text) <= schemas.MAX_ID_LENGTH and re.search(schemas.ID_PATTERN, text)


def _check_observation(raw: bytes | None, key: bytes | None) -> None:
    try:
        obs = schemas.decode_observation(raw, key, TODAY)
    except SchemaError as exc:
        assert exc.reason in DEAD_LETTER_REASONS and exc.detail
        event(f"rejected: {exc.reason}")
        return
    event("accepted")
    assert _valid_id(obs.series)
    assert key is None or key.decode("utf-8") == obs.series
    assert schemas.EARLIEST_DATE <= obs.date <= TODAY
    for number in (obs.sunspot_number, obs.std_dev):
        assert number is None or (math.isfinite(number) and 0 <= number <= 1000)
    assert obs.observations is None or 0 <= obs.observations <= schemas.MAX_OBSERVERS
    assert obs.provisional is None or isinstance(obs.provisional, bool)
    assert schemas.decode_observation(obs.encode(), key, TODAY) == obs


# The crashes found, kept as regression examples. In the hand-written decoder: a 400-digit
# integer where a float belongs (OverflowError in math.isfinite), nesting deeper than the JSON
# parser recurses (RecursionError), a lone surrogate as series (accepted, then unencodable as
# a key). In the msgspec decoder: deep nesting as the value of `schema_version`, which msgspec
# skips by recursing (RecursionError).
@given(raw=observation_bytes, key=st.none() | st.just(b"silso") | st.binary(max_size=20))
@example(raw=OBS % (b"1" + b"0" * 400), key=None)
@example(raw=OBS % (b"-1" + b"0" * 400), key=b"silso")
@example(raw=OBS.replace(b"0.5", b"1" + b"0" * 400), key=None)
@example(raw=b"[" * 100_000, key=None)
@example(raw=OBS % (b"[" * 30_000 + b"]" * 30_000), key=None)
@example(raw=OBS.replace(b'"silso"', b'"\\ud800"'), key=None)
@example(raw=OBS % b"46", key=b"\xff")
@example(raw=b'{"schema_version":' + b"[" * 50_000, key=None)
@example(raw=b'{"schema_version":' + b'{"a":' * 20_000, key=None)
def test_observation_decoder_gives_a_value_or_a_schema_error(raw, key) -> None:
    _check_observation(raw, key)


@given(pairs=valid_observations, keyed=st.booleans())
@example(pairs=observation_pairs(optional="minimal"), keyed=True)
def test_every_valid_observation_decodes_to_what_was_sent(pairs, keyed) -> None:
    sent = {name: json.loads(text) for name, text in pairs}
    key = sent["series"].encode() if keyed else None
    obs = schemas.decode_observation(object_text(pairs).encode(), key, TODAY)
    assert (obs.series, obs.date.isoformat()) == (sent["series"], sent["date"])
    assert obs.sunspot_number == sent["sunspot_number"]
    for optional in ("std_dev", "observations", "provisional"):
        assert getattr(obs, optional) == sent.get(optional)
    event("minimal" if "std_dev" not in sent else "full or null")


@given(value=json_values)
def test_any_json_value_as_an_observation(value) -> None:
    _check_observation(json.dumps(value, allow_nan=True).encode(), None)


def _check_request(raw: bytes | None) -> None:
    try:
        request = schemas.decode_classifier_request(raw, max_value=3)
    except SchemaError as exc:
        assert exc.reason in DEAD_LETTER_REASONS and exc.detail
        return
    if isinstance(request.id, str):
        assert _valid_id(request.id)
    else:
        assert abs(request.id) <= schemas.MAX_SAFE_INTEGER
    assert 1 <= len(request.sequence) <= schemas.MAX_SEQUENCE_LENGTH
    assert all(type(step) is int and 0 <= step <= 3 for step in request.sequence)
    again = schemas.decode_classifier_request(
        schemas.encode_classifier_request(request.id, list(request.sequence))
    )
    assert again == request


# Found before msgspec: deep nesting (RecursionError), a step of 5000 digits (repr in the
# error message), ids of lone surrogates and huge integers (published as keys and answers).
@given(raw=request_bytes)
@example(raw=b"[" * 100_000)
@example(raw=b'{"id":"r","sequence":[' + b"[" * 30_000 + b"]" * 30_000 + b"]}")
@example(raw=b'{"id":"r","sequence":[1' + b"0" * 5000 + b"]}")
@example(raw=b'{"id":"\\ud800","sequence":[1]}')
@example(raw=b'{"id":1' + b"0" * 400 + b',"sequence":[1]}')
@example(raw=b'{"schema_version":' + b"[" * 50_000)
def test_classifier_request_decoder_gives_a_value_or_a_schema_error(raw) -> None:
    _check_request(raw)


@given(value=json_values)
def test_any_json_value_as_a_classifier_request(value) -> None:
    _check_request(json.dumps(value, allow_nan=True).encode())


@given(key=request_keys)
def test_a_key_is_utf8_text_or_bad_key(key) -> None:
    if key is None:
        return
    try:
        text = schemas.check_key(key)
    except SchemaError as exc:
        assert exc.reason == "bad_key"
        return
    assert text.encode("utf-8") == key and len(key) <= schemas.MAX_KEY_BYTES


@given(text=st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300))
@example(text="abc\n")
@example(text="\x85")
def test_the_published_id_pattern_is_the_rule_the_decoder_applies(text) -> None:
    body = b'{"id":%s,"sequence":[1]}' % json.dumps(text).encode()
    try:
        schemas.decode_classifier_request(body)
        accepted = True
    except SchemaError:
        accepted = False
    assert accepted == bool(_valid_id(text))
