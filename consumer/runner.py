"""The Kafka loop of a consumer service: poll a batch, process it, publish it, or rewind.

Each turn polls a batch, hands it to the processor (`consumer.processor`), and publishes the
outputs with the batch's offsets through the publisher chosen at start (`consumer.publishing`:
exactly once or at least once). When publishing fails (broker gone), the publisher aborts what
it sent and the recovery (`consumer.recovery`) rewinds to the committed offsets and rebuilds
the processor's state, so the batch is processed again from where the commit left it; every
wait on Kafka backs off the same way (`consumer.retry`). A fencing stops the service
(`consumer.fencing`), and so does a refusal of the brokers (`sunspots.refusal`), which it
raises unchanged for the service to tell.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumer import clients
from consumer.changelog import Changelog, read_changelog
from consumer.fencing import Fenced, is_fenced
from consumer.health import Health
from consumer.processor import Processor
from consumer.publishing import (
    EXACTLY_ONCE,
    AcknowledgedPublisher,
    Offsets,
    Publisher,
    TransactionalPublisher,
)
from consumer.recovery import Recovery
from consumer.retry import Backoff, Interrupted, Retry
from consumer.topic_watch import TopicWatch
from sunspots.kafka_compat import broker_connected, request_rejoin
from sunspots.refusal import refusal_error
from sunspots.settings import KafkaSettings

log = logging.getLogger(__name__)

Polled = dict[TopicPartition, list[ConsumerRecord]]


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
    # producer, and the service stops (see consumer.fencing) for its supervisor to restart it.
    # It also bounds how long a crashed instance's open transaction blocks a partition that
    # moved to another instance (a restarted instance aborts its own at once).
    transaction_timeout_ms: int = 60_000
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 10.0
    shutdown_grace_s: float = 10.0
    # A member left without partitions this long asks its group for a new assignment, then
    # waits twice as long before asking again (an instance beyond the partition count stays
    # idle, and is asked about rarely).
    rejoin_unassigned_s: float = 30.0


class Clients(Protocol):
    """Where the runner gets its Kafka clients; unit tests pass fakes."""

    def publisher(self) -> Publisher: ...

    def consumer(self) -> KafkaConsumer: ...

    def changelog(self, partitions: list[int]) -> Iterable[tuple[int, Changelog]]: ...


class KafkaClients:
    """The real clients for a runner configuration."""

    def __init__(
        self, kafka: KafkaSettings, config: RunnerConfig, health: Health, stop: threading.Event
    ) -> None:
        self.kafka = kafka
        self.config = config
        self.health = health
        self.stop = stop

    def publisher(self) -> Publisher:
        c = self.config
        if c.processing != EXACTLY_ONCE:
            return AcknowledgedPublisher(partial(clients.make_producer, self.kafka))
        make = partial(
            clients.make_producer,
            self.kafka,
            f"{c.group_id}-{c.instance_id}",
            c.transaction_timeout_ms,
        )
        return TransactionalPublisher(make, self.stop, self.health, c.shutdown_grace_s)

    def consumer(self) -> KafkaConsumer:
        c = self.config
        return clients.make_consumer(self.kafka, c.group_id, c.instance_id, c.max_poll_records)

    def changelog(self, partitions: list[int]) -> Iterable[tuple[int, Changelog]]:
        assert self.config.state_topic is not None
        return read_changelog(self.kafka, self.config.state_topic, partitions)


class Runner:
    def __init__(
        self,
        clients_: Clients,
        config: RunnerConfig,
        processor: Processor,
        health: Health,
        stop: threading.Event,
        between: Callable[[], bool | None] | None = None,
        watch: TopicWatch | None = None,
    ) -> None:
        self.clients = clients_
        # Called at each batch boundary, before a poll (the forecaster follows its models, the
        # topic watch looks at the topics); True: process even a poll without records.
        self.between = between
        self.config = config
        self.processor = processor
        self.health = health
        self.stop = stop
        self.retry = Retry(
            stop, health, Backoff(config.retry_backoff_s, config.retry_backoff_max_s)
        )
        changelog = clients_.changelog if config.state_topic else None
        self.recovery = Recovery(processor, changelog, health, watch)
        self.publisher: Publisher | None = None
        self.consumer: KafkaConsumer | None = None
        self.batches = 0
        self._unassigned_since: float | None = None
        self._rejoin_after = config.rejoin_unassigned_s

    def run(self) -> None:
        """Turn until asked to stop; raises `Fenced` if another instance took over."""
        try:
            self._connect()
            while not self.stop.is_set():
                self.turn()
        except Interrupted as exc:
            log.info("%s", exc)
        finally:
            self._close()

    def _connect(self) -> None:
        # The producer first: a transactional one fences a previous incarnation and aborts its
        # open transaction before this one joins the group and reads.
        self.publisher = self.retry(
            self.clients.publisher, "connecting the producer", retry_on=(KafkaError,)
        )
        self.consumer = self.retry(
            self.clients.consumer, "connecting the consumer", retry_on=(KafkaError,)
        )
        self.recovery.attach(self.consumer)
        self._subscribe()

    def _subscribe(self) -> None:
        assert self.consumer is not None
        self.consumer.subscribe([self.config.source_topic], listener=self.recovery)

    def turn(self) -> None:
        """One poll batch: processed and published, or rewound to be processed again."""
        owed = self.between() if self.between is not None else False
        polled = self._poll()
        if polled is None:
            return
        if self.recovery.pending:
            # Whatever was fetched for partitions without state is dropped: the rewind
            # fetches it again once their state is back.
            self.retry(self.recovery.rewind, "restoring state")
            return
        records = [r for part in polled.values() for r in part]
        if not records and not owed:
            return
        outputs = self.processor.process(records)
        offsets: Offsets = {
            tp: OffsetAndMetadata(part[-1].offset + 1, "", -1) for tp, part in polled.items()
        }
        assert self.publisher is not None and self.consumer is not None
        try:
            self.publisher.publish(outputs, offsets, self.consumer)
        except KafkaError as exc:
            if is_fenced(exc):
                raise Fenced(f"fenced while publishing: {exc!r}") from exc
            if refusal_error(exc) is not None:
                raise  # not authorized: a retry will not mend it
            log.warning("publishing %d outputs failed (%s); rewinding", len(outputs), exc)
            self.health.polled(connected=False)
            # The rewound consumer fetches the batch again, so this attempt is simply dropped.
            self.retry(self.publisher.abort, "resetting the producer")
            self.retry(self.recovery.rewind, "rewinding")
            return
        self.health.connected = True
        self.batches += 1

    def _poll(self) -> Polled | None:
        assert self.consumer is not None
        try:
            polled = self.consumer.poll(
                timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_poll_records
            )
        except KafkaError as exc:
            if is_fenced(exc):
                raise Fenced(f"fenced while polling: {exc}") from exc
            if refusal_error(exc) is not None:
                raise  # not authorized: a retry will not mend it
            log.warning("poll failed: %s", exc)
            self.health.polled(connected=False)
            self.stop.wait(self.config.retry_backoff_s)
            return None
        self.health.polled(connected=broker_connected(self.consumer))
        self._watch_assignment()
        return polled

    def _watch_assignment(self) -> None:
        """Rejoin the group when no partition has been assigned for a while: a member that
        joined while its topic was still being created can otherwise idle for ever."""
        assert self.consumer is not None
        now = time.monotonic()
        if self.consumer.assignment():
            self._unassigned_since, self._rejoin_after = None, self.config.rejoin_unassigned_s
            return
        if self._unassigned_since is None:
            self._unassigned_since = now
        if now - self._unassigned_since < self._rejoin_after:
            return
        log.warning(
            "no partition of %s assigned for %.0f s; rejoining the group",
            self.config.source_topic,
            now - self._unassigned_since,
        )
        if not request_rejoin(self.consumer):
            self.consumer.unsubscribe()
            self._subscribe()
        self._unassigned_since, self._rejoin_after = now, min(self._rejoin_after * 2, 600.0)

    def _close(self) -> None:
        log.info("shutting down after %d batches", self.batches)
        if self.publisher is not None:
            self.publisher.close()
        if self.consumer is not None:
            self.consumer.close()
        self.health.assigned = False
