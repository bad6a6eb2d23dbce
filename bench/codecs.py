"""What each Kafka codec costs and saves on the replay's records: CPU on both sides, bytes kept.

    .venv/bin/python -m bench.codecs [--data FILE] [--bootstrap-servers HOST:PORT]

For each codec (none, gzip, snappy, lz4, zstd), on fresh one-partition topics, two cases:

- batched: the replay's observations (1850 → end of data, the exact JSON bytes
  `producer.replay` sends, keyed by series; `--count` for a slice) through the replay's own
  producer (`producer.replay.replay_producer`: acks=all, idempotent, linger 10 ms, 256 KiB
  batches) with the codec: the replay's batch sizes.
- single: the first `--single` of them sent one at a time, each flushed before the next, so
  every batch holds one record: the paced, real-time case (a replay at `--speed`, the
  forecaster's outputs of one observation).

`producer_cpu_us`: this process's CPU time (`time.process_time`, every thread, kafka-python's
sender included) from the first send to the end of the last flush, per record; the JSON is
encoded beforehand. `consumer_cpu_us`: the same for a reader with the services' settings
(`sunspots.kafka.clients.make_reader`: read_committed, 16 MiB fetches) reading the topic from its
start to its last record. `bytes_per_record`: the partition's size on the broker
(KafkaAdminClient.describe_log_dirs: its segment files, batch headers included) per record;
`vs_none`: that size over the uncompressed one's. `batches`: the record batches in the
partition's segment files (read beside a local broker; `-` otherwise). Each case runs
`--repeats` times on a fresh topic; the CPU figures are the median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import RESULTS, measure, report
from bench.kafka_ceiling import create, replay_parser, replay_records
from producer.replay import replay_producer
from sunspots.kafka.clients import make_admin, make_reader
from sunspots.kafka.codecs import COMPRESSION_TYPES, DEFAULT_COMPRESSION
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.types import KafkaProducer, TopicPartition
from sunspots.process.deadline import Deadline
from support.logdirs import stored_batches, topic_bytes

COLUMNS = [
    "case",
    "codec",
    "records",
    "batches",
    "producer_cpu_us",
    "consumer_cpu_us",
    "bytes_per_record",
    "vs_none",
]
Records = list[tuple[bytes, bytes]]


def produce_batched(producer: KafkaProducer, topic: str, records: Records) -> None:
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush()


def produce_single(producer: KafkaProducer, topic: str, records: Records) -> None:
    for key, value in records:
        producer.send(topic, key=key, value=value)
        producer.flush()


def produce_cpu(
    kafka: KafkaSettings,
    topic: str,
    records: Records,
    send: Callable[[KafkaProducer, str, Records], None],
) -> float:
    """CPU seconds of this process to send `records` and have them all acknowledged."""
    producer = replay_producer(kafka)
    try:
        producer.partitions_for(topic)  # metadata first: not a codec's cost
        started = time.process_time()
        send(producer, topic, records)
        return time.process_time() - started
    finally:
        producer.close()


def consume_cpu(kafka: KafkaSettings, topic: str, count: int, timeout: float) -> float:
    """CPU seconds of this process to read `count` records of `topic` from its start."""
    reader = make_reader(kafka)
    try:
        partition = TopicPartition(topic, 0)
        reader.assign([partition])
        reader.seek_to_beginning(partition)
        reader.position(partition)  # the offset lookup first: not a codec's cost
        read, deadline = 0, Deadline(timeout)
        started = time.process_time()
        while read < count:
            if deadline.expired():
                raise RuntimeError(f"read {read} of {count} records of {topic} in {timeout:g} s")
            read += sum(len(part) for part in reader.poll(timeout_ms=200).values())
        return time.process_time() - started
    finally:
        reader.close()


def _batches(bootstrap: str, topic: str) -> int | None:
    try:
        return sum(1 for b in stored_batches(bootstrap, topic) if not b.control)
    except FileNotFoundError:  # a broker on another machine
        return None


def one_case(
    args: argparse.Namespace, bootstrap: str, codec: str, case: str, records: Records
) -> dict[str, Any]:
    """`args.repeats` runs of one codec and case, each on a topic of its own."""
    kafka = KafkaSettings(bootstrap, compression_type=codec)
    send = produce_batched if case == "batched" else produce_single
    produced, consumed, topics = [], [], []
    for _ in range(args.repeats):
        topic = f"bench-codec-{codec}-{case}-{uuid.uuid4().hex[:8]}"
        create(kafka, topic)
        topics.append(topic)
        produced.append(produce_cpu(kafka, topic, records, send))
        consumed.append(consume_cpu(kafka, topic, len(records), args.timeout))
    stored = topic_bytes(bootstrap, topics[-1])
    return {
        "case": case,
        "codec": codec,
        "records": len(records),
        "batches": _batches(bootstrap, topics[-1]),
        "producer_cpu_us": round(statistics.median(produced) / len(records) * 1e6, 1),
        "consumer_cpu_us": round(statistics.median(consumed) / len(records) * 1e6, 1),
        "bytes_per_record": round(stored / len(records), 1),
        "stored_bytes": stored,
        "topics": topics,
    }


def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """Every codec on the batched and single-record cases, each row with its stored bytes as a
    ratio of no compression; the topics are deleted after."""
    records = replay_records(args.data, args.start, args.count)
    cases = {"batched": records, "single": records[: args.single]}
    rows = [
        one_case(args, bootstrap, codec, case, chosen)
        for case, chosen in cases.items()
        for codec in COMPRESSION_TYPES
    ]
    for row in rows:
        none = next(r for r in rows if r["case"] == row["case"] and r["codec"] == "none")
        row["vs_none"] = round(row["stored_bytes"] / none["stored_bytes"], 3)
    _delete([topic for row in rows for topic in row.pop("topics")], bootstrap)
    return report(
        "codecs",
        rows,
        replay_start=args.start,
        repeats=args.repeats,
        default_compression=DEFAULT_COMPRESSION,
        partitions=1,
    )


def _delete(topics: list[str], bootstrap: str) -> None:
    admin = make_admin(KafkaSettings(bootstrap))
    try:
        admin.delete_topics(topics)
    finally:
        admin.close()


def build_parser() -> argparse.ArgumentParser:
    """The replay flags, plus the single-record count, the repeats and the read timeout."""
    parser = replay_parser("bench.codecs", __doc__)
    parser.add_argument("--single", type=int, default=500, help="single-record batches (500)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per codec and case (3)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per read (300 s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "codecs.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    measure(build_parser().parse_args(argv), run, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
