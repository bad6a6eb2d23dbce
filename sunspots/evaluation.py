"""Rolling scores of streamed forecasts: RMSE of the model and of persistence, and the
interval's coverage and mean width, overall and by activity band.

All run over the same last K evaluations, so the RMSEs' ratio is the model's skill (below 1 =
better than "tomorrow equals today"), and a band's coverage is that of the band's days among
the last K. Pure arithmetic, no I/O.
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
    # (band, width) of each evaluation, beside its `_covered`.
    _intervals: deque[tuple[str, float]] = field(default_factory=deque)

    def add(
        self,
        error: float,
        persistence_error: float,
        covered: bool,
        width: float = math.nan,
        band: str = "",
    ) -> None:
        self._sq.append(error * error)
        self._sq_persistence.append(persistence_error * persistence_error)
        self._covered.append(covered)
        self._intervals.append((band, width))
        if len(self._sq) > self.size:
            self._sq.popleft()
            self._sq_persistence.popleft()
            self._covered.popleft()
            self._intervals.popleft()

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

    @property
    def mean_width(self) -> float:
        widths = [width for _, width in self._intervals]
        return math.fsum(widths) / len(widths) if widths else math.nan

    def bands(self) -> dict[str, tuple[int, float, float]]:
        """(days, coverage, mean width) of each band with days among the last K."""
        hits: dict[str, int] = {}
        days: dict[str, int] = {}
        widths: dict[str, list[float]] = {}
        for (band, width), covered in zip(self._intervals, self._covered, strict=True):
            days[band] = days.get(band, 0) + 1
            hits[band] = hits.get(band, 0) + covered
            widths.setdefault(band, []).append(width)
        return {b: (n, hits[b] / n, math.fsum(widths[b]) / n) for b, n in days.items() if b}


def rmse(errors: list[float]) -> float:
    return math.sqrt(math.fsum(e * e for e in errors) / len(errors)) if errors else math.nan
