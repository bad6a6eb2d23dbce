"""The model feed's logic without Kafka: records folded into the current models, refusals
returned as values, and the model commands' bad input told in one line with exit 2."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from kafka import TopicPartition

from sunspots.domain.artifact import DEFAULT_CLASSIFIER, MODELS_DIR, metadata_path
from sunspots.lifecycle import records as registry
from sunspots.lifecycle.feed import ModelBoard, ModelFeed, standing_refusals
from sunspots.lifecycle.records import Published, Refused, Retired
from training.__main__ import main

TOPIC = "models"
W10 = MODELS_DIR / "sunspot_lstm.json"
W27 = MODELS_DIR / "sunspot_lstm_w27.json"


def value(path, role: str) -> bytes:
    json_path = metadata_path(path)
    meta = json.loads(json_path.read_text())
    weights = (json_path.parent / meta["weights_file"]).read_bytes()
    return registry.encode(registry.make_record(role, json_path.read_text(), weights, "test"))


@dataclass
class Record:
    key: bytes | None
    value: bytes | None


@dataclass
class FakeSource:
    """A consumer of one partition whose records arrive in the given polls."""

    polls: list[list[Record]]
    offset: int = 0
    end: int = 0
    closed: bool = False
    timeouts: list[int] = field(default_factory=list)

    def poll(self, timeout_ms: int = 0) -> dict[Any, list[Any]]:
        self.timeouts.append(timeout_ms)
        batch = self.polls.pop(0) if self.polls else []
        self.offset += len(batch)
        return {TopicPartition(TOPIC, 0): batch} if batch else {}

    def position(self, partition: TopicPartition) -> int:
        return self.offset

    def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {p: self.end for p in partitions}

    def close(self) -> None:
        self.closed = True


def test_the_current_models_are_the_last_verified_record_of_each_role() -> None:
    first = [Record(b"champion", value(W10, "champion")), Record(b"challenger", b"junk")]
    second = [Record(b"challenger", value(W27, "challenger"))]
    source = FakeSource([first, second], end=3)
    feed = ModelFeed(source, TOPIC)
    board, refused = feed.current()
    assert board.champion.model.window == 10 and board.challenger.model.window == 27
    assert refused == []  # the junk challenger was superseded by a good one
    assert feed.poll() == [] and source.timeouts[-1] == 0
    feed.close()
    assert source.closed


def test_a_refusal_keeps_the_model_a_tombstone_removes_it() -> None:
    board = ModelBoard()
    assert isinstance(board.apply(b"champion", value(W10, "champion")), Published)
    entry = board.apply(b"champion", b'{"record_version": 1}')
    assert isinstance(entry, Refused) and entry.reason == "not_a_model_record"
    assert board.champion is not None and board.champion.model.window == 10
    assert board.apply(b"champion", None) == Retired("champion")
    assert board.champion is None


def test_a_model_of_another_kind_is_refused_by_a_forecaster_feed() -> None:
    board = ModelBoard()
    entry = board.apply(b"challenger", value(DEFAULT_CLASSIFIER, "challenger"))
    assert isinstance(entry, Refused) and entry.reason == "wrong_kind"
    assert board.models == {}


def test_standing_refusals_are_the_last_word_of_their_role() -> None:
    bad = Refused("champion", "bad_hash", "x")
    later = Refused("champion", "oversized", "y")
    nokey = Refused(None, "unknown_role", "z")
    assert standing_refusals([bad, later, nokey]) == [later, nokey]
    assert standing_refusals([bad, Retired("champion")]) == []


def test_the_feed_reads_to_the_end_it_saw_at_start() -> None:
    source = FakeSource([[], [Record(b"champion", value(W10, "champion"))]], end=1)
    board, _ = ModelFeed(source, TOPIC).current()
    assert board.champion is not None and source.timeouts == [200, 200]


@pytest.mark.parametrize(
    "argv, words",
    [
        (["publish", "/nonexistent/model.json"], "not_found"),
        (["publish", str(DEFAULT_CLASSIFIER)], "wrong_kind"),
    ],
)
def test_bad_model_input_is_one_line_and_exit_2(argv, words, capsys) -> None:
    assert main([*argv, "--bootstrap-servers", "127.0.0.1:1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "ERROR" in lines[0]


def test_an_unknown_role_is_refused_by_the_flag(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["retire", "--role", "boss"])
    assert caught.value.code == 2
    assert "not a role" in capsys.readouterr().err
