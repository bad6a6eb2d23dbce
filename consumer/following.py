"""The models topic followed by a running forecaster: the models current at start, then each
change between batches.

At start (after the brokers accepted the service, before it reads any observation) the feed
(sunspots.lifecycle.feed) reads the models topic to its end: the champion there replaces the
`--model` artifact, a challenger starts its shadow forecasts, and each refusal still standing
is counted. A topic that does not exist leaves the `--model` artifact serving, told once; the
service does not create it (a topic the broker auto-created would be neither compacted nor
sized for models: `sunspots-topics` or the services' own set-up creates it).

Between batches the runner calls the follower, which hands the records that arrived to the
forecaster (`Forecaster.follow`): they take effect at the next batch. A failed read is logged
and tried again at the next boundary; the models in place keep running meanwhile. A models
topic deleted or created again while the service runs (found by consumer.topic_watch) is read
from its beginning again (`restart`); the models in place keep serving until it names others. A refusal
of the brokers (not authorized to read the topic) is raised, as everywhere in the service.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from consumer.forecaster import Forecaster
from consumer.retry import Retry
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.refusal import refusal_error
from sunspots.kafka.settings import KafkaSettings
from sunspots.lifecycle.feed import ModelFeed
from sunspots.process.logs import Outage

log = logging.getLogger(__name__)


class ModelFollower:
    """The models topic followed beside the forecaster's loop: between batches it polls the feed
    and hands each change to the forecaster, and a feed that cannot be read is told once as
    it begins and once as it ends (the service keeps its current models meanwhile)."""

    def __init__(self, feed: ModelFeed, forecaster: Forecaster) -> None:
        self.feed = feed
        self.forecaster = forecaster
        self.reading = Outage(
            log,
            "reading the models topic failed (%s); the models in place run",
            "reading the models topic again",
        )

    @classmethod
    def start(
        cls,
        kafka: KafkaSettings,
        forecaster: Forecaster,
        retry: Retry,
        connect: Callable[[KafkaSettings], ModelFeed] = ModelFeed.connect,
    ) -> ModelFollower | None:
        """A follower with the current models applied, or None if there is no models topic."""
        feed = retry(lambda: connect(kafka), "connecting to the models topic", (KafkaError,))
        if not retry(feed.exists, "looking up the models topic", (KafkaError,)):
            feed.close()
            log.warning(
                "no models topic %s (or not allowed to describe it): the model of --model (%s) "
                "serves, and no other will until the service restarts with the topic there",
                kafka.topics.models,
                forecaster.model.model_version,
            )
            return None
        flag = forecaster.model.model_version
        board, refusals = retry(feed.current, "reading the models topic", (KafkaError,))
        current = [board.champion, board.challenger]
        forecaster.follow([*refusals, *(p for p in current if p is not None)])
        if board.champion is None:
            log.info("the models topic has no champion: the model of --model (%s) serves", flag)
        elif forecaster.model.model_version != flag:
            log.warning(
                "the champion on the models topic %s (%s) serves, not the model of --model "
                "(%s): --model serves only while that topic has no champion; to serve another "
                "model, publish it as champion (sunspots-train publish --role champion) or "
                "promote a challenger (sunspots-train promote)",
                kafka.topics.models,
                forecaster.model.model_version,
                flag,
            )
        return cls(feed, forecaster)

    def __call__(self) -> None:
        """Apply what arrived on the models topic since the last call."""
        try:
            entries = self.feed.poll()
        except KafkaError as exc:
            if refusal_error(exc) is not None:
                raise
            self.reading.failed(exc)
            return
        self.reading.over()
        self.forecaster.follow(entries)

    def restart(self) -> None:
        """Follow the models topic from its beginning again: it is a new topic."""
        self.feed.restart()

    def close(self) -> None:
        self.feed.close()
