"""`python -m bench`: all four benchmarks on one broker, then the targets as ratios of one run.

    .venv/bin/python -m bench --data FILE            # what `make bench` runs
    .venv/bin/python -m bench --quick                # a smoke-sized run (seconds per benchmark)
    .venv/bin/python -m bench --only inference pipeline

1. inference (bench.inference): Keras predict, tf.function, the NumPy serving path batched;
2. kafka_ceiling (bench.kafka_ceiling): bare kafka-python loops with the services' settings;
3. pipeline (bench.pipeline): the real producer and forecaster, full replay and paced;
4. classifier (bench.classifier): the classifier service, burst and paced.

The Kafka benchmarks share one local broker (started here unless --bootstrap-servers is
given), so the pipeline's throughput can be read as a ratio of the bare loops'. Each benchmark
prints its table and writes bench/results/<name>.json; this module adds summary.json (each
target, the figure and whether it is met) and performance.md (the tables for the README).

The consumer's CPU per observation is also compared with `bench/baseline.json`: the same
benchmark run on the consumer before its message schemas moved to msgspec (the commit and the
runs are recorded in the file), so a change that makes the consumer dearer shows.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from bench import classifier, inference, kafka_ceiling, pipeline
from bench.common import RESULTS, broker, default_data, machine, report, table

BENCHMARKS = ("inference", "kafka_ceiling", "pipeline", "classifier")
THROUGHPUT_RATIO = 0.7
# Against the bare loop that writes what the forecaster writes, the pipeline must do better.
SHAPED_RATIO = 0.85
# The consumer's CPU per observation, as a share of the baseline's.
CPU_SHARE = 0.75
BASELINE = Path(__file__).resolve().parent / "baseline.json"
REPLAY_SECONDS = 20.0
RSS_MIB = 1024.0


def _argv(name: str, args: argparse.Namespace, bootstrap: str | None) -> list[str]:
    out = ["--out", str(args.results / f"{name}.json")]
    broker = ["--bootstrap-servers", bootstrap] if bootstrap else []
    data = ["--data", args.data]
    if name == "inference":
        quick = ["--calls", "200", "--keras-calls", "3", "--budget", "0.5"]
        return data + out + (quick if args.quick else [])
    if name == "kafka_ceiling":
        return data + broker + out + (["--count", str(args.quick_days)] if args.quick else [])
    if name == "pipeline":
        logs = ["--logs", str(args.results)]
        quick = [
            "--start",
            "2020-01-01",
            "--end",
            _quick_end(args.quick_days),
            "--rate",
            "50",
            "--paced-seconds",
            "2",
        ]
        return data + broker + out + logs + (quick if args.quick else [])
    quick = ["--requests", "100", "--rate", "50", "--duration", "1", "--timeout", "60"]
    return broker + out + (quick if args.quick else [])


def _quick_end(days: int) -> str:
    from datetime import date, timedelta

    return (date(2020, 1, 1) + timedelta(days=days - 1)).isoformat()


def _load(args: argparse.Namespace, name: str) -> dict[str, Any] | None:
    path = args.results / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _row(results: dict[str, Any] | None, key: str, value: str) -> dict[str, Any] | None:
    if not results:
        return None
    return next((r for r in results["results"] if r.get(key) == value), None)


def _whole_loop_ratio(
    ceiling: dict[str, Any] | None, pipe: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The issue's benchmark 2 read literally: produce N, then consume and re-produce N. Its
    throughput is N over both legs, which is what the pipeline's wall time covers too."""
    produce = _row(ceiling, "scenario", "produce (replay settings)")
    loop = _row(ceiling, "scenario", "consume→re-produce, exactly once")
    p = _row(pipe, "scenario", "full replay, exactly once")
    if not (produce and loop and p and loop.get("records_in")):
        return []
    bare = loop["records_in"] / (produce["seconds"] + loop["seconds"])
    ratio = p["obs_per_s"] / bare
    return [
        {
            "target": "full replay, exactly once ÷ bare produce then consume→re-produce, "
            "exactly once",
            "figure": f"{ratio:.2f} ({p['obs_per_s']:.0f} / {bare:.0f} obs/s)",
            "goal": f"≥ {THROUGHPUT_RATIO}",
            "met": ratio >= THROUGHPUT_RATIO,
        }
    ]


def _against_baseline(
    pipe: dict[str, Any] | None, baseline: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The consumer's CPU per observation and the replay's wall time, this run against the
    baseline's median (bench/baseline.json)."""
    rows: list[dict[str, Any]] = []
    for p in (pipe or {}).get("results", []):
        before = (baseline or {}).get("median", {}).get(p["scenario"])
        if not before or not p.get("cpu_us_per_obs"):
            continue
        share = p["cpu_us_per_obs"] / before["cpu_us_per_obs"]
        rows.append(
            {
                "target": f"{p['scenario']}: consumer CPU per observation, ÷ baseline",
                "figure": f"{share:.2f} ({p['cpu_us_per_obs']} / {before['cpu_us_per_obs']} µs)",
                "goal": f"≤ {CPU_SHARE}",
                "met": share <= CPU_SHARE,
            }
        )
        rows.append(
            {
                "target": f"{p['scenario']}: wall time, baseline's median",
                "figure": f"{p['seconds']} s (baseline {before['seconds']} s)",
                "goal": "(shown, not a target)",
                "met": None,
            }
        )
    return rows


def summary(reports: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Each target of issue 8 with this run's figure; ratios only within this run."""
    rows: list[dict[str, Any]] = []
    inf = reports.get("inference")
    if inf:
        t = inf["targets"]
        rows.append(
            {
                "target": "serving, batched, per window",
                "figure": f"{t['batched_per_window_us']} µs",
                "goal": f"≤ {t['batched_target_us']:g} µs",
                "met": t["batched_ok"],
            }
        )
        rows.append(
            {
                "target": "serving, one window, p99",
                "figure": f"{t['single_p99_us'] / 1000:.3f} ms",
                "goal": f"≤ {t['single_p99_target_us'] / 1000:g} ms",
                "met": t["single_p99_ok"],
            }
        )
    ceiling, pipe = reports.get("kafka_ceiling"), reports.get("pipeline")
    pairs = [
        ("full replay, exactly once", "consume→re-produce, exactly once", THROUGHPUT_RATIO),
        ("full replay, exactly once", "exactly once, forecaster-shaped", SHAPED_RATIO),
        ("full replay, at least once", "consume→re-produce, at least once", THROUGHPUT_RATIO),
    ]
    for pipe_name, bare_name, goal in pairs:
        p, b = _row(pipe, "scenario", pipe_name), _row(ceiling, "scenario", bare_name)
        if p and b and b.get("in_per_s"):
            ratio = p["obs_per_s"] / b["in_per_s"]
            rows.append(
                {
                    "target": f"{pipe_name} ÷ bare {bare_name}",
                    "figure": f"{ratio:.3f} ({p['obs_per_s']:.0f} / {b['in_per_s']:.0f} obs/s)",
                    "goal": f"≥ {goal}",
                    "met": ratio >= goal,
                }
            )
    rows.extend(_whole_loop_ratio(ceiling, pipe))
    rows.extend(_against_baseline(pipe, reports.get("baseline")))
    for p in (pipe or {}).get("results", []):
        if p["scenario"].startswith("full replay"):
            rows.append(
                {
                    "target": f"{p['scenario']}: wall time",
                    "figure": f"{p['seconds']} s",
                    "goal": f"≤ {REPLAY_SECONDS:g} s",
                    "met": p["seconds"] <= REPLAY_SECONDS,
                }
            )
        rss = p.get("rss_peak_mib")
        if rss is not None:
            rows.append(
                {
                    "target": f"{p['scenario']}: consumer peak RSS",
                    "figure": f"{rss} MiB",
                    "goal": f"≤ {RSS_MIB:g} MiB",
                    "met": rss <= RSS_MIB,
                }
            )
    return rows


def _met(met: bool | None) -> str:
    return "–" if met is None else "yes" if met else "**no**"


def markdown(reports: dict[str, dict[str, Any] | None], targets: list[dict[str, Any]]) -> str:
    """The README's Performance tables, from this run's reports."""

    def md(rows: list[dict[str, Any]], cols: list[str]) -> str:
        def cell(row: dict[str, Any], col: str) -> str:
            value = row.get(col)
            return "–" if value is None or value == "" else str(value)

        lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
        lines += ["| " + " | ".join(cell(r, c) for c in cols) + " |" for r in rows]
        return "\n".join(lines) + "\n"

    m = machine()
    v = m["versions"]
    at = next((r["at"] for r in reports.values() if r), "")
    out = [
        f"Measured {at} on {m['cpus']} cores ({m['cpu'] or 'unknown CPU'}), {m['platform']}; "
        f"Python {v['python']}, kafka-python {v['kafka-python']}, Kafka broker "
        f"{v.get('kafka-broker', '?')} (local KRaft, 1 partition), NumPy {v['numpy']}.\n",
        "\n**Targets** (issue 8)\n\n",
        md(
            [{**t, "met": _met(t["met"])} for t in targets],
            ["target", "figure", "goal", "met"],
        ),
    ]
    titles = {
        "inference": ("Inference per window", inference.COLUMNS),
        "kafka_ceiling": ("Kafka ceiling: bare kafka-python loops", kafka_ceiling.COLUMNS),
        "pipeline": ("End-to-end pipeline", pipeline.COLUMNS),
        "classifier": (
            "Classifier service",
            [
                "scenario",
                "requests",
                "answered",
                "seconds",
                "requests_per_s",
                "p50_ms",
                "p99_ms",
                "max_ms",
            ],
        ),
    }
    for name, (title, cols) in titles.items():
        if reports.get(name):
            out += [
                f"\n**{title}** (`python -m bench.{name}`)\n\n",
                md(reports[name]["results"], cols),
            ]
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", default=default_data(), help="SILSO daily CSV")
    parser.add_argument("--bootstrap-servers", help="a running broker; default: start one")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="smoke-sized runs, for CI")
    parser.add_argument("--quick-days", type=int, default=300, help="days in a quick replay")
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)
    mains = {
        "inference": inference.main,
        "kafka_ceiling": kafka_ceiling.main,
        "pipeline": pipeline.main,
        "classifier": classifier.main,
    }
    with broker(args.bootstrap_servers, needed=bool(set(args.only) - {"inference"})) as bootstrap:
        for name in BENCHMARKS:
            if name in args.only:
                sys.stdout.write(f"\n== {name} ==\n")
                sys.stdout.flush()
                mains[name](_argv(name, args, bootstrap))
    reports = {name: _load(args, name) for name in args.only}
    baseline = json.loads(BASELINE.read_text()) if BASELINE.is_file() and not args.quick else None
    targets = summary({**reports, "baseline": baseline})
    result = report("summary", targets, quick=args.quick, benchmarks=args.only)
    (args.results / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results / "performance.md").write_text(markdown(reports, targets))
    sys.stdout.write("\n== targets ==\n")
    sys.stdout.write(table(targets, ["target", "figure", "goal", "met"]))
    sys.stdout.write(f"written to {args.results / 'summary.json'} and performance.md\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
