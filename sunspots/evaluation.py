"""Rolling scores of streamed forecasts: RMSE of the model and of persistence, and coverage.

Both RMSEs run over the same last K evaluations, so their ratio is the model's skill
(below 1 = better than "tomorrow equals today"). Pure arithmetic, no I/O.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass
class RollingScore:
    size: int = 365
    _sq: deque[float] = field(default_factory=deque)
    _sq_persistence: deque[float] = field(default_factory=deque)
    _covered: deque[bool] = field(default_factory=deque)

    def add(self, error: float, persistence_error: float, covered: bool) -> None:
        self._sq.append(error * error)
        self._sq_persistence.append(persistence_error * persistence_error)
        self._covered.append(covered)
        if len(self._sq) > self.size:
            self._sq.popleft()
            self._sq_persistence.popleft()
            self._covered.popleft()

    def __len__(self) -> int:
        return len(self._sq)

    @property
    def rmse(self) -> float:
        return math.sqrt(math.fsum(self._sq) / len(self._sq)) if self._sq else math.nan

    @property
    def persistence_rmse(self) -> float:
        if not self._sq_persistence:
            return math.nan
        return math.sqrt(math.fsum(self._sq_persistence) / len(self._sq_persistence))

    @property
    def coverage(self) -> float:
        return sum(self._covered) / len(self._covered) if self._covered else math.nan


def rmse(errors: list[float]) -> float:
    return math.sqrt(math.fsum(e * e for e in errors) / len(errors)) if errors else math.nan
