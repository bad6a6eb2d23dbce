"""The models a forecaster runs, one per role, and how records of the models topic change them.

The champion serves: its forecasts and evaluations go to the forecasts and evaluations topics.
A challenger, when one is published, forecasts on the same windows beside it, and its
forecasts and evaluations go to the shadow topics, scored the same way. Each is a `Lane`.

Policy, for each entry of the model feed (sunspots.lifecycle.feed), applied between batches:
- a published champion replaces the champion; a published challenger starts (or replaces) the
  challenger's lane;
- a retired challenger stops its lane; a retired champion changes nothing (there is always a
  model serving: the last one keeps serving, and the refusal to stop is logged);
- a refused record changes nothing (the role keeps its model);
- a model whose input is longer than the history a series keeps is refused (`bad_metadata`),
  as it could never forecast (the starting champion too: `ArtifactError`, a start-up error);
- a record of the model already in its role (a restart reads the topic again) changes nothing.

`apply` returns what happened as a `Change` for the forecaster to count and log; this module
knows nothing of metrics or Kafka.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sunspots.domain.artifact import BAD_METADATA, ArtifactError
from sunspots.domain.intervals import Calibration
from sunspots.kafka.settings import Topics
from sunspots.lifecycle.records import CHALLENGER, CHAMPION, Entry, Published, Refused, Retired


class ForecastModel(Protocol):
    """What the forecaster needs of a model: sunspots.domain.artifact.ForecasterModel is one."""

    @property
    def window(self) -> int: ...

    @property
    def model_version(self) -> str: ...

    @property
    def calibration(self) -> Calibration: ...

    def predict(self, windows: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class Lane:
    """One role's model and the topics its forecasts and evaluations go to."""

    role: str
    model: ForecastModel
    forecasts: str
    evaluations: str

    @property
    def version(self) -> str:
        return self.model.model_version


@dataclass(frozen=True, slots=True)
class Change:
    """What one models-topic entry did. `started`/`stopped`: the lane now running in its role,
    and the one it replaced or retired (None when there was none). `refused`: why the entry
    changed nothing (a reason of sunspots.domain.artifact) with its detail; `ignored`: a retirement
    that is not carried out, or a model already in its role."""

    role: str | None
    started: Lane | None = None
    stopped: Lane | None = None
    refused: tuple[str, str] | None = None
    ignored: str = ""


class Lanes:
    """The champion (always one) and the challenger (at most one), for `topics`."""

    def __init__(self, champion: ForecastModel, topics: Topics, history: int) -> None:
        """ArtifactError if the starting champion reads more values than series keep."""
        self.topics = topics
        self.history = history
        too_long = self._too_long(CHAMPION, champion)
        if too_long:
            raise ArtifactError(too_long, BAD_METADATA)
        self.champion = self._lane(CHAMPION, champion)
        self.challenger: Lane | None = None
        self._refresh()

    def _refresh(self) -> None:
        """What the forecaster asks for each record, worked out once per change."""
        running = [self.champion] if self.challenger is None else [self.champion, self.challenger]
        self.running: tuple[Lane, ...] = tuple(running)
        self.by_role = {lane.role: lane for lane in running}
        # The fewest values any running model reads: a window is ready from there.
        self.shortest = min(lane.model.window for lane in running)

    def __iter__(self) -> Iterator[Lane]:
        return iter(self.running)

    def get(self, role: str) -> Lane | None:
        return self.by_role.get(role)

    def apply(self, entry: Entry) -> Change:
        """Run one models-topic entry: a refusal is only reported, a retirement stops the
        challenger (never the champion), a publication starts its model in the role unless that
        version is there already or its window is longer than the history series keep."""
        if isinstance(entry, Refused):
            return Change(entry.role, refused=(entry.reason, entry.detail))
        if isinstance(entry, Retired):
            return self._retire(entry.role)
        return self._publish(entry)

    def _publish(self, entry: Published) -> Change:
        model = entry.model
        old = self.get(entry.role)
        if old is not None and old.version == model.model_version:
            return Change(entry.role, ignored=f"{model.model_version} is already the {old.role}")
        too_long = self._too_long(entry.role, model)
        if too_long:
            return Change(entry.role, refused=(BAD_METADATA, too_long))
        lane = self._lane(entry.role, model)
        if entry.role == CHAMPION:
            self.champion = lane
        else:
            self.challenger = lane
        self._refresh()
        return Change(entry.role, started=lane, stopped=old)

    def _retire(self, role: str) -> Change:
        if role == CHAMPION:
            return Change(role, ignored="the champion was retired, but a model must serve")
        old, self.challenger = self.challenger, None
        if old is None:
            return Change(role, ignored="no challenger to retire")
        self._refresh()
        return Change(role, stopped=old)

    def _too_long(self, role: str, model: ForecastModel) -> str:
        """Why `model` cannot run in `role` (its input is longer than the history series
        keep), or "" when it can."""
        if model.window <= self.history:
            return ""
        return (
            f"{role} {model.model_version!r} reads {model.window} values; series keep "
            f"{self.history} (--history)"
        )

    def _lane(self, role: str, model: ForecastModel) -> Lane:
        t = self.topics
        if role == CHAMPION:
            return Lane(role, model, t.forecasts, t.evaluations)
        return Lane(CHALLENGER, model, t.forecasts_shadow, t.evaluations_shadow)
