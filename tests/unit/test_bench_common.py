"""The benchmarks' baseline: an earlier commit's packages, run in place of this checkout's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.common import from_tree, source_tree
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
