"""`python -m consumer forecast|classify`: run the forecasting or the classifier service.

Reads its settings once from flags (each with an env fallback shown in --help), loads the
model artifact, serves /metrics, /healthz and /readyz, and runs the Kafka loop until SIGTERM
or SIGINT, after which it finishes the batch in hand, commits and closes, within
`--shutdown-grace` seconds (`consumer.shutdown`; a second signal ends it at once). Beside the
loop, a watchdog on its own thread (`consumer.watchdog`) reports a partition whose records wait
without progress for `--stall-timeout` seconds, and stops the service past `--stall-limit`.

Exit codes: 0 after a graceful stop; 2 for bad start-up input, told in one line (a bad flag
or variable, an unreadable or inconsistent model, a metrics port that cannot be bound, a
compression library kafka-python lacks: `sunspots.kafka.codecs`);
3 when fenced by another instance with the same id; 5, 6, 7 when the brokers refuse the
service (authentication, authorization, TLS: `sunspots.kafka.refusal`); 8 when a record batch cannot
be read (a codec the client lacks, a corrupt batch: the line names the topic, the partition,
the offset and what to do) or a topic change cannot be followed; 9 when the loop made no
progress past the stall limit, or a stop outlasted its grace (`consumer.stops`). Each is told in
one line, which `/readyz` shows too. A broker out of reach is waited for, never an exit. The
topic watch (`consumer.topic_watch`) looks after the topics the service reads and writes while
it runs: a change it may not mend without `--create-topics` is an 8.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from consumer import health as health_endpoint
from consumer.config import ServiceConfig, build_parser, config_from_args
from consumer.fencing import Fenced
from consumer.following import ModelFollower
from consumer.forecaster import Forecaster
from consumer.lag import LagCollector
from consumer.loop_metrics import LoopMetrics
from consumer.modes import Built
from consumer.retry import Backoff, Interrupted, Retry
from consumer.runner import KafkaClients, Runner, RunnerConfig
from consumer.sensors import Sensors
from consumer.shutdown import Shutdown
from consumer.stalls import Stalls
from consumer.stops import EXIT_STALLED, ServiceStop
from consumer.topic_changes import TopicChangeMetrics
from consumer.topic_watch import TopicWatch, Watched
from consumer.watchdog import KafkaProbe, Watchdog
from sunspots.domain.artifact import ArtifactError
from sunspots.domain.lstm import single_threaded_blas
from sunspots.kafka import acls, codecs
from sunspots.kafka import clients as kafka_clients
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.refusal import REFUSAL_ERRORS, Refusal, from_error, preflight
from sunspots.kafka.topic_admin import TopicAdmin
from sunspots.process.cli import EXIT_USAGE, env_name
from sunspots.process.garbage import collect_between_batches, settle_garbage_collector
from sunspots.process.logs import setup_logging
from sunspots.process.signals import on_signals

log = logging.getLogger("consumer")
EXIT_FENCED = 3


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def run(config: ServiceConfig, shutdown: Shutdown, sensors: Sensors) -> int:
    # Both models make small matrix products on cores shared with the Kafka clients: BLAS
    # worker threads would only contend for them (see single_threaded_blas).
    """Run the configured service until a stop: metrics served, topics set up, models followed, the
    loop run; the exit code says how it ended."""
    single_threaded_blas()
    registry = _registry()
    health = health_endpoint.Health()
    watchdog = _watchdog(config, health, shutdown)
    sensors.add(watchdog)
    LagCollector(watchdog, registry)
    sensors.add(LoopMetrics(registry, health))
    try:
        built = config.mode.build(config, registry)
    except ArtifactError as exc:
        log.error("cannot load the model: %s", exc)
        return EXIT_USAGE
    health.model_loaded = True
    settle_garbage_collector()
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
            code = _serve(config, built, health, shutdown, sensors, watchdog, registry)
        except REFUSAL_ERRORS as exc:
            found = from_error(exc, config.kafka, _resources(config))
            assert found is not None
            return _refused(found, health)
        # A stop the service decided while the loop ran on (the stall limit) sets the code.
        stopped = shutdown.stopped
        return stopped.exit_code if code == 0 and stopped is not None else code
    finally:
        server.shutdown()


def _watchdog(
    config: ServiceConfig, health: health_endpoint.Health, shutdown: Shutdown
) -> Watchdog:
    """The progress watchdog, whose stall limit stops the service (not started)."""
    interval = min(5.0, max(0.5, config.stall_timeout_s / 4))
    stalls = Stalls(config.stall_timeout_s, config.stall_limit_s, max_gap_s=3 * interval)

    def on_limit(line: str) -> None:
        stop = ServiceStop(line, EXIT_STALLED)
        _refused(stop, health)
        shutdown.begin("the stall limit", stop)

    probe = KafkaProbe(config.kafka, config.group_id)
    return Watchdog(stalls, probe, health, on_limit, interval)


def _refused(refusal: Refusal | ServiceStop, health: health_endpoint.Health) -> int:
    """Tell a refusal, or a stop the service decided, once, in the log and on /readyz; its
    exit code."""
    health.refused = refusal.line
    log.error("%s", refusal.line)
    return refusal.exit_code


def _resources(config: ServiceConfig) -> dict[str, str]:
    """What the service uses, by kind, to name in a refusal."""
    promotes = config.mode_settings.promotes
    topics = config.kafka.topics
    grants = acls.grants(config.mode.acl_service, topics, config.group_id, promotes=promotes)
    used = dict.fromkeys(g.name for g in grants if g.resource == "topic")
    return {
        "topic": " or ".join(used),
        "group": config.group_id,
        "transactional id": f"{config.group_id}-{config.instance_id}",
    }


def _serve(
    config: ServiceConfig,
    built: Built,
    health: health_endpoint.Health,
    shutdown: Shutdown,
    sensors: Sensors,
    watchdog: Watchdog,
    registry: CollectorRegistry,
) -> int:
    topics = config.kafka.topics
    stop = shutdown.event
    runner_config = RunnerConfig(
        source_topic=config.mode.source(topics),
        group_id=config.group_id,
        instance_id=config.instance_id,
        bootstrap_servers=config.kafka.bootstrap_servers,
        processing=config.processing,
        state_topic=config.mode.state(topics),
        output_topics=config.mode.outputs(topics),
        max_poll_records=config.max_poll_records,
        shutdown_grace_s=config.shutdown_grace_s,
    )
    follower: ModelFollower | None = None
    watchdog.start()
    watch: TopicWatch | None = None
    try:
        if config.create_topics:
            _create_topics(config, health, stop)
        if config.mode.follows_models and built.keeper is not None:
            follower = _follow_models(config, built.keeper, health, stop)
        watch = _watch_topics(config, runner_config, built.keeper, health, registry, follower)
        clients = KafkaClients(config.kafka, runner_config, health, stop)
        between = _between(follower, watch)
        Runner(clients, runner_config, built.processor, health, stop, between, sensors, watch).run()
    except Interrupted as exc:
        log.info("%s", exc)
    except Fenced as exc:
        log.error("%s: another instance runs as %r; stopping", exc, config.instance_id)
        return EXIT_FENCED
    except ServiceStop as exc:
        return _refused(exc, health)
    finally:
        watchdog.close()
        if follower is not None:
            follower.close()
        if watch is not None:
            watch.close()
    return 0


def _watch_topics(
    config: ServiceConfig,
    runner_config: RunnerConfig,
    keeper: Forecaster | None,
    health: health_endpoint.Health,
    registry: CollectorRegistry,
    follower: ModelFollower | None,
) -> TopicWatch:
    """The topic watch over what the service reads and writes; the forecaster keeps state."""
    topics = config.kafka.topics
    promotes = config.mode_settings.promotes
    source, state = runner_config.source_topic, runner_config.state_topic
    watched = Watched.of(config.mode.acl_service, topics, source, state, promotes)
    admin = TopicAdmin(lambda: kafka_clients.make_admin(config.kafka), topics, config.replication)
    return TopicWatch(
        admin,
        watched,
        config.create_topics,
        health,
        TopicChangeMetrics(registry),
        keeper=keeper,
        follower=follower,
    )


def _between(follower: ModelFollower | None, watch: TopicWatch) -> Callable[[], bool]:
    """What runs at each batch boundary: the garbage collected when due, the models followed,
    the topics looked at."""

    def between() -> bool:
        collect_between_batches()
        if follower is not None:
            follower()
        return watch.between()

    return between


def _follow_models(
    config: ServiceConfig,
    forecaster: Forecaster,
    health: health_endpoint.Health,
    stop: threading.Event,
) -> ModelFollower | None:
    return ModelFollower.start(config.kafka, forecaster, Retry(stop, health, Backoff()))


def _create_topics(
    config: ServiceConfig, health: health_endpoint.Health, stop: threading.Event
) -> None:
    from sunspots.kafka.topics import set_up_topics

    retry = Retry(stop, health, Backoff())
    done = retry(
        lambda: set_up_topics(config.kafka, replication=config.replication),
        "topic set-up",
        retry_on=(KafkaError,),
    )
    if done.created or done.grown:
        log.info("topics: %s", done.describe())


def main(argv: list[str] | None = None) -> int:
    """`sunspots-consumer`: parse the configuration once and run the service."""
    args = build_parser(__doc__).parse_args(argv)
    setup_logging(args, service=args.mode, instance_id=args.instance_id)
    config = config_from_args(args)
    # Before anything else: a batch in a codec it cannot read would stop the service later.
    refusal = codecs.refusal(reads=True, writes=config.kafka.compression_type)
    if refusal is not None:
        log.error("%s", refusal)
        return EXIT_USAGE
    sensors = Sensors()
    shutdown = Shutdown(config.shutdown_grace_s, lambda: sensors.activity)
    on_signals(shutdown.on_signal)
    return run(config, shutdown, sensors)


if __name__ == "__main__":
    sys.exit(main())
