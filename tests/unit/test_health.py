"""Readiness facts: a reported problem keeps /readyz unready and is shown until cleared."""

from __future__ import annotations

from consumer.health import Health


def _ready() -> Health:
    health = Health()
    health.model_loaded = health.assigned = health.connected = True
    return health


def test_a_problem_keeps_the_service_unready_and_is_shown_until_cleared() -> None:
    health = _ready()
    assert health.ready
    health.problem("stalled", "sunspots.observations/0 made no progress for 61 s")
    assert not health.ready
    assert "stalled=sunspots.observations/0 made no progress for 61 s" in health.describe()
    health.problem("stalled", None)
    assert health.ready
    assert "stalled" not in health.describe()


def test_clearing_a_problem_never_reported_changes_nothing() -> None:
    health = _ready()
    health.problem("topic", None)
    assert health.ready


def test_a_stop_line_is_shown_as_the_refusal_is() -> None:
    health = _ready()
    health.refused = "cannot read sunspots.observations/0 at offset 12: CorruptRecordError"
    assert not health.ready
    assert "refused=cannot read sunspots.observations/0 at offset 12" in health.describe()
