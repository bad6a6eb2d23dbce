"""Dead letters: the original bytes, headers that follow the published schema, bounded size."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from consumer.output import dead_letter
from sunspots.wire.schemas import MAX_DETAIL_BYTES, MAX_KEPT_BYTES, MAX_KEY_BYTES, MAX_MESSAGE_BYTES
from tests.unit.records import Record

pytestmark = pytest.mark.unit

HEADERS = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas/dead-letter-headers.json").read_text()
)


def _headers(out) -> dict[str, str]:
    headers = {name: value.decode("utf-8") for name, value in out.headers}
    jsonschema.validate(headers, HEADERS)
    return headers


def test_a_dead_letter_keeps_the_record_and_says_why_and_where() -> None:
    record = Record(b"\xff not json", b"\xfe key", 41, partition=3)
    out = dead_letter("sunspots.dead-letter", record, "not_json", "bad bytes")
    assert (out.topic, out.key, out.value) == (
        "sunspots.dead-letter",
        b"\xfe key",
        b"\xff not json",
    )
    assert _headers(out) == {
        "reason": "not_json",
        "detail": "bad bytes",
        "source_topic": "sunspots.observations",
        "source_partition": "3",
        "source_offset": "41",
    }


def test_a_long_detail_is_cut_on_a_character_boundary() -> None:
    out = dead_letter("dl", Record(b"v", None, 0), "wrong_type", "é" * MAX_DETAIL_BYTES)
    detail = dict(out.headers)["detail"]
    assert len(detail) <= MAX_DETAIL_BYTES and detail.decode("utf-8") == "é" * (
        MAX_DETAIL_BYTES // 2
    )


def test_a_record_too_large_to_publish_whole_is_kept_cut_with_its_sizes() -> None:
    value, key = b"v" * (MAX_KEPT_BYTES + 1), b"k" * 5000
    out = dead_letter("dl", Record(value, key, 7), "oversized", "too big")
    assert out.value == value[:MAX_MESSAGE_BYTES] and out.key == key[:MAX_KEY_BYTES]
    headers = _headers(out)
    assert headers["original_value_bytes"] == str(len(value))
    assert headers["original_key_bytes"] == "5000"
    whole = dead_letter("dl", Record(b"v" * (MAX_KEPT_BYTES - 10), b"k" * 10, 8), "oversized", "")
    assert len(whole.value) == MAX_KEPT_BYTES - 10 and "original_value_bytes" not in _headers(whole)
