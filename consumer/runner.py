"""The Kafka loop of a consumer service: poll a batch, process it, publish it, or rewind.

Each turn polls a batch, hands it to the processor (`consumer.processor`), and publishes the
outputs with the batch's offsets through the publisher chosen at start (`consumer.publishing`:
exactly once or at least once). A batch is processed in slices, each slice's outputs handed to
the producer before the next slice is processed, and the processor's changelog records follow
at the end, all in the batch's one transaction: what a batch holds at once is its records and
one slice's work, not every output of a backlog's batch and its producer futures. When
publishing fails (broker gone), the publisher aborts what it sent and the recovery
(`consumer.recovery`) rewinds to the committed offsets and rebuilds the processor's state, so
the batch is processed again from where the commit left it; every wait on Kafka backs off the
same way (`consumer.retry`). A fencing stops the service
(`consumer.fencing`), and so does a refusal of the brokers (`sunspots.kafka.refusal`), which it
raises unchanged for the service to tell. An error of a poll is retried, or, when it means a
batch cannot be read, stops the service with one line (`consumer.poll_errors`).

The loop tells its sensors (`consumer.sensors`) what it does: rebalances, restores, commits and
each batch's latency from its poll, the steps of publishing, aborts, fencing, where it has read
to, rewinds, and its current activity, which the watchdog (`consumer.watchdog`) and the bounded
shutdown (`consumer.shutdown`) name when the loop stops making progress, and which the loop's
metrics (`consumer.loop_metrics`) count.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from consumer.changelog import Changelog, read_changelog
from consumer.fencing import Fenced, is_fenced
from consumer.health import Health
from consumer.output import Output
from consumer.poll_errors import cause, is_unreadable, unreadable_line, where_told
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
from consumer.sensors import FAILED_PUBLISH, FAILED_RESTORE, Sensor, Sensors
from consumer.slicing import batch_outputs
from consumer.stops import EXIT_INPUT, EXIT_STALLED, ServiceStop
from consumer.topic_watch import TopicWatch
from sunspots.kafka import clients
from sunspots.kafka.clients import ProducerMaker
from sunspots.kafka.compat import broker_connected, fetch_position, request_rejoin
from sunspots.kafka.errors import KafkaError
from sunspots.kafka.refusal import refusal_error
from sunspots.kafka.settings import KafkaSettings
from sunspots.kafka.types import (
    ConsumerRebalanceListener,
    ConsumerRecord,
    KafkaConsumer,
    OffsetAndMetadata,
    TopicPartition,
)

log = logging.getLogger(__name__)

Polled = dict[TopicPartition, list[ConsumerRecord]]
# The consumer's close waits this long at most for the brokers (its own default: 30 s).
CLOSE_TIMEOUT_MS = 5_000
# Records a batch (one transaction, one model call) holds at most (--max-poll-records). Paced
# input makes batches of the few records waiting, whatever this is; a backlog (a backfill, a
# restart) fills them. A series a batch touches writes its state once, so at 10,000 series
# large batches share that cost among several of its observations; a batch's records are held
# until it is processed, and its work one slice at a time (DEFAULT_SLICE_RECORDS).
# bench.many_series, 2026-12-06, once batches were freed at the end of their turn and before
# the slices (10,000 series against one, one run each): CPU per observation 1.41 times with
# 20,000 records (peak RSS 192 MiB), 1.19 with 30,000 (214 MiB), about 1.1 with 40,000
# (236-249 MiB). With the slices, 30,000 peaks at 170 MiB. docs/scaling.md has the runs.
DEFAULT_MAX_POLL_RECORDS = 30_000
# Records the processor takes at a time within a batch, whole series each (consumer.slicing):
# one model call per role, one rollback copy of each series it touches; its outputs are sent
# before the next slice is processed. The changelog is written once per batch.
DEFAULT_SLICE_RECORDS = 10_000


@dataclass(frozen=True)
class RunnerConfig:
    """The loop's settings, read once from the command line: what it reads and as whom, its
    processing guarantee, its batch size, its bounds on polls, restores, stalls and stops."""

    source_topic: str
    group_id: str
    instance_id: str
    bootstrap_servers: str = "<bootstrap servers>"  # named in a line that says what to do
    processing: str = EXACTLY_ONCE
    state_topic: str | None = None
    # The topics every batch writes: the producer holds their metadata from the start, so the
    # first batch does not wait for it (`clients.make_producer`).
    output_topics: tuple[str, ...] = ()
    max_poll_records: int = DEFAULT_MAX_POLL_RECORDS
    slice_records: int = DEFAULT_SLICE_RECORDS
    poll_timeout_ms: int = 250
    # A broker outage shorter than this leaves the batch's transaction alive, to be committed
    # when the broker is back; past it the broker aborts the transaction and fences the
    # producer, and the service stops (see consumer.fencing) for its supervisor to restart it.
    # It also bounds how long a crashed instance's open transaction blocks a partition that
    # moved to another instance (a restarted instance aborts its own at once).
    transaction_timeout_ms: int = 60_000
    retry_backoff_s: float = 0.5
    retry_backoff_max_s: float = 10.0
    # How long a stop may take (`consumer.shutdown`); a transaction step gives up half of it
    # into a stop, leaving the other half to close the clients.
    shutdown_grace_s: float = 20.0
    # Where the loop has read to is told to the sensors at most this often (`on_read`).
    read_report_s: float = 1.0
    # A member left without partitions this long asks its group for a new assignment, then
    # waits twice as long before asking again (an instance beyond the partition count stays
    # idle, and is asked about rarely).
    rejoin_unassigned_s: float = 30.0


class Clients(Protocol):
    """Where the runner gets its Kafka clients; unit tests pass fakes."""

    def publisher(self, sensor: Sensor) -> Publisher: ...

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

    def publisher(self, sensor: Sensor) -> Publisher:
        """The loop's publisher for its processing guarantee: transactional (exactly once) or flush
        then commit (at least once)."""
        c = self.config
        if c.processing != EXACTLY_ONCE:
            made = partial(clients.make_producer, self.kafka)
            return AcknowledgedPublisher(ProducerMaker(made, c.output_topics), sensor)
        transactional = partial(
            clients.make_producer,
            self.kafka,
            f"{c.group_id}-{c.instance_id}",
            c.transaction_timeout_ms,
        )
        make = ProducerMaker(transactional, c.output_topics)
        wait = c.shutdown_grace_s / 2
        return TransactionalPublisher(make, self.stop, self.health, wait, sensor=sensor)

    def consumer(self) -> KafkaConsumer:
        c = self.config
        return clients.make_consumer(self.kafka, c.group_id, c.instance_id, c.max_poll_records)

    def changelog(self, partitions: list[int]) -> Iterable[tuple[int, Changelog]]:
        assert self.config.state_topic is not None
        return read_changelog(self.kafka, self.config.state_topic, partitions)


class Listener(ConsumerRebalanceListener):
    """The rebalance callbacks kafka-python runs inside a poll: the recovery's (state), then
    the sensors'."""

    def __init__(self, recovery: Recovery, sensor: Sensor) -> None:
        self.recovery = recovery
        self.sensor = sensor

    def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self.recovery.on_partitions_revoked(revoked)
        self.sensor.on_revoked(revoked)

    def on_partitions_lost(self, lost: set[TopicPartition]) -> None:
        self.recovery.on_partitions_lost(lost)
        self.sensor.on_revoked(lost)

    def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        """Restore the state of the new partitions before the sensors watch them, telling
        /healthz what the loop is doing meanwhile."""
        partitions = sorted(tp.partition for tp in assigned)
        self.sensor.on_activity(f"restoring the state of partitions {partitions}")
        self.recovery.on_partitions_assigned(assigned)
        self.sensor.on_assigned(assigned)
        self.sensor.on_activity("polling")


class Runner:
    """The loop of one consumer service (see the module): its clients, its recovery, and the
    sensors it tells what it does."""

    def __init__(
        self,
        clients_: Clients,
        config: RunnerConfig,
        processor: Processor,
        health: Health,
        stop: threading.Event,
        between: Callable[[], bool | None] | None = None,
        sensor: Sensor | None = None,
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
        self.sensor = sensor if sensor is not None else Sensors()
        self.retry = Retry(
            stop, health, Backoff(config.retry_backoff_s, config.retry_backoff_max_s)
        )
        changelog = clients_.changelog if config.state_topic else None
        self.recovery = Recovery(processor, changelog, health, watch, self.sensor)
        self.publisher: Publisher | None = None
        self.consumer: KafkaConsumer | None = None
        self.batches = 0
        self._unassigned_since: float | None = None
        self._rejoin_after = config.rejoin_unassigned_s
        self._poll_failures = 0
        self._poll_failing_since = 0.0
        self._next_read_report = 0.0

    def run(self) -> None:
        """Turn until asked to stop; raises `Fenced` if another instance took over, and
        `ServiceStop` on input it cannot read."""
        try:
            self._connect()
            while not self.stop.is_set():
                self.turn()
        except Interrupted as exc:
            log.info("%s", exc)
        finally:
            self._close()

    def _doing(self, activity: str) -> None:
        self.sensor.on_activity(activity)

    def _connect(self) -> None:
        # The producer first: a transactional one fences a previous incarnation and aborts its
        # open transaction before this one joins the group and reads.
        self._doing("connecting the producer")
        self.publisher = self.retry(
            partial(self.clients.publisher, self.sensor),
            "connecting the producer",
            retry_on=(KafkaError,),
        )
        self._doing("connecting the consumer")
        self.consumer = self.retry(
            self.clients.consumer, "connecting the consumer", retry_on=(KafkaError,)
        )
        self.recovery.attach(self.consumer)
        self._subscribe()

    def _subscribe(self) -> None:
        assert self.consumer is not None
        listener = Listener(self.recovery, self.sensor)
        self.consumer.subscribe([self.config.source_topic], listener=listener)

    def turn(self) -> None:
        """One poll batch: processed and published, or rewound to be processed again."""
        owed = False
        if self.between is not None:
            self._doing("following the models and topics")
            owed = bool(self.between())
        polled = self._poll()
        if polled is None:
            return
        polled_at = time.perf_counter()
        if self.recovery.pending:
            # Whatever was fetched for partitions without state is dropped: the rewind
            # fetches it again once their state is back.
            self._rewind("restoring state", FAILED_RESTORE)
            return
        records = [r for part in polled.values() for r in part]
        if not records and not owed:
            return
        offsets: Offsets = {
            tp: OffsetAndMetadata(part[-1].offset + 1, "", -1) for tp, part in polled.items()
        }
        count = len(records)
        polled.clear()
        try:
            if self._publish(self._outputs(records), offsets, count):
                self.sensor.on_batch(count, time.perf_counter() - polled_at)
        finally:
            # Emptied, not only dropped: a poll that times out inside kafka-python (the models
            # feed's poll without waiting, at every batch boundary) leaves a reference cycle
            # (its exception, the traceback, the frames that called it, this one among them)
            # that keeps this frame's last locals until the collector finds it. Emptied, the
            # batch's records are freed here, by their reference counts.
            records.clear()

    def _outputs(self, records: list[ConsumerRecord]) -> Iterator[Output]:
        """The batch's outputs as the publisher takes them: each slice of `records` processed
        when the outputs before it have been handed over, then the changelog's records. The
        records are let go once processed."""
        count = len(records)
        self._doing(f"processing and publishing a batch of {count} records")
        yield from batch_outputs(self.processor, records, self.config.slice_records)
        self._doing(f"committing a batch of {count} records")  # every output handed over

    def _publish(self, outputs: Iterable[Output], offsets: Offsets, count: int) -> bool:
        """Publish a batch's outputs, made as they are taken, with its offsets (True); on a
        failure, abort and rewind (False), or, when the service is stopping, leave the batch to
        the next start."""
        assert self.publisher is not None and self.consumer is not None
        try:
            self.publisher.publish(outputs, offsets, self.consumer)
        except KafkaError as exc:
            if is_fenced(exc):
                self.sensor.on_fenced()
                raise Fenced(f"fenced while publishing: {exc!r}") from exc
            if refusal_error(exc) is not None:
                raise  # not authorized: a retry will not mend it
            if self.stop.is_set():
                raise ServiceStop(
                    f"stopped without committing the batch in hand ({exc}): it is processed "
                    "again after a restart",
                    EXIT_STALLED,
                ) from exc
            log.warning("publishing a batch of %d records failed (%s); rewinding", count, exc)
            self.health.polled(connected=False)
            # The rewound consumer fetches the batch again, so this attempt is simply dropped.
            self._doing("resetting the producer")
            self.retry(self.publisher.abort, "resetting the producer")
            self.sensor.on_abort()
            self._rewind("rewinding", FAILED_PUBLISH)
            return False
        self.health.connected = True
        self.batches += 1
        self.sensor.on_commit({tp: meta.offset for tp, meta in offsets.items()})
        return True

    def _rewind(self, what: str, cause: str) -> None:
        self._doing(f"{what} (seeking to the committed offsets)")
        self.retry(self.recovery.rewind, what)
        self.sensor.on_rewind(cause)

    def _poll(self) -> Polled | None:
        assert self.consumer is not None
        self._doing("polling")
        try:
            polled = self.consumer.poll(
                timeout_ms=self.config.poll_timeout_ms, max_records=self.config.max_poll_records
            )
        except Exception as exc:
            self._poll_failed(exc)
            return None
        if self._poll_failures:
            log.info(
                "polling again after %d failed polls over %.0f s",
                self._poll_failures,
                time.monotonic() - self._poll_failing_since,
            )
            self._poll_failures = 0
        self.health.polled(connected=broker_connected(self.consumer))
        self._report_read(polled)
        self._watch_assignment()
        return polled

    def _poll_failed(self, exc: Exception) -> None:
        """A poll raised: stop on a fencing, a refusal, or a batch that cannot be read; else
        back off (doubling, up to the ceiling) and poll again, told once per episode."""
        assert self.consumer is not None
        if is_fenced(exc):
            self.sensor.on_fenced()
            raise Fenced(f"fenced while polling: {exc}") from exc
        if refusal_error(exc) is not None:
            raise exc  # not authorized: a retry will not mend it
        if is_unreadable(exc):
            raise ServiceStop(self._unreadable(exc), EXIT_INPUT) from exc
        self._poll_failures += 1
        if self._poll_failures == 1:
            self._poll_failing_since = time.monotonic()
            log.warning("poll failed: %s; polling again with backoff", cause(exc))
        else:
            log.debug("poll failed again (%d): %s", self._poll_failures, exc)
        self.health.polled(connected=False)
        c = self.config
        delay = min(c.retry_backoff_s * 2 ** (self._poll_failures - 1), c.retry_backoff_max_s)
        self.stop.wait(delay)

    def _unreadable(self, exc: Exception) -> str:
        """The line that stops the service on a batch it cannot read."""
        assert self.consumer is not None
        where = fetch_position(self.consumer) or where_told(exc)
        positions: dict[TopicPartition, int | None] = {}
        if where is None:
            positions = self._positions(self.consumer.assignment())
        c = self.config
        return unreadable_line(exc, where, positions, c.group_id, c.bootstrap_servers)

    def _positions(self, partitions: Iterable[TopicPartition]) -> dict[TopicPartition, int | None]:
        """The consumer's position in each partition, where it knows it without waiting."""
        assert self.consumer is not None
        positions: dict[TopicPartition, int | None] = {}
        for tp in partitions:
            try:
                positions[tp] = self.consumer.position(tp, timeout_ms=0)
            except Exception:  # not known without asking the brokers: left out
                continue
        return positions

    def _report_read(self, polled: Polled) -> None:
        """Tell the sensors, at most every `read_report_s`, where the partitions this poll
        returned nothing for have been read to (see `Sensor.on_read`)."""
        assert self.consumer is not None
        now = time.monotonic()
        if now < self._next_read_report:
            return
        self._next_read_report = now + self.config.read_report_s
        idle = [tp for tp in self.consumer.assignment() if tp not in polled]
        positions = {tp: p for tp, p in self._positions(idle).items() if p is not None}
        if positions:
            self.sensor.on_read(positions)

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
        self._doing("closing the Kafka clients")
        if self.publisher is not None:
            self.publisher.close()
        if self.consumer is not None:
            self.consumer.close(timeout_ms=CLOSE_TIMEOUT_MS)
        self.health.assigned = False
