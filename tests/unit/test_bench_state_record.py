"""bench.state_record measures what it says: the changelog records the real forecaster writes.

A few series and days, so that it runs in a second; the figures docs/scaling.md gives come from
the command's default sizes."""

from __future__ import annotations

import json

from bench.state_record import forecaster, main, measure
from sunspots.wire.schemas import decode_snapshot
from tests.unit.records import observations, transaction


def test_a_challenger_makes_each_record_larger(data_path) -> None:
    alone = measure(str(data_path), series=3, days=70, challenger=False, repeats=2)
    both = measure(str(data_path), series=3, days=70, challenger=True, repeats=2)
    # A snapshot holds 64 values of history at least: hundreds of bytes, not a handful.
    assert 500 < alone["record_bytes_mean"] < both["record_bytes_mean"]
    assert alone["encode_us"] > 0 and both["roles"] == "champion and challenger"


def test_the_command_writes_its_rows(data_path, tmp_path) -> None:
    out = tmp_path / "state_record.json"
    argv = ["--data", str(data_path), "--series", "2", "--days", "66", "--repeats", "1"]
    assert main([*argv, "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["roles"] for r in rows] == ["champion", "champion and challenger"]


def test_the_records_measured_are_snapshots() -> None:
    # measure() counts the state topic's outputs; they decode as the changelog's schema.
    fc = forecaster(challenger=True)
    out = transaction(fc, observations([float(v) for v in range(70)]))
    states = [o for o in out if o.topic == fc.topics.state]
    assert states and set(decode_snapshot(states[0].value).roles or {}) == {
        "champion",
        "challenger",
    }
