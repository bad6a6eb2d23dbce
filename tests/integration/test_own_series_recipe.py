"""The README's "Send your own data" recipe, run as written (kcat) against a real broker and a
running forecaster: eleven days of a series of one's own are forecast, and the reading command
prints the series' committed forecasts, each valid against the forecasts topic's schema."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import jsonschema

from support.run_topics import read_topic, unique_topics
from support.services import REPO, forecaster, running

SEND = re.compile(r"<!-- recipe: own-series-send -->\n```sh\n(.*?)```", re.DOTALL)
READ = re.compile(r"<!-- recipe: own-series-read -->\n```sh\n(.*?)```", re.DOTALL)


def readme_recipe(pattern: re.Pattern[str], bootstrap: str, topics) -> str:
    """One of the README's commands, pointed at this test's broker and topics."""
    match = pattern.search((REPO / "README.md").read_text())
    assert match, f"the README has no {pattern.pattern[:40]} recipe"
    return (
        match.group(1)
        .replace("localhost:9092", bootstrap)
        .replace("sunspots.observations", topics.observations)
        .replace("sunspots.forecasts", topics.forecasts)
    )


def _bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_readme_recipe_sends_a_series_and_reads_its_forecasts(
    bootstrap_servers, create_topics, unique, tmp_path: Path
) -> None:
    topics = create_topics(unique_topics(unique), partitions=3)
    with running(forecaster(bootstrap_servers, topics, f"own-{unique}", tmp_path)) as service:
        service.wait_ready(90)
        sent = _bash(readme_recipe(SEND, bootstrap_servers, topics))
        assert sent.returncode == 0, sent.stderr
        # Ten days fill the window: a forecast for day 11, scored when it arrives, and one
        # for day 12.
        committed = read_topic(bootstrap_servers, topics.forecasts, expected=2, idle=1)
        assert len(committed) == 2, service.log()
        observations = read_topic(bootstrap_servers, topics.observations, expected=11, idle=1)
        read = _bash(readme_recipe(READ, bootstrap_servers, topics))
        assert read.returncode == 0, read.stderr
        assert service.terminate() == 0, service.log()
    lines = read.stdout.splitlines()
    assert len(lines) == 2, read.stdout
    schema = json.loads((REPO / "schemas" / "forecast.json").read_text())
    forecasts = []
    for line in lines:
        key, value = line.split("\t", 1)
        forecast = json.loads(value)
        jsonschema.validate(forecast, schema)
        assert key == forecast["series"] == "lab-1"
        forecasts.append(forecast)
    assert [f["target_date"] for f in forecasts] == ["2026-01-11", "2026-01-12"]
    # The window's last value is the persistence forecast: day 10 is 50, day 11 is 51.
    assert [f["persistence"] for f in forecasts] == [50.0, 51.0]
    # The recipe's records share the partition the service's own (kafka-python) producer
    # gives the key: of 3 partitions, murmur2 puts lab-1 in 1, kcat's default hash in 0.
    assert {r.partition for r in observations} == {r.partition for r in committed} == {1}
