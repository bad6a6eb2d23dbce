"""The Kafka edge of a consumer: poll a batch, process it, publish, commit — exactly once.

Exactly-once (default): a transactional producer writes every output of a batch (results,
dead letters, state changelog records) and the batch's consumed offsets in one transaction;
readers use `read_committed`. At-least-once (`--processing at_least_once`, for brokers without
transactions): outputs are flushed and acknowledged before the offsets are committed.

State that must survive restarts and rebalances lives in a changelog topic (compacted, one
partition per source partition). When partitions are assigned the runner reads their changelog
to the end and hands it to the processor, which rebuilds its windows exactly as they were at the
committed offset. When a publish or commit fails (broker gone, fenced producer) the runner
aborts, rewinds to the committed offsets, rebuilds state and tries again with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.coordinator.assignors.cooperative_sticky import CooperativeStickyAssignor
from kafka.errors import (
    FencedInstanceIdError,
    KafkaError,
    KafkaTimeoutError,
    ProducerFencedError,
)
from kafka.structs import OffsetAndMetadata

from consumer.health import Health
from consumer.output import Output
from sunspots.settings import KafkaSettings

log = logging.getLogger(__name__)

EXACTLY_ONCE, AT_LEAST_ONCE = "exactly_once", "at_least_once"
# Every output is acknowledged by all in-sync replicas, and retries never duplicate. Records
# are tiny, so a short linger fills large batches without adding visible latency.
PRODUCER_CONFIG: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 5,
    "batch_size": 256 * 1024,
    "compression_type": None,
}


# Another process took over this instance's id (a zombie of this one, or a misconfigured twin),
# or the broker aborted a transaction that outlived its timeout during a long outage. Carrying
# on would fence the other process back and forth, so these stop the service (exit code 3);
# a restarted instance re-initialises its transactional id and resumes exactly once.
FATAL_ERRORS = (ProducerFencedError, FencedInstanceIdError)


class Fenced(RuntimeError):
    """This instance was fenced by another one with the same instance id; it must stop."""


def is_fenced(exc: BaseException) -> bool:
    """kafka-python often reports a fencing wrapped in a plain KafkaError (as its second
    argument, or as the cause), so look inside as well."""
    inner = [exc, exc.__cause__, exc.__context__, *getattr(exc, "args", ())]
    return any(isinstance(e, FATAL_ERRORS) for e in inner)


class Processor(Protocol):
    """The pure-ish part of a consumer: records in, outputs out, state kept per partition."""

    def process(self, records: list[Any]) -> list[Output]: ...

    def restore(self, partition: int, changelog: Iterable[tuple[bytes, bytes]]) -> None: ...

    def revoke(self, partitions: set[int]) -> None: ...


@dataclass(frozen=True)
class RunnerConfig:
    source_topic: str
    group_id: str
    instance_id: str
    processing: str = EXACTLY_ONCE
    state_topic: str | None = None
    max_poll_records: int = 2000
    poll_timeout_ms: int = 250
    # A broker outage shorter than this leaves the batch's transaction alive, to be committed
    # when the broker is back; past it the broker aborts the transaction and fences the
    # producer, and the service stops (see FATAL_ERRORS) for its supervisor to restart it.
    # It also bounds how long a crashed instance's open transaction blocks a partition that
    # moved to another instance (a restarted instance aborts its own at once).
    transaction_timeout_ms: int = 60_000
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 10.0
    shutdown_grace_s: float = 10.0


class Runner(ConsumerRebalanceListener):
    def __init__(
        self,
        kafka: KafkaSettings,
        config: RunnerConfig,
        processor: Processor,
        health: Health,
        stop: threading.Event,
    ) -> None:
        self.kafka = kafka
        self.config = config
        self.processor = processor
        self.health = health
        self.stop = stop
        self.consumer: KafkaConsumer | None = None
        self.producer: KafkaProducer | None = None
        self.batches = 0
        self._restore_pending = False

    # --- set-up -----------------------------------------------------------------------------

    @property
    def exactly_once(self) -> bool:
        return self.config.processing == EXACTLY_ONCE

    def _make_producer(self) -> KafkaProducer:
        kwargs: dict[str, Any] = {**self.kafka.client_kwargs(), **PRODUCER_CONFIG}
        if self.exactly_once:
            kwargs["transactional_id"] = f"{self.config.group_id}-{self.config.instance_id}"
            kwargs["transaction_timeout_ms"] = self.config.transaction_timeout_ms
        producer = KafkaProducer(**kwargs)
        if self.exactly_once:
            # Fences a previous incarnation with this id and aborts its open transaction.
            producer.init_transactions()
        return producer

    def _make_consumer(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            **self.kafka.client_kwargs(),
            group_id=self.config.group_id,
            client_id=f"{self.config.group_id}-{self.config.instance_id}",
            # Static membership: a restarted instance takes its partitions straight back
            # instead of waiting for the dead member's session to expire.
            group_instance_id=self.config.instance_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            max_poll_records=self.config.max_poll_records,
            partition_assignment_strategy=[CooperativeStickyAssignor],
            fetch_max_bytes=16 * 1024 * 1024,
        )
        consumer.subscribe([self.config.source_topic], listener=self)
        return consumer

    # --- rebalance callbacks (run inside poll) ------------------------------------------------

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Every batch is committed before the next poll, so there is nothing in flight here.
        if revoked:
            log.info("partitions revoked: %s", sorted(tp.partition for tp in revoked))
            self.processor.revoke({tp.partition for tp in revoked})
        self.health.assigned = bool(self.consumer and self._assigned_partitions() - revoked)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            partitions = sorted(tp.partition for tp in assigned)
            started = time.monotonic()
            try:
                self._restore(partitions)
            except Exception as exc:  # whatever it was, never run on without the state
                # kafka-python would log this and carry on with the partitions assigned, and
                # the loop would then forecast from empty windows. Instead the next turn
                # rewinds and restores again, and nothing is processed until that succeeds.
                log.warning("restoring the state of partitions %s failed: %s", partitions, exc)
                self._restore_pending = True
            else:
                log.info(
                    "partitions assigned: %s (state restored in %.2f s)",
                    partitions,
                    time.monotonic() - started,
                )
        assigned_now = bool(self.consumer and self._assigned_partitions())
        self.health.assigned = assigned_now and not self._restore_pending

    def _assigned_partitions(self) -> set[TopicPartition]:
        assert self.consumer is not None
        return set(self.consumer.assignment())

    def _restore(self, partitions: list[int]) -> None:
        if not self.config.state_topic:
            return
        for partition, changelog in read_changelog(self.kafka, self.config.state_topic, partitions):
            self.processor.restore(partition, changelog)

    # --- the loop -----------------------------------------------------------------------------

    def run(self) -> None:
        self.producer = self._connect(self._make_producer, "producer")
        self.consumer = self._connect(self._make_consumer, "consumer")
        try:
            while not self.stop.is_set():
                self._turn()
        finally:
            self._close()

    def _connect(self, make: Any, what: str) -> Any:
        c = self.config
        return with_retries(
            make, what, self.stop, self.health, c.retry_backoff_s, c.retry_backoff_max_s
        )

    def _turn(self) -> None:
        assert self.consumer is not None
        try:
            polled = self.consumer.poll(
                timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_poll_records
            )
        except KafkaError as exc:
            if is_fenced(exc):
                raise Fenced(f"fenced while polling: {exc}") from exc
            log.warning("poll failed: %s", exc)
            self.health.polled(connected=False)
            self.stop.wait(self.config.retry_backoff_s)
            return
        self.health.polled(connected=broker_connected(self.consumer))
        if self._restore_pending:
            # Whatever was fetched for partitions without state is dropped: the rewind
            # fetches it again once their state is back.
            self._retry(self._rewind, "restoring state")
            return
        records = [r for part in polled.values() for r in part]
        if not records:
            return
        outputs = self.processor.process(records)
        offsets = {
            tp: OffsetAndMetadata(part[-1].offset + 1, "", -1) for tp, part in polled.items()
        }
        self._publish_or_rewind(outputs, offsets)
        self.batches += 1

    def _publish_or_rewind(
        self, outputs: list[Output], offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        try:
            self._publish(outputs, offsets)
            self.health.connected = True
        except KafkaError as exc:
            if is_fenced(exc):
                raise Fenced(f"fenced while publishing: {exc!r}") from exc
            log.warning(
                "publishing a batch of %d outputs failed (%s); rewinding", len(outputs), exc
            )
            self.health.polled(connected=False)
            # The rewound consumer fetches the batch again, so this attempt is simply dropped.
            self._recover()

    def _publish(
        self, outputs: list[Output], offsets: dict[TopicPartition, OffsetAndMetadata]
    ) -> None:
        assert self.producer is not None and self.consumer is not None
        if self.exactly_once:
            self.producer.begin_transaction()
            for out in outputs:
                self._send(out)
            self._transaction_step(
                "send_offsets_to_transaction", offsets, self.consumer.group_metadata()
            )
            self._transaction_step("commit_transaction")
            return
        futures = [self._send(out) for out in outputs]
        self.producer.flush()
        for future in futures:
            future.get(timeout=0)  # raises the delivery error, if any
        self.consumer.commit(offsets)

    def _transaction_step(self, step: str, *args: Any) -> None:
        """Run a blocking transaction step (`send_offsets_to_transaction`, `commit_transaction`)
        but wait for it in short slices, so that /healthz stays alive and /readyz turns false
        while the broker is away, and a shutdown is not held up for ever: kafka-python's own
        calls wait without a timeout."""
        assert self.producer is not None
        manager = getattr(self.producer, "_transaction_manager", None)
        if manager is None:  # another kafka-python release: its plain, blocking call
            getattr(self.producer, step)(*args)
            return
        begin = manager.begin_commit if step == "commit_transaction" else getattr(manager, step)
        result = begin(*args)
        self.producer._sender.wakeup()
        waited = 0.0
        while not result.wait(timeout_ms=500):
            waited += 0.5
            self.health.polled(connected=False)
            if self.stop.is_set() and waited >= self.config.shutdown_grace_s:
                raise KafkaTimeoutError(f"{step} not acknowledged {waited:.0f} s into shutdown")
            if waited % 10 == 0:
                log.warning("%s waiting for the broker for %.0f s", step, waited)

    def _send(self, out: Output) -> Any:
        assert self.producer is not None
        return self.producer.send(
            out.topic,
            value=out.value,
            key=out.key,
            headers=list(out.headers),
            partition=out.partition,
        )

    def _recover(self) -> None:
        """Abort what was sent, then rewind to the committed offsets and rebuild state."""
        self._retry(self._reset_producer, "resetting the producer")
        self._retry(self._rewind, "rewinding")

    def _rewind(self) -> None:
        assert self.consumer is not None
        assigned = self._assigned_partitions()
        for tp in assigned:
            committed = self.consumer.committed(tp)
            if committed is None:
                self.consumer.seek_to_beginning(tp)
            else:
                self.consumer.seek(tp, committed)
        partitions = {tp.partition for tp in assigned}
        self.processor.revoke(partitions)
        self._restore(sorted(partitions))
        self._restore_pending = False
        self.health.assigned = bool(assigned)
        log.info("rewound %d partitions to their committed offsets", len(assigned))

    def _retry(self, step: Any, what: str) -> None:
        """Run `step` until it succeeds (or the service stops), backing off between tries."""
        delay = self.config.retry_backoff_s
        while not self.stop.is_set():
            try:
                step()
                return
            except Exception as exc:  # a corrupt changelog is retried (and logged) too
                if is_fenced(exc):
                    raise Fenced(f"fenced while {what}: {exc!r}") from exc
                log.warning("%s failed (%s); retrying in %.1f s", what, exc, delay)
                self.health.polled(connected=False)
                self.stop.wait(delay)
                delay = min(delay * 2, self.config.retry_backoff_max_s)

    def _reset_producer(self) -> None:
        assert self.producer is not None
        if self.exactly_once:
            try:
                self.producer.abort_transaction()
                return
            except Exception as exc:
                log.info("abort failed (%s); replacing the transactional producer", exc)
            self.producer.close(timeout=1)
            self.producer = self._make_producer()

    def _close(self) -> None:
        log.info("shutting down after %d batches", self.batches)
        if self.producer is not None:
            self.producer.flush(timeout=10)
            self.producer.close(timeout=10)
        if self.consumer is not None:
            self.consumer.close()
        self.health.assigned = False


def with_retries(
    make: Any,
    what: str,
    stop: threading.Event,
    health: Health,
    backoff_s: float = 0.5,
    backoff_max_s: float = 10.0,
) -> Any:
    """Call `make` until Kafka answers, backing off; at start the broker may not be up yet.
    Gives up (re-raising) only when the service is asked to stop."""
    delay = backoff_s
    while True:
        try:
            return make()
        except KafkaError as exc:
            if stop.is_set():
                raise
            log.warning("%s cannot reach Kafka (%s); retrying in %.1f s", what, exc, delay)
            health.polled(connected=False)
            stop.wait(delay)
            delay = min(delay * 2, backoff_max_s)


def broker_connected(client: KafkaConsumer) -> bool:
    """Whether the client holds a live connection to a broker of the cluster.

    kafka-python 3's `bootstrap_connected()` is True only while the bootstrap is still in
    progress, so after start-up it reads False on a healthy client and /readyz never passed.
    """
    net = client._client
    return any(net.connected(broker.node_id) for broker in net.cluster.brokers())


def read_changelog(
    kafka: KafkaSettings, topic: str, partitions: list[int], timeout_s: float = 60.0
) -> Iterable[tuple[int, list[tuple[bytes, bytes]]]]:
    """Read committed changelog records of `partitions` from the beginning to the end."""
    reader = KafkaConsumer(
        **kafka.client_kwargs(),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_bytes=16 * 1024 * 1024,
    )
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        reader.assign(tps)
        reader.seek_to_beginning(*tps)
        # With read_committed the end offset is the last stable offset: a crashed instance's
        # open transaction holds it back until the transaction is aborted or times out.
        end = reader.end_offsets(tps, timeout_ms=int(timeout_s * 1000))
        records: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in partitions}
        deadline = time.monotonic() + timeout_s
        while any(reader.position(tp) < end[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise KafkaError(f"changelog {topic} not read to its end in {timeout_s:.0f} s")
            for tp, batch in reader.poll(timeout_ms=200).items():
                records[tp.partition].extend((r.key, r.value) for r in batch)
        yield from records.items()
    finally:
        reader.close()
