"""Message schemas: versioned UTF-8 JSON on every topic, with strict decoding.

Inputs (observations, classifier requests) are decoded strictly: anything unexpected raises
`SchemaError` with a short machine-readable `reason` (used as the dead-letter header and the
metrics label, so the set of reasons is small and fixed) and a human-readable `detail`.
Outputs (forecasts, evaluations, predictions) may grow extra fields; their decoders ignore them.

Every message carries `"schema_version": 1`. An input without it is read as version 1, so the
lesson's plain `{"id", "sequence"}` requests work; any other version is rejected.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timezone
from typing import Any

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
# The largest daily value SILSO has ever published is below 600; anything past this is an error.
MAX_SUNSPOT_NUMBER = 1000.0
MAX_OBSERVERS = 100_000
EARLIEST_DATE = date(1600, 1, 1)
MAX_SEQUENCE_LENGTH = 1000
MAX_ID_LENGTH = 256

# The fixed vocabulary of rejection reasons.
REASONS = (
    "not_json",
    "not_object",
    "unknown_version",
    "missing_field",
    "unknown_field",
    "wrong_type",
    "non_finite",
    "negative_value",
    "absurd_value",
    "bad_date",
    "future_date",
    "oversized",
    "key_mismatch",
    "duplicate",
    "out_of_order",
    "bad_sequence",
)

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SchemaError(ValueError):
    """A message that does not follow its schema. `reason` is one of REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _reject_constant(name: str) -> float:
    raise SchemaError("non_finite", f"{name} is not a number JSON allows")


def _load_object(raw: bytes | str | None) -> dict[str, Any]:
    if raw is None:
        raise SchemaError("not_json", "empty payload (tombstone)")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise SchemaError("oversized", f"{len(raw)} bytes, limit {MAX_MESSAGE_BYTES}")
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        obj = json.loads(text, parse_constant=_reject_constant)
    except SchemaError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise SchemaError("not_json", str(exc)) from None
    if not isinstance(obj, dict):
        raise SchemaError("not_object", f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION or isinstance(version, bool):
        raise SchemaError(
            "unknown_version", f"schema_version {version!r}, expected {SCHEMA_VERSION}"
        )
    return obj


def _check_fields(
    obj: dict[str, Any], required: set[str], optional: set[str], strict: bool
) -> None:
    missing = sorted(required - obj.keys())
    if missing:
        raise SchemaError("missing_field", f"missing {', '.join(missing)}")
    if strict:
        extra = sorted(obj.keys() - required - optional - {"schema_version"})
        if extra:
            raise SchemaError("unknown_field", f"unexpected {', '.join(extra)}")


def _number(obj: dict[str, Any], name: str, *, nullable: bool = False) -> float | None:
    value = obj[name]
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise SchemaError("wrong_type", f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise SchemaError("non_finite", f"{name} is {value}")
    return float(value)


def _integer(obj: dict[str, Any], name: str) -> int:
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise SchemaError("wrong_type", f"{name} must be an integer, got {type(value).__name__}")
    return value


def _string(obj: dict[str, Any], name: str) -> str:
    value = obj[name]
    if not isinstance(value, str) or not value:
        raise SchemaError("wrong_type", f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise SchemaError("oversized", f"{name} is longer than {MAX_ID_LENGTH} characters")
    return value


def parse_date(value: Any, name: str = "date") -> date:
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise SchemaError("bad_date", f"{name} must be YYYY-MM-DD, got {value!r}")
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise SchemaError("bad_date", f"{name} {value!r}: {exc}") from None


# One encoder for every message: json.dumps with non-default options builds a new one per call.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _encode(payload: dict[str, Any]) -> bytes:
    return _ENCODER.encode(payload).encode("utf-8")


def _check_key(key: bytes | str | None, expected: str) -> None:
    if key is None:
        return
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    if text != expected:
        raise SchemaError("key_mismatch", f"record key {text!r} differs from series {expected!r}")


def today_utc() -> date:
    return datetime.now(timezone.utc).date()  # noqa: UP017 - readable on 3.11


# --- observation ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Observation:
    """One day of one series. `sunspot_number` None means SILSO has no value for that day."""

    series: str
    date: date
    sunspot_number: float | None
    std_dev: float | None
    observations: int
    provisional: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "series": self.series,
            "date": self.date.isoformat(),
            "sunspot_number": self.sunspot_number,
            "std_dev": self.std_dev,
            "observations": self.observations,
            "provisional": self.provisional,
        }

    def encode(self) -> bytes:
        return _encode(self.to_json())


_OBSERVATION_FIELDS = {"series", "date", "sunspot_number", "std_dev", "observations", "provisional"}


def decode_observation(
    raw: bytes | str | None, key: bytes | str | None = None, today: date | None = None
) -> Observation:
    """Strictly decode an observation; a `key`, when given, must equal the series id."""
    obj = _load_object(raw)
    _check_fields(obj, _OBSERVATION_FIELDS, set(), strict=True)
    series = _string(obj, "series")
    day = parse_date(obj["date"])
    if day < EARLIEST_DATE:
        raise SchemaError("bad_date", f"date {day} is before {EARLIEST_DATE}")
    if day > (today or today_utc()):
        raise SchemaError("future_date", f"date {day} is in the future")
    value = _number(obj, "sunspot_number", nullable=True)
    std_dev = _number(obj, "std_dev", nullable=True)
    for name, number in (("sunspot_number", value), ("std_dev", std_dev)):
        if number is not None and number < 0:
            raise SchemaError("negative_value", f"{name} is {number}")
        if number is not None and number > MAX_SUNSPOT_NUMBER:
            raise SchemaError("absurd_value", f"{name} {number} exceeds {MAX_SUNSPOT_NUMBER}")
    count = _integer(obj, "observations")
    if count < 0:
        raise SchemaError("negative_value", f"observations is {count}")
    if count > MAX_OBSERVERS:
        raise SchemaError("absurd_value", f"observations {count} exceeds {MAX_OBSERVERS}")
    provisional = obj["provisional"]
    if not isinstance(provisional, bool):
        raise SchemaError("wrong_type", "provisional must be true or false")
    _check_key(key, series)
    return Observation(series, day, value, std_dev, count, provisional)


# --- forecast and evaluation ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Forecast:
    """The next-day forecast made from the window that ends on `window_end`."""

    series: str
    target_date: date
    forecast: float
    window_end: date
    model_version: str
    lower: float
    upper: float
    # Persistence (tomorrow = today) rides along so the evaluation can score the baseline too.
    persistence: float

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "series": self.series,
            "target_date": self.target_date.isoformat(),
            "forecast": self.forecast,
            "lower": self.lower,
            "upper": self.upper,
            "window_end": self.window_end.isoformat(),
            "persistence": self.persistence,
            "model_version": self.model_version,
        }

    def encode(self) -> bytes:
        return _encode(self.to_json())


def decode_forecast(raw: bytes | str) -> Forecast:
    obj = _load_object(raw)
    _check_fields(
        obj, {"series", "target_date", "forecast", "window_end", "model_version"}, set(), False
    )
    value = _number(obj, "forecast")
    return Forecast(
        series=_string(obj, "series"),
        target_date=parse_date(obj["target_date"], "target_date"),
        forecast=value,
        window_end=parse_date(obj["window_end"], "window_end"),
        model_version=_string(obj, "model_version"),
        lower=float(obj.get("lower", value)),
        upper=float(obj.get("upper", value)),
        persistence=float(obj.get("persistence", math.nan)),
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A forecast scored against the value that arrived for its target date."""

    series: str
    date: date
    forecast: float
    actual: float
    model_version: str
    lower: float
    upper: float
    persistence: float

    @property
    def error(self) -> float:
        return self.actual - self.forecast

    @property
    def persistence_error(self) -> float:
        return self.actual - self.persistence

    @property
    def covered(self) -> bool:
        return self.lower <= self.actual <= self.upper

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "series": self.series,
            "date": self.date.isoformat(),
            "forecast": self.forecast,
            "actual": self.actual,
            "error": self.error,
            "lower": self.lower,
            "upper": self.upper,
            "persistence": self.persistence,
            "persistence_error": self.persistence_error,
            "model_version": self.model_version,
        }

    def encode(self) -> bytes:
        return _encode(self.to_json())


def decode_evaluation(raw: bytes | str) -> dict[str, Any]:
    """Evaluations are read by tests and dashboards only: check the required fields, return dict."""
    obj = _load_object(raw)
    _check_fields(
        obj, {"series", "date", "forecast", "actual", "error", "model_version"}, set(), False
    )
    for name in ("forecast", "actual", "error"):
        _number(obj, name)
    parse_date(obj["date"])
    return obj


# --- classifier -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClassifierRequest:
    id: str | int
    sequence: tuple[int, ...]


def _flatten_sequence(value: Any, max_value: int) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise SchemaError("wrong_type", "sequence must be a list")
    if not value:
        raise SchemaError("bad_sequence", "sequence is empty")
    if len(value) > MAX_SEQUENCE_LENGTH:
        raise SchemaError(
            "oversized", f"sequence has {len(value)} steps, limit {MAX_SEQUENCE_LENGTH}"
        )
    steps = []
    for item in value:
        # The lesson writes sequences as [[0],[1],...]: one feature per time step.
        if isinstance(item, list):
            if len(item) != 1:
                raise SchemaError("bad_sequence", "nested steps must hold exactly one value")
            item = item[0]
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int):
            raise SchemaError("wrong_type", f"sequence values must be integers, got {item!r}")
        if not 0 <= item <= max_value:
            raise SchemaError("bad_sequence", f"value {item} outside 0..{max_value}")
        steps.append(item)
    return tuple(steps)


def decode_classifier_request(raw: bytes | str | None, max_value: int = 3) -> ClassifierRequest:
    obj = _load_object(raw)
    _check_fields(obj, {"id", "sequence"}, set(), strict=True)
    request_id = obj["id"]
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        raise SchemaError("wrong_type", "id must be a string or an integer")
    if isinstance(request_id, str):
        request_id = _string(obj, "id")
    return ClassifierRequest(request_id, _flatten_sequence(obj["sequence"], max_value))


def encode_classifier_request(request_id: str | int, sequence: list[int]) -> bytes:
    return _encode({"schema_version": SCHEMA_VERSION, "id": request_id, "sequence": list(sequence)})


@dataclass(frozen=True, slots=True)
class ClassifierPrediction:
    id: str | int
    predicted_class: int
    probabilities: list[float] = field(default_factory=list)
    model_version: str = ""

    def encode(self) -> bytes:
        return _encode({"schema_version": SCHEMA_VERSION, **asdict(self)})


def decode_classifier_prediction(raw: bytes | str) -> ClassifierPrediction:
    obj = _load_object(raw)
    _check_fields(obj, {"id", "predicted_class", "probabilities", "model_version"}, set(), False)
    return ClassifierPrediction(
        id=obj["id"],
        predicted_class=_integer(obj, "predicted_class"),
        probabilities=[float(p) for p in obj["probabilities"]],
        model_version=_string(obj, "model_version"),
    )
