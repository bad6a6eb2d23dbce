"""What a processor asks the runner to publish: records for output topics and dead letters.

A dead letter keeps the original key and bytes untouched and says why in headers, with the
source topic/partition/offset, so nothing is lost and every rejection can be traced back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from consumer.processor import Record


@dataclass(frozen=True, slots=True)
class Output:
    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


def dead_letter(topic: str, record: Record, reason: str, detail: str) -> Output:
    """A dead-letter record for the consumed `record`."""
    headers = (
        ("reason", reason.encode()),
        ("detail", detail.encode("utf-8", "replace")[:1000]),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
    )
    return Output(topic, record.value, record.key, headers)
