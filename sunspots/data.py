"""SILSO daily sunspot data: read the CSV from a path or URL into a clean DataFrame.

The file is `;`-separated with no header: year; month; day; decimal year; daily total sunspot
number (-1 = missing); standard deviation (-1 = missing); number of observations; provisional
flag. Missing values become NaN here so that -1 never leaks into arithmetic.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

SILSO_DAILY_URL = "https://www.sidc.be/SILSO/INFO/sndtotcsv.php"
COLUMNS = ("date", "sunspot_number", "std_dev", "observations", "provisional")
_FIELDS = 8


class DataFormatError(ValueError):
    """The sunspot file does not follow the SILSO daily format; the message names the line."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sunspots"


def is_url(source: str | os.PathLike[str]) -> bool:
    return str(source).startswith(("http://", "https://"))


def resolve_source(source: str | os.PathLike[str], cache_dir: Path | None = None) -> Path:
    """Return a local path for `source`, downloading (once) when it is an http(s) URL."""
    if not is_url(source):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"sunspot data file not found: {path}")
        return path
    url = str(source)
    cache = cache_dir or default_cache_dir()
    target = cache / f"silso-{hashlib.sha256(url.encode()).hexdigest()[:16]}.csv"
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=60) as response:
        payload = response.read()
    # Parse before caching so that an error page never poisons the cache.
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    try:
        read_daily(Path(tmp))
    except DataFormatError:
        os.unlink(tmp)
        raise
    os.replace(tmp, target)
    return target


def _parse_line(text: str, lineno: int, where: str) -> tuple:
    parts = text.split(";")
    if len(parts) != _FIELDS:
        raise DataFormatError(f"{where}:{lineno}: expected {_FIELDS} fields, got {len(parts)}")
    try:
        year, month, day = int(parts[0]), int(parts[1]), int(parts[2])
        day_date = date(year, month, day)
        value = float(parts[4])
        std = float(parts[5])
        count = int(parts[6])
        flag = int(parts[7])
    except ValueError as exc:
        raise DataFormatError(f"{where}:{lineno}: {exc}: {text.strip()!r}") from None
    if flag not in (0, 1):
        raise DataFormatError(f"{where}:{lineno}: provisional flag must be 0 or 1, got {flag}")
    if (value < 0 and value != -1) or count < 0:
        raise DataFormatError(f"{where}:{lineno}: negative value: {text.strip()!r}")
    return (
        day_date,
        np.nan if value == -1 else value,
        np.nan if std < 0 else std,
        count,
        bool(flag),
    )


def read_daily(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Parse a SILSO daily file. Rows must be consecutive days; missing values are NaN."""
    where = str(path)
    rows = []
    with open(path, encoding="ascii", errors="strict") as fh:
        try:
            for lineno, text in enumerate(fh, start=1):
                if text.strip():
                    rows.append(_parse_line(text, lineno, where))
        except UnicodeDecodeError as exc:
            raise DataFormatError(f"{where}: not an ASCII text file ({exc})") from None
    if not rows:
        raise DataFormatError(f"{where}: no data rows")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"])
    steps = frame["date"].diff().dt.days.iloc[1:]
    bad = steps[steps != 1]
    if not bad.empty:
        i = int(bad.index[0])
        raise DataFormatError(
            f"{where}:{i + 1}: dates must be consecutive days, "
            f"{frame['date'][i - 1].date()} is followed by {frame['date'][i].date()}"
        )
    return frame


def load_daily(source: str | os.PathLike[str], cache_dir: Path | None = None) -> pd.DataFrame:
    return read_daily(resolve_source(source, cache_dir))


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def last_unobserved_index(frame: pd.DataFrame) -> int:
    """Index of the last row with zero observations (the seed drops it and all before)."""
    zero = frame.index[frame["observations"] == 0]
    return int(zero.max()) if len(zero) else -1


def trim_unobserved(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[last_unobserved_index(frame) + 1 :]


def select_range(
    frame: pd.DataFrame, start: str | None = None, end: str | None = None
) -> pd.DataFrame:
    """Rows with start <= date <= end (ISO dates, either may be None)."""
    mask = pd.Series(True, index=frame.index)
    if start:
        mask &= frame["date"] >= pd.Timestamp(start)
    if end:
        mask &= frame["date"] <= pd.Timestamp(end)
    return frame[mask]


@dataclass(frozen=True)
class Split:
    """The seed's chronological split: train before `test_from_year`, test from it on."""

    train: pd.DataFrame
    test: pd.DataFrame


def split_by_year(frame: pd.DataFrame, test_from_year: int = 2000) -> Split:
    years = frame["date"].dt.year
    return Split(train=frame[years < test_from_year], test=frame[years >= test_from_year])
