"""The services `python -m consumer` can run, one entry of `MODES` each.

A mode names its model artifact (flag default and env variable), its metrics port and consumer
group, the topic it reads, the topics every batch writes and the changelog it keeps (if any),
its own flags, and how to build its processor. Adding a mode means adding an entry here; nothing else branches on the mode.
Every processor is built inside `consumer.containment.Contained`, so that no record, whatever
its bytes, stops the line.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from prometheus_client import CollectorRegistry

from consumer.containment import Contained
from consumer.forecaster import DEFAULT_MAX_SERIES
from consumer.processor import Processor
from consumer.series import DEFAULT_HISTORY, DEFAULT_ROLLING, SeriesPolicy
from consumer.series_metrics import DEFAULT_SERIES_METRICS, SeriesSelection, series_selection
from sunspots.domain.artifact import DEFAULT_CLASSIFIER, DEFAULT_FORECASTER
from sunspots.kafka import acls
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.lifecycle.promotion import PromotionPolicy
from sunspots.process.cli import boolean, env_flag, fraction, positive_int

log = logging.getLogger("consumer")


class BuildConfig(Protocol):
    """What building a mode's processor reads of the service's configuration
    (`consumer.config.ServiceConfig` is one; the forecast-only fields are ignored by the
    classifier)."""

    model: Path | None
    kafka: KafkaSettings
    group_id: str
    instance_id: str
    rolling: int
    max_series: int
    history: int
    promotion: PromotionPolicy | None
    series_metrics: SeriesSelection | None


@dataclass(frozen=True)
class Mode:
    """One service `python -m consumer` can run: its model artifact, port and group defaults, its
    topics, its flags and how its processor is built."""

    name: str
    help: str
    model_env: str
    default_model: Path
    default_port: int
    acl_service: str  # its name in sunspots.kafka.acls (the grants it needs)
    default_group: str
    source: Callable[[Topics], str]
    state: Callable[[Topics], str | None]
    # The topics every batch writes (dead letters, shadow forecasts and promotions are rarer).
    outputs: Callable[[Topics], tuple[str, ...]]
    build: Callable[[BuildConfig, CollectorRegistry], Processor]
    add_flags: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    follows_models: bool = False  # reads the models topic (consumer.following)


def _forecast_flags(parser: argparse.ArgumentParser) -> None:
    env_flag(
        parser,
        "--rolling",
        DEFAULT_ROLLING,
        "evaluations in the rolling RMSE and coverage",
        type=positive_int,
    )
    env_flag(
        parser,
        "--max-series",
        DEFAULT_MAX_SERIES,
        "series this instance holds state for at once; observations of new series past it "
        "are dead letters (too_many_series)",
        type=positive_int,
    )
    env_flag(
        parser,
        "--history",
        DEFAULT_HISTORY,
        "values kept per series (in the changelog), at least the longest model input: a "
        "model with a longer input than the one serving takes over without a warm-up",
        type=positive_int,
    )
    env_flag(
        parser,
        "--series-metrics",
        DEFAULT_SERIES_METRICS,
        "series exported with their own metrics: none, all, or a comma list of names and "
        "globs (silso-1*); the rest only in the fleet-wide metrics. The default is the "
        "producer's names for the SILSO series, so a sunspot deployment shows its series and "
        "an instance of 10,000 series stays bounded",
        type=series_selection,
    )
    env_flag(
        parser,
        "--auto-promote",
        "false",
        "publish the challenger as champion once it beats the champion (true/false)",
        type=boolean,
    )
    env_flag(
        parser,
        "--promote-days",
        PromotionPolicy.days,
        "with --auto-promote: the last K days scored by both models that are compared",
        type=positive_int,
    )
    env_flag(
        parser,
        "--promote-margin",
        PromotionPolicy.margin,
        "with --auto-promote: how much lower the challenger's RMSE must be (0.05: 5 %%)",
        type=fraction,
    )


def _build_forecaster(config: BuildConfig, registry: CollectorRegistry) -> Processor:
    from consumer.forecaster import Forecaster
    from consumer.metrics import ForecasterMetrics
    from sunspots.domain.artifact import load_forecaster

    model = load_forecaster(config.model or DEFAULT_FORECASTER)
    log.info("forecaster model %s, window %d", model.model_version, model.window)
    forecaster = Forecaster(
        model,
        config.kafka.topics,
        ForecasterMetrics(registry),
        max_series=config.max_series,
        series_policy=SeriesPolicy(config.history, config.rolling),
        promotion=config.promotion,
        promoter=f"{config.group_id}-{config.instance_id} (automatic promotion)",
        series_metrics=config.series_metrics,
    )
    return Contained(forecaster)


def _build_classifier(config: BuildConfig, registry: CollectorRegistry) -> Processor:
    from consumer.classifier import Classifier
    from consumer.metrics import ClassifierMetrics
    from sunspots.domain.artifact import load_classifier

    model = load_classifier(config.model or DEFAULT_CLASSIFIER)
    log.info("classifier model %s", model.model_version)
    classifier = Classifier(model, config.kafka.topics, ClassifierMetrics(registry))
    return Contained(classifier)


FORECAST = Mode(
    name="forecast",
    help="forecast the next day of each series",
    model_env="SUNSPOTS_MODEL",
    default_model=DEFAULT_FORECASTER,
    default_port=8000,
    acl_service=acls.FORECASTER,
    default_group=acls.DEFAULT_GROUPS[acls.FORECASTER],
    source=lambda topics: topics.observations,
    state=lambda topics: topics.state,
    outputs=lambda topics: (topics.forecasts, topics.evaluations, topics.state),
    build=_build_forecaster,
    add_flags=_forecast_flags,
    follows_models=True,
)
CLASSIFY = Mode(
    name="classify",
    help="serve the toy sequence classifier",
    model_env="SUNSPOTS_CLASSIFIER_MODEL",
    default_model=DEFAULT_CLASSIFIER,
    default_port=8001,
    acl_service=acls.CLASSIFIER,
    default_group=acls.DEFAULT_GROUPS[acls.CLASSIFIER],
    source=lambda topics: topics.classifier_requests,
    state=lambda topics: None,
    outputs=lambda topics: (topics.classifier_predictions,),
    build=_build_classifier,
)
MODES = {mode.name: mode for mode in (FORECAST, CLASSIFY)}
