"""Bad start-up input ends a command with one clear line and exit code 2 (no broker needed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("-m", "consumer", "forecast", "--model", "/nonexistent/model.json"),
            "cannot load the model: model metadata not found: /nonexistent/model.json",
        ),
        (
            ("-m", "consumer", "classify", "--model", "/nonexistent/clf.json"),
            "cannot load the model: model metadata not found",
        ),
        (
            ("-m", "producer", "--data", "/nonexistent/sn.csv"),
            "cannot read the sunspot data: sunspot data file not found: /nonexistent/sn.csv",
        ),
        (("-m", "producer", "--start", "2000-13-01"), "not a YYYY-MM-DD date: '2000-13-01'"),
        (("-m", "consumer", "forecast", "--processing", "maybe"), "invalid choice: 'maybe'"),
    ],
)
def test_bad_input_is_one_clear_error(args: tuple[str, ...], message: str) -> None:
    done = _run(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
