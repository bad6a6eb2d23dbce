"""The services' least-privilege ACLs: one list, what the README shows and the tests grant."""

from __future__ import annotations

from sunspots import acls
from sunspots.settings import Topics
from tests.conftest import REPO


def test_the_readme_lists_exactly_the_acls_the_tests_grant() -> None:
    readme = (REPO / "README.md").read_text()
    listed = [line for line in readme.splitlines() if line.startswith("kafka-acls.sh ")]
    assert listed == acls.commands()


def test_each_service_gets_only_what_it_uses() -> None:
    topics = Topics()
    producer = acls.grants(acls.PRODUCER, topics)
    assert producer == [acls.Grant("Write", "topic", "sunspots.observations")]
    forecaster = {(g.operation, g.resource, g.name) for g in acls.grants(acls.FORECASTER, topics)}
    assert ("Read", "group", "sunspots-forecaster") in forecaster
    assert ("Write", "transactional-id", "sunspots-forecaster-") in forecaster
    assert ("Read", "topic", "sunspots.forecaster-state") in forecaster
    assert not any(g.name.startswith("classifier") for g in acls.grants(acls.FORECASTER, topics))
    assert all(op in ("Read", "Write") for op, _, _ in forecaster)


def test_a_transactional_id_is_granted_by_prefix() -> None:
    (command,) = [c for c in acls.commands() if "--transactional-id sunspots-classifier-" in c]
    assert command.endswith("--resource-pattern-type prefixed")
    assert "--allow-principal User:classifier --operation Write" in command
