"""The benchmarks' baseline: an earlier commit's packages, run in place of this checkout's."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest

from bench import pipeline
from bench.common import from_tree, known_flags_only, source_tree
from sunspots.kafka.settings import KafkaSettings
from support.services import Service

pytestmark = pytest.mark.unit


def _git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@localhost"]
    done = subprocess.run(
        ["git", "-C", str(repo), *identity, *args], check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


def test_a_service_runs_from_the_packages_of_an_earlier_commit(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for folder in ("consumer", "sunspots", "models"):
        (repo / folder).mkdir(parents=True)
        (repo / folder / "__init__.py").write_text(f"WHICH = 'first {folder}'\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "consumer" / "__init__.py").write_text("WHICH = 'second'\n")
    _git(repo, "commit", "-qam", "second")

    with source_tree(first, repo) as tree:
        assert (tree / "models" / "__init__.py").is_file()
        # The service starts in this checkout, whose own `consumer` must not win.
        command = [sys.executable, "-c", "import consumer, sunspots; print(consumer.WHICH)"]
        service = from_tree(Service(command, tmp_path / "probe.log"), tree)
        assert service.start().wait(60) == 0
    assert service.log().strip() == "first consumer"


def test_an_earlier_programs_service_gets_only_the_flags_it_knows(tmp_path: Path) -> None:
    """An earlier commit's forecaster has no `--topic-forecasts-shadow`: it is given the flags
    its `--help` lists, each with its value, and the rest are left out rather than refused."""
    tree = tmp_path / "tree"
    (tree / "consumer").mkdir(parents=True)
    (tree / "consumer" / "__init__.py").write_text("")
    (tree / "consumer" / "__main__.py").write_text(
        "import argparse\n"
        "p = argparse.ArgumentParser()\n"
        "p.add_argument('mode')\n"
        "p.add_argument('--group')\n"
        "p.add_argument('--topic-forecasts')\n"
        "print(vars(p.parse_args()))\n"
    )
    command = [sys.executable, "-m", "consumer", "forecast", "--group", "g"]
    command += ["--topic-forecasts-shadow", "fs", "--topic-forecasts", "f", "--models", "m"]
    service = known_flags_only(from_tree(Service(command, tmp_path / "old.log"), tree))
    assert service.command[-5:] == ["forecast", "--group", "g", "--topic-forecasts", "f"]
    assert service.start().wait(60) == 0
    assert "'topic_forecasts': 'f'" in service.log()


def test_a_baseline_that_cannot_be_had_is_one_line_and_no_row(capsys) -> None:
    args = argparse.Namespace(baseline="no-such-commit")
    assert pipeline.baseline(args, KafkaSettings("127.0.0.1:1")) == []
    err = capsys.readouterr().err
    assert err.startswith("baseline no-such-commit skipped: fatal: ") and err.count("\n") == 1, err
