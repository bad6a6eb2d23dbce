"""What an error raised by `KafkaConsumer.poll` means: wait and poll again, or stop on input.

Two kinds, and a clear outcome for each:

* **Retried**: the brokers or the group are passing through a change (a connection lost, a
  coordinator or a leader moving, a rebalance): the loop backs off and polls again, reporting
  itself not connected. Every `KafkaError` that is not the next kind. One that persists is the
  watchdog's to report (`consumer.watchdog`), not an endless warning.
* **Unreadable**: a record batch the client cannot decode (a codec it lacks, a corrupt or
  invalid batch, a record larger than it can fetch), or any exception from outside Kafka's
  errors escaping the client while it reads. Polling again cannot mend it, and kafka-python
  then loops for ever inside its next poll (`sunspots.kafka.compat.fetch_position`), so the
  service stops with `EXIT_INPUT` and one line naming the topic, the partition, the offset, the
  cause and what to do.

Fencing and refusals (authentication, authorization) are told apart before this, as for every
step of the loop (`consumer.fencing`, `sunspots.kafka.refusal`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from sunspots.kafka.errors import (
    CorruptRecordError,
    InvalidRecordError,
    KafkaError,
    RecordTooLargeError,
    UnsupportedCodecError,
    UnsupportedCompressionTypeError,
)
from sunspots.kafka.types import TopicPartition

# Kafka's errors that mean a batch, as fetched, cannot be decoded.
UNREADABLE_ERRORS: tuple[type[KafkaError], ...] = (
    UnsupportedCodecError,
    UnsupportedCompressionTypeError,
    CorruptRecordError,
    InvalidRecordError,
    RecordTooLargeError,
)
ALL_CODECS = "kafka-python[lz4,snappy,zstd]"
_CODEC = re.compile(r"\b(gzip|snappy|lz4|zstd)\b")

Where = tuple[TopicPartition, int]


def is_unreadable(exc: BaseException) -> bool:
    """Whether a poll's error means a batch cannot be read (else it is retried)."""
    if isinstance(exc, KafkaError):
        return isinstance(exc, UNREADABLE_ERRORS)
    return isinstance(exc, Exception)


def cause(exc: BaseException) -> str:
    """`Type: message`, as kafka-python's errors print themselves (and others do not)."""
    text, name = str(exc), type(exc).__name__
    if name in text:
        return text
    return f"{name}: {text}" if text else name


def where_told(exc: BaseException) -> Where | None:
    """The partition and offset an error names itself: kafka-python's RecordTooLargeError
    carries `{partition: offset}` as its second argument."""
    for arg in exc.args:
        if isinstance(arg, dict) and len(arg) == 1:
            ((tp, offset),) = arg.items()
            if isinstance(tp, TopicPartition) and isinstance(offset, int):
                return tp, offset
    return None


def unreadable_line(
    exc: BaseException,
    where: Where | None,
    positions: Mapping[TopicPartition, int | None],
    group_id: str,
    bootstrap: str,
) -> str:
    """The one line that stops the service: where, the cause, and what to do."""
    if where is None:
        at = ", ".join(
            f"partition {tp.partition} of {tp.topic} at {offset}"
            for tp, offset in sorted(positions.items())
        )
        place = f"an unknown partition (the client does not say; positions: {at or 'none'})"
    else:
        tp, offset = where
        place = f"partition {tp.partition} of {tp.topic} at offset {offset}"
    return f"cannot read {place}: {cause(exc)}; {_advice(exc, where, group_id, bootstrap)}"


def _advice(exc: BaseException, where: Where | None, group_id: str, bootstrap: str) -> str:
    if isinstance(exc, UnsupportedCodecError):
        codec = _CODEC.search(str(exc))
        extra = f"kafka-python[{codec.group(1)}]" if codec and codec.group(1) != "gzip" else None
        wanted = f"'{extra}' (or '{ALL_CODECS}' for every codec)" if extra else f"'{ALL_CODECS}'"
        return (
            f"the batch is compressed with a codec this installation lacks: pip install "
            f"{wanted} and restart; nothing is lost, the group has not moved past the batch"
        )
    topic = f"{where[0].topic}:{where[0].partition}" if where else "<topic>:<partition>"
    return (
        "if the batch is damaged on the brokers, stop the service and move the group past it: "
        f"kafka-consumer-groups.sh --bootstrap-server {bootstrap} --group {group_id} --topic "
        f"{topic} --reset-offsets --to-offset <the batch's last offset + 1> --execute "
        "(kafka-dump-log.sh --print-data-log shows the batch's lastOffset), then restart; the "
        "records skipped are never processed"
    )
