"""The least-privilege ACLs each service needs on a secured cluster, as one list.

On a cluster whose authorizer denies what no ACL allows, each service's principal needs exactly
these grants, with the topics made up front by an administrator (`sunspots-topics`, services
started with `--create-topics false`):

- the producer writes the observations;
- the forecaster reads the observations in its group, writes the forecasts, evaluations and
  dead letters, reads and writes its state changelog, and commits through transactional ids
  that start with its group's name (one per instance: `<group>-<instance id>`);
- the classifier likewise reads the requests and writes the predictions and dead letters.

Write implies Describe and IdempotentWrite (Kafka 3.0 on), Read implies Describe. The README
lists these as `kafka-acls` commands (`commands()`, checked by a unit test) and the secured
broker tests grant exactly `grants()`, so the list, the documentation and what is tested are
one.
"""

from __future__ import annotations

from dataclasses import dataclass

from sunspots.settings import Topics

PRODUCER, FORECASTER, CLASSIFIER = "producer", "forecaster", "classifier"
SERVICES = (PRODUCER, FORECASTER, CLASSIFIER)
DEFAULT_GROUPS = {FORECASTER: "sunspots-forecaster", CLASSIFIER: "sunspots-classifier"}


@dataclass(frozen=True)
class Grant:
    """One ACL: allow `operation` on a resource, for a service's principal."""

    operation: str  # Read, Write
    resource: str  # topic, group, transactional-id
    name: str
    prefixed: bool = False  # the name is a prefix (transactional ids: one per instance)


def grants(service: str, topics: Topics, group: str | None = None) -> list[Grant]:
    """What `service` needs, with the topic names of `topics` and its consumer `group`."""
    if service == PRODUCER:
        return [Grant("Write", "topic", topics.observations)]
    group = group or DEFAULT_GROUPS[service]
    if service == FORECASTER:
        source, outputs = topics.observations, [topics.forecasts, topics.evaluations]
        state = [Grant("Read", "topic", topics.state), Grant("Write", "topic", topics.state)]
    elif service == CLASSIFIER:
        source, outputs, state = topics.classifier_requests, [topics.classifier_predictions], []
    else:
        raise ValueError(f"no such service: {service} (choose from {', '.join(SERVICES)})")
    return [
        Grant("Read", "topic", source),
        Grant("Read", "group", group),
        *(Grant("Write", "topic", t) for t in [*outputs, topics.dead_letter]),
        *state,
        Grant("Write", "transactional-id", f"{group}-", prefixed=True),
    ]


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
) -> list[str]:
    """Every service's grants as commands; principals default to `User:<service>`."""
    principals = principals or {s: f"User:{s}" for s in SERVICES}
    topics = topics or Topics()
    return [
        command(principals[service], grant, bootstrap, config)
        for service in SERVICES
        if service in principals
        for grant in grants(service, topics)
    ]
