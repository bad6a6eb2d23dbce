"""The automatic promotion rule: a challenger that beats the champion on the same days serves.

Policy, with `days` = K and `margin` = m (flags `--promote-days`, `--promote-margin`):
- the rule sees pairs of errors, the champion's and the challenger's, for the same series and
  target date, each from the model now in its role (a forecast made by an earlier model is not
  evidence about the current one);
- it keeps the last K pairs; once it has K, it promotes when the challenger's RMSE over them is
  below (1 − m) times the champion's;
- it decides once per challenger: after deciding to promote it says nothing more until the
  models change (`reset`, on any change of either role), so one instance publishes one
  promotion, in the transaction of the batch whose evaluations decided it.

Pure: floats in, a decision out.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PromotionPolicy:
    """When a challenger is promoted automatically: once its RMSE over the last `days` days both
    models scored is below the champion's by at least the fraction `margin`."""

    days: int = 90
    margin: float = 0.05

    def __post_init__(self) -> None:
        if self.days < 1 or not 0.0 <= self.margin < 1.0:
            raise ValueError(f"bad promotion policy: days {self.days}, margin {self.margin}")


@dataclass
class PromotionRule:
    """The promotion rule's running account: the squared errors of both models over the last
    `policy.days` days, and whether it has decided (it decides once per challenger)."""

    policy: PromotionPolicy = field(default_factory=PromotionPolicy)
    pairs: deque[tuple[float, float]] = field(default_factory=deque)
    decided: bool = False

    def apply(self, champion_error: float, challenger_error: float) -> bool:
        """Add one day's pair of errors; True the first time the challenger wins."""
        if self.decided:
            return False
        self.pairs.append((champion_error * champion_error, challenger_error * challenger_error))
        if len(self.pairs) > self.policy.days:
            self.pairs.popleft()
        if len(self.pairs) < self.policy.days:
            return False
        champion, challenger = self.rmse()
        self.decided = challenger < (1.0 - self.policy.margin) * champion
        return self.decided

    def rmse(self) -> tuple[float, float]:
        """The champion's and the challenger's RMSE over the pairs held."""
        n = len(self.pairs) or 1
        return (
            math.sqrt(sum(p[0] for p in self.pairs) / n),
            math.sqrt(sum(p[1] for p in self.pairs) / n),
        )

    def reset(self) -> None:
        self.pairs.clear()
        self.decided = False
