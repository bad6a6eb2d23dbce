"""The benchmarks run end to end at smoke size, so `make bench` keeps working: with the
baseline comparison too (`make bench BASELINE=…`), whose earlier forecaster knows fewer flags
than today's services are given, which once stopped `make bench` with a traceback.

No figure is asserted: CI machines are shared and noisy, and speed is judged by reading the
tables of a full `make bench`. Only the shape is checked — every benchmark wrote its JSON with
the expected rows, and the counts show that every record went through.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.__main__ import BASELINE_REF
from bench.__main__ import main as bench_main
from sunspots.domain.artifact import DEFAULT_FORECASTER, load_forecaster
from tests.datafacts import DataFile

pytestmark = pytest.mark.integration

QUICK_DAYS = 300


@pytest.fixture(scope="module")
def results(bootstrap_servers: str, data_path: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench")
    argv = [
        "--quick",
        "--quick-days",
        str(QUICK_DAYS),
        "--data",
        str(data_path),
        "--bootstrap-servers",
        bootstrap_servers,
        "--results",
        str(out),
        "--baseline",
        BASELINE_REF,
    ]
    assert bench_main(argv) == 0
    return out


def _load(results: Path, name: str) -> dict:
    report = json.loads((results / f"{name}.json").read_text())
    assert report["benchmark"] == name
    assert {"at", "machine", "results"} <= report.keys()
    return report


def _by(report: dict, key: str) -> dict:
    return {(row[key], row.get("batch")): row for row in report["results"]}


def test_inference(results: Path, data_file: DataFile) -> None:
    report = _load(results, "inference")
    rows = _by(report, "path")
    # The benchmark serves the committed artifact on its test years.
    windows = load_forecaster(DEFAULT_FORECASTER).metadata["splits"]["test"]["windows"]
    assert report["test_windows"] == windows, data_file.note
    for batch in (1, 32, 500, windows):
        row = rows[("numpy serving", batch)]
        assert row["calls"] >= 3 and row["per_window_us"] > 0
    assert rows[("arithmetic bound", None)]["per_window_us"] > 0
    # Keras rows are there when TensorFlow is installed ([train] extra), a note otherwise.
    assert any(path.startswith("keras") for path, _ in rows)
    assert {"batched_ok", "single_p99_ok"} <= report["targets"].keys()


def test_kafka_ceiling(results: Path) -> None:
    report = _load(results, "kafka_ceiling")
    rows = {row["scenario"]: row for row in report["results"]}
    assert report["observations"] == QUICK_DAYS
    assert rows["produce (replay settings)"]["records_out"] == QUICK_DAYS
    for name in ("consume→re-produce, at least once", "consume→re-produce, exactly once"):
        assert rows[name]["records_in"] == rows[name]["records_out"] == QUICK_DAYS
    shaped = rows["exactly once, forecaster-shaped"]
    assert shaped["records_in"] == QUICK_DAYS
    assert shaped["records_out"] == 2 * QUICK_DAYS + shaped["batches"]


def test_pipeline(results: Path, forecaster_model) -> None:
    window = forecaster_model.window
    report = _load(results, "pipeline")
    rows = {row["scenario"]: row for row in report["results"]}
    for mode in ("exactly once", "at least once"):
        row = rows[f"full replay, {mode}"]
        # No gaps in 2020: every day but the first window's is scored.
        assert row["observations"] == QUICK_DAYS
        assert row["evaluations"] == QUICK_DAYS - window
        assert row["seconds"] > 0 and row["rss_peak_mib"] > 0
    # The baseline commit's forecaster served the same replay, given only the flags it knows.
    baseline = rows[f"full replay, exactly once, baseline {BASELINE_REF}"]
    assert baseline["observations"] == QUICK_DAYS
    assert baseline["evaluations"] == QUICK_DAYS - window
    assert baseline["cpu_us_per_obs"] > 0
    assert report["baseline"] == BASELINE_REF
    paced = rows["paced 50 obs/s, exactly once"]
    assert paced["forecasts"] == paced["observations"] - window + 1
    assert 0 < paced["p50_ms"] <= paced["p99_ms"]
    # Where the loop spent a batch, from the forecaster's own metrics: the mean poll-to-commit
    # time, then the send, offsets and commit steps.
    assert re.fullmatch(r"[\d.]+ \([\d.]+ \+ [\d.]+ \+ [\d.]+\)", paced["loop_ms"])


def test_classifier(results: Path) -> None:
    report = _load(results, "classifier")
    rows = {row["scenario"]: row for row in report["results"]}
    assert rows["burst"]["answered"] == rows["burst"]["requests"] == 100
    assert rows["paced 50/s"]["answered"] == rows["paced 50/s"]["requests"] == 50
    assert rows["paced 50/s"]["rate"] == 50 and rows["paced 50/s"]["loop_ms"]


def test_latency_floor(results: Path) -> None:
    report = _load(results, "latency")
    (row,) = report["results"]
    assert row["scenario"] == "floor 50/s" and row["rate"] == 50
    # One second counted at 50/s, each record read back; at most one transaction each.
    assert row["records"] == 50 and 0 < row["transactions"] <= 50
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]
    for stage in ("to_poll", "send", "offsets", "commit", "to_reader"):
        p50, p99 = (float(v) for v in row[f"{stage}_ms"].split(" / "))
        assert 0 <= p50 <= p99, stage


def test_summary_and_markdown(results: Path) -> None:
    summary = json.loads((results / "summary.json").read_text())
    targets = {row["target"] for row in summary["results"]}
    assert "serving, batched, per window" in targets
    assert "full replay, exactly once: wall time" in targets
    assert any("÷ bare" in t for t in targets)
    assert f"full replay, exactly once: consumer CPU per observation ÷ {BASELINE_REF}'s" in targets
    # Each service's paced p99 against its target, beside the floor at its rate.
    latency = {
        row["target"]: row
        for row in summary["results"]
        if row["target"].endswith(": p99") or row["target"].startswith("floor:")
    }
    assert set(latency) == {
        "observation → forecast visible, paced 50 obs/s: p99",
        "classifier request → answer, paced 50/s: p99",
        "floor: bare transactional round trip, paced 50/s: p50 / p99",
    }
    assert all(
        "× the floor's" in row["figure"] for row in latency.values() if row["met"] is not None
    )
    text = (results / "performance.md").read_text()
    assert "kafka-python" in text and "| target |" in text


def test_scaling(results: Path) -> None:
    report = _load(results, "scaling")
    rows = {row["instances"]: row for row in report["results"]}
    assert set(rows) == {1, 2}
    for n, row in rows.items():
        # Every instance took part; every observation was committed.
        assert len(row["instance_cpu_s"]) == n and all(c > 0 for c in row["instance_cpu_s"])
        assert row["observations"] > 0 and row["obs_per_s"] > 0 and row["batches"] > 0


def test_codecs(results: Path) -> None:
    report = _load(results, "codecs")
    rows = {(row["case"], row["codec"]): row for row in report["results"]}
    codecs = ("none", "gzip", "snappy", "lz4", "zstd")
    assert set(rows) == {(case, c) for case in ("batched", "single") for c in codecs}
    for (case, _), row in rows.items():
        assert row["records"] == (QUICK_DAYS if case == "batched" else 20)
        assert row["producer_cpu_us"] > 0 and row["consumer_cpu_us"] > 0
        assert row["bytes_per_record"] > 0
    assert rows[("single", "none")]["batches"] == 20  # one record a batch
    # The replay's batches shrink with every codec: each one was really used.
    for codec in codecs[1:]:
        assert rows[("batched", codec)]["vs_none"] < 0.5, codec


def test_many_series(results: Path) -> None:
    report = _load(results, "many_series")
    rows = {row["series"]: row for row in report["results"]}
    assert set(rows) == {20, 60}
    for series, row in rows.items():
        # Every observation committed, /metrics scraped, the state restored after a restart.
        assert row["observations"] == series * 70
        assert row["metrics_lines"] > 0 and row["scrape_ms"] > 0
        assert row["cpu_us_per_obs"] > 0 and row["restore_s"] >= 0
    # Default --series-metrics: no per-series line of series beyond the default selection, so
    # the exposition does not grow with the series.
    assert rows[20]["metrics_lines"] == rows[60]["metrics_lines"]
    memory = report["memory"]["this checkout"]
    assert memory["bytes_per_series"] > 0 and sum(memory["parts"].values()) > 0
    assert {t["figure"] for t in report["targets"]} >= {"metrics_lines", "scrape_ms"}
