"""A consumer service with a fault in its Kafka client, for the tests; never a production flag.

`python -m support.client_faults FAULT forecast|classify [flags]` runs `consumer.__main__.main`
with the loop's `KafkaConsumer` (the one with a group; the readers without one are left alone)
made to misbehave as kafka-python can:

* `spin@N`: from the poll after the Nth poll that returned records, poll never returns and
  keeps a core busy (kafka-python 3 after an undecodable batch: `sunspots.kafka.compat`);
* `block@N`: likewise, but waiting instead of spinning (a client waiting on a broker that never
  answers);
* `pause:P`: partition P of the topic read is paused as soon as it is assigned, so its records
  wait while the other partitions flow (a client that stops fetching one partition);
* `codec:NAME`: from the loop's first poll on, kafka-python believes the library of the
  compression codec NAME (snappy, lz4, zstd, gzip) missing, as on an installation without it,
  so a batch written with it cannot be decoded (a check of the codecs at start still passes);
* `crc@N`: every record batch from offset N on fails kafka-python's CRC check, as a batch
  damaged on the brokers does (any topic: use it where only the source reaches offset N).

The fault is set up before `main` runs; everything else is the service as users run it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any

import kafka.codec
from kafka import KafkaConsumer
from kafka.record.default_records import DefaultRecordBatch

from consumer.__main__ import main


def _loop_consumer(consumer: KafkaConsumer) -> bool:
    return consumer.config.get("group_id") is not None


def _stuck_after(records_polls: int, stuck: Callable[[], None]) -> None:
    """Make the loop's poll call `stuck` from the poll after `records_polls` returned records."""
    original = KafkaConsumer.poll
    seen = {"records": 0}

    def poll(self: KafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        """The loop consumer's poll, stuck once `records_polls` polls have returned records;
        other consumers poll as usual."""
        if not _loop_consumer(self):
            return original(self, *args, **kwargs)
        if seen["records"] >= records_polls:
            stuck()
        polled = original(self, *args, **kwargs)
        if polled:
            seen["records"] += 1
        return polled

    KafkaConsumer.poll = poll  # type: ignore[method-assign]


def _spin() -> None:
    while True:
        pass


def _block() -> None:
    threading.Event().wait()


def _pause(partition: int) -> None:
    """Pause `partition` of the loop's consumer whenever it is assigned and not paused."""
    original = KafkaConsumer.poll

    def poll(self: KafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        """The loop consumer's poll, with `partition` paused first; other consumers poll as
        usual."""
        if _loop_consumer(self):
            for tp in self.assignment():
                if tp.partition == partition and tp not in self.paused():
                    self.pause(tp)
        return original(self, *args, **kwargs)

    KafkaConsumer.poll = poll  # type: ignore[method-assign]


def _no_codec(name: str) -> None:
    """From the loop's first poll on (after any check of the codecs at start), kafka-python
    believes the library of codec `name` missing."""
    original = KafkaConsumer.poll

    def poll(self: KafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        if _loop_consumer(self):
            setattr(kafka.codec, f"has_{name}", lambda: False)
        return original(self, *args, **kwargs)

    KafkaConsumer.poll = poll  # type: ignore[method-assign]


def _corrupt_from(offset: int) -> None:
    original = DefaultRecordBatch.validate_crc

    def validate_crc(self: DefaultRecordBatch) -> bool:
        return original(self) and self.base_offset < offset

    DefaultRecordBatch.validate_crc = validate_crc  # type: ignore[method-assign]


def install(fault: str) -> None:
    """Set up `fault` (see the module) in this process's kafka-python."""
    kind, _, arg = fault.partition("@")
    if kind in ("spin", "block"):
        _stuck_after(int(arg), _spin if kind == "spin" else _block)
    elif kind.startswith("pause:"):
        _pause(int(kind.removeprefix("pause:")))
    elif kind.startswith("codec:"):
        _no_codec(kind.removeprefix("codec:"))
    elif kind == "crc":
        _corrupt_from(int(arg))
    else:
        raise SystemExit(f"unknown client fault {fault!r}: see python -m support.client_faults")


if __name__ == "__main__":
    install(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
