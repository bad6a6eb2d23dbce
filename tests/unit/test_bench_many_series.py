"""bench.many_series' verdicts: each row against the targets, and its CPU per observation against
the single series of its own code and round (`--rounds`), never another round's: this
machine's speed moves between rounds, and a ratio across them would carry that."""

from __future__ import annotations

from typing import Any

import pytest

from bench.many_series import CPU_RATIO, build_parser, main, targets

pytestmark = pytest.mark.unit


def _row(code: str, round_: int, series: int, cpu: float) -> dict[str, Any]:
    return {
        "scenario": f"{series:,} series, {code}, round {round_}",
        "code": code,
        "round": round_,
        "series": series,
        "cpu_us_per_obs": cpu,
        "metrics_lines": 400,
        "scrape_ms": 5.0,
        "rss_full_mib": 200.0,
        "restore_s": 1.5,
    }


def _ratios(verdicts: list[dict[str, Any]]) -> dict[str, tuple[float, str]]:
    return {
        v["scenario"]: (v["value"], v["met"]) for v in verdicts if v["figure"] == "cpu ÷ 1 series"
    }


def test_each_round_is_held_against_its_own_single_series() -> None:
    rows = [
        _row("this checkout", 1, 1, 80.0),
        _row("this checkout", 1, 10_000, 96.0),  # 1.20 of its round's single series
        _row("this checkout", 2, 1, 60.0),  # the machine ran faster in round 2
        _row("this checkout", 2, 10_000, 78.0),  # 1.30
        _row("baseline abc", 1, 1, 70.0),
        _row("baseline abc", 1, 10_000, 210.0),  # 3.00
    ]
    assert _ratios(targets(rows)) == {
        "10,000 series, this checkout, round 1": (1.2, "met"),
        "10,000 series, this checkout, round 2": (1.3, "NOT MET"),
        "10,000 series, baseline abc, round 1": (3.0, "NOT MET"),
        # Over several rounds, the median of the rounds' ratios too (of one round: none).
        "10,000 series, this checkout, median of 2 rounds": (1.25, "met"),
    }
    assert 1.2 <= CPU_RATIO < 1.3


def test_a_report_from_before_rounds_reads_as_one_round() -> None:
    rows = [_row("this checkout", 1, 1, 80.0), _row("this checkout", 1, 10_000, 120.0)]
    for row in rows:
        del row["round"]
    assert list(_ratios(targets(rows)).values()) == [(1.5, "NOT MET")]


def test_rounds_default_to_one_and_must_be_at_least_one(capsys) -> None:
    assert build_parser().parse_args([]).rounds == 1
    with pytest.raises(SystemExit) as exit_:
        main(["--rounds", "0"])
    assert exit_.value.code == 2
    assert "--rounds must be at least 1, not 0" in capsys.readouterr().err
