"""A real Prometheus scrapes the real services during a short replay, and the dashboard works.

One module-wide run, configured by environment exactly like docker-compose.yml configures the
containers: the topic set-up command, the forecaster and the classifier as subprocesses on the
session's Kafka broker, Debian's `prometheus` on the project's own prometheus.yml (targets
pointed at the test ports, 1 s intervals) and rules, then a three-month replay, a round of
classifier requests and one malformed record for each consumer's dead-letter path.

The tests then ask Prometheus' HTTP API what the run produced and compare it with the
services' own /metrics and with the records on the topics; run every dashboard and alert
expression on the server; and check that every metric the dashboard and the rules name is
one the live services export.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient

from consumer.__main__ import main as consumer_main
from devtools.broker import LocalBroker, free_port
from producer.__main__ import main as producer_main
from sunspots.domain.intervals import BAND_LABELS, band
from sunspots.kafka.settings import TOPIC_ENV, KafkaSettings, Topics
from sunspots.kafka.topics import create_topics as create_service_topics
from sunspots.kafka.topics import main as topics_main
from sunspots.wire import schemas
from support.http import get, metrics_text
from support.polling import wait_for
from support.run_progress import Progress
from support.run_topics import read_to_end, topic_env, unique_topics
from support.services import (
    REPO,
    Service,
    forecaster,
    instance_id,
    python_service,
    replay_range,
    running,
)
from tests.datafacts import DataFile
from tests.integration.monitoring_helpers import (
    DASHBOARD,
    ComposeConfiguredBroker,
    PrometheusServer,
    dashboard_queries,
    exported_names,
    flag_env,
    grafana_to_promql,
    names_of,
    rule_expressions,
    sample_value,
)
from tests.tolerance import FLOAT32_REL
from tests.unit.test_compose import environment, load_compose

SERIES = "silso"
# 91 days: windows fill after the first few, so the run has dozens of forecasts and evaluations.
# 40 days a second spreads them over a few 1 s scrapes, so rates and quantiles have data.
REPLAY = {"--start": "2000-01-01", "--end": "2000-03-31", "--speed": "40"}
# Smaller than the number of evaluations, so the rolling window really rolls.
ROLLING = 30
CLASSIFY = "0,0,0,0,0,1;0,0,0,1,0,0;0,2,0,0,0,0;3,0,0,0,0,0;0,0,0,0,0,0"


@dataclass
class Run:
    bootstrap: str
    topics: Topics
    forecaster_port: int
    classifier_port: int
    prometheus: PrometheusServer
    forecaster_metrics: str
    classifier_metrics: str


@pytest.fixture(scope="module")
def run(bootstrap_servers: str, data_path: Path, tmp_path_factory) -> Iterator[Run]:
    token = uuid.uuid4().hex[:10]
    workdir = tmp_path_factory.mktemp("monitoring")
    topics = unique_topics(token)
    # Each command's environment variables as its --help names them.
    setup_env, replay_env = flag_env(topics_main), flag_env(producer_main)
    forecast_env, classify_env = (
        flag_env(consumer_main, "forecast"),
        flag_env(consumer_main, "classify"),
    )
    client_env = flag_env(producer_main, "classify")
    env = {
        forecast_env["--bootstrap-servers"]: bootstrap_servers,
        forecast_env["--log-level"]: "INFO",
        **topic_env(topics),
    }
    forecaster_port, classifier_port, prometheus_port = free_port(), free_port(), free_port()
    processes = []
    prometheus = None
    try:
        # The compose file's one-shot `topics` service.
        setup = python_service(
            ["sunspots.kafka.topics"],
            workdir / "topics.log",
            env={**env, setup_env["--partitions"]: "1"},
        ).start()
        processes.append(setup)
        assert setup.wait(60) == 0, setup.log()

        forecaster = python_service(
            ["consumer", "forecast"],
            workdir / "forecaster.log",
            forecaster_port,
            env={
                **env,
                forecast_env["--metrics-port"]: str(forecaster_port),
                forecast_env["--group"]: f"mon-forecaster-{token}",
                forecast_env["--instance-id"]: f"mon-forecaster-{token}",
                forecast_env["--rolling"]: str(ROLLING),
                forecast_env["--create-topics"]: "false",
            },
        ).start()
        processes.append(forecaster)
        classifier = python_service(
            ["consumer", "classify"],
            workdir / "classifier.log",
            classifier_port,
            env={
                **env,
                classify_env["--metrics-port"]: str(classifier_port),
                classify_env["--group"]: f"mon-classifier-{token}",
                classify_env["--instance-id"]: f"mon-classifier-{token}",
                classify_env["--create-topics"]: "false",
            },
        ).start()
        processes.append(classifier)
        prometheus = PrometheusServer(
            workdir,
            prometheus_port,
            {
                "forecaster": f"127.0.0.1:{forecaster_port}",
                "classifier": f"127.0.0.1:{classifier_port}",
            },
        ).wait_ready()
        # /healthz (the poll loop turns) is enough: a fresh group starts from the earliest
        # offset, so records sent before the partitions are assigned are still all processed.
        forecaster.wait_ready(90, path="/healthz")
        classifier.wait_ready(90, path="/healthz")

        producer = python_service(
            ["producer"],
            workdir / "producer.log",
            env={
                **env,
                **{replay_env[flag]: value for flag, value in REPLAY.items()},
                replay_env["--data"]: str(data_path),
                replay_env["--series"]: SERIES,
            },
        ).start()
        processes.append(producer)
        assert producer.wait(90) == 0, producer.log()
        # The compose file's classifier-client, one round.
        client = python_service(
            ["producer", "classify"],
            workdir / "classifier-client.log",
            env={**env, client_env["--sequence"]: CLASSIFY, client_env["--timeout"]: "60"},
        ).start()
        processes.append(client)
        assert client.wait(90) == 0, client.log()

        # One malformed record per consumer, after everything else on the same partition: once
        # it is dead-lettered, every record before it has been processed.
        kafka = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
        kafka.send(topics.observations, key=SERIES.encode(), value=b"not json")
        kafka.send(topics.classifier_requests, key=b"bad", value=b'{"id": "bad", "sequence": [9]}')
        kafka.flush()
        kafka.close()

        def forecaster_done() -> str | None:
            forecaster.check_running()
            text = metrics_text(forecaster_port)
            return (
                text
                if sample_value(text, "sunspot_dead_letters_total", {"reason": "not_json"}) == 1
                else None
            )

        def classifier_done() -> str | None:
            classifier.check_running()
            text = metrics_text(classifier_port)
            return (
                text
                if sample_value(text, "classifier_dead_letters_total", {"reason": "bad_sequence"})
                == 1
                else None
            )

        forecaster_text = wait_for(
            "the forecaster to dead-letter the malformed record", forecaster_done, 60
        )
        classifier_text = wait_for(
            "the classifier to dead-letter the malformed request", classifier_done, 60
        )

        # Prometheus has caught up once it holds the final values of the counters that moved last.
        forecasts = sample_value(
            forecaster_text, "sunspot_series_forecasts_total", {"series": SERIES}
        )

        def caught_up() -> bool:
            scraped = prometheus.vector(f'sunspot_series_forecasts_total{{series="{SERIES}"}}')
            return (
                [value for _, value in scraped] == [forecasts]
                and bool(prometheus.vector('sunspot_dead_letters_total{reason="not_json"}'))
                and bool(prometheus.vector('classifier_dead_letters_total{reason="bad_sequence"}'))
                # rate() needs two samples of every series in the window.
                and bool(prometheus.vector("count_over_time(classifier_requests_total[1m]) > 2"))
                and bool(prometheus.vector("count_over_time(sunspot_forecast_rmse[1m]) > 2"))
                and bool(prometheus.vector("count_over_time(sunspot_dead_letters_total[1m]) > 2"))
                and bool(
                    prometheus.vector("count_over_time(classifier_dead_letters_total[1m]) > 2")
                )
            )

        wait_for("Prometheus to scrape the run's final counts", caught_up, 30)
        yield Run(
            bootstrap_servers,
            topics,
            forecaster_port,
            classifier_port,
            prometheus,
            forecaster_text,
            classifier_text,
        )
    finally:
        for process in reversed(processes):
            process.stop(20)
        if prometheus is not None:
            prometheus.stop()
        admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
        try:
            admin.delete_topics([name for name, _ in topics.named()])
        except Exception:  # best-effort clean-up: the broker lives for the session only
            pass
        finally:
            admin.close()


def _rmse(errors: list[float]) -> float:
    return math.sqrt(math.fsum(e * e for e in errors) / len(errors))


# --- Prometheus sees what the run produced ----------------------------------------------------


def test_prometheus_reports_the_forecast_count_the_run_produced(run: Run) -> None:
    forecasts = [
        schemas.decode_forecast(r.value) for r in read_to_end(run.bootstrap, run.topics.forecasts)
    ]
    forecasts = [f for f in forecasts if f.series == SERIES]
    assert forecasts, "the replay produced no forecasts"
    # The run's one series, exported by the default --series-metrics (the producer's name):
    # its own count and the fleet-wide one agree with the topic.
    own = sample_value(run.forecaster_metrics, "sunspot_series_forecasts_total", {"series": SERIES})
    ((labels, scraped),) = run.prometheus.vector(
        f'sunspot_series_forecasts_total{{series="{SERIES}"}}'
    )
    assert scraped == own == len(forecasts)
    ((_, fleet),) = run.prometheus.vector("sunspot_forecasts_total")
    assert fleet == sample_value(run.forecaster_metrics, "sunspot_forecasts_total") == own
    # The series really came through the project's scrape job.
    assert labels["job"] == "forecaster" and labels["service"] == "forecaster"
    assert labels["instance"] == f"127.0.0.1:{run.forecaster_port}"


def test_prometheus_reports_the_rolling_rmse_of_the_evaluations_on_the_topic(run: Run) -> None:
    evaluations = [
        schemas.decode_evaluation(r.value)
        for r in read_to_end(run.bootstrap, run.topics.evaluations)
    ]
    evaluations = [e for e in evaluations if e["series"] == SERIES]
    assert len(evaluations) > ROLLING, f"only {len(evaluations)} evaluations"
    assert sample_value(
        run.forecaster_metrics, "sunspot_series_evaluations_total", {"series": SERIES}
    ) == len(evaluations)
    last = evaluations[-ROLLING:]
    expected = _rmse([e["actual"] - e["forecast"] for e in last])
    expected_persistence = _rmse([e["actual"] - e["persistence"] for e in last])

    for name, value in (
        ("sunspot_forecast_rmse", expected),
        ("sunspot_persistence_rmse", expected_persistence),
    ):
        own = sample_value(run.forecaster_metrics, name, {"series": SERIES})
        ((_, scraped),) = run.prometheus.vector(f'{name}{{series="{SERIES}"}}')
        assert scraped == own, f"{name}: Prometheus has {scraped}, /metrics {own}"
        assert scraped == pytest.approx(value, rel=1e-9), f"{name}: the topic gives {value}"


def _observed_values(run: Run) -> list[float]:
    """The sunspot numbers of the run's well-formed observations, in topic order."""
    found = []
    for record in read_to_end(run.bootstrap, run.topics.observations):
        try:
            obs = schemas.decode_observation(record.value, record.key)
        except schemas.SchemaError:
            continue  # the malformed record sent to exercise the dead-letter path
        if obs.series == SERIES and obs.sunspot_number is not None:
            found.append(obs.sunspot_number)
    return found


def test_prometheus_reports_coverage_errors_and_last_values_of_the_topics(
    run: Run, data_file: DataFile
) -> None:
    """Each gauge and the error histogram, recomputed from the records on the topics."""
    evaluations = [
        schemas.decode_evaluation(r.value)
        for r in read_to_end(run.bootstrap, run.topics.evaluations)
    ]
    evaluations = [e for e in evaluations if e["series"] == SERIES]
    forecasts = [
        schemas.decode_forecast(r.value) for r in read_to_end(run.bootstrap, run.topics.forecasts)
    ]
    forecasts = [f for f in forecasts if f.series == SERIES]
    errors = [e["actual"] - e["forecast"] for e in evaluations]
    last = evaluations[-ROLLING:]
    coverage = sum(e["lower"] <= e["actual"] <= e["upper"] for e in last) / len(last)
    # Guard the guard: a coverage of 0 or 1 would let a `covered` that is always False or
    # always True pass. The replayed quarter has misses and hits in its last K days.
    assert 0 < coverage < 1, (
        f"coverage {coverage} of the last {ROLLING} cannot tell a broken `covered` {data_file.note}"
    )
    expected = {
        "sunspot_forecast_interval_coverage": coverage,
        "sunspot_forecast_error": errors[-1],
        "sunspot_actual_value": _observed_values(run)[-1],
        "sunspot_forecast_value": forecasts[-1].forecast,
    }
    for name, value in expected.items():
        own = sample_value(run.forecaster_metrics, name, {"series": SERIES})
        ((_, scraped),) = run.prometheus.vector(f'{name}{{series="{SERIES}"}}')
        assert scraped == own, f"{name}: Prometheus has {scraped}, /metrics {own}"
        assert scraped == pytest.approx(value, rel=1e-9, abs=1e-9), f"{name}: topics give {value}"

    _check_interval_gauges(run, last)

    # The error histogram is fleet-wide: over the run's one series, that series' errors.
    for name, value in (
        ("sunspot_forecast_abs_error_count", len(errors)),
        ("sunspot_forecast_abs_error_sum", math.fsum(abs(e) for e in errors)),
    ):
        ((_, scraped),) = run.prometheus.vector(name)
        assert scraped == pytest.approx(value, rel=1e-9), f"{name}: topics give {value}"
    buckets = run.prometheus.vector("sunspot_forecast_abs_error_bucket")
    assert len(buckets) > 2
    for labels, scraped in buckets:
        bound = float(labels["le"])
        assert scraped == sum(abs(e) <= bound for e in errors), f"bucket le={labels['le']}"


def _check_interval_gauges(run: Run, last: list[dict]) -> None:
    """Mean width and coverage per activity band of the last K evaluations, as scraped."""
    widths = [e["upper"] - e["lower"] for e in last]
    ((_, width),) = run.prometheus.vector(f'sunspot_forecast_interval_width{{series="{SERIES}"}}')
    assert width == pytest.approx(math.fsum(widths) / len(widths), rel=FLOAT32_REL)
    by_band: dict[str, list[bool]] = {}
    for e in last:
        by_band.setdefault(band(e["persistence"]), []).append(
            e["lower"] <= e["actual"] <= e["upper"]
        )
    query = f'sunspot_forecast_interval_band_coverage{{series="{SERIES}"}}'
    bands = {labels["band"]: value for labels, value in run.prometheus.vector(query)}
    assert bands == pytest.approx({b: sum(c) / len(c) for b, c in by_band.items()}, rel=1e-9)
    assert set(bands) <= set(BAND_LABELS) and bands


RECIPE = re.compile(r"<!-- recipe: one-series-quality -->\n```sh\n(.*?)```", re.DOTALL)


def test_the_readme_recipe_gives_a_series_quality_from_the_evaluations_topic(run: Run) -> None:
    """The kcat and jq recipe of docs/operations.md, run as written on this run's topic (its K set to the
    run's --rolling), gives the series' RMSE and coverage that /metrics and Prometheus give:
    a series' quality without its metrics."""
    match = RECIPE.search((REPO / "docs" / "operations.md").read_text())
    assert match, "docs/operations.md has no one-series-quality recipe"
    recipe = (
        match.group(1)
        .replace("localhost:9092", run.bootstrap)
        .replace("sunspots.evaluations", run.topics.evaluations)
        .replace('"silso-42"', f'"{SERIES}"')
        .replace(".[-365:]", f".[-{ROLLING}:]")
    )
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", recipe],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert figures["days"] == ROLLING
    for key, name in (
        ("rmse", "sunspot_forecast_rmse"),
        ("persistence_rmse", "sunspot_persistence_rmse"),
        ("coverage", "sunspot_forecast_interval_coverage"),
    ):
        ((_, scraped),) = run.prometheus.vector(f'{name}{{series="{SERIES}"}}')
        # jq sums in another order than math.fsum: equal to rounding, 1e-9 of the value.
        assert figures[key] == pytest.approx(scraped, rel=1e-9), key


def test_the_scrape_targets_are_up(run: Run) -> None:
    targets = run.prometheus.api("targets")["data"]["activeTargets"]
    health = {t["labels"]["job"]: t["health"] for t in targets}
    assert health == {"forecaster": "up", "classifier": "up", "prometheus": "up"}, targets


def test_alert_rules_load_and_evaluate_without_error(run: Run) -> None:
    def evaluated() -> list[dict] | None:
        groups = run.prometheus.api("rules")["data"]["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        done = all(not rule["lastEvaluation"].startswith("0001") for rule in rules)
        return rules if rules and done else None

    rules = wait_for("every rule to be evaluated once", evaluated, 15)
    assert {r["name"] for r in rules} == {name for name, _ in rule_expressions()}
    broken = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert not broken, broken
    # Nothing is wrong in this run that an alert should report as firing already.
    assert not [r for r in rules if r["state"] == "firing"]


# --- the dashboard works on the real data -----------------------------------------------------


def test_every_dashboard_query_parses_on_the_server(run: Run) -> None:
    # The server does reject what does not parse, so a "success" below means something.
    broken = run.prometheus.query("sum(rate(sunspot_forecasts_total[1m])")
    assert broken["status"] == "error" and broken["errorType"] == "bad_data"
    for title, expr in dashboard_queries():
        payload = run.prometheus.query(grafana_to_promql(expr))
        assert payload["status"] == "success", f"{title}: {expr}\n{payload}"


def test_every_dashboard_panel_shows_data_after_the_run(run: Run) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        results = [run.prometheus.vector(grafana_to_promql(t["expr"])) for t in panel["targets"]]
        assert any(results), f"panel {panel['title']!r} shows no data"


def test_dashboard_and_rules_name_only_metrics_the_services_export(run: Run) -> None:
    exported = exported_names(run.forecaster_metrics) | exported_names(run.classifier_metrics)
    # `up` is written by Prometheus itself for every target.
    exported.add("up")
    used = names_of([*dashboard_queries(), *rule_expressions()])
    missing = {name: sorted(where) for name, where in used.items() if name not in exported}
    assert not missing, f"not exported by the live services: {missing}"
    # The check is not vacuous: the dashboard uses the headline metrics.
    assert {"sunspot_forecasts_total", "sunspot_forecast_rmse", "classifier_requests_total"} <= set(
        used
    )


def test_consumers_answer_their_health_endpoints(run: Run) -> None:
    # /healthz is what the containers' healthchecks (docker/healthcheck.py) ask.
    for port in (run.forecaster_port, run.classifier_port):
        assert get(port, "/healthz")[0] == 200

    # /readyz: model loaded, partitions assigned, broker reachable - all true in this run.
    def ready() -> bool:
        ports = (run.forecaster_port, run.classifier_port)
        return all(get(p, "/readyz")[0] == 200 for p in ports)

    wait_for("both consumers' /readyz to answer 200", ready, 10)


# --- the compose file's Kafka service ---------------------------------------------------------


def test_compose_kafka_settings_run_a_broker_the_services_can_use(tmp_path: Path) -> None:
    """The `kafka` service's KAFKA_* settings and CLUSTER_ID, on the same broker version, make
    a KRaft node that formats, starts, takes the `topics` one-shot on the INTERNAL listener
    and serves transactions (the forecaster's exactly-once path) to a host client."""
    compose = load_compose()
    kafka_env = environment(compose["services"]["kafka"])
    broker = ComposeConfiguredBroker(kafka_env, hosts={"kafka", "localhost"})
    try:
        broker.start(timeout=120)
        internal, external = broker.listener("INTERNAL"), broker.listener("EXTERNAL")

        names = flag_env(topics_main)
        setup_env = environment(compose["services"]["topics"])
        setup_env[names["--bootstrap-servers"]] = internal
        setup = python_service(
            ["sunspots.kafka.topics"], tmp_path / "topics.log", env=setup_env
        ).start()
        assert setup.wait(60) == 0, setup.log()

        admin = KafkaAdminClient(bootstrap_servers=internal)
        try:
            assert admin.describe_cluster()["cluster_id"] == kafka_env["CLUSTER_ID"]
            described = {t["name"]: t for t in admin.describe_topics()}
        finally:
            admin.close()
        partitions = int(setup_env[names["--partitions"]])
        observations = setup_env[TOPIC_ENV["observations"]]
        for env_name in TOPIC_ENV.values():
            assert setup_env[env_name] in described, f"{setup_env[env_name]} was not created"
        assert len(described[observations]["partitions"]) == partitions
        state = described[setup_env[TOPIC_ENV["state"]]]
        assert len(state["partitions"]) == partitions

        # A transactional producer needs the single-replica transaction log settings.
        producer = KafkaProducer(bootstrap_servers=external, transactional_id="compose-check")
        producer.init_transactions()
        producer.begin_transaction()
        producer.send(observations, key=b"silso", value=b"committed")
        producer.commit_transaction()
        producer.close()
        consumer = KafkaConsumer(
            observations,
            bootstrap_servers=external,
            group_id="compose-check",
            isolation_level="read_committed",
            auto_offset_reset="earliest",
            consumer_timeout_ms=20_000,
        )
        try:
            # consumer_timeout_ms bounds the wait; the first committed record ends it.
            values = []
            for record in consumer:
                values.append(record.value)
                break
        finally:
            consumer.close()
        assert values == [b"committed"]
    finally:
        broker.cleanup()


# --- the loop's own metrics, against what a killed forecaster and a broker outage did ---------


@dataclass
class LoopRun:
    """A forecaster on a broker of its own, scraped by Prometheus every second."""

    broker: LocalBroker
    topics: Topics
    forecaster: Service
    instance: str
    prometheus: PrometheusServer
    data: Path

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap_servers

    def scraped(self, name: str, **labels: str) -> float:
        """The forecaster's `name{labels}` once Prometheus holds the value its /metrics has now
        (the loop is idle when this is asked, so the value stands still)."""
        own = sample_value(metrics_text(self.forecaster.port), name, labels)
        assert own is not None, f"{name}{labels} is not on the forecaster's /metrics"
        selector = ",".join(['job="forecaster"', *(f'{k}="{v}"' for k, v in labels.items())])

        def caught_up() -> float | None:
            found = self.prometheus.vector(f"{name}{{{selector}}}")
            return found[0][1] if [value for _, value in found] == [own] else None

        return wait_for(f"Prometheus to scrape {name}{labels} = {own}", caught_up, 30)

    def replay(self, start: str, end: str, progress: Progress, group: str) -> int:
        """Replay `start`..`end` at full speed; once every observation is committed, the
        number on the topic."""
        replay = replay_range(
            self.bootstrap, self.topics, self.data, self.broker.workdir, start, end
        )
        assert replay.start().wait(180) == 0, replay.log()
        total = progress.ends(self.topics.observations).written
        progress.wait_finished(group, self.topics, total, 180, self.forecaster)
        return total


def _committed_records(bootstrap: str, topic: str) -> int:
    """The records a restore applies: the latest committed record of each key (compaction's
    view, which the restore takes while reading)."""
    return len({record.key for record in read_to_end(bootstrap, topic)})


def _told(log: str) -> dict[str, int]:
    """What the forecaster's log says it did: restores at an assignment, failed publishes
    (each aborted and rewound), rewinds (each restoring the state of the partitions it owns
    again, when it owns any)."""
    return {
        "assigned": len(re.findall(r"partitions assigned: \[[\d, ]*\] \(state restored in", log)),
        "failed": len(
            re.findall(r"publishing a batch of \d+ records failed \(.*\); rewinding", log)
        ),
        "rewound": len(re.findall(r"rewound \d+ partitions to their committed offsets", log)),
        "restoring rewinds": len(re.findall(r"rewound [1-9]\d* partitions to their", log)),
    }


@pytest.fixture
def loop_run(data_path: Path, tmp_path: Path, unique: str) -> Iterator[LoopRun]:
    broker = LocalBroker(workdir=tmp_path / "kafka").start()
    prometheus = None
    topics = unique_topics(unique)
    try:
        create_service_topics(KafkaSettings(broker.bootstrap_servers, topics))
        group = f"g-{unique}"
        # Small batches: many transactions, so that an outage lands inside one.
        fc = forecaster(
            broker.bootstrap_servers, topics, group, tmp_path, "--max-poll-records", "5"
        )
        nobody = f"127.0.0.1:{free_port()}"  # no classifier runs here: its target is down
        targets = {"forecaster": f"127.0.0.1:{fc.port}", "classifier": nobody}
        prometheus = PrometheusServer(tmp_path, free_port(), targets).wait_ready()
        yield LoopRun(broker, topics, fc, instance_id(group, "a"), prometheus, data_path)
    finally:
        if prometheus is not None:
            prometheus.stop()
        broker.cleanup()


def test_prometheus_counts_the_restores_and_rewinds_of_a_kill_and_a_broker_outage(
    loop_run: LoopRun,
) -> None:
    """A forecaster is killed (SIGKILL) and restarted: the new process's one restore applied
    the latest committed changelog record of each key, and it rewound nothing. Then the broker freezes in the middle of
    a transaction for longer than a transaction step may wait: every failed publish the log tells
    is an abort and a rewind, every rewind and assignment a restore, the instance was unready
    meanwhile, and each batch the log counts at the stop is one commit."""
    run, fc = loop_run, loop_run.forecaster
    group = run.instance.rsplit("-", 1)[0]
    with running(fc), Progress(run.bootstrap) as progress:
        fc.wait_ready(90)
        run.replay("2000-01-01", "2000-12-31", progress, group)
        fc.kill()
        changelog = _committed_records(run.bootstrap, run.topics.state)
        assert changelog > 0
        before_restart = fc.log_path.stat().st_size
        fc.start().wait_ready(90)
        assert run.scraped("sunspot_consumer_restore_seconds_count") == 1
        assert run.scraped("sunspot_consumer_restored_records_total") == changelog
        for cause in ("failed_publish", "failed_restore"):
            assert run.scraped("sunspot_consumer_rewinds_total", cause=cause) == 0

        outages = _outage_until_a_publish_fails(run, progress, group, before_restart)
        total = progress.ends(run.topics.observations).written
        progress.wait_finished(group, run.topics, total, 180, fc)
        told = _told(_log_since(fc, before_restart))
        assert told["failed"] >= 1, f"{outages} outages, none inside a transaction"
        print(f"\n{outages} broker outages; the restarted forecaster's log tells {told}")
        _assert_scraped_as_told(run, told, changelog, progress)
        batches = run.scraped("sunspot_consumer_batch_seconds_count")
        commits = run.scraped("sunspot_consumer_publish_step_seconds_count", step="commit")
        assert fc.terminate() == 0
    stopped = re.findall(r"shutting down after (\d+) batches", fc.log())
    assert batches == commits == int(stopped[-1]) > 0


def _log_since(service: Service, offset: int) -> str:
    return service.log_path.read_bytes()[offset:].decode(errors="replace")


def _outage_until_a_publish_fails(
    run: LoopRun, progress: Progress, group: str, since: int, attempts: int = 3
) -> int:
    """Replay a stretch of days at full speed and freeze the broker (SIGSTOP) while a
    transaction of the forecaster is open, for 25 s (a step gives up after 20 s), until its
    log (from `since`) tells a failed publish; the number of outages.

    Frozen rather than killed: a restarted broker takes its recovery's time on top, and an
    outage past the transaction timeout (60 s) fences the producer and stops the service, by
    design (exit code 3)."""
    replay = replay_range(
        run.bootstrap, run.topics, run.data, run.broker.workdir, "2001-01-01", "2020-12-31"
    )
    fc = run.forecaster
    consumed = progress.consumed(group, run.topics.observations)
    outages = 0
    with running(replay):
        while outages < attempts:
            # The loop is busy with the stretch: each batch's transaction follows the last.
            consumed += 200
            progress.wait_consumed(group, run.topics.observations, consumed, 120, fc)
            if not progress.aim_at_open_transaction(run.instance, run.topics.forecasts, 10.0):
                continue
            outages += 1
            run.broker.pause()
            time.sleep(25)
            run.broker.resume()
            wait_for("/readyz to answer 200 again", lambda: fc.get("/readyz")[0] == 200, 120)
            if _told(_log_since(fc, since))["failed"]:
                break
        assert replay.wait(300) == 0, replay.log()
    return outages


def _assert_scraped_as_told(
    run: LoopRun, told: dict[str, int], changelog: int, progress: Progress
) -> None:
    """The restarted process's loop metrics, as Prometheus holds them, against its log and
    the changelog topic."""
    assert run.scraped("sunspot_consumer_aborts_total") == told["failed"]
    rewinds = {
        cause: run.scraped("sunspot_consumer_rewinds_total", cause=cause)
        for cause in ("failed_publish", "failed_restore")
    }
    assert rewinds["failed_publish"] == told["failed"]
    assert sum(rewinds.values()) == told["rewound"]
    restores = told["assigned"] + told["restoring rewinds"]
    assert run.scraped("sunspot_consumer_restore_seconds_count") == restores
    # The first restore read the changelog as the kill left it; each later one read at least
    # that and at most what it holds at the end.
    final = _committed_records(run.bootstrap, run.topics.state)
    records = run.scraped("sunspot_consumer_restored_records_total")
    print(f"restores {restores}, records restored {records:.0f} (changelog {changelog}…{final})")
    assert changelog + (restores - 1) * changelog <= records <= changelog + (restores - 1) * final
    # Unready while the broker was away, ready again now.
    (low,) = run.prometheus.vector('min_over_time(sunspot_consumer_ready{job="forecaster"}[10m])')
    assert low[1] == 0
    assert run.scraped("sunspot_consumer_ready") == 1
