"""Consumed records for the processors' unit tests: what the runner hands a processor
(`Record`, support.records), and the models-topic publications a stand-in model makes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sunspots.domain.intervals import Calibration
from sunspots.lifecycle.records import ModelRecord, Published
from sunspots.wire.schemas import Observation
from support.records import Record

D0 = date(2000, 1, 1)
# A stand-in model's calibration: Q(p) = 2p − 1, so at α = 0.1 the interval is the forecast
# ± 0.9 × the window's volatility (floor 2); a step γ large enough to see the level move.
CALIBRATION = Calibration((-1.0, 1.0), gamma=0.05, floor=2.0)


def observations(values: list[float | None], series: str = "s", start: int = 0) -> list[Record]:
    """One observation a day from D0 + `start` days, at offsets `start`.., keyed by series."""
    out = []
    for i, v in enumerate(values):
        obs = Observation(series, D0 + timedelta(days=start + i), v, None, 1, False)
        out.append(Record(obs.encode(), series.encode(), start + i))
    return out


def published(role: str, model: Any) -> Published:
    """A models-topic publication of a stand-in `model` (it needs a `model_version`) in `role`."""
    record = ModelRecord(
        1, role, "sunspot-forecaster", model.model_version, "{}", "", b"", "", "", ""
    )
    return Published(role, model, record)


__all__ = ["CALIBRATION", "D0", "Record", "observations", "published"]
