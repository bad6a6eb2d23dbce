"""Drift of a series' live forecast error: a Page-Hinkley test on the absolute error, relative
to the error's own recent level.

Policy, applied to each scored forecast of a series (one detector per series and role):
- the input is the absolute error |forecast - actual|;
- warm-up: the first `warmup` errors only set the reference level (their mean); no alarm;
- then each error is divided by the reference level, floored at `floor` sunspots, and the test
  accumulates `ratio - 1 - delta`: the statistic is how far that sum has risen above its lowest
  point. It alarms when the statistic exceeds `threshold` (λ). The reference level follows the
  error slowly (an exponential mean with a half-life of `half_life` scored days), so the solar
  cycle, which moves the error by a factor of four over years, is followed, while a sudden
  lasting rise of the error (the model no longer fits the stream) is not;
- after an alarm the detector starts again with a new warm-up, so it learns the new level and
  alarms once per change, not on every day after it.

Why relative, and why the floor: the committed model's absolute error is about 3 sunspots at
solar minimum and 15 at maximum. A test on the raw error alarms on every rising cycle; the
ratio does not, and the floor (10 sunspots, about the error's mean over 2000-2026) keeps the
quiet years' small errors from making large ratios out of ordinary days.

Calibration (`docs/models-lifecycle.md`, asserted by `tests/model/test_drift_calibration.py`):
with the defaults, over the committed window-10 model's errors on the data file, no alarm on
the clean 2000-01-01 to 2017-06-30 and 2000-01-01 to end-of-data streams (highest statistic
13.3, below λ = 20), and an alarm 23 scored days after the stream is rescaled by 1/0.6 from
2012-01-01 (SILSO's own change of scale in 2015, version 1 to 2).

Pure: floats in, `DriftStep` out. The state round-trips through JSON for the changelog.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class DriftPolicy:
    """The detector's settings; the defaults are the calibrated ones."""

    delta: float = 0.3  # the rise of the relative error tolerated without drift
    threshold: float = 20.0  # λ: the statistic at which the detector alarms
    half_life: float = 180.0  # scored days over which the reference level halves its memory
    warmup: int = 60  # errors that set the reference level before any test
    floor: float = 10.0  # sunspots: the smallest reference level errors are divided by

    def __post_init__(self) -> None:
        if not (self.delta >= 0 and self.threshold > 0 and self.half_life > 0):
            raise ValueError(f"bad drift policy {self}")
        if self.warmup < 1 or self.floor <= 0:
            raise ValueError(f"bad drift policy {self}")


@dataclass(frozen=True, slots=True)
class DriftStep:
    """What one error did: whether it raised the alarm, and the test's statistic after it
    (0 during warm-up and right after an alarm)."""

    alarm: bool
    statistic: float


@dataclass(slots=True)
class DriftDetector:
    """The Page-Hinkley test of one series' error, under `policy` (slots: one per series and
    role)."""

    policy: DriftPolicy = field(default_factory=DriftPolicy)
    seen: int = 0  # errors since the start or the last alarm
    level: float = 0.0  # the reference level of the absolute error
    cumulative: float = 0.0
    minimum: float = 0.0
    alarms: int = 0

    def apply(self, error: float) -> DriftStep:
        """Test one forecast error (forecast - actual, or its absolute value)."""
        x = abs(error)
        if not math.isfinite(x):
            raise ValueError(f"error must be finite, got {error!r}")
        p = self.policy
        if self.seen < p.warmup:
            self.seen += 1
            self.level += (x - self.level) / self.seen
            return DriftStep(False, 0.0)
        self.cumulative += x / max(self.level, p.floor) - 1.0 - p.delta
        self.minimum = min(self.minimum, self.cumulative)
        statistic = self.cumulative - self.minimum
        if statistic > p.threshold:
            self.alarms += 1
            self.seen, self.level, self.cumulative, self.minimum = 0, 0.0, 0.0, 0.0
            return DriftStep(True, statistic)
        self.level += (1.0 - 0.5 ** (1.0 / p.half_life)) * (x - self.level)
        return DriftStep(False, statistic)

    def copy(self) -> DriftDetector:
        return DriftDetector(
            self.policy, self.seen, self.level, self.cumulative, self.minimum, self.alarms
        )

    @property
    def statistic(self) -> float:
        """The test's statistic now: how far the sum has risen above its lowest point."""
        return self.cumulative - self.minimum

    @property
    def detected(self) -> bool:
        """From an alarm until the new level is learned (the warm-up after it)."""
        return self.alarms > 0 and self.seen < self.policy.warmup

    def to_json(self) -> str:
        state = asdict(self)
        del state["policy"]
        return json.dumps(state)

    @classmethod
    def from_json(cls, text: str, policy: DriftPolicy | None = None) -> DriftDetector:
        """The detector of a snapshot, under `policy` (the default one if not given): the
        policy is configuration, so a restart with new settings applies them."""
        state = json.loads(text)
        return cls(
            policy or DriftPolicy(),
            seen=int(state["seen"]),
            level=float(state["level"]),
            cumulative=float(state["cumulative"]),
            minimum=float(state["minimum"]),
            alarms=int(state["alarms"]),
        )
