"""The model record: one served model on the models topic, self-describing and verified.

The models topic (`Topics.models`, compacted, one partition) holds at most one live record per
role, its key: `champion` (the model that serves) and `challenger` (a candidate scored beside
it). A record's value is one UTF-8 JSON object (`ModelRecord`): the artifact's metadata as the
exact JSON text of its `.json` file, its weights as the `.npz` bytes (base64 in the JSON), the
sha256 of each, its `record_version`, the role, the model's kind and version, when it was
published and by whom. A tombstone (no value) retires the role.

Policy: a record is read by `read_entry`, which never raises: it returns `Published` (decoded,
every hash checked, the artifact loaded through `sunspots.domain.artifact` with the same checks as a
file), `Retired`, or `Refused` with one word of `RECORD_REASONS` and a detail line, so the caller can
count a refusal and keep its current model. A record is refused when it is larger than
`MAX_RECORD_BYTES` (`oversized`), not a model record at all (`not_a_model_record`), of another
record version (`unknown_format`), under an unknown or mismatched role (`unknown_role`), or of a
hash that does not match (`bad_hash`); or for any of the artifact's own reasons
(`sunspots.domain.artifact.ARTIFACT_REASONS`). `encode` runs the same checks before it publishes, so a bad
artifact never reaches the topic from this code.

Pure: bytes in, values out; nothing here talks to Kafka.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import Struct

from sunspots.domain import artifact
from sunspots.domain.artifact import ArtifactError, Model

RECORD_VERSION = 1
# A record, value bytes, at most this large (the committed artifacts make records of about
# 0.12 and 0.35 MiB). The topic takes records this large (`sunspots.kafka.settings.MODELS_CONFIGS`).
MAX_RECORD_BYTES = 1024 * 1024

CHAMPION, CHALLENGER = "champion", "challenger"
ROLES = (CHAMPION, CHALLENGER)
# The one transactional id the model commands (`sunspots.lifecycle.publishing`) write the topic with, so
# that a second command fences the first; the publisher's ACLs grant it by name.
PUBLISHER_TRANSACTIONAL_ID = "sunspots-models-publisher"

NOT_A_MODEL_RECORD = "not_a_model_record"
UNKNOWN_ROLE = "unknown_role"
# Why a record is refused: the record's own reasons, then the artifact's.
RECORD_REASONS = (
    NOT_A_MODEL_RECORD,
    UNKNOWN_ROLE,
    *(reason for reason in artifact.ARTIFACT_REASONS if reason != artifact.NOT_FOUND),
)


class ModelRecord(Struct, frozen=True, forbid_unknown_fields=True):
    """The value of a models-topic record."""

    record_version: int
    role: str
    kind: str
    model_version: str
    metadata: str  # the artifact's JSON metadata, its exact text
    metadata_sha256: str
    weights: bytes  # the `.npz` file's bytes (base64 in the JSON)
    weights_sha256: str
    published_at: str  # ISO 8601, UTC
    published_by: str


@dataclass(frozen=True)
class Published:
    """A verified model serving (or to serve) `role`."""

    role: str
    model: Model
    record: ModelRecord

    @property
    def model_version(self) -> str:
        return self.record.model_version

    @property
    def kind(self) -> str:
        return self.record.kind


@dataclass(frozen=True)
class Retired:
    """A tombstone: `role` has no model any more."""

    role: str


@dataclass(frozen=True)
class Refused:
    """A record that was not applied: `reason` (one of `RECORD_REASONS`) and a one-line `detail`.
    `role` is the record's key when it is readable, else None."""

    role: str | None
    reason: str
    detail: str


Entry = Published | Retired | Refused

_DECODER = msgspec.json.Decoder(ModelRecord)
_ENCODER = msgspec.json.Encoder()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def check_role(role: str) -> str:
    """`role` unchanged when it is one of ROLES, else ArtifactError with reason UNKNOWN_ROLE."""
    if role not in ROLES:
        raise ArtifactError(
            f"unknown role {role!r}: expected one of {', '.join(ROLES)}", UNKNOWN_ROLE
        )
    return role


def make_record(
    role: str, metadata_text: str, weights: bytes, published_by: str, published_at: str = ""
) -> ModelRecord:
    """The record of an artifact (its metadata JSON text and `.npz` bytes) for `role`,
    verified as a reader will verify it; ArtifactError (with its `reason`) otherwise."""
    check_role(role)
    meta = _parse_metadata(metadata_text, "artifact")
    record = ModelRecord(
        record_version=RECORD_VERSION,
        role=role,
        kind=str(meta.get("kind")),
        model_version=str(meta.get("model_version")),
        metadata=metadata_text,
        metadata_sha256=sha256(metadata_text.encode()),
        weights=weights,
        weights_sha256=sha256(weights),
        published_at=published_at or now_utc(),
        published_by=published_by,
    )
    load(record, "artifact")
    encode(record)
    return record


def encode(record: ModelRecord) -> bytes:
    """The record's value bytes; ArtifactError (`oversized`) past MAX_RECORD_BYTES."""
    value = _ENCODER.encode(record)
    _check_size(len(value), "record")
    return value


def with_role(record: ModelRecord, role: str, published_by: str) -> ModelRecord:
    """The same model under another role (a promotion), published now by `published_by`."""
    return msgspec.structs.replace(
        record, role=check_role(role), published_at=now_utc(), published_by=published_by
    )


def decode(key: bytes | None, value: bytes) -> Published:
    """The verified model of a record; ArtifactError (with its `reason`) otherwise."""
    role = _role(key)
    _check_size(len(value), f"{role} record")
    try:
        record = _DECODER.decode(value)
    except msgspec.DecodeError as exc:
        # A record of another version may have other fields: its version is the news.
        _check_version(_version(value), role)
        raise ArtifactError(f"{role} record: {exc}", NOT_A_MODEL_RECORD) from None
    _check_version(record.record_version, role)
    if record.role != role:
        raise ArtifactError(
            f"{role} record: says it is for role {record.role!r}, its key says {role!r}",
            UNKNOWN_ROLE,
        )
    where = f"{role} record {record.model_version!r}"
    return Published(role, load(record, where), record)


def read_entry(key: bytes | None, value: bytes | None) -> Entry:
    """What a models-topic record means; never raises."""
    try:
        if value is None:
            return Retired(_role(key))
        return decode(key, value)
    except ArtifactError as exc:
        role = key.decode("utf-8", "replace") if key is not None else None
        return Refused(role if role in ROLES else None, exc.reason, str(exc))


def load(record: ModelRecord, where: str) -> Model:
    """The record's model, each hash checked, loaded with the artifact's own checks."""
    if sha256(record.metadata.encode()) != record.metadata_sha256:
        raise ArtifactError(f"{where}: the metadata does not match its sha256", artifact.BAD_HASH)
    if sha256(record.weights) != record.weights_sha256:
        raise ArtifactError(f"{where}: the weights do not match their sha256", artifact.BAD_HASH)
    meta = _parse_metadata(record.metadata, where)
    if meta.get("kind") != record.kind:
        raise ArtifactError(
            f"{where}: the metadata's kind {meta.get('kind')!r} is not the record's "
            f"{record.kind!r}",
            artifact.WRONG_KIND,
        )
    model = artifact.model_from_bytes(meta, record.weights, where)
    if model.model_version != record.model_version:
        raise ArtifactError(
            f"{where}: the metadata names model_version {model.model_version!r}",
            artifact.BAD_METADATA,
        )
    return model


def _parse_metadata(text: str, where: str) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{where}: unreadable metadata: {exc}", artifact.UNREADABLE) from None
    if not isinstance(meta, dict):
        raise ArtifactError(f"{where}: metadata must be a JSON object", artifact.UNREADABLE)
    return meta


def _role(key: bytes | None) -> str:
    try:
        role = key.decode() if key is not None else ""
    except UnicodeDecodeError:
        role = ""
    if role not in ROLES:
        raise ArtifactError(f"record key {key!r} is not a role ({', '.join(ROLES)})", UNKNOWN_ROLE)
    return role


def _check_size(size: int, where: str) -> None:
    if size > MAX_RECORD_BYTES:
        raise ArtifactError(
            f"{where}: {size} bytes, more than the {MAX_RECORD_BYTES} a model record may have",
            artifact.OVERSIZED,
        )


def _check_version(version: Any, role: str) -> None:
    """Refuse a record of another version (None: it has none to tell)."""
    if version is not None and version != RECORD_VERSION:
        raise ArtifactError(
            f"{role} record: record_version {version!r} is not supported "
            f"(this code reads {RECORD_VERSION})",
            artifact.UNKNOWN_FORMAT,
        )


def _version(value: bytes) -> Any:
    """The `record_version` of a JSON object that is not a valid record, if it has one."""
    try:
        data = json.loads(value)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data.get("record_version") if isinstance(data, dict) else None
