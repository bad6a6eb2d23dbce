"""SILSO daily sunspot data: read the CSV from a path or URL into a clean DataFrame.

The file is `;`-separated with no header: year; month; day; decimal year; daily total sunspot
number (-1 = missing); standard deviation (-1 = missing); number of observations; provisional
flag. Missing values become NaN here so that -1 never leaks into arithmetic.

A URL (SILSO's live file by default) is downloaded once into the cache (`~/.cache/sunspots`),
checked, and its sha256 recorded beside it and told once. `python -m sunspots.domain.data` (`make
data`) does only that, before the tests: when it cannot, one line says to point
`SUNSPOTS_DATA` at a local copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from sunspots.process.cli import env_name

log = logging.getLogger(__name__)

SILSO_DAILY_URL = "https://www.sidc.be/SILSO/INFO/sndtotcsv.php"
# The variable every command's --data falls back to (sunspots.process.cli's scheme).
DATA_ENV = env_name("--data")
DOWNLOAD_TIMEOUT_S = 60
LOCAL_COPY = f"set {DATA_ENV} to a local copy of SILSO's daily file (SN_d_tot_V2.0.csv)"
COLUMNS = ("date", "sunspot_number", "std_dev", "observations", "provisional")
_FIELDS = 8


class DataFormatError(ValueError):
    """The sunspot file does not follow the SILSO daily format; the message names the line."""


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sunspots"


def is_url(source: str | os.PathLike[str]) -> bool:
    return str(source).startswith(("http://", "https://"))


class DataSourceError(OSError):
    """A sunspot data URL could not be downloaded; the message is one line that says how to
    point the commands at a local copy instead."""


def sha256_path(cached: Path) -> Path:
    """Where the sha256 of a downloaded file is recorded: beside it, `<file>.sha256`."""
    return cached.with_name(cached.name + ".sha256")


def resolve_source(source: str | os.PathLike[str], cache_dir: Path | None = None) -> Path:
    """Return a local path for `source`, downloading (once) when it is an http(s) URL.

    A download is checked (it must parse as a SILSO daily file) before it is cached, and its
    sha256 is recorded beside it and logged once, so a run can say which file it used. A URL
    that cannot be had raises DataSourceError, one line naming the variable to set instead."""
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
    log.debug("downloading %s", url)
    payload = _download(url)
    # Parse before caching so that an error page never poisons the cache.
    fd, tmp = tempfile.mkstemp(dir=cache, suffix=".part")
    with os.fdopen(fd, "wb") as fh:
        fh.write(payload)
    try:
        read_daily(Path(tmp))
    except DataFormatError as exc:
        os.unlink(tmp)
        why = str(exc).replace(tmp, url)  # the line is the download's, not the temporary file's
        raise DataSourceError(_cannot(url, f"not a SILSO daily file: {why}")) from None
    digest = hashlib.sha256(payload).hexdigest()
    sha256_path(target).write_text(f"{digest}  {url}\n")
    os.replace(tmp, target)
    log.info("cached %s (%d bytes, sha256 %s) at %s", url, len(payload), digest, target)
    return target


def _download(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
            return bytes(response.read())
    except (OSError, ValueError) as exc:  # URLError, HTTPError and timeouts are OSErrors
        raise DataSourceError(_cannot(url, str(exc))) from None


def _cannot(url: str, why: str) -> str:
    return f"cannot download the sunspot data from {url} ({' '.join(why.split())}); {LOCAL_COPY}"


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
    """The SHA-256 of a file as hex, read a MiB at a time, to tell which data a model was trained
    on."""
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


def main(argv: list[str] | None = None) -> int:
    """`python -m sunspots.domain.data [SOURCE]`: make the data file local before a run that needs
    it (`make data`, which the test targets depend on). SOURCE defaults to `SUNSPOTS_DATA`,
    else SILSO's live file. A URL is downloaded once into the cache and its sha256 told;
    a failure is one line and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = argv if argv is not None else sys.argv[1:]
    source = args[0] if args else os.environ.get(DATA_ENV) or SILSO_DAILY_URL
    try:
        resolve_source(source)
    except OSError as exc:
        log.error("%s", unavailable(exc))
        return 1
    return 0


def unavailable(exc: OSError) -> str:
    """The one line that tells why there is no data file: a download's error says what to set
    already; a missing path gets the same advice."""
    return str(exc) if isinstance(exc, DataSourceError) else f"{exc}; {LOCAL_COPY}"


if __name__ == "__main__":
    sys.exit(main())
