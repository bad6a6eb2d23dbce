"""The models topic at a forecaster's start: which model serves, and the one line that says so.

The feed is a fake (no Kafka): it answers `exists` and `current` as sunspots.lifecycle.feed does.
What is checked is the decision ModelFollower.start takes from them, and that an operator who
set --model learns in one line when the models topic's champion serves instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from consumer.following import ModelFollower
from consumer.forecaster import Forecaster
from consumer.metrics import ForecasterMetrics
from consumer.series import SeriesPolicy
from consumer.series_metrics import SeriesSelection
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.lifecycle.feed import ModelBoard
from sunspots.lifecycle.records import CHAMPION
from tests.unit.test_lifecycle import Offset, published

KAFKA = KafkaSettings()


class Feed:
    """A models topic that exists and holds `board`."""

    def __init__(self, board: ModelBoard) -> None:
        self.board = board
        self.closed = False

    def exists(self) -> bool:
        return True

    def current(self) -> tuple[ModelBoard, list[Any]]:
        return self.board, []

    def close(self) -> None:
        self.closed = True


def _once(step: Callable[[], Any], what: str, retry_on: tuple = ()) -> Any:
    return step()


def _start(board: ModelBoard, flag: Offset) -> Forecaster:
    forecaster = Forecaster(
        flag,  # type: ignore[arg-type]
        Topics(),
        ForecasterMetrics(CollectorRegistry()),
        today=lambda: date(2026, 1, 1),
        series_policy=SeriesPolicy(history=8, rolling=10),
        series_metrics=SeriesSelection.parse("all"),
    )
    follower = ModelFollower.start(KAFKA, forecaster, _once, connect=lambda _: Feed(board))  # type: ignore[arg-type]
    assert follower is not None
    return forecaster


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "consumer.following"]


def test_a_champion_on_the_models_topic_overrides_model_in_one_line(caplog) -> None:
    board = ModelBoard(models={CHAMPION: published(CHAMPION, Offset("v2", 3))})
    with caplog.at_level(logging.INFO):
        forecaster = _start(board, Offset("v1", 3))
    assert forecaster.model.model_version == "v2"
    lines = _lines(caplog)
    assert len(lines) == 1, lines
    assert "v2" in lines[0] and "--model (v1)" in lines[0]
    assert "sunspots-train publish --role champion" in lines[0]
    assert "sunspots-train promote" in lines[0]
    assert KAFKA.topics.models in lines[0]


def test_no_override_line_when_the_champion_is_the_model_given(caplog) -> None:
    board = ModelBoard(models={CHAMPION: published(CHAMPION, Offset("v1", 3))})
    with caplog.at_level(logging.INFO):
        forecaster = _start(board, Offset("v1", 3))
    assert forecaster.model.model_version == "v1"
    assert _lines(caplog) == []


def test_without_a_champion_model_serves_and_says_so(caplog) -> None:
    with caplog.at_level(logging.INFO):
        forecaster = _start(ModelBoard(), Offset("v1", 3))
    assert forecaster.model.model_version == "v1"
    assert _lines(caplog) == ["the models topic has no champion: the model of --model (v1) serves"]


def test_a_champion_that_cannot_run_leaves_model_serving_without_the_override_line(
    caplog,
) -> None:
    # Reads 20 values; series keep 8 (--history): refused, so --model keeps serving.
    board = ModelBoard(models={CHAMPION: published(CHAMPION, Offset("v9", 20))})
    with caplog.at_level(logging.INFO):
        forecaster = _start(board, Offset("v1", 3))
    assert forecaster.model.model_version == "v1"
    assert not any("serves, not the model of --model" in line for line in _lines(caplog))
