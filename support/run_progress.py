"""How far a run has got, as the broker sees it: offsets and transactions, not the services' word.

A fault test must show where its fault landed: that committed output existed before it, that
input was still waiting after it, and that a transaction was open at the moment. The broker
knows all three, so `Progress` asks it, through public client calls only:

* the end of a topic as a read_committed reader sees it (the last stable offset: records of a
  transaction still open are behind it) and as a read_uncommitted one does (the high watermark);
* a group's committed offsets on a topic (written in the same transaction as the outputs);
* the state of the transactions of an instance (`Ongoing` while one is open).

`Progress.moment()` takes all of it at once, so a test can record it right before and right
after a fault and say in figures where the fault landed.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sunspots.kafka.clients import make_admin, make_reader
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.kafka.types import KafkaConsumer, TopicPartition, TransactionState
from support.polling import retrying, wait_for
from support.services import Service

ONGOING = TransactionState.ONGOING.value
# How long a single reading asks again while the broker answers with a retriable error.
RETRY_S = 30.0
# How long a stepped process runs between two looks at it (freeze_inside_transaction).
STEP_S = 0.002


@dataclass(frozen=True)
class Ends:
    """A topic's end offsets summed over its partitions."""

    committed: int  # read_committed: the last stable offset
    written: int  # read_uncommitted: the high watermark

    @property
    def open(self) -> int:
        """Offsets written by transactions that are still open (neither committed nor aborted)."""
        return self.written - self.committed


@dataclass(frozen=True)
class Moment:
    """What the broker held at one moment of a run."""

    consumed: int  # the group's committed offsets on the input topic, summed
    produced: int  # the input topic's end
    outputs: dict[str, Ends]  # per output topic
    transactions: tuple[str, ...]  # the states of the instance's transactions

    @property
    def in_transaction(self) -> bool:
        """A transaction is open and holds records on an output topic. Both are needed:
        `Ongoing` alone may precede the first record, and records past the last stable offset
        alone may belong to a commit whose markers are still being written."""
        return ONGOING in self.transactions and any(e.open > 0 for e in self.outputs.values())

    def describe(self) -> str:
        ends = ", ".join(f"{t}: {e.committed}+{e.open} open" for t, e in self.outputs.items())
        states = "/".join(self.transactions) or "none"
        return f"consumed {self.consumed} of {self.produced}; {ends}; transaction {states}"


class Progress:
    """Offsets and transactions of one run's topics, read from the broker."""

    def __init__(self, bootstrap: str) -> None:
        # Reconnect within a second of a bounced broker's return, as the services do.
        self.admin = make_admin(KafkaSettings(bootstrap))
        self.committed_reader = _reader(bootstrap, "read_committed")
        self.written_reader = _reader(bootstrap, "read_uncommitted")

    def close(self) -> None:
        self.admin.close()
        self.committed_reader.close()
        self.written_reader.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _partitions(self, topic: str) -> list[TopicPartition]:
        found = self.committed_reader.partitions_for_topic(topic)
        if not found:
            raise LookupError(f"topic {topic} does not exist")
        return [TopicPartition(topic, p) for p in sorted(found)]

    # Each reading comes in two forms: `_..._now`, one attempt, for the probes of a wait
    # (which asks again on a retriable error until its own deadline), and the public one,
    # which retries a retriable error for at most `timeout` seconds by itself.

    def _ends_now(self, topic: str) -> Ends:
        partitions = self._partitions(topic)
        committed = self.committed_reader.end_offsets(partitions)
        written = self.written_reader.end_offsets(partitions)
        return Ends(sum(committed.values()), sum(written.values()))

    def ends(self, topic: str, timeout: float = RETRY_S) -> Ends:
        """The topic's ends, committed and written."""
        return retrying(f"the end offsets of {topic}", lambda: self._ends_now(topic), timeout)

    def partition_ends(self, topic: str, timeout: float = RETRY_S) -> dict[int, int]:
        """Each partition's end as a read_committed reader sees it now."""

        def ask() -> dict[int, int]:
            found = self.committed_reader.end_offsets(self._partitions(topic))
            return {tp.partition: offset for tp, offset in found.items()}

        return retrying(f"the partition ends of {topic}", ask, timeout)

    def _consumed_now(self, group: str, topic: str) -> int:
        offsets = self.admin.list_group_offsets(group).get(group, {})
        return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset > 0)

    def consumed(self, group: str, topic: str, timeout: float = RETRY_S) -> int:
        """The group's committed offsets on `topic`, summed (0 before its first commit). A
        coordinator that is moving or still loading (a fresh or restarted node) is asked again."""
        what = f"the committed offsets of {group} on {topic}"
        return retrying(what, lambda: self._consumed_now(group, topic), timeout)

    def wait_consumed(
        self, group: str, topic: str, count: int, timeout: float, *running: Service
    ) -> None:
        """Wait until the group has committed `count` records of `topic` (its outputs with
        them), raising at once, with its log, if one of the `running` services exits."""

        def probe() -> bool:
            for service in running:
                service.check_running()
            return self._consumed_now(group, topic) >= count

        wait_for(f"{group} to commit {count} records of {topic}", probe, timeout)

    def wait_finished(
        self, group: str, topics: Topics, count: int, timeout: float, *running: Service
    ) -> None:
        """Wait until a forecaster's group has committed `count` observations and no
        transaction is open on its outputs: the broker writes a commit's markers to the output
        topics a moment after the offsets, so only then are all of them readable."""
        self.wait_consumed(group, topics.observations, count, timeout, *running)
        outputs = [topics.forecasts, topics.evaluations, topics.dead_letter, topics.state]
        outputs += [topics.forecasts_shadow, topics.evaluations_shadow]
        wait_for(
            f"the last commit of {group} to reach its outputs",
            lambda: all(self._ends_now(topic).open == 0 for topic in outputs),
            timeout,
        )

    def _transactions_now(self, contains: str) -> tuple[str, ...]:
        listed = [t for per_broker in self.admin.list_transactions().values() for t in per_broker]
        mine = sorted(
            (t.transactional_id, t.state) for t in listed if contains in t.transactional_id
        )
        return tuple(TransactionState(state).value for _, state in mine)

    def transactions(self, contains: str, timeout: float = RETRY_S) -> tuple[str, ...]:
        """The states of the transactional ids that contain `contains`, sorted by id."""
        what = f"the transactions of {contains}"
        return retrying(what, lambda: self._transactions_now(contains), timeout)

    def aim_at_open_transaction(self, instance: str, output: str, timeout: float) -> bool:
        """Wait up to `timeout` s until a transaction of the ids containing `instance` is open
        and has written to `output` (for a forecaster, its forecasts: the first records of each
        batch); whether it has. This only aims a fault: where it landed is read afterwards."""

        def probe() -> bool:
            return self._ends_now(output).open > 0 and ONGOING in self._transactions_now(instance)

        try:
            return wait_for(f"an open transaction of {instance}", probe, timeout, interval=0)
        except TimeoutError:
            return False

    def moment(self, group: str, source: str, outputs: Iterable[str], instance: str) -> Moment:
        """Offsets of the group on `source`, the ends of `outputs` and the transactions of the
        ids containing `instance`, read one after the other."""
        return Moment(
            consumed=self.consumed(group, source),
            produced=self.ends(source).written,
            outputs={topic: self.ends(topic) for topic in outputs},
            transactions=self.transactions(instance),
        )

    def forecaster_moments(self, group: str, topics: Topics, instance: str) -> Callable[[], Moment]:
        """A forecaster run's `moment`, ready to call: its group on the observations, its
        outputs (forecasts, evaluations, changelog), the transactions of instance id `instance`."""
        outputs = [topics.forecasts, topics.evaluations, topics.state]
        return lambda: self.moment(group, topics.observations, outputs, instance)


def _reader(bootstrap: str, isolation: str) -> KafkaConsumer:
    """A reader with no group; a topic a test deleted is not created again by asking about it."""
    return make_reader(KafkaSettings(bootstrap), isolation=isolation)


def freeze_inside_transaction(
    service: Service,
    progress: Progress,
    moment: Callable[[], Moment],
    instance: str,
    topics: Topics,
    timeout: float = 60.0,
    step: float = STEP_S,
) -> Moment:
    """SIGSTOP `service` while a transaction of its is open, and return the broker's view of
    that moment. A fault made while it is frozen lands in that open transaction, exactly.

    A small batch's transaction holds records for a few milliseconds (from its produce to its
    EndTxn), less than one look at the broker takes, so a freeze aimed from outside may land
    after the commit every time. So the process is stepped: stopped, looked at while it stands
    still, and let run `step` s before it is stopped again, until a look shows a transaction
    open with records in it. A step past the end of a transaction only means more steps; after
    `timeout` s it is let go and the last look is told."""
    deadline = time.monotonic() + timeout
    progress.aim_at_open_transaction(instance, topics.forecasts, min(5.0, timeout))
    return step_into_transaction(service, moment, deadline, step)


def step_into_transaction(
    service: Service, moment: Callable[[], Moment], deadline: float, step: float
) -> Moment:
    """Stop `service` and look with `moment`; while the look finds no transaction open and
    `deadline` (a time.monotonic()) is ahead, let it run `step` s and look again. Returns the
    look inside a transaction, the process stopped; at the deadline raises with the last look,
    the process let go."""
    looks = 0
    while True:
        service.process.send_signal(signal.SIGSTOP)
        seen = moment()
        looks += 1
        if seen.in_transaction:
            return seen
        service.process.send_signal(signal.SIGCONT)
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"none of {looks} looks at a stopped {service.name} found a transaction open "
                f"with records in it; the last: {seen.describe()}"
            )
        time.sleep(step)
