"""The one place that reaches into kafka-python's private attributes.

kafka-python's public API lacks six things the services need: a way to ask a client whether
it holds a live broker connection, a way to start a transaction step without blocking until
the broker answers, a way to ask a group member to rejoin its group, a way to close a
producer at once, failing what it still holds, a way to learn where a poll that raised was
reading, and a working way to keep a client from creating the topics it asks about. Each shim
below says why it exists and what public behaviour it falls back to when a kafka-python
release no longer has the attribute;
`tests/unit/test_kafka_compat.py` fails loudly in that case, so an upgrade is noticed in CI,
not in production. Nothing else in the project touches a private attribute of a third-party
object.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from kafka.errors import KafkaTimeoutError

log = logging.getLogger(__name__)

# The transaction steps that `start_transaction_step` can begin without waiting.
TRANSACTION_STEPS = ("send_offsets_to_transaction", "commit_transaction", "abort_transaction")


class Pending(Protocol):
    """A transaction step in flight: `wait` returns True once it completed (or raises its
    error), False when `timeout_ms` passed first."""

    def wait(self, timeout_ms: int | None = None) -> bool: ...


def broker_connected(client: Any) -> bool:
    """Whether a KafkaConsumer or KafkaProducer holds a live connection to a broker.

    Why: kafka-python 3's public `bootstrap_connected()` is True only while the bootstrap is
    still in progress, so after start-up it reads False on a healthy client. The network client
    (`client._client`) knows each broker's connection state.
    Fallback: without it, report True, so readiness rests on polls and publishes succeeding.
    """
    net = getattr(client, "_client", None)
    if net is None or not hasattr(net, "connected") or not hasattr(net, "cluster"):
        return True
    return any(net.connected(broker.node_id) for broker in net.cluster.brokers())


def start_transaction_step(producer: Any, step: str, *args: Any) -> Pending | None:
    """Begin a transaction step and return it in flight, or None when it cannot be begun.

    Why: the public `send_offsets_to_transaction`, `commit_transaction` and `abort_transaction`
    wait without a timeout, so a service whose broker is gone could neither report itself
    unready nor stop. The producer's transaction manager (`producer._transaction_manager`)
    begins the same steps and returns a result to wait on in slices; the sender thread
    (`producer._sender`) is woken as the public calls do.
    Fallback: None; the caller then makes the public, blocking call.
    """
    if step not in TRANSACTION_STEPS:
        raise ValueError(f"not a transaction step: {step}")
    manager = getattr(producer, "_transaction_manager", None)
    sender = getattr(producer, "_sender", None)
    begin = {
        "send_offsets_to_transaction": "send_offsets_to_transaction",
        "commit_transaction": "begin_commit",
        "abort_transaction": "begin_abort",
    }[step]
    if manager is None or sender is None or not hasattr(manager, begin):
        log.debug("kafka-python without a transaction manager: %s blocks", step)
        return None
    result = getattr(manager, begin)(*args)
    sender.wakeup()
    return result


def request_rejoin(consumer: Any) -> bool:
    """Ask a subscribed KafkaConsumer to rejoin its group at its next poll.

    Why: a member that joined while its topic's partitions were still being created can be
    left with an empty assignment, and kafka-python does not always notice the partitions
    appearing later, so the member idles for ever. The group coordinator client
    (`consumer._coordinator`) has `request_rejoin()`, which triggers a new rebalance.
    Fallback: False; the caller then unsubscribes and subscribes again (public calls that
    also lead to a rejoin, at the cost of forgetting the member's generation).
    """
    coordinator = getattr(consumer, "_coordinator", None)
    rejoin = getattr(coordinator, "request_rejoin", None)
    if not callable(rejoin):
        return False
    rejoin()
    return True


def fetch_position(consumer: Any) -> tuple[Any, int] | None:
    """The partition (a TopicPartition) and offset a KafkaConsumer was reading when its poll
    raised, or None when it does not say.

    Why: a record batch the client cannot decode (a codec it lacks, a corrupt batch) makes
    `poll` raise an error that does not say where it is. Worse, kafka-python 3 keeps the
    failed partition's records as the next to take, and its next poll then loops for ever
    inside `Fetcher.fetched_records` (it takes nothing from them and tries again), so the
    service must stop at the first such error and name the place itself. The fetcher
    (`consumer._fetcher`) holds those records (`_next_partition_records`) with their
    `topic_partition` and `next_fetch_offset`: the offset of the first record not returned,
    where the failing batch begins.
    Fallback: None (also when the error arose elsewhere, with no records being taken); the
    caller then names the positions of the assigned partitions instead.
    """
    fetcher = getattr(consumer, "_fetcher", None)
    records = getattr(fetcher, "_next_partition_records", None)
    if not records:  # none, or drained: an error that arose elsewhere
        return None
    tp = getattr(records, "topic_partition", None)
    offset = getattr(records, "next_fetch_offset", None)
    if tp is None or not isinstance(offset, int):
        return None
    return tp, offset


def close_now(producer: Any, timeout: float) -> None:
    """Close a KafkaProducer without delivering what it still holds: every record not yet
    acknowledged fails at once (its errback runs), and the call returns within about `timeout`
    seconds even when no broker answers.

    Why: the public `close(timeout)` flushes first, and that flush waits up to `timeout` for
    each batch in turn and then raises instead of closing, so with the brokers gone it neither
    returns in a bounded time nor closes. The producer's sender thread (`producer._sender`)
    has `force_close()`, which fails every incomplete batch and ends the thread: what the
    public close does itself once its flush is over. After it, nothing is left to flush and
    the public `close(0)` completes.
    Fallback: the public `close(timeout)`, its timeout error swallowed (it may then take a
    multiple of `timeout`, and records may stay unsettled).
    """
    sender = getattr(producer, "_sender", None)
    force_close = getattr(sender, "force_close", None)
    join = getattr(sender, "join", None)
    if callable(force_close) and callable(join):
        force_close()
        join(timeout)
    else:
        log.debug("kafka-python without a sender thread to force closed: close() may wait")
    try:
        producer.close(timeout=0 if callable(force_close) else timeout)
    except KafkaTimeoutError:
        log.debug("the producer could not flush within %s s", timeout)


def no_auto_create(client: Any) -> bool:
    """Keep a KafkaConsumer's or KafkaProducer's metadata requests from creating topics.

    Why: a client keeps asking the brokers about every topic it read or wrote, and a metadata
    request may ask them to create a topic that does not exist; brokers with
    `auto.create.topics.enable=true` (Kafka's default) then create it at once, with their own
    defaults (one partition, deleted rather than compacted). A topic deleted while the service
    runs would come back that way, made by the service itself. kafka-python 3.0.12 takes an
    `allow_auto_create_topics` setting but never hands it to the cluster metadata that builds
    the requests (`kafka.net.manager` makes `ClusterMetadata` without it), so the setting has
    no effect. The metadata object (`consumer._client.cluster`, `producer._metadata`) reads it
    from its own `config` for each request.
    Fallback: False, the client unchanged; the topic watch (consumer.topic_watch) then finds
    such a topic recreated with another id and puts its settings right, or stops.
    """
    cluster = getattr(client, "_metadata", None)
    if cluster is None:
        cluster = getattr(getattr(client, "_client", None), "cluster", None)
    config = getattr(cluster, "config", None)
    if not isinstance(config, dict) or "allow_auto_create_topics" not in config:
        log.debug("kafka-python without a metadata config: the client may create topics")
        return False
    config["allow_auto_create_topics"] = False
    return True
