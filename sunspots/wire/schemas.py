"""Message schemas: versioned UTF-8 JSON on every topic, as typed msgspec structs.

Each message is one `msgspec.Struct`: the same definition decodes it (strictly, in C), encodes
it, and generates its published JSON Schema (`sunspots.wire.contracts`, committed under `schemas/`).

Inputs (observations, classifier requests) are decoded strictly: anything unexpected raises
`SchemaError` with a short machine-readable `reason` (used as the dead-letter header and the
metrics label, so the set of reasons is small and fixed, `DEAD_LETTER_REASONS`) and a human-readable
`detail`. A decoder returns a valid value or raises `SchemaError`, nothing else, whatever the
bytes: msgspec's validation errors are mapped to reasons by `_reason`, and bytes msgspec cannot
parse at all are `not_json`, or `non_finite` when they are JSON but for a NaN or Infinity
literal. Outputs (forecasts, evaluations, predictions) may grow extra fields; their decoders
ignore them. Every float an output carries is finite: an output that would not be raises
`ValueError` when it is made, so a broken model can never publish `null` where a number belongs.

Ids (series, request id) are 1 to 256 characters of valid Unicode without control characters
(C0, C1); integer request ids are JSON-safe integers (|id| < 2**53). A record key, when there is
one, is at most 1 KiB of valid UTF-8 (`bad_key` otherwise); an observation's key must also equal
its series (`key_mismatch`).

Every message carries `"schema_version": 1`. An input without it is read as version 1, so the
lesson's plain `{"id", "sequence"}` requests work; any other version is rejected.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from math import isfinite
from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import Meta, Struct

SCHEMA_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024
# The largest daily value SILSO has ever published is below 600; anything past this is an error.
MAX_SUNSPOT_NUMBER = 1000.0
MAX_OBSERVERS = 100_000
EARLIEST_DATE = dt.date(1600, 1, 1)
MAX_SEQUENCE_LENGTH = 1000
MAX_ID_LENGTH = 256
MAX_KEY_BYTES = 1024
# A dead letter's `detail` header, at most this many bytes of UTF-8; a rejected record larger
# than MAX_KEPT_BYTES (key and value) is kept cut (consumer.output).
MAX_DETAIL_BYTES = 1000
MAX_KEPT_BYTES = 512 * 1024
# The integers every JSON reader holds exactly (JavaScript's Number.MAX_SAFE_INTEGER).
MAX_SAFE_INTEGER = 2**53 - 1

# The fixed vocabulary of rejection reasons: decoding, the window (duplicate, out_of_order),
# the forecaster's series limit and, for a failure no schema foresaw, internal_error.
DEAD_LETTER_REASONS = (
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
    "bad_id",
    "bad_key",
    "key_mismatch",
    "duplicate",
    "out_of_order",
    "bad_sequence",
    "too_many_series",
    "internal_error",
)

# Control characters: C0, DEL and C1. The JSON Schema states the same rule as a pattern, which
# ends in `(?![\s\S])` rather than `$` because Python's `$` also matches before a final "\n".
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
ID_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*(?![\\s\\S])"


class SchemaError(ValueError):
    """A message that does not follow its schema. `reason` is one of DEAD_LETTER_REASONS."""

    def __init__(self, reason: str, detail: str) -> None:
        assert reason in DEAD_LETTER_REASONS, reason
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()  # noqa: UP017 - readable on 3.11


# --- field types --------------------------------------------------------------------------------

Id = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        extra_json_schema={"pattern": ID_PATTERN},
        description=f"1 to {MAX_ID_LENGTH} characters, no control characters",
    ),
]
SafeInteger = Annotated[int, Meta(ge=-MAX_SAFE_INTEGER, le=MAX_SAFE_INTEGER)]
SunspotNumber = Annotated[float, Meta(ge=0.0, le=MAX_SUNSPOT_NUMBER)]
Observers = Annotated[int, Meta(ge=0, le=MAX_OBSERVERS)]
# One step of a classifier sequence: an integer (an integral number such as 3.0 is read as 3),
# alone or, in the lesson's nested form, as a one-element list.
Step = int | float
Sequence = Annotated[
    tuple[Step | tuple[Step, ...], ...],
    Meta(min_length=1, max_length=MAX_SEQUENCE_LENGTH),
]


class _Message(Struct, frozen=True, gc=False, tag_field="schema_version", tag=SCHEMA_VERSION):
    """Every message: `schema_version` is written first, read as 1 when absent, else checked."""


# --- observation --------------------------------------------------------------------------------


class Observation(_Message, forbid_unknown_fields=True):
    """One day of one series. `sunspot_number` null means SILSO has no value for that day.

    `series`, `date` and `sunspot_number` are required: `{"series", "date", "sunspot_number"}`
    is a whole observation. `date` is YYYY-MM-DD, from 1600-01-01 to today (UTC). The rest are
    optional, null when absent, and the forecaster does not read them: `std_dev` is the
    standard deviation of the observers' values, `observations` their number, `provisional`
    SILSO's flag (null: not said)."""

    series: Id
    date: dt.date
    sunspot_number: SunspotNumber | None
    std_dev: SunspotNumber | None = None
    observations: Observers | None = None
    provisional: bool | None = None

    def encode(self) -> bytes:
        return _ENCODER.encode(self)


_OBSERVATION = msgspec.json.Decoder(Observation)


def decode_observation(
    raw: bytes | str | None, key: bytes | str | None = None, today: dt.date | None = None
) -> Observation:
    """Strictly decode an observation; a `key`, when given, must equal the series id."""
    obs = _decode(_OBSERVATION, raw)
    _check_id("series", obs.series)
    if obs.date < EARLIEST_DATE:
        raise SchemaError("bad_date", f"date {obs.date} is before {EARLIEST_DATE}")
    if obs.date > (today or today_utc()):
        raise SchemaError("future_date", f"date {obs.date} is in the future")
    if key is not None and check_key(key) != obs.series:
        raise SchemaError(
            "key_mismatch", f"record key {check_key(key)!r} differs from series {obs.series!r}"
        )
    return obs


# --- forecast and evaluation --------------------------------------------------------------------


class Forecast(_Message):
    """The next-day forecast made from the window that ends on `window_end`.

    `lower` and `upper` bound the 90 % interval (`lower` is never below 0); `persistence` is
    the window's last value, so the evaluation can score the baseline too."""

    series: Id
    target_date: dt.date
    forecast: float
    window_end: dt.date
    model_version: str
    lower: float
    upper: float
    persistence: float

    def __post_init__(self) -> None:
        if not (
            isfinite(self.forecast)
            and isfinite(self.lower)
            and isfinite(self.upper)
            and isfinite(self.persistence)
        ):
            _not_finite(self)

    def encode(self) -> bytes:
        return _ENCODER.encode(self)


class Evaluation(_Message):
    """A forecast scored against the value that arrived for its target date: `error` is
    actual − forecast, `persistence_error` actual − persistence."""

    series: Id
    date: dt.date
    forecast: float
    actual: float
    error: float
    lower: float
    upper: float
    persistence: float
    persistence_error: float
    model_version: str

    def __post_init__(self) -> None:
        if not (
            isfinite(self.forecast)
            and isfinite(self.actual)
            and isfinite(self.error)
            and isfinite(self.lower)
            and isfinite(self.upper)
            and isfinite(self.persistence)
            and isfinite(self.persistence_error)
        ):
            _not_finite(self)

    @classmethod
    def score(cls, forecast: Forecast, actual: float) -> Evaluation:
        """The evaluation of `forecast` once `actual` is known, with the persistence forecast
        scored beside it."""
        return cls(
            forecast.series,
            forecast.target_date,
            forecast.forecast,
            actual,
            actual - forecast.forecast,
            forecast.lower,
            forecast.upper,
            forecast.persistence,
            actual - forecast.persistence,
            forecast.model_version,
        )

    @property
    def covered(self) -> bool:
        return self.lower <= self.actual <= self.upper

    def encode(self) -> bytes:
        return _ENCODER.encode(self)


_FORECAST = msgspec.json.Decoder(Forecast)
_EVALUATION = msgspec.json.Decoder(Evaluation)


def decode_forecast(raw: bytes | str) -> Forecast:
    return _decode(_FORECAST, raw)


def decode_evaluation(raw: bytes | str) -> dict[str, Any]:
    """Evaluations are read by tests and dashboards: checked, then returned as a dict."""
    return msgspec.to_builtins(_decode(_EVALUATION, raw))


# --- forecaster state (the changelog) -----------------------------------------------------------


class WindowState(Struct, frozen=True, gc=False):
    """A series' window: its size, last date, values (oldest first) and pending forecast."""

    size: int
    last_date: dt.date | None
    values: list[float]
    pending: Forecast | None


class IntervalState(Struct, frozen=True, gc=False):
    """A series' adaptive interval (sunspots.domain.intervals): `alpha` is its current miscoverage
    level α_t."""

    alpha: float

    def __post_init__(self) -> None:
        if not isfinite(self.alpha):
            raise ValueError(f"alpha {self.alpha!r} is not finite")


class DriftState(Struct, frozen=True, gc=False):
    """A drift detector (sunspots.domain.drift) of one series and role: errors `seen` since its start
    or last alarm, the reference `level` of the error, the test's `cumulative` sum and its
    `minimum`, and the `alarms` it raised."""

    seen: int
    level: float
    cumulative: float
    minimum: float
    alarms: int

    def __post_init__(self) -> None:
        if not all(map(isfinite, (self.level, self.cumulative, self.minimum))):
            raise ValueError("drift state values must be finite")


class RoleSnapshot(Struct, frozen=True, gc=False):
    """One role's part of a series' state: the model it is about (`model_version`), its
    forecast waiting for the next day's value, its adaptive interval level and drift test."""

    model_version: str
    pending: Forecast | None
    alpha: float
    drift: DriftState | None = None

    def __post_init__(self) -> None:
        if not isfinite(self.alpha):
            raise ValueError(f"alpha {self.alpha!r} is not finite")


class SeriesSnapshot(Struct, frozen=True, gc=False):
    """A series' state on the compacted changelog, keyed by series: `offset` is the next
    source offset the state reflects; `window` holds the series' last values (its history,
    longer than any model's input); `roles` holds each running model's part (`champion`,
    `challenger`).

    `topic_id` is the Kafka topic id of the source topic `offset` belongs to: a topic deleted
    and created again under its name gets a new id and starts its offsets afresh, so a state
    of an earlier topic of that name is told apart and dropped rather than read as ahead of
    the new one's records.

    Snapshots written before roles existed have no `roles`: their window's `pending` and their
    `interval` (absent before the adaptive interval) are the champion's. Snapshots written
    before `topic_id` existed have none."""

    series: str
    offset: int
    window: WindowState
    interval: IntervalState | None = None
    roles: dict[str, RoleSnapshot] | None = None
    topic_id: str | None = None

    def encode(self) -> bytes:
        return _ENCODER.encode(self)


_SNAPSHOT = msgspec.json.Decoder(SeriesSnapshot)


def decode_snapshot(raw: bytes) -> SeriesSnapshot:
    return _decode(_SNAPSHOT, raw)


# --- classifier ---------------------------------------------------------------------------------


class ClassifierRequest(_Message, forbid_unknown_fields=True):
    """A sequence to classify, flat `[0,0,0,0,0,1]` or nested `[[0],[0],[0],[0],[0],[1]]`;
    the answer carries the same `id`. Steps are integers from 0 to the model's largest value."""

    id: Id | SafeInteger
    sequence: Sequence


_CLASSIFIER_REQUEST = msgspec.json.Decoder(ClassifierRequest)


def decode_classifier_request(raw: bytes | str | None, max_value: int = 3) -> ClassifierRequest:
    """Decode a request; its `sequence` comes back flat, as a tuple of ints."""
    request = _decode(_CLASSIFIER_REQUEST, raw)
    if isinstance(request.id, str):
        _check_id("id", request.id)
    return ClassifierRequest(request.id, _flatten(request.sequence, max_value))


def _flatten(sequence: tuple[Any, ...], max_value: int) -> tuple[int, ...]:
    steps = []
    for step, item in enumerate(sequence):
        if isinstance(item, tuple):
            if len(item) != 1:
                raise SchemaError("bad_sequence", "nested steps must hold exactly one value")
            item = item[0]
        if isinstance(item, float):
            if not item.is_integer():
                raise SchemaError("wrong_type", f"sequence values must be integers, got {item!r}")
            item = int(item)
        if not 0 <= item <= max_value:
            raise SchemaError("bad_sequence", f"step {step} is outside 0..{max_value}")
        steps.append(item)
    return tuple(steps)


def encode_classifier_request(request_id: str | int, sequence: list[int]) -> bytes:
    return _ENCODER.encode(ClassifierRequest(request_id, tuple(sequence)))


class ClassifierPrediction(_Message):
    """The answer to a request: `probabilities` are the model's per-class sigmoid outputs
    (one score per class, not normalised), `predicted_class` the class of the largest."""

    id: Id | SafeInteger
    predicted_class: int
    probabilities: list[float]
    model_version: str

    def __post_init__(self) -> None:
        if not all(map(isfinite, self.probabilities)):
            _not_finite(self)

    def encode(self) -> bytes:
        return _ENCODER.encode(self)


_CLASSIFIER_PREDICTION = msgspec.json.Decoder(ClassifierPrediction)


def decode_classifier_prediction(raw: bytes | str) -> ClassifierPrediction:
    return _decode(_CLASSIFIER_PREDICTION, raw)


# --- keys and ids -------------------------------------------------------------------------------


def check_key(key: bytes | str) -> str:
    """A record key as text: at most MAX_KEY_BYTES of valid UTF-8, else SchemaError(bad_key)."""
    if isinstance(key, str):
        key = key.encode("utf-8", "surrogatepass")
    if len(key) > MAX_KEY_BYTES:
        raise SchemaError("bad_key", f"record key of {len(key)} bytes, limit {MAX_KEY_BYTES}")
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SchemaError("bad_key", f"record key is not UTF-8: {exc}") from None


def _check_id(name: str, value: str) -> None:
    if value.isprintable():  # the common case, and no control character is printable
        return
    control = _CONTROL.search(value)
    if control is not None:
        raise SchemaError("bad_id", f"{name} holds control character U+{ord(control.group()):04X}")


# --- decoding and its errors --------------------------------------------------------------------

_ENCODER = msgspec.json.Encoder()
M = TypeVar("M")


def _decode(decoder: msgspec.json.Decoder[M], raw: bytes | str | None) -> M:
    """`decoder.decode(raw)`, every failure raised as a SchemaError."""
    if raw is None:
        raise SchemaError("not_json", "empty payload (tombstone)")
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise SchemaError("oversized", f"{len(raw)} bytes, limit {MAX_MESSAGE_BYTES}")
    try:
        return decoder.decode(raw)
    except msgspec.ValidationError as exc:
        raise _invalid(str(exc)) from None
    except msgspec.DecodeError as exc:
        raise _malformed(raw, str(exc)) from None
    except RecursionError:
        # msgspec skips a value it does not keep (a tag field's, for one) by recursing.
        raise SchemaError("oversized", "nested deeper than the decoder reads") from None


# msgspec's validation messages end with " - at `$.field`" (nothing for the top level).
_AT = re.compile(r" - at `(\$[^`]*)`$")
_BOUND = re.compile(r"^Expected `(int|float)` (>=|<=) ")
_LENGTH = re.compile(r"^Expected `(str|array)` of length (>=|<=) ")
_DATE_FIELDS = {"$.date", "$.target_date", "$.window_end", "$.window.last_date"}
_ID_FIELDS = {"$.series", "$.id"}


def _invalid(message: str) -> SchemaError:
    """A msgspec ValidationError as the reason it stands for."""
    return SchemaError(_reason(message), message)


def _reason(message: str) -> str:
    if message.startswith("Object contains unknown field"):
        return "unknown_field"
    if message.startswith("Object missing required field"):
        return "missing_field"
    at = _AT.search(message)
    path = at.group(1) if at else "$"
    field = path.split("[", 1)[0]
    if field == "$.schema_version":
        return "unknown_version"
    if path == "$" and message.startswith("Expected `object`"):
        return "not_object"
    if field in _DATE_FIELDS:
        return "bad_date"
    bound, length = _BOUND.match(message), _LENGTH.match(message)
    out_of_range = message.startswith(("Number out of range", "Integer value out of range"))
    if not (bound or length or out_of_range):
        return "wrong_type"
    if field in _ID_FIELDS:
        return "bad_id"
    if field == "$.sequence":
        return "oversized" if length and length.group(2) == "<=" else "bad_sequence"
    if bound:
        return "negative_value" if bound.group(2) == ">=" else "absurd_value"
    return "absurd_value"


def _malformed(raw: bytes, message: str) -> SchemaError:
    """Bytes msgspec cannot parse: `non_finite` if they are JSON but for a NaN or Infinity
    literal (which the standard library's parser reports), else `not_json`."""
    try:
        json.loads(raw, parse_constant=_reject_constant)
    except SchemaError as constant:
        return constant
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        pass
    return SchemaError("not_json", message)


def _reject_constant(name: str) -> float:
    raise SchemaError("non_finite", f"{name} is not a number JSON allows")


def _not_finite(message: Struct) -> None:
    raise ValueError(f"{type(message).__name__} with a non-finite number: {message}")
