"""The services `python -m consumer` can run, one entry of `MODES` each.

A mode names its model artifact (flag default and env variable), its metrics port and consumer
group, the topic it reads, the topics every batch writes and the changelog it keeps (if any),
its own flags and the settings it reads from them (a frozen object of its own), its service
principal in the ACLs, and how to build its processor and what runs beside its loop. Adding a
mode means adding an entry here; nothing else branches on the mode. Every processor is built
inside `consumer.containment.Contained`, so that no record, whatever its bytes, stops the line.
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
from consumer.forecaster import DEFAULT_MAX_SERIES, Forecaster
from consumer.processor import Processor
from consumer.series import DEFAULT_HISTORY, DEFAULT_ROLLING, SeriesPolicy
from consumer.series_metrics import DEFAULT_SERIES_METRICS, SeriesSelection, series_selection
from sunspots.domain.artifact import DEFAULT_CLASSIFIER, DEFAULT_FORECASTER
from sunspots.kafka import acls
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.lifecycle.promotion import PromotionPolicy
from sunspots.process.cli import boolean, env_flag, fraction, positive_int

log = logging.getLogger("consumer")


class ModeSettings(Protocol):
    """A mode's own settings, read from its own flags; what the rest of the service asks of
    them."""

    @property
    def promotes(self) -> bool:
        """Whether the service writes the models topic (its ACLs say so)."""
        ...


@dataclass(frozen=True)
class ForecastSettings:
    """The forecast mode's own settings: the series it keeps and how, and automatic promotion."""

    rolling: int = DEFAULT_ROLLING
    max_series: int = DEFAULT_MAX_SERIES
    history: int = DEFAULT_HISTORY
    promotion: PromotionPolicy | None = None  # None: no automatic promotion
    series_metrics: SeriesSelection | None = None  # None: the default selection

    @property
    def promotes(self) -> bool:
        return self.promotion is not None


@dataclass(frozen=True)
class ClassifySettings:
    """The classify mode has no settings of its own."""

    @property
    def promotes(self) -> bool:
        return False


class BuildConfig(Protocol):
    """What building a mode's processor reads of the service's configuration
    (`consumer.config.ServiceConfig` is one)."""

    model: Path | None
    kafka: KafkaSettings
    group_id: str
    instance_id: str
    mode_settings: ModeSettings


@dataclass(frozen=True)
class Built:
    """What a mode builds: the processor its loop runs (contained) and, for a mode that keeps
    per-series state, the keeper of that state: the topic watch mends it after topic changes and
    the model follower swaps its models."""

    processor: Processor
    keeper: Forecaster | None = None


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
    build: Callable[[BuildConfig, CollectorRegistry], Built]
    read_settings: Callable[[argparse.Namespace], ModeSettings]
    add_flags: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    follows_models: bool = False  # reads the models topic (consumer.following)


def _forecast_flags(parser: argparse.ArgumentParser) -> None:
    env_flag(
        parser,
        "--rolling",
        DEFAULT_ROLLING,
        "evaluations in the rolling RMSE and coverage of each series --series-metrics exports",
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
        "globs (silso-1*); the rest only in the fleet-wide metrics, and only these keep "
        "rolling scores (about 8 KB a series at --rolling 365). The default is the "
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


def _forecast_settings(args: argparse.Namespace) -> ForecastSettings:
    promotion = PromotionPolicy(args.promote_days, args.promote_margin)
    return ForecastSettings(
        rolling=args.rolling,
        max_series=args.max_series,
        history=args.history,
        promotion=promotion if args.auto_promote else None,
        series_metrics=args.series_metrics,
    )


def _build_forecaster(config: BuildConfig, registry: CollectorRegistry) -> Built:
    from consumer.metrics import ForecasterMetrics
    from sunspots.domain.artifact import load_forecaster

    own = config.mode_settings
    assert isinstance(own, ForecastSettings)
    model = load_forecaster(config.model or DEFAULT_FORECASTER)
    log.info("forecaster model %s, window %d", model.model_version, model.window)
    forecaster = Forecaster(
        model,
        config.kafka.topics,
        ForecasterMetrics(registry),
        max_series=own.max_series,
        series_policy=SeriesPolicy(own.history, own.rolling),
        promotion=own.promotion,
        promoter=f"{config.group_id}-{config.instance_id} (automatic promotion)",
        series_metrics=own.series_metrics,
    )
    return Built(Contained(forecaster), keeper=forecaster)


def _build_classifier(config: BuildConfig, registry: CollectorRegistry) -> Built:
    from consumer.classifier import Classifier
    from consumer.metrics import ClassifierMetrics
    from sunspots.domain.artifact import load_classifier

    model = load_classifier(config.model or DEFAULT_CLASSIFIER)
    log.info("classifier model %s", model.model_version)
    classifier = Classifier(model, config.kafka.topics, ClassifierMetrics(registry))
    return Built(Contained(classifier))


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
    read_settings=_forecast_settings,
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
    read_settings=lambda args: ClassifySettings(),
)
MODES = {mode.name: mode for mode in (FORECAST, CLASSIFY)}
