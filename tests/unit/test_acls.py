"""The services' least-privilege ACLs: one list, what docs/security.md shows and the tests grant."""

from __future__ import annotations

import re

import pytest

from sunspots.kafka import acls
from sunspots.kafka.settings import Topics
from sunspots.lifecycle import publishing as publish
from sunspots.lifecycle.records import PUBLISHER_TRANSACTIONAL_ID
from tests.conftest import REPO

SECURITY = REPO / "docs" / "security.md"


def _readme_blocks() -> list[list[str]]:
    """The security page's `kafka-acls` lines, one list per fenced block that holds any."""
    readme = SECURITY.read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", readme, flags=re.MULTILINE | re.DOTALL)
    lines = [[ln for ln in b.splitlines() if ln.startswith("kafka-acls.sh ")] for b in blocks]
    return [block for block in lines if block]


def _ops(grants: list[acls.Grant]) -> set[tuple[str, str, str]]:
    return {(g.operation, g.resource, g.name) for g in grants}


def test_the_readme_lists_exactly_the_acls_the_tests_grant() -> None:
    assert _readme_blocks() == [acls.commands(), acls.commands(promotion=True)]


def test_the_readme_marks_the_promotion_grant_optional() -> None:
    readme = SECURITY.read_text()
    (line,) = acls.commands(promotion=True)
    before = readme[: readme.index(line)].rsplit("```", 2)[-2]  # the text before its block
    assert "Optional" in before and "--auto-promote" in before
    assert line not in acls.commands()


def test_each_service_gets_only_what_it_uses() -> None:
    topics = Topics()
    producer = acls.grants(acls.PRODUCER, topics)
    assert producer == [acls.Grant("Write", "topic", "sunspots.observations")]
    forecaster = _ops(acls.grants(acls.FORECASTER, topics))
    assert ("Read", "group", "sunspots-forecaster") in forecaster
    assert ("Write", "transactional-id", "sunspots-forecaster-") in forecaster
    assert ("Read", "topic", "sunspots.forecaster-state") in forecaster
    assert not any(g.name.startswith("classifier") for g in acls.grants(acls.FORECASTER, topics))
    assert all(op in ("Read", "Write") for op, _, _ in forecaster)


def test_the_forecaster_reads_the_models_and_writes_the_shadow_topics() -> None:
    forecaster = _ops(acls.grants(acls.FORECASTER, Topics()))
    assert ("Read", "topic", "sunspots.models") in forecaster
    assert ("Write", "topic", "sunspots.models") not in forecaster
    assert ("Write", "topic", "sunspots.forecasts.shadow") in forecaster
    assert ("Write", "topic", "sunspots.evaluations.shadow") in forecaster
    assert not any(g.name.endswith(".shadow") for g in acls.grants(acls.CLASSIFIER, Topics()))


def test_automatic_promotion_adds_only_the_write_on_the_models_topic() -> None:
    topics = Topics(models="m-1")
    plain = acls.grants(acls.FORECASTER, topics, "g")
    promoting = acls.grants(acls.FORECASTER, topics, "g", promotes=True)
    assert [g for g in promoting if g not in plain] == [acls.Grant("Write", "topic", "m-1")]
    assert set(plain) <= set(promoting)
    assert acls.promotion_grants(acls.FORECASTER, topics, "g") == [
        acls.Grant("Write", "topic", "m-1")
    ]
    for service in (acls.PRODUCER, acls.CLASSIFIER, acls.PUBLISHER):
        assert acls.promotion_grants(service, topics) == []


def test_the_publisher_reads_and_writes_the_models_through_its_one_transactional_id() -> None:
    topics = Topics(models="m-2")
    assert acls.grants(acls.PUBLISHER, topics) == [
        acls.Grant("Read", "topic", "m-2"),
        acls.Grant("Write", "topic", "m-2"),
        acls.Grant("Write", "transactional-id", "sunspots-models-publisher"),
    ]
    # The id the commands use is the id granted, by its exact name.
    assert publish.TRANSACTIONAL_ID == PUBLISHER_TRANSACTIONAL_ID
    (command,) = [c for c in acls.commands() if "--transactional-id sunspots-models-" in c]
    assert command.endswith("--transactional-id sunspots-models-publisher")
    assert "--allow-principal User:publisher --operation Write" in command


def test_a_transactional_id_is_granted_by_prefix() -> None:
    (command,) = [c for c in acls.commands() if "--transactional-id sunspots-classifier-" in c]
    assert command.endswith("--resource-pattern-type prefixed")
    assert "--allow-principal User:classifier --operation Write" in command


def test_commands_follow_the_principals_and_topics_given() -> None:
    lines = acls.commands({acls.PUBLISHER: "User:ci"}, Topics(models="m-3"), "k:1", "a.conf")
    assert lines == [
        "kafka-acls.sh --bootstrap-server k:1 --command-config a.conf --add "
        "--allow-principal User:ci --operation Read --topic m-3",
        "kafka-acls.sh --bootstrap-server k:1 --command-config a.conf --add "
        "--allow-principal User:ci --operation Write --topic m-3",
        "kafka-acls.sh --bootstrap-server k:1 --command-config a.conf --add "
        "--allow-principal User:ci --operation Write --transactional-id sunspots-models-publisher",
    ]
    assert acls.commands({acls.PUBLISHER: "User:ci"}, promotion=True) == []


def test_an_unknown_service_is_named() -> None:
    with pytest.raises(ValueError, match="no such service: janitor"):
        acls.grants("janitor", Topics())
