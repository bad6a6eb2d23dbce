"""The least-privilege ACLs each service needs on a secured cluster, as one list.

On a cluster whose authorizer denies what no ACL allows, each service's principal needs exactly
these grants, with the topics made up front by an administrator (`sunspots-topics`, services
started with `--create-topics false`):

- the producer writes the observations;
- the forecaster reads the observations in its group, writes the forecasts, evaluations, a
  challenger's shadow forecasts and evaluations and the dead letters, reads and writes its
  state changelog, reads the models topic (no group: it assigns the one partition), and
  commits through transactional ids that start with its group's name (one per instance:
  `<group>-<instance id>`); with automatic promotion (`promotes=True`) it also writes the
  models topic, in those same transactions;
- the classifier likewise reads the requests and writes the predictions and dead letters;
- the publisher, the principal the model commands run as (`python -m training publish|promote|
  retire`), reads and writes the models topic (`promote` reads the challenger first) through
  the one transactional id the commands share, granted by its exact name.

Write implies Describe and IdempotentWrite (Kafka 3.0 on), Read implies Describe. docs/security.md
lists these as `kafka-acls` commands (`commands()`, and automatic promotion's own line apart,
`commands(promotion=True)`; checked by a unit test) and the secured broker tests grant exactly
`grants()`, so the list, the documentation and what is tested are one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sunspots.kafka.settings import Topics
from sunspots.lifecycle.records import PUBLISHER_TRANSACTIONAL_ID

PRODUCER, FORECASTER, CLASSIFIER, PUBLISHER = "producer", "forecaster", "classifier", "publisher"
SERVICES = (PRODUCER, FORECASTER, CLASSIFIER, PUBLISHER)
DEFAULT_GROUPS = {FORECASTER: "sunspots-forecaster", CLASSIFIER: "sunspots-classifier"}


@dataclass(frozen=True)
class Grant:
    """One ACL: allow `operation` on a resource, for a service's principal."""

    operation: str  # Read, Write
    resource: str  # topic, group, transactional-id
    name: str
    prefixed: bool = False  # the name is a prefix (transactional ids: one per instance)


def grants(
    service: str, topics: Topics, group: str | None = None, *, promotes: bool = False
) -> list[Grant]:
    """What `service` needs, with the topic names of `topics` and its consumer `group`;
    `promotes`: the forecaster promotes challengers itself (`--auto-promote`)."""
    if service == PRODUCER:
        return [Grant("Write", "topic", topics.observations)]
    if service == PUBLISHER:
        return [
            Grant("Read", "topic", topics.models),
            Grant("Write", "topic", topics.models),
            Grant("Write", "transactional-id", PUBLISHER_TRANSACTIONAL_ID),
        ]
    group = group or DEFAULT_GROUPS.get(service, "")
    if service == FORECASTER:
        source = topics.observations
        outputs = [topics.forecasts, topics.evaluations]
        outputs += [topics.forecasts_shadow, topics.evaluations_shadow]
        # Its state changelog, and the models it serves.
        more = [Grant("Read", "topic", topics.state), Grant("Write", "topic", topics.state)]
        more.append(Grant("Read", "topic", topics.models))
        more += [Grant("Write", "topic", topics.models)] if promotes else []
    elif service == CLASSIFIER:
        source, outputs, more = topics.classifier_requests, [topics.classifier_predictions], []
    else:
        raise ValueError(f"no such service: {service} (choose from {', '.join(SERVICES)})")
    return [
        Grant("Read", "topic", source),
        Grant("Read", "group", group),
        *(Grant("Write", "topic", t) for t in [*outputs, topics.dead_letter]),
        *more,
        Grant("Write", "transactional-id", f"{group}-", prefixed=True),
    ]


def promotion_grants(service: str, topics: Topics, group: str | None = None) -> list[Grant]:
    """What automatic promotion adds to `service`'s grants (none but the forecaster's)."""
    plain = grants(service, topics, group)
    return [g for g in grants(service, topics, group, promotes=True) if g not in plain]


def command(principal: str, grant: Grant, bootstrap: str, config: str) -> str:
    """The `kafka-acls` command that adds `grant` for `principal`."""
    pattern = " --resource-pattern-type prefixed" if grant.prefixed else ""
    return (
        f"kafka-acls.sh --bootstrap-server {bootstrap} --command-config {config} --add "
        f"--allow-principal {principal} --operation {grant.operation} "
        f"--{grant.resource} {grant.name}{pattern}"
    )


def commands(
    principals: dict[str, str] | None = None,
    topics: Topics | None = None,
    bootstrap: str = "broker:9093",
    config: str = "admin.properties",
    *,
    promotion: bool = False,
) -> list[str]:
    """Every service's grants as commands; principals default to `User:<service>`. With
    `promotion`, only the optional grants automatic promotion adds."""
    principals = principals or {s: f"User:{s}" for s in SERVICES}
    topics = topics or Topics()
    chosen = promotion_grants if promotion else grants
    return [
        command(principals[service], grant, bootstrap, config)
        for service in SERVICES
        if service in principals
        for grant in chosen(service, topics)
    ]
