"""Rolling scores of streamed forecasts: RMSE of the model and of persistence, and the
interval's coverage and mean width, overall and by activity band.

All run over the same last K evaluations, so the RMSEs' ratio is the model's skill (below 1 =
better than "tomorrow equals today"), and a band's coverage is that of the band's days among
the last K. Pure arithmetic, no I/O.

A forecaster keeps one score per series and role, so the score is kept small: the last K
evaluations in ring buffers of machine numbers (`array`), 21 bytes an evaluation (signed
error and persistence error as 8-byte floats, the interval's width as a 4-byte float, band and
hit in one byte), against about 150 in deques of Python floats and tuples. The width is only
ever averaged for a gauge: 4 bytes keep 24 bits of it (a relative error of at most 6e-8, a
millionth of a sunspot on the widest intervals) and save 1.4 KiB of a full score; the errors,
which the RMSEs and the promotion rule compare, keep all 53. The figures are computed when
asked (at a scrape, for the few series whose metrics are exposed), never per evaluation.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass

from sunspots.domain.intervals import BAND_LABELS

# A byte per evaluation: bit 0 the hit, bits 1.. the band's index + 1 (0: no band given).
_BAND_CODE = {label: (i + 1) << 1 for i, label in enumerate(BAND_LABELS)}


@dataclass(frozen=True, slots=True)
class Figures:
    """A score's figures, all from one copy of its buffers."""

    evaluations: int
    last_error: float
    rmse: float
    persistence_rmse: float
    coverage: float
    mean_width: float
    bands: dict[str, tuple[int, float, float]]


class RollingScore:
    """The last `size` evaluations of one series and model, and their scores.

    `figures()` may run on another thread than `add()` (a scrape while the loop scores): it
    copies each buffer first (one C-level slice each, which the GIL does not interrupt), so
    its figures are from at most one evaluation apart and never from buffers of unequal
    lengths."""

    __slots__ = ("_covered", "_errors", "_next", "_persistence", "_widths", "size")

    def __init__(self, size: int = 365) -> None:
        self.size = size
        self._errors = array("d")  # actual − forecast
        self._persistence = array("d")  # actual − persistence
        self._widths = array("f")  # upper − lower, 4 bytes (see the module docstring)
        self._covered = bytearray()  # band code | hit
        self._next = 0  # where the next evaluation goes once the buffers are full

    def add(
        self,
        error: float,
        persistence_error: float,
        covered: bool,
        width: float = math.nan,
        band: str = "",
    ) -> None:
        """Keep one evaluation, the oldest dropped once `size` are held; `covered` and `band` are
        packed into one code, and `_covered` is written last for `figures()`."""
        code = _BAND_CODE.get(band, 0) | (1 if covered else 0)
        if len(self._errors) < self.size:
            self._errors.append(error)
            self._persistence.append(persistence_error)
            self._widths.append(width)
            self._covered.append(code)
            return
        i = self._next
        self._errors[i] = error
        self._persistence[i] = persistence_error
        self._widths[i] = width
        self._covered[i] = code
        self._next = (i + 1) % self.size

    def __len__(self) -> int:
        return len(self._errors)

    @property
    def last_error(self) -> float:
        """The signed error of the latest evaluation (NaN before the first)."""
        return _last(self._errors, self._next)

    @property
    def rmse(self) -> float:
        return _rms(self._errors)

    @property
    def persistence_rmse(self) -> float:
        return _rms(self._persistence)

    @property
    def coverage(self) -> float:
        return _coverage(self._covered)

    @property
    def mean_width(self) -> float:
        return _mean(self._widths)

    def bands(self) -> dict[str, tuple[int, float, float]]:
        """(days, coverage, mean width) of each band with days among the last K."""
        return _bands(self._covered, self._widths)

    def figures(self) -> Figures:
        """Every figure at once, from copies of the buffers (see the class's docstring)."""
        covered = self._covered[:]
        n = len(covered)  # the other buffers are appended to before this one
        errors, widths = self._errors[:n], self._widths[:n]
        return Figures(
            n,
            _last(errors, self._next),
            _rms(errors),
            _rms(self._persistence[:n]),
            _coverage(covered),
            _mean(widths),
            _bands(covered, widths),
        )


def _last(errors: array[float], after: int) -> float:
    """The entry before `after`, the next to be overwritten (0 until full: the last one)."""
    return errors[after - 1] if errors else math.nan


def _rms(values: array[float]) -> float:
    return math.sqrt(math.fsum(v * v for v in values) / len(values)) if values else math.nan


def _coverage(covered: bytearray) -> float:
    return sum(code & 1 for code in covered) / len(covered) if covered else math.nan


def _mean(widths: array[float]) -> float:
    return math.fsum(widths) / len(widths) if widths else math.nan


def _bands(covered: bytearray, widths: array[float]) -> dict[str, tuple[int, float, float]]:
    days = [0] * (len(BAND_LABELS) + 1)
    hits = [0] * len(days)
    sums: list[list[float]] = [[] for _ in days]
    for code, width in zip(covered, widths, strict=True):
        b = code >> 1
        days[b] += 1
        hits[b] += code & 1
        sums[b].append(width)
    return {
        label: (days[i], hits[i] / days[i], math.fsum(sums[i]) / days[i])
        for i, label in enumerate(BAND_LABELS, start=1)
        if days[i]
    }


def rmse(errors: list[float]) -> float:
    return math.sqrt(math.fsum(e * e for e in errors) / len(errors)) if errors else math.nan
