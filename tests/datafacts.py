"""What the tests may assume about the SILSO data file, and on which file they ran.

A few tests rely on what the data holds: how many rows, where values are missing, how many
windows the test years give. Those facts are written for the shared file in its README
(`../shared/data/README.md`) and hold for that file only; `make` falls back to SILSO's live
file, whose content changes every month. So the tests read the facts from that README, never
from literals, and every assertion that rests on one carries `DataFile.note`, which says
plainly when the file in use is not the file the README describes (its sha256 differs).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "SN_d_tot_V2.0.csv"
README = DEFAULT_DATA.parent / "README.md"

# What the README states, and how it says it.
_PATTERNS = {
    "range": r"(\d{4}-\d\d-\d\d) to (\d{4}-\d\d-\d\d) \(([\d,]+) rows\)",
    "unobserved": r"last row with 0 observations.*?is (\d{4}-\d\d-\d\d) \(row index (\d+)\)",
    "complete": r"from (\d{4}-\d\d-\d\d) on no value is missing",
    "sha256": r"sha256: ([0-9a-f]{64})",
}


class FactsError(AssertionError):
    """The data README no longer states a fact the tests rely on."""


@dataclass(frozen=True)
class SharedFacts:
    """The shared data file as its README describes it."""

    first_date: str
    last_date: str
    rows: int
    last_unobserved_date: str  # the last day with no observation at all (value -1)
    last_unobserved_row: int
    complete_from: str  # from this date on, no value is missing
    sha256: str


def read_facts(readme: Path = README) -> SharedFacts:
    if not readme.is_file():
        raise FactsError(f"{readme} not found: the tests read the data file's facts from it")
    text = " ".join(readme.read_text().split())
    found: dict[str, tuple[str, ...]] = {}
    for name, pattern in _PATTERNS.items():
        match = re.search(pattern, text, re.IGNORECASE)
        if match is None:
            raise FactsError(f"{readme} no longer states the {name} fact ({pattern!r})")
        found[name] = match.groups()
    first, last, rows = found["range"]
    unobserved_date, unobserved_row = found["unobserved"]
    return SharedFacts(
        first_date=first,
        last_date=last,
        rows=int(rows.replace(",", "")),
        last_unobserved_date=unobserved_date,
        last_unobserved_row=int(unobserved_row),
        complete_from=found["complete"][0],
        sha256=found["sha256"][0],
    )


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class DataFile:
    """The data file a test run uses, beside the facts of the shared one."""

    path: Path
    sha256: str
    facts: SharedFacts

    @classmethod
    def at(cls, path: Path, readme: Path = README) -> DataFile:
        return cls(path, sha256_of(path), read_facts(readme))

    @property
    def shared(self) -> bool:
        return self.sha256 == self.facts.sha256

    @property
    def note(self) -> str:
        """For assertion messages: which file the test ran on, and whether the README's facts
        are about it."""
        if self.shared:
            return f"(ran on the shared data file {self.path})"
        return (
            f"(ran on {self.path}, sha256 {self.sha256[:12]}…, which is NOT the file "
            f"{README} describes, sha256 {self.facts.sha256[:12]}…: the facts there, and the "
            "artifact trained on that file, need not hold for this one)"
        )
