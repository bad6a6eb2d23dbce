"""`python -m bench`: every benchmark on one broker, then the targets as ratios of one run.

    .venv/bin/python -m bench --data FILE            # what `make bench` runs
    .venv/bin/python -m bench --quick                # a smoke-sized run (seconds per benchmark)
    .venv/bin/python -m bench --only inference pipeline
    .venv/bin/python -m bench --baseline 5c2ad2a     # `make bench BASELINE=5c2ad2a`

1. inference (bench.inference): Keras predict, tf.function, the NumPy serving path batched;
2. kafka_ceiling (bench.kafka_ceiling): bare kafka-python loops with the services' settings;
3. pipeline (bench.pipeline): the real producer and forecaster, full replay and paced;
4. classifier (bench.classifier): the classifier service, burst and paced;
5. scaling (bench.scaling): 1, 2 and 3 forecasters on 6 partitions;
6. codecs (bench.codecs): each compression codec's CPU and bytes on the replay's records;
7. many_series (bench.many_series): 1, 1,000 and 10,000 series in one forecaster.
8. latency (bench.latency): the floor, a bare transactional round trip paced at the services'
   rates, beside which the services' paced p99 is set against its target (≤ 50 ms).

The Kafka benchmarks share one local broker (started here unless --bootstrap-servers is
given), so the pipeline's throughput can be read as a ratio of the bare loops'. Each benchmark
prints its table and writes bench/results/<name>.json; this module adds summary.json (each
target, the figure and whether it is met) and performance.md (the tables for docs/performance.md).

With `--baseline REF` the pipeline benchmark also replays with the forecaster of commit REF
(unpacked with `git archive`, given only the flags it knows), in the same run, so that the
consumer's CPU per observation and the replay's wall time are compared before and after on one
machine at one time. BASELINE_REF, the consumer before its message schemas moved to msgspec,
is the comparison docs/performance.md's figures make; none is run unless asked for.

Each benchmark is one line of BENCHMARKS: its name, its module's `main`, and the function that
makes its arguments from this command's.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import (
    classifier,
    codecs,
    inference,
    kafka_ceiling,
    latency,
    many_series,
    pipeline,
    scaling,
)
from bench.common import RESULTS, broker, default_data, machine, report, table
from sunspots.process.logs import quiet_kafka


@dataclass(frozen=True)
class Flags:
    """The common flags of a benchmark's command line, each a list to add or not."""

    data: list[str]
    broker: list[str]
    out: list[str]
    logs: list[str]


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: its module's main(argv), and its argv from this command's arguments."""

    main: Callable[[list[str] | None], int]
    argv: Callable[[argparse.Namespace, Flags], list[str]]


THROUGHPUT_RATIO = 0.7
# Against the bare loop that writes what the forecaster writes, the pipeline must do better.
SHAPED_RATIO = 0.85
# The consumer's CPU per observation, as a share of the baseline's.
CPU_SHARE = 0.75
# The last commit whose forecaster decoded and encoded JSON with the standard library.
BASELINE_REF = "5c2ad2a"
REPLAY_SECONDS = 20.0
# A real-time service's paced latency, observation (request) to result visible downstream.
LATENCY_P99_MS = 50.0
RSS_MIB = 1024.0


def _flags(args: argparse.Namespace, name: str, bootstrap: str | None) -> Flags:
    """The flags every benchmark may take: its data, its broker, its output and logs."""
    return Flags(
        data=["--data", args.data],
        broker=["--bootstrap-servers", bootstrap] if bootstrap else [],
        out=["--out", str(args.results / f"{name}.json")],
        logs=["--logs", str(args.results)],
    )


def _inference(args: argparse.Namespace, f: Flags) -> list[str]:
    quick = ["--calls", "200", "--keras-calls", "3", "--budget", "0.5"]
    return f.data + f.out + (quick if args.quick else [])


def _kafka_ceiling(args: argparse.Namespace, f: Flags) -> list[str]:
    return f.data + f.broker + f.out + (["--count", str(args.quick_days)] if args.quick else [])


def _pipeline(args: argparse.Namespace, f: Flags) -> list[str]:
    quick = ["--start", "2020-01-01", "--end", _quick_end(args.quick_days)]
    quick += ["--rate", "50", "--paced-seconds", "2"]
    baseline = ["--baseline", args.baseline] if args.baseline else []
    return f.data + f.broker + f.out + f.logs + baseline + (quick if args.quick else [])


def _classifier(args: argparse.Namespace, f: Flags) -> list[str]:
    quick = ["--requests", "100", "--rate", "50", "--duration", "1", "--timeout", "60"]
    return f.broker + f.out + (quick if args.quick else [])


def _latency(args: argparse.Namespace, f: Flags) -> list[str]:
    quick = ["--rates", "50", "--seconds", "1", "--warmup", "0.5"]
    return f.broker + f.out + (quick if args.quick else [])


def _many_series(args: argparse.Namespace, f: Flags) -> list[str]:
    quick = ["--series", "20", "60", "--days", "70", "--state-series", "20"]
    return f.data + f.broker + f.out + f.logs + (quick if args.quick else [])


def _codecs(args: argparse.Namespace, f: Flags) -> list[str]:
    quick = ["--count", str(args.quick_days), "--single", "20", "--repeats", "1"]
    return f.data + f.broker + f.out + (quick if args.quick else [])


def _scaling(args: argparse.Namespace, f: Flags) -> list[str]:
    quick = ["--instances", "1", "2"]
    quick += ["--start", "2020-01-01", "--end", _quick_end(args.quick_days)]
    return f.data + f.broker + f.out + f.logs + (quick if args.quick else [])


# One line per benchmark, run in this order: its name, its module's main(argv), and how its
# argv is made from this command's arguments and the common flags.
BENCHMARKS: dict[str, Benchmark] = {
    "inference": Benchmark(inference.main, _inference),
    "kafka_ceiling": Benchmark(kafka_ceiling.main, _kafka_ceiling),
    "pipeline": Benchmark(pipeline.main, _pipeline),
    "classifier": Benchmark(classifier.main, _classifier),
    "scaling": Benchmark(scaling.main, _scaling),
    "codecs": Benchmark(codecs.main, _codecs),
    "many_series": Benchmark(many_series.main, _many_series),
    "latency": Benchmark(latency.main, _latency),
}


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


def _against_baseline(pipe: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The consumer's CPU per observation and the replay's wall time, this checkout against
    the baseline commit's forecaster, both measured in this run."""
    now = _row(pipe, "scenario", "full replay, exactly once")
    ref = (pipe or {}).get("baseline")
    before = _row(pipe, "scenario", f"full replay, exactly once, baseline {ref}")
    if not (now and before and now.get("cpu_us_per_obs") and before.get("cpu_us_per_obs")):
        return []
    share = now["cpu_us_per_obs"] / before["cpu_us_per_obs"]
    return [
        {
            "target": f"full replay, exactly once: consumer CPU per observation ÷ {ref}'s",
            "figure": f"{share:.2f} ({now['cpu_us_per_obs']} / {before['cpu_us_per_obs']} µs)",
            "goal": f"≤ {CPU_SHARE}",
            "met": share <= CPU_SHARE,
        },
        {
            "target": f"full replay, exactly once: wall time, {ref}'s",
            "figure": f"{now['seconds']} s ({ref}: {before['seconds']} s)",
            "goal": "(shown, not a target)",
            "met": None,
        },
    ]


def _paced(report: dict[str, Any] | None) -> dict[str, Any] | None:
    rows = (report or {}).get("results", [])
    return next((r for r in rows if r["scenario"].startswith("paced")), None)


def _latency(reports: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Each service's paced p99 against its target, beside the floor at the same rate (the
    bare transactional round trip, bench.latency), and the floors themselves."""
    floors = {r["rate"]: r for r in (reports.get("latency") or {}).get("results", [])}
    services = []
    if pipe := _paced(reports.get("pipeline")):
        rate, p99 = pipe["obs_per_s"], pipe.get("visible_p99_ms")
        services.append((f"observation → forecast visible, paced {rate:g} obs/s", rate, p99))
    if answers := _paced(reports.get("classifier")):
        rate, p99 = answers.get("rate"), answers.get("p99_ms")
        services.append((f"classifier request → answer, paced {rate:g}/s", rate, p99))
    rows = []
    for what, rate, p99 in services:
        floor = floors.get(rate, {}).get("p99_ms")
        beside = f" ({p99 / floor:.2f} × the floor's {floor} ms)" if floor and p99 else ""
        met = p99 is not None and p99 <= LATENCY_P99_MS
        rows.append(
            {
                "target": f"{what}: p99",
                "figure": f"{p99} ms{beside}",
                "goal": f"≤ {LATENCY_P99_MS:g} ms",
                "met": met,
            }
        )
    for rate, floor in sorted(floors.items()):
        rows.append(
            {
                "target": f"floor: bare transactional round trip, paced {rate:g}/s: p50 / p99",
                "figure": f"{floor['p50_ms']} / {floor['p99_ms']} ms",
                "goal": "(the reference)",
                "met": None,
            }
        )
    return rows


def summary(reports: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Each target the benchmarks check, with this run's figure; ratios only within this run."""
    ceiling, pipe = reports.get("kafka_ceiling"), reports.get("pipeline")
    rows = _inference_targets(reports.get("inference"))
    rows.extend(_ceiling_ratios(ceiling, pipe))
    rows.extend(_whole_loop_ratio(ceiling, pipe))
    rows.extend(_latency(reports))
    rows.extend(_against_baseline(pipe))
    rows.extend(_replay_limits(pipe))
    return rows


def _inference_targets(inf: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Serving's targets: per window batched, and one window's p99."""
    if not inf:
        return []
    t = inf["targets"]
    return [
        {
            "target": "serving, batched, per window",
            "figure": f"{t['batched_per_window_us']} µs",
            "goal": f"≤ {t['batched_target_us']:g} µs",
            "met": t["batched_ok"],
        },
        {
            "target": "serving, one window, p99",
            "figure": f"{t['single_p99_us'] / 1000:.3f} ms",
            "goal": f"≤ {t['single_p99_target_us'] / 1000:g} ms",
            "met": t["single_p99_ok"],
        },
    ]


def _ceiling_ratios(
    ceiling: dict[str, Any] | None, pipe: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The pipeline's throughput as a share of the bare client's, scenario by scenario."""
    pairs = [
        ("full replay, exactly once", "consume→re-produce, exactly once", THROUGHPUT_RATIO),
        ("full replay, exactly once", "exactly once, forecaster-shaped", SHAPED_RATIO),
        ("full replay, at least once", "consume→re-produce, at least once", THROUGHPUT_RATIO),
    ]
    rows: list[dict[str, Any]] = []
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
    return rows


def _replay_limits(pipe: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Each pipeline scenario's wall time (full replays) and peak RSS against their limits."""
    rows: list[dict[str, Any]] = []
    for p in (pipe or {}).get("results", []):
        if "baseline" in p["scenario"]:
            continue
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
    """The tables of docs/performance.md, from this run's reports."""

    def md(rows: list[dict[str, Any]], cols: list[str]) -> str:
        """One Markdown table of `cols`; a missing or empty value prints as a dash."""

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
        "\n**Targets**\n\n",
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
                "loop_ms",
            ],
        ),
        "scaling": ("Scale-out: 1, 2, 3 forecasters", scaling.COLUMNS),
        "codecs": ("Compression codecs", codecs.COLUMNS),
        "latency": ("Latency floor: a bare transactional round trip, paced", latency.COLUMNS),
    }
    for name, (title, cols) in titles.items():
        if reports.get(name):
            out += [
                f"\n**{title}** (`python -m bench.{name}`)\n\n",
                md(reports[name]["results"], cols),
            ]
    return "".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks on one broker, then write summary.json and performance.md with
    the targets as ratios of this run; returns the exit status."""
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", default=default_data(), help="SILSO daily CSV")
    parser.add_argument("--bootstrap-servers", help="a running broker; default: start one")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    parser.add_argument("--quick", action="store_true", help="smoke-sized runs, for CI")
    parser.add_argument("--quick-days", type=int, default=300, help="days in a quick replay")
    parser.add_argument(
        "--baseline",
        default="",
        metavar="REF",
        help=f"also replay with the forecaster of this commit (e.g. {BASELINE_REF}; none unless given)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder")
    args = parser.parse_args(argv)
    # The bare loops run kafka-python clients in this process: their own lines stay quiet.
    quiet_kafka()
    args.results.mkdir(parents=True, exist_ok=True)
    with broker(args.bootstrap_servers, needed=bool(set(args.only) - {"inference"})) as bootstrap:
        for name, bench in BENCHMARKS.items():
            if name in args.only:
                sys.stdout.write(f"\n== {name} ==\n")
                sys.stdout.flush()
                bench.main(bench.argv(args, _flags(args, name, bootstrap)))
    reports = {name: _load(args, name) for name in args.only}
    targets = summary(reports)
    result = report("summary", targets, quick=args.quick, benchmarks=args.only)
    (args.results / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.results / "performance.md").write_text(markdown(reports, targets))
    sys.stdout.write("\n== targets ==\n")
    sys.stdout.write(table(targets, ["target", "figure", "goal", "met"]))
    sys.stdout.write(f"written to {args.results / 'summary.json'} and performance.md\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
