"""Retraining from the stream: a range replayed onto the observations topic by the real
producer gives the same windows and targets as the data file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from sunspots.domain.artifact import load_forecaster
from sunspots.domain.data import file_sha256, load_daily, read_daily, select_range
from sunspots.kafka.settings import KafkaSettings, topic_flag
from support.run_topics import unique_topics
from support.services import run_producer
from training.dataset import build_splits, frame_from_observations, read_observations

START, END = "1995-01-01", "2001-12-31"


def test_the_topic_gives_the_files_windows(
    bootstrap_servers: str, unique: str, create_topics, data_path: Path, tmp_path: Path
) -> None:
    topics = create_topics(unique_topics(unique), partitions=3)
    run_producer(
        bootstrap_servers,
        topics,
        data_path,
        tmp_path / "producer.log",
        "--start",
        START,
        "--end",
        END,
    )
    records = read_observations(KafkaSettings(bootstrap_servers, topics), topics.observations)
    frame = select_range(load_daily(data_path), START, END).reset_index(drop=True)
    assert len(records) == len(frame)
    rebuilt = frame_from_observations(records, "silso")
    ours = build_splits(rebuilt, 10, END, 1998, 2000)
    theirs = build_splits(frame, 10, END, 1998, 2000)
    for name in ("fit", "validation", "test"):
        a, b = getattr(ours, name), getattr(theirs, name)
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.y, b.y)
        assert a.target_dates.equals(b.target_dates)

    # The command writes what it read as a data file and trains on it (one epoch).
    reports, models = tmp_path / "reports", tmp_path / "models"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "forecaster",
            "--from-topic",
            topics.observations,
            "--bootstrap-servers",
            bootstrap_servers,
            topic_flag("observations"),
            topics.observations,
            "--reports",
            str(reports),
            "--out",
            str(models),
            "--end",
            END,
            "--validation-from",
            "1998",
            "--test-from",
            "2000",
            "--epochs",
            "1",
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    written = reports / f"{topics.observations}.silso.csv"
    assert f"read {len(frame)} days of silso from {topics.observations}" in done.stderr
    assert read_daily(written).equals(frame)
    model = load_forecaster(models / "sunspot_lstm.json")
    assert model.metadata["data"]["sha256"] == file_sha256(written)
    assert model.metadata["splits"]["test"]["windows"] == len(theirs.test)
