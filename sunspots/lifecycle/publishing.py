"""The model commands: publish an artifact to the models topic, retire a role, promote the
challenger.

Each command writes in one Kafka transaction (acks from all in-sync replicas, idempotent), so
a read_committed reader sees the whole change or none of it: `promote` writes the challenger's
model as champion and the challenger's tombstone together, and the topic never shows both
roles on one model, nor neither. An artifact is verified as the service will verify it
(`sunspots.lifecycle.records`) before anything is sent, so a bad one is refused here first.

Outcomes, each told in one line: exit 0, what was written; exit 2, bad input (an unreadable or
refused artifact, an unknown role, no challenger to promote, no models topic, a compression
library kafka-python lacks); Kafka's refusals
with the project's codes (`sunspots.kafka.refusal`: 4 out of reach, 5 authentication, 6
authorization, 7 TLS); exit 1 for any other Kafka failure. Concurrent commands share one
transactional id, so a second one fences the first (which then fails with exit 1) rather than
interleave.

NumPy only: TensorFlow is not imported.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sunspots.domain.artifact import FORECASTER_KIND, ArtifactError, metadata_path, read_artifact
from sunspots.kafka import codecs
from sunspots.kafka.clients import make_lister, make_sender
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.refusal import of_failure, probe
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.transactions import run_step
from sunspots.kafka.types import KafkaProducer
from sunspots.lifecycle import records
from sunspots.lifecycle.feed import ModelFeed
from sunspots.lifecycle.records import ModelRecord

log = logging.getLogger("sunspots.lifecycle.publishing")

EXIT_KAFKA = 1
EXIT_BAD_INPUT = 2
TRANSACTIONAL_ID = records.PUBLISHER_TRANSACTIONAL_ID
# A record is at most 1 MiB; the request that carries it has some framing besides.
MAX_REQUEST_BYTES = records.MAX_RECORD_BYTES + 64 * 1024
# How long Kafka has to answer each step before the command gives up with exit 1.
KAFKA_TIMEOUT_MS = 15_000
T = TypeVar("T")


class CommandError(Exception):
    """A command's outcome other than success: its one line and its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Change:
    """What a command writes: role -> the record's value, None for a tombstone."""

    values: dict[str, bytes | None]
    summary: str


def publisher() -> str:
    """Who publishes: the user and host, recorded in the record."""
    return f"{getpass.getuser()}@{socket.gethostname()}"


def publish_change(path: Path, role: str) -> Change:
    """The record that publishes the forecaster artifact at `path` as `role`."""
    try:
        records.check_role(role)
        _, weights = read_artifact(path, FORECASTER_KIND)
        text = metadata_path(path).read_text()
        record = records.make_record(role, text, weights, publisher())
        value = records.encode(record)
    except (ArtifactError, OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "reason", "unreadable")
        raise CommandError(f"refused: {exc} [{reason}]", EXIT_BAD_INPUT) from None
    return Change({role: value}, f"published {record.model_version} as {role}")


def retire_change(role: str) -> Change:
    """The change that retires `role`; CommandError (bad input) for an unknown role."""
    try:
        records.check_role(role)
    except ArtifactError as exc:
        raise CommandError(str(exc), EXIT_BAD_INPUT) from None
    return Change({role: None}, f"retired the {role}")


def promote_change(challenger: ModelRecord | None) -> Change:
    """The champion record of the current challenger, and the challenger's tombstone."""
    if challenger is None:
        raise CommandError("no challenger to promote on the models topic", EXIT_BAD_INPUT)
    champion = records.with_role(challenger, records.CHAMPION, publisher())
    return Change(
        {records.CHAMPION: records.encode(champion), records.CHALLENGER: None},
        f"promoted {challenger.model_version} from challenger to champion",
    )


def current_challenger(kafka: KafkaSettings) -> ModelRecord | None:
    """The verified challenger on the models topic now; CommandError if there is a refused
    one (it would be promoted unverified)."""
    feed = _kafka_step(kafka, lambda: ModelFeed.connect(kafka), "reach the models topic")
    try:
        board, refused = _kafka_step(kafka, feed.current, "read the models topic")
    finally:
        feed.close()
    bad = [r for r in refused if r.role == records.CHALLENGER]
    if bad and board.challenger is None:
        raise CommandError(f"the challenger is refused: {bad[-1].detail}", EXIT_BAD_INPUT)
    return board.challenger.record if board.challenger else None


def require_topic(kafka: KafkaSettings) -> None:
    """CommandError unless the models topic exists: a command never creates it, since a topic
    auto-created by the broker would be neither compacted nor sized for models."""
    topics = _kafka_step(kafka, lambda: _topic_names(kafka), "connect to Kafka")
    if kafka.topics.models not in topics:
        # The brokers list only the topics a principal may describe: on a secured cluster a
        # missing grant looks the same as a missing topic, so the line names both.
        secured = (
            f", or {kafka.principal} may not see it (the model commands need Read and Write on "
            "it: docs/security.md, Least privilege)"
            if kafka.security
            else ""
        )
        raise CommandError(
            f"the models topic {kafka.topics.models} does not exist{secured}: create it with "
            "sunspots-topics (the forecaster also creates it at start)",
            EXIT_BAD_INPUT,
        )


def write(kafka: KafkaSettings, change: Change) -> None:
    """Write the change's records to the models topic in one transaction."""
    producer = _kafka_step(kafka, lambda: _producer(kafka), "connect to Kafka")
    try:
        _kafka_step(
            kafka, lambda: _send(producer, kafka.topics.models, change), "write the models topic"
        )
    finally:
        # kafka-python's close can raise after a failed flush; the failure is already told.
        with contextlib.suppress(KafkaError):
            producer.close(timeout=5)


def run(kafka: KafkaSettings, command: str, path: Path | None, role: str) -> int:
    """Run `command`; its one line is logged, the exit code returned."""
    try:
        # Bad input is told before Kafka is asked anything; promote reads the models topic.
        _codecs(kafka, reads=command == "promote")
        local = publish_change(path or Path(), role) if command == "publish" else None
        local = retire_change(role) if command == "retire" else local
        _reachable(kafka)
        require_topic(kafka)
        change = local or promote_change(current_challenger(kafka))
        write(kafka, change)
    except CommandError as exc:
        log.error("%s: %s", command, exc)
        return exc.exit_code
    log.info("%s on %s", change.summary, kafka.topics.models)
    return 0


def _codecs(kafka: KafkaSettings, reads: bool) -> None:
    """CommandError unless kafka-python has the codec the command writes (and, if it reads,
    every codec)."""
    lacking = codecs.refusal(reads, kafka.compression_type)
    if lacking is not None:
        raise CommandError(lacking, EXIT_BAD_INPUT)


def _reachable(kafka: KafkaSettings) -> None:
    """Before any client starts: one connection as the clients make it, so that a broker out
    of reach, a wrong password or an untrusted certificate is told at once, with its code."""
    found = probe(kafka)
    if found is not None:
        raise CommandError(found.line, found.exit_code)


def _topic_names(kafka: KafkaSettings) -> set[str]:
    consumer = make_lister(kafka, request_timeout_ms=KAFKA_TIMEOUT_MS)
    try:
        return consumer.topics()
    finally:
        consumer.close()


def _producer(kafka: KafkaSettings) -> KafkaProducer:
    producer = make_sender(
        kafka,
        allow_auto_create_topics=False,
        acks="all",
        enable_idempotence=True,
        transactional_id=TRANSACTIONAL_ID,
        max_request_size=MAX_REQUEST_BYTES,
        max_block_ms=KAFKA_TIMEOUT_MS,
        request_timeout_ms=KAFKA_TIMEOUT_MS,
    )
    producer.init_transactions()
    return producer


def _send(producer: KafkaProducer, topic: str, change: Change) -> None:
    producer.begin_transaction()
    try:
        sent = [
            producer.send(topic, key=role.encode(), value=value, partition=0)
            for role, value in change.values.items()
        ]
        # A partition the brokers refuse to add to the transaction (no Write on the topic)
        # fails its records: raised as that refusal while the commit is waited for, which
        # kafka-python's commit_transaction, already begun, would do for ever.
        run_step(producer, "commit_transaction", timeout_s=KAFKA_TIMEOUT_MS / 1000, sent=sent)
    except KafkaError:
        with contextlib.suppress(KafkaError):
            producer.abort_transaction()
        raise


def _kafka_step(kafka: KafkaSettings, step: Callable[[], T], what: str) -> T:
    """`step()`, with a Kafka failure turned into the command's one line and exit code: the
    refusal's own (`sunspots.kafka.refusal`: out of reach, authentication, authorization, TLS), or
    EXIT_KAFKA for any other (a concurrent command fenced this one, a transaction that failed)."""
    resources = {"topic": kafka.topics.models, "transactional id": TRANSACTIONAL_ID}
    try:
        return step()
    except KafkaError as exc:
        refusal = of_failure(exc, kafka, resources)
        if refusal is None:
            raise CommandError(f"cannot {what}: {exc!r}", EXIT_KAFKA) from None
    raise CommandError(f"cannot {what}: {refusal.line}", refusal.exit_code)
