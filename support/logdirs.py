"""What the broker stores for a topic: the bytes it takes, and the codec of each record batch.

The codec benchmark compares codecs by the bytes a topic takes on the broker, and the interop
tests check that each producer wrote the codec it was asked for. Both come from the broker:
`describe_log_dirs` (KafkaAdminClient) gives each partition's size and the log directory that
holds it, and the batches are read from that directory's segment files with kafka-python's own
record-batch reader (`kafka.record.MemoryRecords`): a segment file is the batches as the
producer wrote them, the format a fetch response carries. The files are there only when the
broker runs on this machine (the tests' and the benchmarks' harness broker, `make kafka`);
elsewhere `stored_batches` raises, naming the directory it looked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kafka.record import MemoryRecords

from sunspots.kafka.clients import make_admin
from sunspots.kafka.codecs import COMPRESSION_TYPES
from sunspots.kafka.settings import KafkaSettings


@dataclass(frozen=True)
class StoredBatch:
    """One record batch of a partition as the broker holds it."""

    partition: int
    codec: str  # a name of sunspots.kafka.codecs.COMPRESSION_TYPES
    producer_id: int  # -1 unless an idempotent or transactional producer wrote it
    control: bool  # a transaction's commit or abort marker (never compressed)
    keys: tuple[bytes | None, ...]  # its records' keys; none for a marker


def _partitions(bootstrap: str, topic: str) -> dict[int, tuple[Path, int]]:
    """Partition -> (log directory, bytes), from the first broker that reports it."""
    admin = make_admin(KafkaSettings(bootstrap))
    try:
        described = admin.describe_log_dirs([topic])
    finally:
        admin.close()
    found: dict[int, tuple[Path, int]] = {}
    for broker in described:
        for log_dir in broker["log_dirs"]:
            for entry in log_dir["topics"]:
                if entry["name"] != topic:
                    continue
                for p in entry["partitions"]:
                    found.setdefault(
                        p["partition_index"], (Path(log_dir["log_dir"]), p["partition_size"])
                    )
    if not found:
        raise LookupError(f"no broker at {bootstrap} reports a log of {topic}")
    return found


def topic_bytes(bootstrap: str, topic: str) -> int:
    """The bytes `topic`'s partitions take on the broker (one replica each): record batches,
    headers and all, as `describe_log_dirs` reports them."""
    return sum(size for _, size in _partitions(bootstrap, topic).values())


def stored_batches(bootstrap: str, topic: str) -> list[StoredBatch]:
    """Every record batch of `topic` in its segment files, partition by partition, in order."""
    batches = []
    for partition, (log_dir, _) in sorted(_partitions(bootstrap, topic).items()):
        folder = log_dir / f"{topic}-{partition}"
        if not folder.is_dir():
            raise FileNotFoundError(
                f"the broker's log directory {folder} is not on this machine: the codecs of "
                "stored batches can be read only beside a local broker"
            )
        for segment in sorted(folder.glob("*.log")):
            records = MemoryRecords(segment.read_bytes())
            while records.has_next():
                batch = records.next_batch()
                control = batch.is_control_batch
                batches.append(
                    StoredBatch(
                        partition,
                        COMPRESSION_TYPES[batch.compression_type],
                        batch.producer_id,
                        control,
                        () if control else tuple(record.key for record in batch),
                    )
                )
    return batches
