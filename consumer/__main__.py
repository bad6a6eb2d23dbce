"""`python -m consumer forecast|classify`: run the forecasting or the classifier service.

Reads its settings once from flags (each with an env fallback shown in --help), loads the
model artifact, serves /metrics, /healthz and /readyz, and runs the Kafka loop until SIGTERM
or SIGINT, after which it finishes the batch in hand, commits and closes.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from consumer import health as health_endpoint
from consumer.runner import (
    AT_LEAST_ONCE,
    EXACTLY_ONCE,
    Fenced,
    Runner,
    RunnerConfig,
    with_retries,
)
from sunspots.artifact import ArtifactError
from sunspots.cli import add_logging_flag, env_flag, setup_logging
from sunspots.lstm import single_threaded_blas
from sunspots.settings import KafkaSettings, add_kafka_flags, kafka_settings_from_args
from sunspots.signals import stop_on_signals

log = logging.getLogger("consumer")
EXIT_FENCED = 3


@dataclass(frozen=True)
class ServiceConfig:
    mode: str
    model: Path
    kafka: KafkaSettings
    group_id: str
    instance_id: str
    processing: str
    metrics_port: int
    rolling: int
    max_poll_records: int
    create_topics: bool


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sunspots-consumer", description=__doc__)
    modes = parser.add_subparsers(dest="mode", required=True)
    forecast = modes.add_parser("forecast", help="forecast the next day of each series")
    env_flag(
        forecast,
        "--model",
        "SUNSPOTS_MODEL",
        None,
        "forecaster artifact (.json); default: the committed models/sunspot_lstm.json",
    )
    env_flag(forecast, "--metrics-port", "METRICS_PORT", 8000, "HTTP port for /metrics", type=int)
    env_flag(forecast, "--group", "CONSUMER_GROUP", "sunspots-forecaster", "consumer group id")
    env_flag(
        forecast,
        "--rolling",
        "ROLLING_EVALUATIONS",
        365,
        "evaluations in the rolling RMSE and coverage",
        type=int,
    )
    classify = modes.add_parser("classify", help="serve the toy sequence classifier")
    env_flag(
        classify,
        "--model",
        "SUNSPOTS_CLASSIFIER_MODEL",
        None,
        "classifier artifact (.json); default: the committed models/sequence_classifier.json",
    )
    env_flag(classify, "--metrics-port", "METRICS_PORT", 8001, "HTTP port for /metrics", type=int)
    env_flag(classify, "--group", "CONSUMER_GROUP", "sunspots-classifier", "consumer group id")
    for sub in (forecast, classify):
        env_flag(
            sub,
            "--instance-id",
            "INSTANCE_ID",
            socket.gethostname(),
            "this process's stable id: names its transactional producer",
        )
        env_flag(
            sub,
            "--processing",
            "PROCESSING",
            EXACTLY_ONCE,
            f"{EXACTLY_ONCE} (transactions) or {AT_LEAST_ONCE}",
            choices=[EXACTLY_ONCE, AT_LEAST_ONCE],
        )
        env_flag(
            sub,
            "--max-poll-records",
            "MAX_POLL_RECORDS",
            2000,
            "records per batch (one model call each)",
            type=int,
        )
        env_flag(
            sub,
            "--create-topics",
            "CREATE_TOPICS",
            "true",
            "create missing topics at start (true/false)",
        )
        add_kafka_flags(sub)
        add_logging_flag(sub)
    return parser


def config_from_args(args: argparse.Namespace) -> ServiceConfig:
    return ServiceConfig(
        mode=args.mode,
        model=Path(args.model) if args.model else Path(),
        kafka=kafka_settings_from_args(args),
        group_id=args.group,
        instance_id=args.instance_id,
        processing=args.processing,
        metrics_port=args.metrics_port,
        rolling=getattr(args, "rolling", 0),
        max_poll_records=args.max_poll_records,
        create_topics=args.create_topics.lower() in {"1", "true", "yes"},
    )


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def _processor(config: ServiceConfig, registry: CollectorRegistry) -> tuple[Any, str, str | None]:
    """The processor for the mode, its source topic and its changelog topic."""
    topics = config.kafka.topics
    if config.mode == "forecast":
        from consumer.forecaster import Forecaster
        from consumer.metrics import ForecasterMetrics
        from sunspots.artifact import DEFAULT_FORECASTER, load_forecaster

        model = load_forecaster(config.model if config.model != Path() else DEFAULT_FORECASTER)
        log.info("forecaster model %s, window %d", model.model_version, model.window)
        processor = Forecaster(model, topics, ForecasterMetrics(registry), config.rolling)
        return processor, topics.observations, topics.state
    from consumer.classifier import Classifier
    from consumer.metrics import ClassifierMetrics
    from sunspots.artifact import DEFAULT_CLASSIFIER, load_classifier

    model = load_classifier(config.model if config.model != Path() else DEFAULT_CLASSIFIER)
    log.info("classifier model %s", model.model_version)
    return Classifier(model, topics, ClassifierMetrics(registry)), topics.classifier_requests, None


def run(config: ServiceConfig, stop: threading.Event) -> int:
    # Both models make small matrix products on cores shared with the Kafka clients: BLAS
    # worker threads would only contend for them (see single_threaded_blas).
    single_threaded_blas()
    registry = _registry()
    health = health_endpoint.Health()
    try:
        processor, source, state = _processor(config, registry)
    except ArtifactError as exc:
        log.error("cannot load the model: %s", exc)
        return 2
    health.model_loaded = True
    server = health_endpoint.serve(registry, health, config.metrics_port)
    log.info("metrics on :%d/metrics", config.metrics_port)
    try:
        return _serve(config, processor, source, state, health, stop)
    finally:
        server.shutdown()


def _serve(
    config: ServiceConfig,
    processor: Any,
    source: str,
    state: str | None,
    health: health_endpoint.Health,
    stop: threading.Event,
) -> int:
    runner_config = RunnerConfig(
        source_topic=source,
        group_id=config.group_id,
        instance_id=config.instance_id,
        processing=config.processing,
        state_topic=state,
        max_poll_records=config.max_poll_records,
    )
    try:
        if config.create_topics:
            _create_topics(config, health, stop)
        Runner(config.kafka, runner_config, processor, health, stop).run()
    except KafkaError as exc:
        if not stop.is_set():
            raise
        log.info("stopped before Kafka answered (%s)", exc)
    except Fenced as exc:
        log.error("%s: another instance runs as %r; stopping", exc, config.instance_id)
        return EXIT_FENCED
    return 0


def _create_topics(
    config: ServiceConfig, health: health_endpoint.Health, stop: threading.Event
) -> None:
    from sunspots.topics import create_topics

    created = with_retries(lambda: create_topics(config.kafka), "topic set-up", stop, health)
    if created:
        log.info("created topics %s", ", ".join(created))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    config = config_from_args(args)
    stop = stop_on_signals()
    return run(config, stop)


if __name__ == "__main__":
    sys.exit(main())
