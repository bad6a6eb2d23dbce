"""The forecaster's models over their lifecycle: records of the models topic applied between
batches and told once, and the automatic promotion published with a batch.

`Lifecycle.follow` applies each entry to the lanes (sunspots.lifecycle.lanes: the policy of what a record
does) and tells what changed: a refused record logged once and counted by reason
(`sunspot_model_rejections_total`), a new model counted by role (`sunspot_model_switches_total`)
and shown in `sunspot_model_info{model_version,role}` (a model that left its role leaves it; its
per-series scores stop appearing by themselves, consumer.series_metrics). `Lifecycle.promotion` turns a batch's days scored by both models into the records that
make the challenger champion, when the rule (sunspots.lifecycle.promotion) decides it: the challenger's
record under the role `champion` and the challenger's tombstone, for the batch's transaction.

No Kafka here: entries in, outputs and metrics out.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from consumer.metrics import ForecasterMetrics
from consumer.output import Output
from sunspots.lifecycle import records
from sunspots.lifecycle.lanes import Change, Lanes
from sunspots.lifecycle.promotion import PromotionRule
from sunspots.lifecycle.records import CHALLENGER, CHAMPION, Entry

log = logging.getLogger(__name__)


class Lifecycle:
    """The forecaster's champion and challenger over their lifecycle: records of the models topic
    applied between batches, refusals counted, and, when the promotion rule decides, the
    records that make the challenger champion, written in the batch's transaction."""

    def __init__(
        self,
        lanes: Lanes,
        metrics: ForecasterMetrics,
        models_topic: str,
        rule: PromotionRule | None = None,
        promoter: str = "forecaster",
    ) -> None:
        self.lanes = lanes
        self.metrics = metrics
        self.models_topic = models_topic
        self.rule = rule
        self.promoter = promoter
        self.challenger_record: records.ModelRecord | None = None
        metrics.model_info.labels(lanes.champion.version, CHAMPION).set(1)

    def follow(self, entries: Iterable[Entry]) -> None:
        """Apply records of the models topic; they take effect from the next batch."""
        for entry in entries:
            change = self.lanes.apply(entry)
            if change.started is not None and change.role == CHALLENGER:
                assert isinstance(entry, records.Published)
                self.challenger_record = entry.record
            self._tell(change)
            if (change.started or change.stopped) and self.rule is not None:
                self.rule.reset()

    def _tell(self, change: Change) -> None:
        """Count and log what a models-topic entry did, once."""
        if change.refused is not None:
            reason, detail = change.refused
            self.metrics.lifecycle.rejections.labels(reason).inc()
            log.warning(
                "model record refused (%s): %s; the models in place keep running",
                reason,
                detail,
                extra={"reason": reason},
            )
        elif change.ignored:
            log.info("models topic: %s; nothing changes", change.ignored)
        else:
            self._switch(change)

    def _switch(self, change: Change) -> None:
        m = self.metrics
        old, new = change.stopped, change.started
        if old is not None:
            m.model_info.remove(old.version, old.role)
        if new is not None:
            m.model_info.labels(new.version, new.role).set(1)
            m.lifecycle.switches.labels(new.role).inc()
            was = f" (was {old.version})" if old is not None else ""
            log.info(
                "%s: %s now runs%s", change.role, new.version, was, extra={"role": change.role}
            )
        elif old is not None:
            log.info("%s: %s retired", change.role, old.version, extra={"role": change.role})

    def promotion(self, days: Iterable[dict[str, float]]) -> list[Output]:
        """The records that make the challenger champion, if the rule decides it on these days
        (each: the role -> error of one series and date, scored by the models now in their
        roles)."""
        rule, record = self.rule, self.challenger_record
        if rule is None or record is None or self.lanes.challenger is None:
            return []
        decided = False
        for errors in days:
            if len(errors) == 2:
                decided = rule.apply(errors[CHAMPION], errors[CHALLENGER]) or decided
        if not decided:
            return []
        champion_rmse, challenger_rmse = rule.rmse()
        log.warning(
            "promoting challenger %s: RMSE %.2f against the champion's %.2f over the last %d "
            "days scored by both",
            record.model_version,
            challenger_rmse,
            champion_rmse,
            len(rule.pairs),
        )
        self.metrics.lifecycle.promotions.inc()
        champion = records.with_role(record, CHAMPION, self.promoter)
        topic = self.models_topic
        return [
            Output(topic, records.encode(champion), CHAMPION.encode(), partition=0),
            Output(topic, None, CHALLENGER.encode(), partition=0),
        ]
