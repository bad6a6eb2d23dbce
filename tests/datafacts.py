"""What the tests may assume about the SILSO data file, and on which file they ran.

A few tests rely on what the data holds: its first day, where values are missing, how many
windows a range of years gives. SILSO appends a day to its file every day and revises recent
provisional values, so the tests pin only what any newer file keeps: dates and date ranges,
never the file's length. Counts over a fixed range of dates are computed from the file.

The file is `SUNSPOTS_DATA` (a path, or a URL downloaded once into the cache), else the shared
copy beside the checkout, else SILSO's live file (`support.datafile`). `KNOWN_SHA256` is the file the committed artifacts were trained on; every
assertion that rests on the data carries `DataFile.note`, which says which file it ran on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sunspots.domain.data import file_sha256

# The file the committed artifacts were trained on (their metadata's `data` section).
KNOWN_SHA256 = "687dc4a6916aa495578e1d2756322741e2f760d01f2127460bb882863b77d376"
KNOWN_BYTES = 2_888_076

# Facts of SILSO's daily file (version 2.0) that a newer file keeps.
FIRST_DATE = "1818-01-01"
LAST_UNOBSERVED_DATE = "1848-12-22"  # the last day with no observation at all (value -1)
COMPLETE_FROM = "1848-12-23"  # from this day on no value is missing
# The shared file's last day: any newer file reaches at least this far.
LAST_DATE_AT_LEAST = "2026-01-31"


@dataclass(frozen=True)
class DataFile:
    """The local data file a test run uses, and its sha256."""

    path: Path
    sha256: str

    @classmethod
    def at(cls, path: Path) -> DataFile:
        return cls(path, file_sha256(path))

    @property
    def known(self) -> bool:
        """Whether this is the file the committed artifacts were trained on."""
        return self.sha256 == KNOWN_SHA256

    @property
    def note(self) -> str:
        """For assertion messages: which file the test ran on."""
        if self.known:
            return f"(ran on {self.path}, the file the committed artifacts were trained on)"
        return (
            f"(ran on {self.path}, sha256 {self.sha256[:12]}…, NOT the file the committed "
            f"artifacts were trained on, sha256 {KNOWN_SHA256[:12]}…: a newer SILSO file, "
            "whose revised values may differ from those the artifacts saw)"
        )
