"""The model record: a round trip of the committed artifacts, and every refusal as a value."""

from __future__ import annotations

import io
import json
from typing import Any

import msgspec
import numpy as np
import pytest

from sunspots.domain import artifact
from sunspots.domain.artifact import (
    DEFAULT_CLASSIFIER,
    DEFAULT_FORECASTER,
    ArtifactError,
    ForecasterModel,
    metadata_path,
)
from sunspots.lifecycle import records as registry
from sunspots.lifecycle.records import (
    CHALLENGER,
    CHAMPION,
    ModelRecord,
    Published,
    Refused,
    Retired,
)


def artifact_parts(path=DEFAULT_FORECASTER) -> tuple[dict[str, Any], bytes]:
    json_path = metadata_path(path)
    meta = json.loads(json_path.read_text())
    return meta, (json_path.parent / meta["weights_file"]).read_bytes()


def forged(meta: dict[str, Any], weights: bytes, role: str = CHAMPION, **fields: Any) -> bytes:
    """A record with hashes that match its content, built without any of the checks."""
    meta = {**meta, "weights_sha256": registry.sha256(weights)}
    text = json.dumps(meta)
    record = ModelRecord(
        record_version=registry.RECORD_VERSION,
        role=role,
        kind=str(meta.get("kind")),
        model_version=str(meta.get("model_version")),
        metadata=text,
        metadata_sha256=registry.sha256(text.encode()),
        weights=weights,
        weights_sha256=registry.sha256(weights),
        published_at="2026-01-01T00:00:00+00:00",
        published_by="test",
    )
    return msgspec.json.encode(msgspec.structs.replace(record, **fields))


def npz(arrays: dict[str, np.ndarray]) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def arrays_of(weights: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(weights)) as data:
        return {key: data[key] for key in data.files}


def refusal(key: bytes | None, value: bytes | None) -> Refused:
    entry = registry.read_entry(key, value)
    assert isinstance(entry, Refused), entry
    assert entry.reason in registry.RECORD_REASONS
    return entry


def test_a_published_forecaster_round_trips_through_its_record() -> None:
    meta, weights = artifact_parts()
    text = metadata_path(DEFAULT_FORECASTER).read_text()
    record = registry.make_record(CHAMPION, text, weights, published_by="ci")
    value = registry.encode(record)
    entry = registry.read_entry(b"champion", value)
    assert isinstance(entry, Published)
    assert entry.role == CHAMPION and entry.model_version == meta["model_version"]
    assert isinstance(entry.model, ForecasterModel)
    window = np.linspace(50, 60, entry.model.window)
    assert entry.model.predict(window[None, :]) == pytest.approx(
        artifact.load_forecaster().predict(window[None, :])
    )
    assert entry.record.published_by == "ci" and entry.record.metadata == text
    assert len(value) < registry.MAX_RECORD_BYTES


def test_the_classifier_travels_too() -> None:
    text = metadata_path(DEFAULT_CLASSIFIER).read_text()
    _, weights = artifact_parts(DEFAULT_CLASSIFIER)
    value = registry.encode(registry.make_record(CHALLENGER, text, weights, "ci"))
    entry = registry.read_entry(b"challenger", value)
    assert isinstance(entry, Published) and entry.kind == artifact.CLASSIFIER_KIND


def test_a_tombstone_retires_its_role() -> None:
    assert registry.read_entry(b"challenger", None) == Retired(CHALLENGER)


def test_a_promotion_keeps_the_model_and_changes_the_role() -> None:
    meta, weights = artifact_parts()
    record = registry.decode(b"challenger", forged(meta, weights, CHALLENGER)).record
    promoted = registry.with_role(record, CHAMPION, "promote")
    entry = registry.read_entry(b"champion", registry.encode(promoted))
    assert isinstance(entry, Published) and entry.model_version == record.model_version
    assert registry.read_entry(b"challenger", registry.encode(promoted)).reason == "unknown_role"


@pytest.mark.parametrize(
    "value",
    [b"", b"\xff\xfe", b"[1, 2]", b'{"model": 1}', b"null", b'{"record_version": 1}'],
)
def test_what_is_not_a_model_record_is_refused(value: bytes) -> None:
    assert refusal(b"champion", value).reason == "not_a_model_record"


def test_another_record_version_is_refused_as_unknown_format() -> None:
    meta, weights = artifact_parts()
    assert refusal(b"champion", forged(meta, weights, record_version=2)).reason == "unknown_format"
    other = json.dumps({"record_version": 3, "model": "elsewhere"}).encode()
    assert refusal(b"champion", other).reason == "unknown_format"


@pytest.mark.parametrize("key", [None, b"", b"winner", b"\xff"])
def test_a_key_that_is_not_a_role_is_refused(key: bytes | None) -> None:
    meta, weights = artifact_parts()
    entry = refusal(key, forged(meta, weights))
    assert entry.reason == "unknown_role" and entry.role is None


def test_a_record_under_another_roles_key_is_refused() -> None:
    meta, weights = artifact_parts()
    entry = refusal(b"champion", forged(meta, weights, CHALLENGER))
    assert entry.reason == "unknown_role" and entry.role == CHAMPION


def test_a_record_past_one_mebibyte_is_refused_unread() -> None:
    entry = refusal(b"champion", b"{" + b" " * registry.MAX_RECORD_BYTES + b"}")
    assert entry.reason == "oversized"


def test_an_artifact_too_large_for_a_record_is_not_published() -> None:
    big = ModelRecord(**{**msgspec.structs.asdict(_valid_record()), "weights": bytes(2**20)})
    with pytest.raises(ArtifactError) as caught:
        registry.encode(big)
    assert caught.value.reason == "oversized"


def _valid_record() -> ModelRecord:
    meta, weights = artifact_parts()
    return registry.decode(b"champion", forged(meta, weights)).record


def test_weights_or_metadata_that_do_not_match_their_hash_are_refused() -> None:
    meta, weights = artifact_parts()
    tampered = bytearray(weights)
    tampered[len(tampered) // 2] ^= 0xFF
    good = forged(meta, weights)
    record = msgspec.json.decode(good)
    record["weights"] = msgspec.json.decode(msgspec.json.encode(bytes(tampered)))
    assert refusal(b"champion", json.dumps(record).encode()).reason == "bad_hash"
    record = msgspec.json.decode(good)
    record["metadata"] = record["metadata"].replace('"window": 10', '"window": 27')
    assert refusal(b"champion", json.dumps(record).encode()).reason == "bad_hash"
    # Hashes the record recomputed, but the metadata still names the original weights.
    text = json.dumps(meta)
    bad = ModelRecord(
        **{
            **msgspec.structs.asdict(_valid_record()),
            "metadata": text,
            "metadata_sha256": registry.sha256(text.encode()),
            "weights": bytes(tampered),
            "weights_sha256": registry.sha256(bytes(tampered)),
        }
    )
    assert refusal(b"champion", msgspec.json.encode(bad)).reason == "bad_hash"


def test_a_model_of_an_unknown_kind_is_refused() -> None:
    meta, weights = artifact_parts()
    entry = refusal(b"champion", forged({**meta, "kind": "image-classifier"}, weights))
    assert entry.reason == "wrong_kind"
    # The record says one kind, the metadata another.
    assert refusal(b"champion", forged(meta, weights, kind="x")).reason == "wrong_kind"


def test_an_unknown_artifact_format_version_is_refused() -> None:
    meta, weights = artifact_parts()
    entry = refusal(b"champion", forged({**meta, "format_version": 99}, weights))
    assert entry.reason == "unknown_format"


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused(bad: float) -> None:
    meta, weights = artifact_parts()
    arrays = arrays_of(weights)
    arrays["dense_0/kernel"][3, 4] = bad
    entry = refusal(b"champion", forged(meta, npz(arrays)))
    assert entry.reason == "non_finite_weights" and "dense_0/kernel" in entry.detail


def test_weights_of_other_shapes_than_the_layers_declare_are_refused() -> None:
    meta, weights = artifact_parts()
    arrays = arrays_of(weights)
    arrays["dense_0/kernel"] = arrays["dense_0/kernel"][:, :16]
    assert refusal(b"champion", forged(meta, npz(arrays))).reason == "bad_shapes"
    layers = [dict(spec) for spec in meta["network"]["layers"]]
    layers[0]["units"] = 32
    other = {**meta, "network": {"layers": layers}}
    assert refusal(b"champion", forged(other, weights)).reason == "bad_shapes"
    arrays = arrays_of(weights)
    arrays["extra/kernel"] = np.zeros((2, 2))
    assert refusal(b"champion", forged(meta, npz(arrays))).reason == "bad_shapes"


def test_weights_that_are_not_an_npz_of_floats_are_refused() -> None:
    meta, weights = artifact_parts()
    assert refusal(b"champion", forged(meta, b"not a zip")).reason == "bad_weights"
    arrays = arrays_of(weights)
    arrays["dense_1/bias"] = np.array([1], dtype=np.int64)
    assert refusal(b"champion", forged(meta, npz(arrays))).reason == "bad_weights"
    arrays = arrays_of(weights)
    del arrays["dense_1/bias"]
    assert refusal(b"champion", forged(meta, npz(arrays))).reason == "bad_weights"


def test_weights_that_expand_past_the_limit_are_refused_before_they_are_read() -> None:
    meta, _ = artifact_parts()
    zeros = np.zeros(artifact.MAX_WEIGHTS_BYTES // 8 + 1)
    out = io.BytesIO()
    np.savez_compressed(out, x=zeros)
    assert len(out.getvalue()) < registry.MAX_RECORD_BYTES // 4
    assert refusal(b"champion", forged(meta, out.getvalue())).reason == "oversized"


@pytest.mark.parametrize(
    "change",
    [
        {"window": 0},
        {"window": True},
        {"interval": {"lower": 5.0, "upper": -5.0}},
        {"scaling": {"target": "level"}},
    ],
)
def test_metadata_out_of_range_is_refused(change: dict[str, Any]) -> None:
    meta, weights = artifact_parts()
    assert refusal(b"champion", forged({**meta, **change}, weights)).reason == "bad_metadata"


def test_metadata_that_is_not_a_json_object_is_refused() -> None:
    meta, weights = artifact_parts()
    record = msgspec.json.decode(forged(meta, weights))
    record["metadata"] = "[1]"
    record["metadata_sha256"] = registry.sha256(b"[1]")
    assert refusal(b"champion", json.dumps(record).encode()).reason == "unreadable"


def test_make_record_refuses_what_a_reader_would_refuse() -> None:
    meta, weights = artifact_parts()
    text = json.dumps({**meta, "kind": "other"})
    with pytest.raises(ArtifactError) as caught:
        registry.make_record(CHAMPION, text, weights, "ci")
    assert caught.value.reason == "wrong_kind"
    with pytest.raises(ArtifactError) as caught:
        registry.make_record("leader", json.dumps(meta), weights, "ci")
    assert caught.value.reason == "unknown_role"


def test_the_file_loader_gives_the_same_reasons() -> None:
    with pytest.raises(ArtifactError) as caught:
        artifact.load_forecaster("/nonexistent/model.json")
    assert caught.value.reason == "not_found"
    with pytest.raises(ArtifactError) as caught:
        artifact.load_forecaster(DEFAULT_CLASSIFIER)
    assert caught.value.reason == "wrong_kind"
