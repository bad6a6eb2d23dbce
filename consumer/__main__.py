"""`python -m consumer forecast|classify`: run the forecasting or the classifier service.

Reads its settings once from flags (each with an env fallback shown in --help), loads the
model artifact, serves /metrics, /healthz and /readyz, and runs the Kafka loop until SIGTERM
or SIGINT, after which it finishes the batch in hand, commits and closes.

Exit codes: 0 after a graceful stop; 2 for bad start-up input, told in one line (a bad flag
or variable, an unreadable or inconsistent model, a metrics port that cannot be bound);
3 when fenced by another instance with the same id; 5, 6, 7 when the brokers refuse the
service (authentication, authorization, TLS: `sunspots.refusal`); 8 and 9 when the service stops
on its own (`consumer.stops`: input it cannot read or follow, no progress). Each is told in one
line, which `/readyz` shows too. A broker out of reach is waited for, never an exit.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading

from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from consumer import health as health_endpoint
from consumer.config import ServiceConfig, build_parser, config_from_args
from consumer.containment import Contained
from consumer.fencing import Fenced
from consumer.following import ModelFollower
from consumer.forecaster import Forecaster
from consumer.processor import Processor
from consumer.retry import Backoff, Interrupted, Retry
from consumer.runner import KafkaClients, Runner, RunnerConfig
from consumer.stops import ServiceStop
from sunspots import acls
from sunspots.artifact import ArtifactError
from sunspots.cli import EXIT_USAGE, env_name
from sunspots.logs import setup_logging
from sunspots.lstm import single_threaded_blas
from sunspots.refusal import REFUSAL_ERRORS, Refusal, from_error, preflight
from sunspots.signals import stop_on_signals

log = logging.getLogger("consumer")
EXIT_FENCED = 3


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def run(config: ServiceConfig, stop: threading.Event) -> int:
    # Both models make small matrix products on cores shared with the Kafka clients: BLAS
    # worker threads would only contend for them (see single_threaded_blas).
    single_threaded_blas()
    registry = _registry()
    health = health_endpoint.Health()
    try:
        processor = config.mode.build(config, registry)
    except ArtifactError as exc:
        log.error("cannot load the model: %s", exc)
        return EXIT_USAGE
    health.model_loaded = True
    _settle_garbage_collector()
    try:
        server = health_endpoint.serve(registry, health, config.metrics_port, config.metrics_host)
    except OSError as exc:
        log.error(
            "cannot serve /metrics on port %d at %s (%s); choose another with --metrics-port or "
            "%s, or another address with --metrics-host or %s",
            config.metrics_port,
            config.metrics_host,
            exc.strerror or exc,
            env_name("--metrics-port"),
            env_name("--metrics-host"),
        )
        return EXIT_USAGE
    log.info("metrics on %s:%d/metrics", config.metrics_host, config.metrics_port)
    try:
        refusal = preflight(config.kafka)
        if refusal is not None:
            return _refused(refusal, health)
        try:
            return _serve(config, processor, health, stop)
        except REFUSAL_ERRORS as exc:
            found = from_error(exc, config.kafka, _resources(config))
            assert found is not None
            return _refused(found, health)
    finally:
        server.shutdown()


def _refused(refusal: Refusal, health: health_endpoint.Health) -> int:
    """Tell a refusal once, in the log and on /readyz; its exit code."""
    health.refused = refusal.line
    log.error("%s", refusal.line)
    return refusal.exit_code


def _resources(config: ServiceConfig) -> dict[str, str]:
    """What the service uses, by kind, to name in a refusal."""
    service = {"forecast": acls.FORECASTER, "classify": acls.CLASSIFIER}[config.mode.name]
    promotes = config.promotion is not None
    grants = acls.grants(service, config.kafka.topics, config.group_id, promotes=promotes)
    used = dict.fromkeys(g.name for g in grants if g.resource == "topic")
    return {
        "topic": " or ".join(used),
        "group": config.group_id,
        "transactional id": f"{config.group_id}-{config.instance_id}",
    }


def _settle_garbage_collector() -> None:
    """Keep the collector's work in proportion to the loop's.

    Per record the loop makes a handful of short-lived objects (kafka-python's records and
    futures, the outputs), which trigger frequent collections that each walk everything alive,
    including all that start-up built (modules, the model). `gc.freeze()` moves that out of
    the collector's sight for good, and a larger young generation collects less often. Some of
    the loop's objects do form cycles (kafka-python's futures and their callbacks), which only
    a full collection frees: one every 5 × 5 young ones keeps them from piling up between
    batches (bench.many_series, 3,000 series: peak RSS 167 MiB with one every 20 × 20, 136 MiB
    with this), while a full collection walks only what the series hold.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 5, 5)


def _serve(
    config: ServiceConfig,
    processor: Processor,
    health: health_endpoint.Health,
    stop: threading.Event,
) -> int:
    topics = config.kafka.topics
    runner_config = RunnerConfig(
        source_topic=config.mode.source(topics),
        group_id=config.group_id,
        instance_id=config.instance_id,
        processing=config.processing,
        state_topic=config.mode.state(topics),
        max_poll_records=config.max_poll_records,
    )
    follower: ModelFollower | None = None
    try:
        if config.create_topics:
            _create_topics(config, health, stop)
        if config.mode.follows_models:
            follower = _follow_models(config, processor, health, stop)
        clients = KafkaClients(config.kafka, runner_config, health, stop)
        Runner(clients, runner_config, processor, health, stop, follower).run()
    except Interrupted as exc:
        log.info("%s", exc)
    except Fenced as exc:
        log.error("%s: another instance runs as %r; stopping", exc, config.instance_id)
        return EXIT_FENCED
    except ServiceStop as exc:
        health.refused = exc.line
        log.error("%s", exc.line)
        return exc.exit_code
    finally:
        if follower is not None:
            follower.close()
    return 0


def _follow_models(
    config: ServiceConfig,
    processor: Processor,
    health: health_endpoint.Health,
    stop: threading.Event,
) -> ModelFollower | None:
    forecaster = processor.processor if isinstance(processor, Contained) else processor
    assert isinstance(forecaster, Forecaster)
    return ModelFollower.start(config.kafka, forecaster, Retry(stop, health, Backoff()))


def _create_topics(
    config: ServiceConfig, health: health_endpoint.Health, stop: threading.Event
) -> None:
    from sunspots.topics import create_topics

    retry = Retry(stop, health, Backoff())
    created = retry(
        lambda: create_topics(config.kafka, replication=config.replication),
        "topic set-up",
        retry_on=(KafkaError,),
    )
    if created:
        log.info("created topics %s", ", ".join(created))


def main(argv: list[str] | None = None) -> int:
    args = build_parser(__doc__).parse_args(argv)
    setup_logging(args, service=args.mode, instance_id=args.instance_id)
    config = config_from_args(args)
    stop = stop_on_signals()
    return run(config, stop)


if __name__ == "__main__":
    sys.exit(main())
