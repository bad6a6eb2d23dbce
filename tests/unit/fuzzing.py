"""What the fuzz tests share: Hypothesis profiles and strategies for hostile records.

Profiles (HYPOTHESIS_PROFILE, default `ci`):

* `ci` — what `make test` runs: a fixed seed (`derandomize=True`, so every run tries the same
  examples and a failure reproduces), no example database, CI_EXAMPLES examples per decoder
  test, CI_PROCESSOR_EXAMPLES per processor test on a hostile stream and CI_VALID_RUN_EXAMPLES
  on long valid runs; all fuzz tests take seconds.
* `deep` — what `make fuzz` runs: DEEP_EXAMPLES examples per decoder test and
  DEEP_PROCESSOR_EXAMPLES per processor test, a new seed every run, and the example database
  (.hypothesis/), so a failure found once is tried first the next time.

The strategies build what a producer we do not control could send: arbitrary bytes, arbitrary
JSON values (with NaN and Infinity literals, lone surrogates, numbers at and past the float and
integer limits, deep nesting), and valid messages with a few mutations (a field's type, size or
text changed, a field dropped, added or repeated, the text re-encoded, the bytes cut or padded)
under keys that match, differ, or are not UTF-8.
"""

from __future__ import annotations

import json
import os
from datetime import date, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CI_EXAMPLES = 300
CI_PROCESSOR_EXAMPLES = 100
CI_VALID_RUN_EXAMPLES = 60
DEEP_EXAMPLES = 20_000
DEEP_PROCESSOR_EXAMPLES = 2_000

_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=CI_EXAMPLES,
    suppress_health_check=_RELAXED,
    print_blob=True,
)
settings.register_profile(
    "deep", deadline=None, max_examples=DEEP_EXAMPLES, suppress_health_check=_RELAXED
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)


def processor_settings() -> settings:
    """Processor tests run the real model per example: fewer examples."""
    if PROFILE == "ci":
        return settings(max_examples=CI_PROCESSOR_EXAMPLES)
    return settings(max_examples=DEEP_PROCESSOR_EXAMPLES)


def valid_run_settings() -> settings:
    """Long valid runs cost several model calls per example: fewer still in CI."""
    if PROFILE == "ci":
        return settings(max_examples=CI_VALID_RUN_EXAMPLES)
    return settings(max_examples=DEEP_PROCESSOR_EXAMPLES)


TODAY = date(2026, 11, 29)

# --- pieces of JSON text ----------------------------------------------------------------------

# Numbers at and past the limits of floats (±1.8e308, 5e-324) and of 64-bit and 53-bit
# integers, past Python's 4300-digit int parsing limit, and the non-JSON constants.
EDGE_NUMBERS = [
    "0",
    "-0",
    "-0.0",
    "1e-400",
    "-1e-400",
    "4.9e-324",
    "1.7976931348623157e308",
    "1.8e308",
    "-1.8e308",
    "1e400",
    "-1e400",
    "9007199254740991",
    "9007199254740993",
    "-9007199254740993",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "-18446744073709551617",
    "1" + "0" * 400,
    "-1" + "0" * 400,
    "1" + "0" * 5000,
    "1000",
    "1000.0000000001",
    "100000",
    "100001",
    "NaN",
    "Infinity",
    "-Infinity",
    "1E+2",
    "0e0",
    "3.0",
    "2.5",
]
# Strings that are hard to hold: controls, escapes of lone surrogates, astral characters,
# text that changes under normalisation, lengths around the id limit.
EDGE_STRINGS = [
    '""',
    '"silso"',
    '"\\u0000"',
    '"a\\nb"',
    '"tab\\there"',
    '"\\u007f"',
    '"\\u0085"',
    '"\\ud800"',
    '"\\udfff\\ud800"',
    '"\\ud83d\\ude00"',
    '"\u00e9"',
    '"e\u0301"',
    '"\u202e"',
    '"2001-01-07"',
    '"2001-02-30"',
    '"0000-01-01"',
    '"1599-12-31"',
    '"9999-12-31"',
    '"2001-01-07T00:00:00"',
    '"20010107"',
    '"\u0662\u0660\u0660\u0661-\u0660\u0661-\u0660\u0667"',
    json.dumps("x" * 256),
    json.dumps("x" * 257),
    json.dumps("\u00e9" * 256),
]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def _deep_objects(depth: int) -> str:
    return '{"a":' * depth + "0" + "}" * depth


def _literal(value: object) -> str:
    """JSON text of `value`, NaN and Infinity written as the non-standard constants, lone
    surrogates escaped."""
    return json.dumps(value, allow_nan=True)


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None), max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=20,
)
# A JSON value as text: generated, an edge literal, or nested deeper than any parser recurses.
json_text = (
    json_values.map(_literal)
    | st.sampled_from(EDGE_NUMBERS)
    | st.sampled_from(EDGE_STRINGS)
    | st.sampled_from([_deep(100), _deep(5000), _deep(30_000), _deep_objects(10_000)])
    | st.sampled_from(["[" * 30_000, '{"a":' * 10_000])  # cut short
)


def _like(text: str) -> st.SearchStrategy[str]:
    """A value to put in place of `text`: mostly one of its own kind at its limits."""
    if text[:1] == '"':
        return st.sampled_from(EDGE_STRINGS) | json_text
    if text[:1] in "-0123456789n":  # a number, or null where a number may be
        return st.sampled_from(EDGE_NUMBERS) | json_text
    return json_text


def object_text(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"


# --- whole payloads ---------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[list[tuple[str, str]]]) -> bytes | None:
    """A valid message (as field/JSON-text pairs) with one to three mutations, as bytes."""
    pairs = list(draw(valid))
    names = [name for name, _ in pairs] + ["schema_version"]
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        kind = draw(
            st.sampled_from(["replace"] * 6 + ["drop", "add", "repeat", "version", "rename"])
        )
        if kind == "replace" and pairs:
            i = draw(st.integers(0, len(pairs) - 1))
            pairs[i] = (pairs[i][0], draw(_like(pairs[i][1])))
        elif kind == "drop" and pairs:
            pairs.pop(draw(st.integers(0, len(pairs) - 1)))
        elif kind == "add":
            pairs.append((draw(st.text(max_size=10)), draw(json_text)))
        elif kind == "repeat":
            pairs.append((draw(st.sampled_from(names)), draw(json_text)))
        elif kind == "version":
            pairs.insert(
                0, ("schema_version", draw(st.sampled_from(["1", "2", '"1"']) | json_text))
            )
        elif kind == "rename" and pairs:
            i = draw(st.integers(0, len(pairs) - 1))
            pairs[i] = (pairs[i][0].upper() + " ", pairs[i][1])
    text = object_text(pairs)
    return draw(_encoded(text))


@st.composite
def _encoded(draw: st.DrawFn, text: str) -> bytes | None:
    """`text` as bytes: mostly UTF-8, or another encoding, cut, padded, broken or absent."""
    how = draw(
        st.sampled_from(
            ["utf-8"] * 12
            + ["utf-16", "utf-32", "bom", "cut", "pad", "garbage", "invalid", "none", "array"]
        )
    )
    utf8 = text.encode("utf-8", "surrogatepass")
    if how in {"utf-16", "utf-32"}:
        return text.encode(how, "surrogatepass")
    if how == "bom":
        return b"\xef\xbb\xbf" + utf8
    if how == "cut":
        return utf8[: draw(st.integers(0, max(0, len(utf8) - 1)))]
    if how == "pad":
        return b" \n\t" + utf8 + b" " * draw(st.sampled_from([1, 70_000]))
    if how == "garbage":
        return utf8 + draw(st.binary(min_size=1, max_size=5))
    if how == "invalid":
        at = draw(st.integers(0, len(utf8)))
        return (
            utf8[:at]
            + draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00"]))
            + utf8[at:]
        )
    if how == "none":
        return None
    if how == "array":
        return b"[" + utf8 + b"]"
    return utf8


# --- observations -----------------------------------------------------------------------------

series_ids = st.sampled_from(["silso", "s-2", "\u00e9t\u00e9", "\u6f22\U0001f600", "x" * 256])
sunspot_values = st.none() | st.floats(0.0, 1000.0) | st.sampled_from([0.0, 1000.0, 5e-324])


# The optional fields of an observation as a producer may write them: all given (SILSO's
# replay), all null, or left out (the minimal observation of another team's producer).
OPTIONAL_FIELDS = {
    "full": [("std_dev", "0.5"), ("observations", "30"), ("provisional", "false")],
    "null": [("std_dev", "null"), ("observations", "null"), ("provisional", "null")],
    "minimal": [],
}


def observation_pairs(
    series: str = "silso",
    day: date = date(2001, 1, 7),
    value: float | None = 46.0,
    optional: str = "full",
) -> list[tuple[str, str]]:
    return [
        ("schema_version", "1"),
        ("series", json.dumps(series)),
        ("date", json.dumps(day.isoformat())),
        ("sunspot_number", _literal(value)),
        *OPTIONAL_FIELDS[optional],
    ]


optional_fields = st.sampled_from(["full", "full", "null", "minimal"])
valid_observations = st.builds(
    observation_pairs,
    series_ids,
    st.dates(min_value=date(1600, 1, 1), max_value=TODAY),
    sunspot_values,
    optional_fields,
)
observation_bytes = (
    st.binary(max_size=300) | json_text.map(str.encode) | mutated(valid_observations)
)


def keys(series: str) -> st.SearchStrategy[bytes | None]:
    """A record key for an observation of `series`: mostly right, sometimes not."""
    right = series.encode()
    return (
        st.sampled_from([right, right, right, None])
        | st.sampled_from([b"", b"other", b"\xff\xfe", right + b"\x00", b"k" * 2000, right.upper()])
        | st.binary(max_size=12)
    )


# --- classifier requests ----------------------------------------------------------------------

steps = st.integers(0, 3).map(str) | st.sampled_from(["[0]", "[3]", "1.0", "[2.0]"])


@st.composite
def request_pairs(draw: st.DrawFn) -> list[tuple[str, str]]:
    request_id = draw(
        st.text(min_size=1, max_size=10).map(json.dumps) | st.integers(0, 10**6).map(str)
    )
    sequence = draw(st.lists(steps, min_size=1, max_size=8))
    return [("id", request_id), ("sequence", "[" + ",".join(sequence) + "]")]


request_bytes = st.binary(max_size=300) | json_text.map(str.encode) | mutated(request_pairs())
request_keys = st.none() | st.binary(max_size=12) | st.sampled_from([b"r1", b"\xff", b"k" * 2000])


# --- a stream of observations for the processor -----------------------------------------------


@st.composite
def observation_stream(draw: st.DrawFn) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) records: a few series of mostly consecutive days with hostile records mixed
    in, one in five, and frequent gaps and nulls. Hostile on purpose, this stream seldom fills
    a window: `valid_runs` is the one that reaches forecasts and evaluations."""
    records: list[tuple[bytes | None, bytes | None]] = []
    days = {s: date(2000, 1, 1) for s in ("a", "b", "\u00e9", "x" * 256)}
    for _ in range(draw(st.integers(0, 60))):
        if draw(st.integers(0, 4)) == 0:
            hostile = draw(observation_bytes)
            records.append((draw(keys("a")), hostile))
            continue
        series = draw(st.sampled_from(sorted(days)))
        step = draw(st.sampled_from([1] * 12 + [0, -1, 2]))
        days[series] += timedelta(days=step)
        value = draw(sunspot_values)
        text = object_text(observation_pairs(series, days[series], value, draw(optional_fields)))
        records.append((draw(st.sampled_from([series.encode()] * 5 + [None])), text.encode()))
    return records


@st.composite
def valid_runs(draw: st.DrawFn) -> list[tuple[bytes | None, bytes | None]]:
    """(key, value) records: one or two series of long runs of consecutive days, the deep
    paths' stream. Windows fill (10 values), forecasts are made and scored, a window restarts
    after a rare gap, null or repeated day, and a rare hostile record (one in forty) sits
    between the good ones."""
    records: list[tuple[bytes | None, bytes | None]] = []
    names = draw(st.sampled_from([("a",), ("a", "\u00e9"), ("x" * 256, "b")]))
    days = dict.fromkeys(names, date(2000, 1, 1))
    for _ in range(draw(st.integers(12 * len(names), 36 * len(names)))):
        if draw(st.integers(0, 39)) == 0:
            records.append((draw(keys("a")), draw(observation_bytes)))
            continue
        series = draw(st.sampled_from(names))
        days[series] += timedelta(days=draw(st.sampled_from([1] * 60 + [0, -1, 2])))
        rare_null = draw(st.integers(0, 59)) == 0
        value = None if rare_null else draw(st.floats(0.0, 400.0) | st.sampled_from([0.0, 1000.0]))
        text = object_text(observation_pairs(series, days[series], value, draw(optional_fields)))
        records.append((draw(st.sampled_from([series.encode()] * 9 + [None])), text.encode()))
    return records
