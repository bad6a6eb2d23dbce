"""How a batch's outputs and consumed offsets reach Kafka: exactly once or at least once.

Both guarantees implement one interface, chosen once at start:

* `publish(outputs, offsets, consumer)` sends every output of a batch and marks its offsets
  consumed. Exactly once: one transaction holds the outputs and the offsets (KIP-98/447,
  `send_offsets_to_transaction` with the consumer's group metadata); readers use
  read_committed. At least once: the outputs are flushed and acknowledged, then the offsets
  are committed. The outputs are an iterable, taken one at a time (the runner makes them
  slice by slice as they are taken), and the publisher keeps none of them, nor the producer's
  future of a record the brokers have acknowledged (`Sent`): only what it may still have to
  tell.
* `abort()` takes back what a failed `publish` sent, where that is possible (the transaction
  is aborted; at least once has nothing to take back), so that the loop can rewind and send
  the batch again.

A transaction step waits at most `shutdown_wait_s` once the service is stopping (half its
shutdown grace, after which `consumer.shutdown` ends the process), and closing never flushes:
every `publish` that returned has delivered all it sent, and what a failed one left behind is
taken back (an open transaction is aborted by the next start, or times out) or sent again.

Each step that completes is told to the loop's sensor with its duration
(`consumer.sensors.PUBLISH_STEPS`: send, offsets, commit, abort), which the loop's metrics
turn into `sunspot_consumer_publish_step_seconds{step}`.

A transaction step that the cluster does not acknowledge within `step_timeout_s` fails the
batch. kafka-python can wait for ever on a transaction coordinator that died mid-step (it does
not always look the new one up), so rather than trust it the publisher then replaces its
producer: the new one initialises the same transactional id, which aborts the old transaction
at whichever node now coordinates it, and the loop processes the batch again from the
committed offsets. Exactly once holds either way: the old transaction is committed in full or
aborted in full, and the rewind starts from whatever was committed.

A record a topic refuses as too large (its `max.message.bytes` lowered below what the service
writes) stops the service (exit 8, `consumer.stops`) with a line naming the topic: no retry
mends it. A record for a partition the producer does not know yet (the changelog grown to follow its
input, a topic recreated with more partitions) fails the batch as `StaleMetadata`, and the
producer is replaced by one that asks the brokers afresh; kafka-python would raise a
ValueError, which no rewind mends. A publish with no offsets (a changelog written again while
no record arrives) sends its outputs alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from consumer.fencing import is_fenced
from consumer.health import Health
from consumer.output import Output
from consumer.sensors import ABORT, COMMIT, OFFSETS, SEND, Sensor
from consumer.stops import EXIT_INPUT, ServiceStop
from sunspots.kafka.compat import close_now
from sunspots.kafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
)
from sunspots.kafka.transactions import StepTimeout, refused, run_step
from sunspots.kafka.types import (
    FutureRecordMetadata,
    KafkaConsumer,
    KafkaProducer,
    OffsetAndMetadata,
    TopicPartition,
)

log = logging.getLogger(__name__)


class StaleMetadata(KafkaError):
    """A record for a partition the producer does not know yet: the topic changed since it last
    asked the brokers, so the producer is replaced (the new one asks again) rather than retried."""


EXACTLY_ONCE, AT_LEAST_ONCE = "exactly_once", "at_least_once"
CLOSE_S = 2.0  # a producer's close: its sender thread is given this long to end
Offsets = dict[TopicPartition, OffsetAndMetadata]
# `Sent` lets go of acknowledged records once it holds this many, and again each time what it
# still holds has doubled since (a constant cost a record).
SENT_PRUNE_AT = 1_000


class Sent:
    """The records a publish has handed to the producer, as far as it may still have to tell
    them: each one not acknowledged yet, or refused, with its topic and size. An acknowledged
    record is let go: a batch of 30,000 observations sends about 70,000 records, and holding
    every future until the commit held tens of MiB."""

    def __init__(self) -> None:
        self.held: list[tuple[FutureRecordMetadata, str, int]] = []
        self.count = 0
        self._prune_at = SENT_PRUNE_AT

    def add(self, future: FutureRecordMetadata, out: Output) -> None:
        self.held.append((future, out.topic, len(out.key or b"") + len(out.value or b"")))
        self.count += 1
        if len(self.held) >= self._prune_at:
            self.held = [h for h in self.held if not (h[0].is_done and h[0].succeeded())]
            self._prune_at = max(SENT_PRUNE_AT, 2 * len(self.held))

    @property
    def futures(self) -> list[FutureRecordMetadata]:
        """The futures of the records held (not acknowledged, or refused)."""
        return [h[0] for h in self.held]

    def first_failure(self) -> BaseException | None:
        """The error of the first record held whose delivery failed, if any has come back."""
        for future, _, _ in self.held:
            if future.is_done and future.failed():
                return future.exception
        return None


class Publisher(Protocol):
    """What the runner needs to publish a batch's outputs with its offsets, whatever the guarantee;
    the two kinds below."""

    def publish(
        self, outputs: Iterable[Output], offsets: Offsets, consumer: KafkaConsumer
    ) -> None: ...

    def abort(self) -> None: ...

    def close(self) -> None: ...


def send(producer: KafkaProducer, out: Output) -> FutureRecordMetadata:
    """Send one output; a partition the producer does not know yet raises StaleMetadata, any
    other error as kafka-python raises it."""
    try:
        return producer.send(
            out.topic,
            value=out.value,
            key=out.key,
            headers=list(out.headers),
            partition=out.partition,
        )
    except ValueError as exc:  # kafka-python: "Unrecognized partition ..."
        if out.partition is None:
            raise
        raise StaleMetadata(f"{out.topic} partition {out.partition}: {exc}") from exc


class TransactionalPublisher:
    """Exactly once: a batch's outputs and offsets commit together or not at all."""

    def __init__(
        self,
        make_producer: Callable[[], KafkaProducer],
        stop: threading.Event,
        health: Health,
        shutdown_wait_s: float,
        step_timeout_s: float = 20.0,
        sensor: Sensor | None = None,
    ) -> None:
        self.make_producer = make_producer
        self.stop = stop
        self.health = health
        self.shutdown_wait_s = shutdown_wait_s
        self.step_timeout_s = step_timeout_s
        self.sensor = sensor if sensor is not None else Sensor()
        self.producer: KafkaProducer | None = make_producer()
        # A step timed out: this client may be stuck on a dead coordinator, so it is replaced
        # rather than asked to abort.
        self.wedged = False

    def publish(self, outputs: Iterable[Output], offsets: Offsets, consumer: KafkaConsumer) -> None:
        """Send the outputs and commit the offsets in one transaction, begun at the first output
        (or for the offsets alone); nothing is done for an empty batch. The send step's time is
        that of the sends alone, not of making the outputs. Raises KafkaError while the producer
        is being replaced, and ServiceStop for a record too large for its topic."""
        if self.producer is None:
            raise KafkaError("no transactional producer: it is being replaced")
        producer = self.producer
        sent = Sent()
        sending = 0.0
        try:
            for out in outputs:
                started = time.perf_counter()
                if not sent.count:
                    producer.begin_transaction()
                future = send(producer, out)
                sent.add(future, out)
                sending += time.perf_counter() - started
                refusal = refused(future)  # a topic this principal may not write: known at once
                if refusal is not None:
                    raise refusal
        except StaleMetadata:
            self.wedged = True  # replaced, not asked to abort: the new one knows the topic
            raise
        if not sent.count:
            if not offsets:
                return
            producer.begin_transaction()
        self.sensor.on_transaction(SEND, sending)
        started = time.perf_counter()
        try:
            if offsets:
                group = consumer.group_metadata()
                self._step("send_offsets_to_transaction", offsets, group, sent=sent.futures)
                started = self._told(OFFSETS, started)
            self._step("commit_transaction", sent=sent.futures)
            self._told(COMMIT, started)
        except KafkaError:
            _stop_if_too_large(sent)
            raise

    def abort(self) -> None:
        started = time.perf_counter()
        self._abort()
        self._told(ABORT, started)

    def _told(self, step: str, started: float) -> float:
        """Tell the sensor a step that began at `started` is done; the time it ended."""
        now = time.perf_counter()
        self.sensor.on_transaction(step, now - started)
        return now

    def _abort(self) -> None:
        if self.producer is not None and not self.wedged:
            try:
                self._step("abort_transaction")
                return
            except Exception as exc:
                if is_fenced(exc):
                    raise  # another instance owns the id now: do not fence it back
                log.warning("abort failed (%s); replacing the transactional producer", exc)
        if self.producer is not None:
            log.info("replacing the transactional producer")
            old, self.producer = self.producer, None
            try:
                close_now(old, 1.0)  # its thread must stop: a live one could fence the new producer
            except Exception as exc:
                log.warning("the old producer did not close: %s", exc)
        self.producer = self.make_producer()
        self.wedged = False

    def close(self) -> None:
        if self.producer is not None:
            close_now(self.producer, CLOSE_S)

    def _step(self, step: str, *args: object, sent: Sequence[FutureRecordMetadata] = ()) -> None:
        """Run a blocking transaction step, waiting for it in short slices, so that /healthz
        stays alive and /readyz turns false while the broker is away, a shutdown is not held
        up for ever, and a step that hangs fails after `step_timeout_s`.

        A record the brokers refused (no Write on its topic) is raised as that refusal at
        once: the commit, which waits for the partition the brokers will not add to the
        transaction, would otherwise only time out, and the refusal never be told."""
        assert self.producer is not None

        def on_slice(waited: float) -> None:
            """Between slices: the loop stays alive but not connected; a shutdown stops waiting
            after `shutdown_wait_s`, and a warning goes out every 10 s."""
            self.health.polled(connected=False)
            if self.stop.is_set() and waited >= self.shutdown_wait_s:
                raise KafkaTimeoutError(f"{step} not acknowledged {waited:.0f} s into shutdown")
            if waited % 10 == 0 and waited < self.step_timeout_s:
                log.warning("%s waiting for the broker for %.0f s", step, waited)

        try:
            run_step(
                self.producer, step, *args, timeout_s=self.step_timeout_s, sent=sent,
                on_slice=on_slice,
            )  # fmt: skip
        except StepTimeout:
            self.wedged = True
            raise


class AcknowledgedPublisher:
    """At least once: outputs acknowledged first, offsets committed after."""

    def __init__(
        self, make_producer: Callable[[], KafkaProducer], sensor: Sensor | None = None
    ) -> None:
        self.make_producer = make_producer
        self.producer = make_producer()
        self.stale = False
        self.sensor = sensor if sensor is not None else Sensor()

    def publish(self, outputs: Iterable[Output], offsets: Offsets, consumer: KafkaConsumer) -> None:
        """Send the outputs and wait for every acknowledgement, then commit the offsets: a
        failure before the commit means the batch is read and sent again. Raises ServiceStop for
        a record too large for its topic."""
        sent = Sent()
        sending = 0.0
        try:
            for out in outputs:
                started = time.perf_counter()
                sent.add(send(self.producer, out), out)
                sending += time.perf_counter() - started
        except StaleMetadata:
            self.stale = True
            raise
        started = time.perf_counter()
        self.producer.flush()
        failure = sent.first_failure()  # every record is acknowledged or refused by now
        if failure is not None:
            _stop_if_too_large(sent)
            raise failure
        self.sensor.on_transaction(SEND, sending + time.perf_counter() - started)
        sent_at = time.perf_counter()
        if offsets:
            consumer.commit(offsets)
            self.sensor.on_transaction(COMMIT, time.perf_counter() - sent_at)

    def abort(self) -> None:
        """Nothing to take back: the rewound batch is simply sent again (by a new producer,
        if this one's metadata was stale)."""
        if self.stale:
            old, self.producer = self.producer, self.make_producer()
            self.stale = False
            close_now(old, 1.0)

    def close(self) -> None:
        close_now(self.producer, CLOSE_S)


def _stop_if_too_large(sent: Sent) -> None:
    """Raise `ServiceStop` for a record its topic refused as too large."""
    for future, topic, size in sent.held:
        if not (future.is_done and future.failed()):
            continue
        if isinstance(future.exception, MessageSizeTooLargeError | RecordListTooLargeError):
            raise ServiceStop(
                f"topic {topic} refused a record of {size} bytes as too large "
                f"({type(future.exception).__name__}; was its max.message.bytes lowered?): "
                f"raise it again (kafka-configs.sh --alter --entity-type topics --entity-name "
                f"{topic} --add-config max.message.bytes=1048588) and start the service again",
                EXIT_INPUT,
            ) from None
