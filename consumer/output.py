"""What a processor asks the runner to publish: records for output topics and dead letters.

A dead letter keeps the original key and bytes untouched and says why in headers, with the
source topic/partition/offset, so nothing is lost and every rejection can be traced back.
Every header value is UTF-8 text (schemas/dead-letter-headers.json); `detail` is at most
MAX_DETAIL_BYTES long, cut on a character boundary.

One exception: a record whose key and value together pass MAX_KEPT_BYTES (512 KiB) is kept cut
to the first MAX_KEY_BYTES of its key and MAX_MESSAGE_BYTES of its value, with headers
`original_key_bytes` and `original_value_bytes` giving the full sizes. Whole, with the headers,
it could pass the 1 MiB a producer sends by default and a broker takes by default: the publish
would fail on every retry and the line would stop. The whole record stays at its source offset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sunspots.wire.schemas import MAX_DETAIL_BYTES, MAX_KEPT_BYTES, MAX_KEY_BYTES, MAX_MESSAGE_BYTES


class Record(Protocol):
    """The fields of a consumed Kafka record that processors read."""

    @property
    def topic(self) -> str: ...

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...

    @property
    def key(self) -> bytes | None: ...

    @property
    def value(self) -> bytes | None: ...


# Not frozen: a frozen dataclass sets each field through object.__setattr__, and the forecaster
# makes two or three outputs per observation. Treat an Output as immutable all the same.
@dataclass(slots=True)
class Output:
    """One record for the runner to publish: topic, value, key, headers and (for the models topic)
    the partition."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


def dead_letter(topic: str, record: Record, reason: str, detail: str) -> Output:
    """A dead-letter record for the consumed `record`."""
    headers = (
        ("reason", reason.encode()),
        ("detail", _cut(detail.encode("utf-8", "replace"), MAX_DETAIL_BYTES)),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
    )
    key, value = record.key, record.value
    size = len(key or b"") + len(value or b"")
    if size <= MAX_KEPT_BYTES:
        return Output(topic, value, key, headers)
    original = (
        ("original_key_bytes", str(len(key or b"")).encode()),
        ("original_value_bytes", str(len(value or b"")).encode()),
    )
    kept_key = None if key is None else key[:MAX_KEY_BYTES]
    kept_value = None if value is None else value[:MAX_MESSAGE_BYTES]
    return Output(topic, kept_value, kept_key, headers + original)


def _cut(text: bytes, limit: int) -> bytes:
    """The first `limit` bytes of UTF-8 `text`, less any character cut in two."""
    return text[:limit].decode("utf-8", "ignore").encode("utf-8")
