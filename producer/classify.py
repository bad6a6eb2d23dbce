"""`python -m producer classify`: ask the classifier service about sequences, print its answers.

    python -m producer classify --sequence 0,0,0,0,0,1 --sequence '[[0],[1],[1],[0],[0],[0]]'

Each sequence becomes one request `{"id", "sequence"}` on the requests topic, keyed by its id.
Before anything is sent, a reply reader is assigned every partition of the predictions topic
and positioned at its end (no consumer group), so no answer can slip past it; it reads with
`read_committed`, so it only ever sees answers of committed service transactions, and it keeps
the ones whose id it asked for. `ask()` is the same exchange for code (the demo, tests, bench).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sunspots.kafka.clients import make_reader, make_sender
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.refusal import explain, refused_at_start
from sunspots.kafka.settings import KafkaSettings, add_kafka_flags, kafka_settings_from_args
from sunspots.kafka.types import TopicPartition
from sunspots.process.cli import EXIT_USAGE, Parser, env_flag, env_name, non_negative_float
from sunspots.process.deadline import Deadline
from sunspots.process.logs import add_logging_flags, setup_logging
from sunspots.wire.schemas import (
    ClassifierPrediction,
    SchemaError,
    decode_classifier_prediction,
    encode_classifier_request,
)

log = logging.getLogger(__name__)

RequestId = str | int


class ClassifyTimeout(TimeoutError):
    """Some requests got no answer in time; `exchange` holds what did arrive."""

    def __init__(self, exchange: Exchange, timeout: float) -> None:
        missing = exchange.missing
        super().__init__(
            f"{len(missing)} of {len(exchange.sent_at)} requests got no answer within "
            f"{timeout:g} s (first: {missing[:3]}); is the classifier running? "
            "Rejected requests go to the dead-letter topic."
        )
        self.exchange = exchange


@dataclass
class Exchange:
    """Requests sent and answers read, with monotonic timestamps for latency measurements."""

    sent_at: dict[RequestId, float] = field(default_factory=dict)
    answered_at: dict[RequestId, float] = field(default_factory=dict)
    answers: dict[RequestId, ClassifierPrediction] = field(default_factory=dict)
    # Answers whose id was already answered: the service promises exactly one per request.
    duplicates: int = 0

    @property
    def missing(self) -> list[RequestId]:
        return [i for i in self.sent_at if i not in self.answers]

    def latencies(self) -> list[float]:
        return [self.answered_at[i] - self.sent_at[i] for i in self.answers]


def parse_sequence(text: str) -> list[int]:
    """`0,0,1`, `[0,0,1]` or the lesson's `[[0],[0],[1]]` -> [0, 0, 1]."""
    text = text.strip()
    try:
        raw: Any = json.loads(text) if text.startswith("[") else [int(v) for v in text.split(",")]
    except ValueError as exc:
        raise ValueError(f"not a sequence of integers: {text!r} ({exc})") from None
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"not a non-empty list: {text!r}")
    steps = [s[0] if isinstance(s, list) and len(s) == 1 else s for s in raw]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in steps):
        raise ValueError(f"sequence values must be integers: {text!r}")
    return steps


class ReplyReader:
    """Reads the predictions topic from its current end, with read_committed and no group."""

    def __init__(self, kafka: KafkaSettings, timeout: float) -> None:
        self.topic = kafka.topics.classifier_predictions
        # The service creates its topics with the right partitions; a client must not.
        self.consumer = make_reader(kafka)
        try:
            self._seek_to_end(timeout)
        except BaseException:
            self.consumer.close()
            raise

    def _seek_to_end(self, timeout: float) -> None:
        deadline = Deadline(timeout)
        partitions = self.consumer.partitions_for_topic(self.topic)
        while not partitions:
            if deadline.expired():
                raise TimeoutError(f"topic {self.topic} not found; is the classifier running?")
            time.sleep(0.2)
            partitions = self.consumer.partitions_for_topic(self.topic)
        tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(tps)
        self.consumer.seek_to_end(*tps)
        # seek_to_end is lazy; asking for the positions resolves them now, before any send.
        for tp in tps:
            self.consumer.position(tp, timeout_ms=max(1, deadline.remaining_ms()))

    def read_into(self, exchange: Exchange, timeout: float) -> None:
        """Collect answers to `exchange`'s requests until all arrived or `timeout` passed."""
        deadline = Deadline(timeout)
        while exchange.missing and not deadline.expired():
            self.poll_into(exchange, timeout_ms=100)

    def poll_into(self, exchange: Exchange, timeout_ms: int) -> None:
        """One poll: keep the answers to `exchange`'s requests, stamped with their arrival."""
        polled = self.consumer.poll(timeout_ms=timeout_ms)
        now = time.monotonic()
        for record in (r for batch in polled.values() for r in batch):
            self._take(exchange, record, now)

    @staticmethod
    def _take(exchange: Exchange, record: Any, now: float) -> None:
        try:
            answer = decode_classifier_prediction(record.value)
        except SchemaError as exc:
            log.debug("skipping an unreadable prediction at offset %s: %s", record.offset, exc)
            return
        if answer.id not in exchange.sent_at:
            return  # another caller's answer
        if answer.id in exchange.answers:
            exchange.duplicates += 1
            return
        exchange.answers[answer.id] = answer
        exchange.answered_at[answer.id] = now

    def close(self) -> None:
        self.consumer.close()


def send_requests(
    kafka: KafkaSettings, requests: Sequence[tuple[RequestId, Sequence[Any]]], exchange: Exchange
) -> None:
    """Send every request (key = id) and wait until the broker has acknowledged them all."""
    producer = make_sender(kafka, acks="all", linger_ms=2)
    try:
        futures = []
        for request_id, sequence in requests:
            exchange.sent_at[request_id] = time.monotonic()
            value = encode_classifier_request(request_id, list(sequence))
            futures.append(
                producer.send(
                    kafka.topics.classifier_requests, value=value, key=str(request_id).encode()
                )
            )
        producer.flush()
        for future in futures:
            future.get(timeout=0)  # raises the delivery error, if any
    finally:
        producer.close()


def exchange(
    kafka: KafkaSettings,
    requests: Sequence[tuple[RequestId, Sequence[Any]]],
    timeout: float = 30.0,
) -> Exchange:
    """Send `requests` ((id, sequence) pairs) and collect their answers; never raises on timeout."""
    result = Exchange()
    deadline = Deadline(timeout)
    reader = ReplyReader(kafka, timeout)
    try:
        send_requests(kafka, requests, result)
        reader.read_into(result, deadline.remaining())
    finally:
        reader.close()
    return result


def new_ids(count: int) -> list[str]:
    """Ids unique across callers: a random prefix per call, then the request's position."""
    prefix = uuid.uuid4().hex[:12]
    return [f"{prefix}-{i}" for i in range(count)]


def ask(
    kafka: KafkaSettings, sequences: Sequence[Sequence[Any]], timeout: float = 30.0
) -> list[ClassifierPrediction]:
    """Classify `sequences` (flat or the lesson's nested form); answers in the same order.

    Raises ClassifyTimeout when any answer is missing after `timeout` seconds.
    """
    ids = new_ids(len(sequences))
    result = exchange(kafka, list(zip(ids, sequences, strict=True)), timeout)
    if result.missing:
        raise ClassifyTimeout(result, timeout)
    return [result.answers[i] for i in ids]


# --- command line -----------------------------------------------------------------------------


class _AppendOverEnv(argparse.Action):
    """Like action="append", but flags replace the env var's value instead of adding to it."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        current = getattr(namespace, self.dest)
        items = current if isinstance(current, list) else []  # a str is the env default
        setattr(namespace, self.dest, [*items, values])


def build_parser() -> argparse.ArgumentParser:
    """The classify command's line; every flag falls back to its environment variable."""
    parser = Parser(prog="sunspots-producer classify", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    env_flag(
        parser,
        "--sequence",
        None,
        "a sequence to classify: 0,0,0,0,0,1 or '[[0],[0],[0],[0],[0],[1]]'; repeat the flag "
        "for more (the env var holds one or more, separated by ';')",
        action=_AppendOverEnv,
    )
    env_flag(parser, "--timeout", 30.0, "seconds to wait for answers", type=non_negative_float)
    add_kafka_flags(parser, produces=True)
    add_logging_flags(parser)
    return parser


def sequences_from_args(parser: argparse.ArgumentParser, values: Any) -> list[list[int]]:
    """The `--sequence` values as lists of integers; a missing or malformed one exits through
    `parser.error`."""
    # From the env var the default is one string; from flags a list of strings.
    texts = values.split(";") if isinstance(values, str) else (values or [])
    if not texts:
        parser.error(f"give at least one --sequence (or {env_name('--sequence')})")
    try:
        return [parse_sequence(t) for t in texts if t.strip()]
    except ValueError as exc:
        parser.error(str(exc))


def _line(sequence: list[int], answer: ClassifierPrediction) -> str:
    probs = ", ".join(f"{p:.3f}" for p in answer.probabilities)
    return (
        f"{','.join(map(str, sequence))} -> class {answer.predicted_class}  "
        f"[{probs}]  (id {answer.id}, model {answer.model_version})\n"
    )


def main(argv: list[str] | None = None) -> int:
    """`sunspots-producer classify`: send sequences to the classifier and print its answers."""
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args, service="classify-client")
    sequences = sequences_from_args(parser, args.sequence)
    ids = new_ids(len(sequences))
    kafka = kafka_settings_from_args(args)
    # The answers come in the codec the classifier writes, which may be any.
    refused = refused_at_start(kafka, reads=True)
    if refused is not None:
        log.error("%s", refused[0])
        return refused[1]
    try:
        result = exchange(kafka, list(zip(ids, sequences, strict=True)), args.timeout)
    except KafkaError as exc:
        refusal = explain(exc, kafka, {"topic": kafka.topics.classifier_requests})
        log.error("%s", refusal.line)
        return EXIT_USAGE if refusal.retry_helps else refusal.exit_code
    for request_id, sequence in zip(ids, sequences, strict=True):
        answer = result.answers.get(request_id)
        if answer is None:
            sys.stdout.write(f"{','.join(map(str, sequence))} -> no answer (id {request_id})\n")
        else:
            sys.stdout.write(_line(sequence, answer))
    if result.missing:
        log.error("%s", ClassifyTimeout(result, args.timeout))
        return 1
    return 0
