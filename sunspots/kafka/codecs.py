"""Kafka's compression codecs: the ones this install can read and write, checked at start.

A topic holds record batches in whatever codec each producer chose (Java and librdkafka
producers are often set to lz4 or zstd), and a reader must decompress every batch it fetches.
kafka-python reads gzip with the standard library, but snappy, lz4 and zstd only with optional
libraries (its extras, which the project's dependencies name); without one, the first batch in
that codec stops the reader. So every command that reads Kafka checks all of them at start,
and a command checks the codec it writes (`--compression-type`), and refuses to start with one
line naming what is missing and how to install it, rather than meet such a batch later.
"""

from __future__ import annotations

from dataclasses import dataclass

from kafka import codec


@dataclass(frozen=True)
class Codec:
    """A compression codec and what kafka-python needs to use it."""

    name: str  # as Kafka names it: compression.type, kcat -z
    check: str | None  # kafka-python's own public check, in kafka.codec; None: always there
    library: str | None  # the PyPI package kafka-python needs; None: the standard library

    def available(self) -> bool:
        """Whether kafka-python can compress and decompress this codec here."""
        return self.check is None or bool(getattr(codec, self.check)())


NONE = "none"
# Every codec Kafka has, in Kafka's order (the codec ids of a record batch's attributes).
CODECS = (
    Codec(NONE, None, None),
    Codec("gzip", "has_gzip", None),
    Codec("snappy", "has_snappy", "python-snappy"),
    Codec("lz4", "has_lz4", "lz4"),
    Codec("zstd", "has_zstd", "zstandard"),
)
COMPRESSION_TYPES = tuple(c.name for c in CODECS)
# What the project's producers write unless --compression-type says otherwise: zstd. On the
# replay's batches (bench/codecs.py, docs/performance.md: two runs on a busy shared machine) it
# keeps a record in 10.1 bytes on the broker against 144.7 uncompressed (7 %), near gzip's 9.2
# and about half of snappy's 17.4 or lz4's 18.3, for 0.2-0.7 µs (1-4 %) more producer CPU a
# record than none (snappy and lz4 likewise) and no more consumer CPU; gzip costs 4.3-5.2 µs
# more (kafka-python compresses it at level 9). A batch of one record (a paced replay) barely
# shrinks, and costs a reader about 14 µs more with zstd or gzip; kafka-python writes a batch
# uncompressed where its codec would not make it smaller. zstd needs brokers and readers of
# Kafka 2.1 or later.
DEFAULT_COMPRESSION = "zstd"
# The extras of kafka-python that bring the optional libraries.
EXTRAS = "lz4,snappy,zstd"


def missing(reads: bool, writes: str = NONE) -> list[Codec]:
    """The codecs this install lacks among those a command needs: every one if it reads Kafka,
    and the one it writes."""
    needed = [c for c in CODECS if reads or c.name == writes]
    return [c for c in needed if not c.available()]


def refusal(reads: bool, writes: str = NONE) -> str | None:
    """The one line a command stops with when kafka-python lacks a codec it needs; None when
    it has them all."""
    lacking = missing(reads, writes)
    if not lacking:
        return None
    names = " and ".join(c.name for c in lacking)
    libraries = " and ".join(str(c.library) for c in lacking)
    plural = "libraries are" if len(lacking) > 1 else "library is"
    uses = "read" if reads else "write"
    return (
        f"kafka-python cannot {uses} {names} record batches: the {libraries} {plural} not "
        f"installed; install them with pip install 'kafka-python[{EXTRAS}]' (the project's "
        "dependencies include them)"
    )


def kafka_python_value(name: str) -> str | None:
    """kafka-python's `compression_type` for a codec name: None for none."""
    if name not in COMPRESSION_TYPES:
        raise ValueError(f"not a compression type ({', '.join(COMPRESSION_TYPES)}): {name!r}")
    return None if name == NONE else name
