"""`make demo`: the whole replay on one machine, then a summary and a plot.

Starts a local Kafka broker (or uses KAFKA_BOOTSTRAP_SERVERS), creates the topics, runs the
forecaster and the classifier, replays 2000-01-01 to the end of the data at full speed (or
`--speed` days per second, to watch the metrics move), asks the classifier the lesson's
sequences, prints what happened and writes reports/demo/forecast_vs_actual.png. Everything it
starts, it stops.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import time
from pathlib import Path

from devtools.broker import LocalBroker, free_port
from sunspots.domain import lesson
from sunspots.domain.data import SILSO_DAILY_URL
from sunspots.domain.evaluation import rmse
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.kafka.topics import create_topics
from sunspots.process.cli import Parser, env_flag, iso_date, non_negative_float
from sunspots.process.deadline import Deadline
from sunspots.process.logs import quiet_kafka
from support.http import Samples, scrape, total, wait_ready
from support.run_topics import read_to_end, unique_topics, values
from support.services import Service, consumer, run_producer

REPO = Path(__file__).resolve().parents[1]
LESSON_SEQUENCES = [*lesson.SEQUENCES, lesson.EXAMPLE]


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _port(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


def _fresh(log: Path) -> Path:
    """`log` emptied: reports/demo keeps the logs of the last run only."""
    log.unlink(missing_ok=True)
    return log


def _plot(evaluations: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    frame = pd.DataFrame(evaluations)
    frame["date"] = pd.to_datetime(frame["date"])
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), dpi=90)
    # The whole replay is too dense to read day by day, so the last year is drawn again below.
    for ax, part in zip(axes, (frame, frame.tail(365)), strict=True):
        ax.plot(part["date"], part["actual"], lw=0.6, color="black", label="actual")
        ax.plot(
            part["date"], part["forecast"], lw=0.6, color="tab:orange", label="streamed forecast"
        )
        ax.fill_between(
            part["date"],
            part["lower"],
            part["upper"],
            color="tab:orange",
            alpha=0.2,
            lw=0,
            label="90 % interval",
        )
        ax.set_ylabel("daily sunspot number")
    axes[0].set_title("Streamed next-day forecasts vs actuals (last year below)")
    axes[1].legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    """The whole demo: a broker (unless one is given), both services, the replay, then the
    classifier's answers, a summary and the plot; 1 when the replay fails."""
    out_dir = REPO / "reports" / "demo"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    broker = None
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if not bootstrap:
        say("starting a local Kafka broker ...")
        broker = LocalBroker().start()
        bootstrap = broker.bootstrap_servers
    # On a shared broker, a run token keeps this demo's topics and offsets to itself.
    token = None if broker else f"demo-{int(time.time())}"
    topics = unique_topics(token) if token else Topics()
    kafka = KafkaSettings(bootstrap, topics)
    create_topics(kafka)
    group = f"sunspots-demo-{token}" if token else "sunspots-demo"
    ports = {"forecast": _port(8000), "classify": _port(8001)}
    services = {
        mode: consumer(
            mode, bootstrap, topics, f"{group}-{mode}", _fresh(out_dir / f"{mode}.log"), port=port
        ).start()
        for mode, port in ports.items()
    }
    try:
        _wait_services(services, ports)
        return _replay_and_report(args, kafka, ports, out_dir, started)
    finally:
        for service in services.values():
            service.process.send_signal(signal.SIGTERM)
        for service in services.values():
            service.wait(30)
        if broker:
            broker.cleanup()


def _wait_services(services: dict[str, Service], ports: dict[str, int]) -> None:
    """Each service ready, or SystemExit with one line pointing at its log."""
    for mode, port in ports.items():
        try:
            wait_ready(port, services[mode].process)
        except RuntimeError as exc:
            raise SystemExit(
                f"the {mode} service is not ready ({exc}); see reports/demo/"
            ) from None
    say(
        f"forecaster metrics on http://127.0.0.1:{ports['forecast']}/metrics, "
        f"classifier on :{ports['classify']}"
    )


def _replay_and_report(
    args: argparse.Namespace,
    kafka: KafkaSettings,
    ports: dict[str, int],
    out_dir: Path,
    started: float,
) -> int:
    """Replay the chosen days, wait for the forecaster to catch up, ask the classifier, then
    summarise and plot; 1 when the replay fails."""
    bootstrap, topics = kafka.bootstrap_servers, kafka.topics
    say(
        f"replaying {args.start} .. {args.end or 'end of data'} at {args.speed or 'full'} speed ..."
    )
    replay = ["--start", args.start, "--speed", str(args.speed)]
    replay += ["--end", args.end] if args.end else []
    try:
        log = _fresh(out_dir / "producer.log")
        run_producer(bootstrap, topics, args.data, log, *replay, timeout=None)
    except RuntimeError as exc:
        say(str(exc)[-2000:])
        return 1
    replay_done = time.monotonic()
    metrics, caught_up = _settle(ports["forecast"])
    say(f"forecaster caught up {caught_up - replay_done:.1f} s after the replay ended")
    _classify(kafka, args.timeout)
    evaluations = values(read_to_end(bootstrap, topics.evaluations, timeout=300))
    evaluations.sort(key=lambda e: e["date"])
    _summary(metrics, evaluations, time.monotonic() - started)
    _plot(evaluations, out_dir / "forecast_vs_actual.png")
    say(f"plot: {out_dir / 'forecast_vs_actual.png'}")
    return 0


def _settle(port: int, quiet_s: float = 2.0, timeout: float = 300) -> tuple[Samples, float]:
    """Scrape until the forecaster's counts stop moving; return them and when they last moved."""
    last, since = -1.0, time.monotonic()
    deadline = Deadline(timeout)
    while not deadline.expired():
        metrics = scrape(port)
        count = total(metrics, "sunspot_observations_total") + total(
            metrics, "sunspot_dead_letters_total"
        )
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since > quiet_s:
            return metrics, since
        time.sleep(0.2)
    return scrape(port), since


def _classify(kafka: KafkaSettings, timeout: float) -> None:
    from producer.classify import ask

    answers = ask(kafka, LESSON_SEQUENCES, timeout)
    for sequence, answer in zip(LESSON_SEQUENCES, answers, strict=True):
        say(f"classifier: {sequence} -> class {answer.predicted_class}")


def _summary(metrics: Samples, evaluations: list[dict], seconds: float) -> None:
    errors = [e["error"] for e in evaluations]
    persistence = [e["persistence_error"] for e in evaluations]
    covered = [e["lower"] <= e["actual"] <= e["upper"] for e in evaluations]
    model_rmse, base_rmse = rmse(errors), rmse(persistence)
    say("")
    say("summary")
    say(f"  observations      {int(total(metrics, 'sunspot_observations_total'))}")
    say(f"  forecasts         {int(total(metrics, 'sunspot_forecasts_total'))}")
    say(f"  evaluations       {len(evaluations)}")
    say(f"  streamed RMSE     {model_rmse:.3f}")
    say(f"  persistence RMSE  {base_rmse:.3f} (skill {1 - model_rmse / base_rmse:+.1%})")
    coverage = sum(covered) / len(covered) if covered else math.nan
    say(f"  90 % interval     {coverage:.1%} of actuals inside")
    say(f"  dead letters      {int(total(metrics, 'sunspot_dead_letters_total'))}")
    say(f"  wall time         {seconds:.1f} s")
    if evaluations:
        say("")
        say("90 % interval by activity (the window's last value), from the evaluations topic")
        say(_band_table(evaluations))


def _band_table(evaluations: list[dict]) -> str:
    import numpy as np

    from sunspots.domain.intervals import band_table, format_table

    def column(name: str) -> np.ndarray:
        return np.array([e[name] for e in evaluations])

    rows = band_table(
        column("persistence"),
        column("forecast"),
        column("actual"),
        column("lower"),
        column("upper"),
    )
    return format_table(rows)


def main(argv: list[str] | None = None) -> int:
    """`make demo`: the flags (each also read from its environment variable), then the whole
    demo; returns its exit status."""
    parser = Parser(prog="demo", description=__doc__)
    env_flag(parser, "--data", SILSO_DAILY_URL, "SILSO daily CSV: path or URL")
    env_flag(parser, "--start", "2000-01-01", "first date to replay", type=iso_date)
    env_flag(parser, "--end", None, "last date to replay (default: end of data)", type=iso_date)
    env_flag(parser, "--speed", 0.0, "days per second; 0 = full speed", type=non_negative_float)
    env_flag(parser, "--timeout", 30.0, "seconds to wait for answers", type=non_negative_float)
    args = parser.parse_args(argv)
    # The classifier's answers are asked for in this process: its client's lines stay quiet.
    quiet_kafka()
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
