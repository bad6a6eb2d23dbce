"""The Kafka ceiling on this machine: bare kafka-python loops with no model, as the reference.

    .venv/bin/python -m bench.kafka_ceiling [--data FILE] [--bootstrap-servers HOST:PORT]

Same broker, same records and the same client settings as the services, so that the
pipeline benchmark (bench.pipeline) can be read as a ratio of these figures:

- produce: the N observations of the replay (1850 → end of data, the exact JSON bytes
  `producer.replay` sends, keyed by series) through a producer configured like the replay's
  (acks=all, idempotent, linger 10 ms, 256 KiB batches). Timed from the first send to the
  end of `flush()`; the JSON is encoded beforehand, so only the client is timed.
- consume→re-produce, at least once: a consumer configured like the runner's (read_committed,
  2000 records per poll, 16 MiB fetches) re-sends every record to an output topic through a
  producer configured like the runner's (acks=all, idempotent, linger 5 ms, 256 KiB batches);
  per poll it flushes, checks every delivery and commits the offsets — the runner's
  at-least-once loop without the processor.
- consume→re-produce, exactly once: the same, but per poll one transaction holds the outputs
  and the offsets (`send_offsets_to_transaction` + `commit_transaction`), like the runner.
- exactly once, forecaster-shaped: the exactly-once loop writing what the forecaster writes per
  poll with no model or JSON work — per record one forecast-sized and one evaluation-sized
  record, and one state-changelog-sized record per batch. The fairest single reference for
  the exactly-once pipeline.

Each consume leg reads the already-filled source topic from the beginning with a fresh group;
its time runs from the first poll that returns records to the last commit, so group join is
not counted. The pipeline instead consumes while the producer is still producing.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.structs import OffsetAndMetadata

from bench.common import RESULTS, default_data, measure, report
from consumer.runner import DEFAULT_MAX_POLL_RECORDS
from producer.replay import ReplayConfig, observations
from sunspots.domain.data import load_daily, select_range
from sunspots.kafka.clients import make_consumer, make_producer
from sunspots.kafka.settings import KafkaSettings
from sunspots.process.deadline import Deadline
from sunspots.wire.schemas import Evaluation, Forecast

COLUMNS = ["scenario", "records_in", "records_out", "batches", "seconds", "in_per_s", "out_per_s"]
REPLAY_START = "1850-01-01"


def replay_records(data: str, start: str, count: int | None) -> list[tuple[bytes, bytes]]:
    """(key, value) of every observation the replay would send, in order."""
    frame = select_range(load_daily(data), start, None)
    if count is not None:
        frame = frame.iloc[:count]
    config = ReplayConfig(data=data, start=start)
    return [(o.series.encode(), o.encode()) for day in observations(frame, config) for o in day]


def shaped_outputs() -> tuple[bytes, bytes, bytes]:
    """A forecast, an evaluation and a state record of the real schemas and sizes."""
    day = date(2017, 6, 30)
    fc = Forecast(
        "silso",
        day + timedelta(days=1),
        23.456789,
        day,
        "lstm-w10-43e2ed4eb6cf",
        0.0,
        53.307654,
        21.0,
    )
    ev = Evaluation.score(fc, 19.0)
    state = (
        b'{"series":"silso","offset":64314,"window":{"size":10,"last_date":"2017-06-30",'
        b'"values":[11.0,12.0,13.0,14.0,15.0,16.0,17.0,18.0,19.0,21.0],"pending":'
        + fc.encode()
        + b"}}"
    )
    return fc.encode(), ev.encode(), state


@dataclass
class Leg:
    """One leg of the bare client's work: records read and written, polled batches (each one
    commit or transaction), wall seconds."""

    scenario: str
    records_in: int
    records_out: int
    batches: int
    seconds: float

    def row(self) -> dict[str, Any]:
        """The leg as a report row, with records a second each way (None for a zero-length leg)."""
        return {
            "scenario": self.scenario,
            "records_in": self.records_in,
            "records_out": self.records_out,
            "batches": self.batches,
            "seconds": round(self.seconds, 3),
            "in_per_s": round(self.records_in / self.seconds, 1) if self.seconds else None,
            "out_per_s": round(self.records_out / self.seconds, 1) if self.seconds else None,
        }


def produce(kafka: KafkaSettings, topic: str, records: list[tuple[bytes, bytes]]) -> Leg:
    """Produce the replay's records with the replayer's settings, timed until all are
    acknowledged; raises RuntimeError if any is not delivered."""
    # producer.replay.Replayer's settings.
    producer = KafkaProducer(
        **kafka.producer_kwargs(),
        acks="all",
        enable_idempotence=True,
        linger_ms=10,
        batch_size=256 * 1024,
    )
    delivered = [0]

    def ok(_metadata: object) -> None:
        delivered[0] += 1

    try:
        started = time.perf_counter()
        for key, value in records:
            producer.send(topic, key=key, value=value).add_callback(ok)
        producer.flush()
        seconds = time.perf_counter() - started
    finally:
        producer.close()
    if delivered[0] != len(records):
        raise RuntimeError(f"only {delivered[0]} of {len(records)} observations delivered")
    return Leg("produce (replay settings)", 0, len(records), 0, seconds)


def _consumer(kafka: KafkaSettings, topic: str, group: str) -> KafkaConsumer:
    # The services' own consumer and producer settings, so the comparison is like for like.
    consumer = make_consumer(kafka, group, group, DEFAULT_MAX_POLL_RECORDS)
    consumer.subscribe([topic])
    return consumer


def _producer(kafka: KafkaSettings, transactional_id: str | None) -> KafkaProducer:
    return make_producer(kafka, transactional_id, 10_000)


def _send_batch(
    producer: KafkaProducer,
    polled: dict[Any, list[Any]],
    outputs: list[str],
    mode: str,
    shaped: tuple[bytes, bytes, bytes],
) -> tuple[int, int, list[Any]]:
    """One polled batch re-produced as `consume_reproduce`'s mode says: (records read,
    records sent, the futures of the plain sends)."""
    forecast, evaluation, state = shaped
    consumed = produced = 0
    futures = []
    for part in polled.values():
        for record in part:
            if mode == "shaped":
                producer.send(outputs[0], value=forecast, key=record.key)
                producer.send(outputs[1], value=evaluation, key=record.key)
                produced += 2
            else:
                futures.append(producer.send(outputs[0], value=record.value, key=record.key))
                produced += 1
            consumed += 1
    if mode == "shaped":
        producer.send(outputs[2], value=state, key=b"silso", partition=0)
        produced += 1
    return consumed, produced, futures


def consume_reproduce(
    kafka: KafkaSettings,
    source: str,
    outputs: list[str],
    expected: int,
    mode: str,
    timeout: float,
) -> Leg:
    """mode: 'alo' (flush + commit), 'eos' (transaction per poll), 'shaped' (eos, forecaster's
    output shape: per record a forecast and an evaluation, per batch one state record)."""
    token = uuid.uuid4().hex[:8]
    consumer = _consumer(kafka, source, f"ceiling-{mode}-{token}")
    producer = _producer(kafka, None if mode == "alo" else f"ceiling-{mode}-{token}")
    shaped = shaped_outputs()
    consumed = produced = batches = 0
    started: float | None = None
    deadline = Deadline(timeout)
    try:
        while consumed < expected:
            if deadline.expired():
                raise RuntimeError(f"{mode}: consumed {consumed} of {expected} in {timeout} s")
            polled = consumer.poll(timeout_ms=250, max_records=DEFAULT_MAX_POLL_RECORDS)
            if not polled:
                continue
            if started is None:
                started = time.perf_counter()
            offsets = {
                tp: OffsetAndMetadata(part[-1].offset + 1, "", -1) for tp, part in polled.items()
            }
            if mode != "alo":
                producer.begin_transaction()
            read, sent, futures = _send_batch(producer, polled, outputs, mode, shaped)
            consumed, produced = consumed + read, produced + sent
            if mode == "alo":
                producer.flush()
                for future in futures:
                    future.get(timeout=0)
                consumer.commit(offsets)
            else:
                producer.send_offsets_to_transaction(offsets, consumer.group_metadata())
                producer.commit_transaction()
            batches += 1
        assert started is not None
        seconds = time.perf_counter() - started
    finally:
        producer.close()
        consumer.close()
    names = {
        "alo": "consume→re-produce, at least once",
        "eos": "consume→re-produce, exactly once",
        "shaped": "exactly once, forecaster-shaped",
    }
    return Leg(names[mode], consumed, produced, batches, seconds)


def create(kafka: KafkaSettings, *names: str, compact: tuple[str, ...] = ()) -> None:
    """Create single-partition topics, those in `compact` with cleanup.policy=compact."""
    admin = KafkaAdminClient(**kafka.client_kwargs())
    try:
        admin.create_topics(
            [
                NewTopic(
                    n, 1, 1, topic_configs={"cleanup.policy": "compact"} if n in compact else {}
                )
                for n in names
            ]
        )
    finally:
        admin.close()


def run(args: argparse.Namespace, bootstrap: str) -> dict[str, Any]:
    """Produce the replay once, then consume and re-produce it at least once, exactly once and in
    the service's shape: the ceiling the pipeline is compared with."""
    kafka = KafkaSettings(bootstrap)
    records = replay_records(args.data, args.start, args.count)
    token = uuid.uuid4().hex[:8]
    source = f"ceiling-obs-{token}"
    outs = {m: [f"ceiling-{m}-{i}-{token}" for i in range(3)] for m in ("alo", "eos", "shaped")}
    create(kafka, source, *(t for ts in outs.values() for t in ts), compact=(outs["shaped"][2],))
    legs = [produce(kafka, source, records)]
    for mode in ("alo", "eos", "shaped"):
        legs.append(consume_reproduce(kafka, source, outs[mode], len(records), mode, args.timeout))
    value_bytes = sum(len(v) for _, v in records) / len(records)
    return report(
        "kafka_ceiling",
        [leg.row() for leg in legs],
        observations=len(records),
        replay_start=args.start,
        observation_bytes_mean=round(value_bytes, 1),
        partitions=1,
        max_poll_records=DEFAULT_MAX_POLL_RECORDS,
    )


def replay_parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    """The flags of a benchmark over the replay's records (`replay_records`): the data, the
    broker, the first date and how many days."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--data", default=default_data(), help="SILSO daily CSV")
    parser.add_argument("--bootstrap-servers", help="a running broker; default: start one")
    parser.add_argument("--start", default=REPLAY_START, help="first date (1850-01-01)")
    parser.add_argument("--count", type=int, help="only the first COUNT days (default: all)")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = replay_parser("bench.kafka_ceiling", __doc__)
    parser.add_argument("--timeout", type=float, default=300.0, help="per leg (300 s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "kafka_ceiling.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    measure(build_parser().parse_args(argv), run, COLUMNS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
