"""The topic watch's Kafka side: topics described, created, grown and put right, with an admin
client from sunspots.kafka.clients.

Describing asks the brokers about the service's topics in one request (ids, partitions) and,
when asked, for the settings that keep their data whole (`cleanup.policy`,
`max.message.bytes`). DescribeConfigs is not implied by Read or Write: on a cluster that
grants the services no more (docs/security.md, least privilege) the settings are not checked, told once.
Nothing here asks a broker to create a topic by naming it: an admin client's metadata requests
never do, and a topic is created only as its spec (sunspots.kafka.settings.Topics) says.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from kafka import TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, OffsetSpec
from kafka.errors import (
    ClusterAuthorizationFailedError,
    InvalidPartitionsError,
    KafkaError,
    TopicAlreadyExistsError,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)

from sunspots.kafka.settings import Topics
from sunspots.kafka.topics import Replication, _wanted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicFacts:
    """One topic as the brokers describe it; `partitions` is 0 when it does not exist."""

    name: str
    topic_id: str | None = None
    partitions: int = 0
    configs: Mapping[str, str] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.partitions > 0


# The settings compared with a topic's spec (consumer.topic_changes.mismatch).
CHECKED = ("cleanup.policy", "max.message.bytes")
UNKNOWN_TOPIC = UnknownTopicOrPartitionError.errno


class TopicAdmin:
    """The admin calls the watch makes; the client is made on first use and kept."""

    def __init__(
        self,
        make_admin: Callable[[], KafkaAdminClient],
        topics: Topics,
        replication: Replication,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.make_admin = make_admin
        self.topics = topics
        self.replication = replication
        self.clock = clock
        self.client: KafkaAdminClient | None = None
        self.configs_allowed = True  # DescribeConfigs granted

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()

    def _admin(self) -> KafkaAdminClient:
        if self.client is None:
            self.client = self.make_admin()
        return self.client

    def describe(self, names: Iterable[str], configs: bool) -> dict[str, TopicFacts]:
        """The topics as the brokers describe them now; KafkaError when they do not answer.
        A topic the brokers say nothing of but an error other than "unknown" (not allowed to
        describe it) is left out: what the service does with it tells the refusal."""
        names = list(dict.fromkeys(names))
        described = {t["name"]: t for t in self._admin().describe_topics(names)}
        present = [n for n in names if _exists(described.get(n))]
        settings = self._configs(present) if configs else {}
        return {
            name: _facts(name, described.get(name), settings.get(name, {}))
            for name in names
            if described.get(name, {}).get("error_code", 0) in (0, UNKNOWN_TOPIC)
        }

    def _configs(self, names: list[str]) -> dict[str, dict[str, str]]:
        """The CHECKED settings of each of `names` whose spec sets any."""
        specs = dict(self.topics.named())
        wanted = [n for n in names if n in specs and specs[n].configs]
        if not wanted or not self.configs_allowed:
            return {}
        keys = dict.fromkeys(CHECKED)
        resources = [ConfigResource(ConfigResourceType.TOPIC, n, dict(keys)) for n in wanted]
        try:
            found = self._admin().describe_configs(resources, config_filter="all")
        except (TopicAuthorizationFailedError, ClusterAuthorizationFailedError) as exc:
            log.info("not allowed to describe topic settings (%s): they are not checked", exc)
            self.configs_allowed = False
            return {}
        topics = found.get("topic", {})
        return {
            name: {key: str(entry.get("value")) for key, entry in topics.get(name, {}).items()}
            for name in wanted
        }

    def ends(self, topic: str, partitions: list[int]) -> dict[int, int]:
        """Each partition's end offset as a read_committed reader sees it."""
        specs = {TopicPartition(topic, p): OffsetSpec.LATEST for p in partitions}
        found = self._admin().list_partition_offsets(specs, "read_committed")
        return {tp.partition: o.offset for tp, o in found.items()}

    def create(self, name: str, partitions: int) -> TopicFacts:
        """Create the topic as its spec says (one partition if not partitioned)."""
        new = [t for t in _wanted(self.topics, partitions, self.replication) if t.name == name]
        with contextlib.suppress(TopicAlreadyExistsError):  # another instance was quicker
            self._admin().create_topics(new)
        return self.wait_for(name, lambda f: f.exists)

    def grow(self, name: str, partitions: int) -> TopicFacts:
        """Add partitions up to `partitions`; another instance may have done it first."""
        with contextlib.suppress(InvalidPartitionsError):  # it has that many already
            self._admin().create_partitions({name: partitions})
        return self.wait_for(name, lambda f: f.partitions >= partitions)

    def set_configs(self, name: str, configs: dict[str, str]) -> None:
        resource = ConfigResource(ConfigResourceType.TOPIC, name, configs=dict(configs))
        self._admin().alter_configs([resource], raise_on_unknown=False)

    def wait_for(
        self, name: str, ready: Callable[[TopicFacts], bool], timeout_s: float = 10.0
    ) -> TopicFacts:
        """The topic once the brokers describe it as `ready` (a change reaches every broker
        a moment after it is made); KafkaError past `timeout_s`."""
        deadline = self.clock() + timeout_s
        while True:
            facts = self.describe([name], configs=False).get(name)
            if facts is not None and ready(facts):
                return facts
            if self.clock() > deadline:
                raise KafkaError(f"topic {name} not ready {timeout_s:g} s after it was changed")
            time.sleep(0.1)


def _exists(described: dict | None) -> bool:
    return bool(described) and described.get("error_code", 0) == 0 and bool(described["partitions"])


def _facts(name: str, described: dict | None, configs: dict[str, str]) -> TopicFacts:
    if described is None or not _exists(described):
        return TopicFacts(name)
    topic_id = described.get("topic_id")
    partitions = len(described["partitions"])
    return TopicFacts(name, str(topic_id) if topic_id else None, partitions, configs)
