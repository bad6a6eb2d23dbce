"""The SILSO reader: missing values, the seed's facts, and errors that name the line."""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from sunspots.domain import data
from tests.conftest import REPO
from tests.datafacts import (
    COMPLETE_FROM,
    FIRST_DATE,
    LAST_DATE_AT_LEAST,
    LAST_UNOBSERVED_DATE,
    DataFile,
)


@pytest.fixture(scope="module")
def frame(data_path: Path) -> pd.DataFrame:
    return data.load_daily(data_path)


def _raw_rows(path: Path) -> list[list[str]]:
    """The file's rows split by hand, without the reader under test."""
    return [line.split(";") for line in path.read_text().splitlines() if line.strip()]


def test_reads_every_row_with_types(frame: pd.DataFrame, data_file: DataFile) -> None:
    assert len(frame) == len(_raw_rows(data_file.path))
    first, last = frame["date"].iloc[0], frame["date"].iloc[-1]
    assert first == pd.Timestamp(FIRST_DATE), data_file.note
    # SILSO appends a day a day: any newer file reaches at least as far as the shared one.
    assert last >= pd.Timestamp(LAST_DATE_AT_LEAST), data_file.note
    assert len(frame) == (last - first).days + 1, data_file.note
    assert frame["observations"].dtype.kind == "i"
    assert frame["provisional"].dtype == bool


def test_missing_values_are_nan_never_minus_one(frame: pd.DataFrame, data_file: DataFile) -> None:
    assert not (frame["sunspot_number"] < 0).any()
    assert not (frame["std_dev"] < 0).any()
    # Every -1 of the value column, and nothing else, is read as missing.
    missing = [float(row[4]) == -1 for row in _raw_rows(data_file.path)]
    assert frame["sunspot_number"].isna().tolist() == missing
    assert math.isnan(frame["sunspot_number"].iloc[0]), data_file.note


def test_seed_facts(frame: pd.DataFrame, data_file: DataFile) -> None:
    row = data.last_unobserved_index(frame)
    # Rows are consecutive days, so the row of a date is its distance from the first.
    assert row == (pd.Timestamp(LAST_UNOBSERVED_DATE) - pd.Timestamp(FIRST_DATE)).days
    assert frame["date"].iloc[row] == pd.Timestamp(LAST_UNOBSERVED_DATE), data_file.note
    trimmed = data.trim_unobserved(frame)
    assert trimmed["date"].iloc[0] == pd.Timestamp(COMPLETE_FROM), data_file.note
    assert not trimmed["sunspot_number"].isna().any(), data_file.note


def test_the_artifacts_years_split_as_it_recorded(
    frame: pd.DataFrame, data_file: DataFile, forecaster_model
) -> None:
    """The train/test split of the data in use gives the counts the artifact recorded when it
    was trained (on the shared file)."""
    splits = forecaster_model.metadata["splits"]
    trimmed = data.trim_unobserved(frame)
    split = data.split_by_year(data.select_range(trimmed, end=splits["test"]["last_date"]))
    assert (len(split.train), len(split.test)) == (
        splits["train"]["values"],
        splits["test"]["values"],
    ), data_file.note


def test_select_range_is_inclusive(frame: pd.DataFrame) -> None:
    part = data.select_range(frame, "2000-01-01", "2000-01-31")
    assert len(part) == 31


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    return path


GOOD = "2000;01;01;2000.001;  50; 5.0;  10;0\n"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("2000;01;02;2000.004;  50; 5.0\n", "expected 8 fields"),
        ("2000;01;02;2000.004;  abc; 5.0;  10;0\n", "could not convert"),
        ("2000;02;30;2000.004;  50; 5.0;  10;0\n", "day is out of range"),
        ("2000;01;02;2000.004;  -5; 5.0;  10;0\n", "negative value"),
        ("2000;01;02;2000.004;  5; 5.0;  10;7\n", "provisional flag"),
        ("2000;01;05;2000.004;  5; 5.0;  10;0\n", "consecutive"),
    ],
)
def test_malformed_file_names_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path, GOOD + line)
    with pytest.raises(data.DataFormatError, match=rf"bad.csv:2: .*{message}"):
        data.read_daily(path)


def test_missing_file_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="sunspot data file not found"):
        data.resolve_source(tmp_path / "nope.csv")


class _Server:
    """A loopback HTTP server standing in for SILSO, counting requests: it serves the files of
    a folder, or answers every request with `status` and `body` when given them."""

    def __init__(self, folder: Path, status: int | None = None, body: bytes = b"") -> None:
        import functools
        import http.server
        import threading

        outer = self
        self.requests = 0

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                if status is None:
                    super().do_GET()
                    return
                self.send_response(status)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        handler = functools.partial(Handler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


SILSO_ROWS = GOOD + "2000;01;02;2000.004;  -1; -1.0;   0;1\n"


@pytest.fixture
def silso(tmp_path: Path) -> Iterator[tuple[_Server, Path]]:
    """A server holding a file in SILSO's format, and a cache folder of its own."""
    served = tmp_path / "served"
    served.mkdir()
    (served / "SN_d_tot_V2.0.csv").write_text(SILSO_ROWS)
    server = _Server(served)
    yield server, tmp_path / "cache"
    server.close()


def test_a_url_is_downloaded_once_cached_and_its_sha256_recorded(
    silso: tuple[_Server, Path], caplog: pytest.LogCaptureFixture
) -> None:
    server, cache = silso
    url = f"{server.base}/SN_d_tot_V2.0.csv"
    with caplog.at_level(logging.INFO, logger="sunspots.domain.data"):
        first = data.resolve_source(url, cache)
        second = data.resolve_source(url, cache)
    assert first == second and first.parent == cache
    assert server.requests == 1
    assert first.read_text() == SILSO_ROWS
    digest = hashlib.sha256(SILSO_ROWS.encode()).hexdigest()
    assert data.sha256_path(first).read_text() == f"{digest}  {url}\n"
    # Told once, with the sha256: the second call found the file in the cache.
    told = [r.getMessage() for r in caplog.records]
    assert len(told) == 1 and digest in told[0], told


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (503, b"down for maintenance", "HTTP Error 503"),
        (
            200,
            b"<html>maintenance</html>\n",
            r"not a SILSO daily file: http://127\.0\.0\.1:\d+/sn\.csv:1: expected 8 fields",
        ),
    ],
)
def test_a_failed_download_is_one_line_naming_the_variable_and_caches_nothing(
    tmp_path: Path, status: int, body: bytes, why: str
) -> None:
    server = _Server(tmp_path, status, body)
    try:
        with pytest.raises(data.DataSourceError) as caught:
            data.resolve_source(f"{server.base}/sn.csv", tmp_path / "cache")
    finally:
        server.close()
    line = str(caught.value)
    assert "\n" not in line
    assert re.search(why, line), line
    assert line.endswith(
        f"set {data.DATA_ENV} to a local copy of SILSO's daily file (SN_d_tot_V2.0.csv)"
    )
    assert list((tmp_path / "cache").iterdir()) == []


def _dead_url() -> str:
    """A loopback URL on a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/sn.csv"


def _env(tmp_path: Path, source: str) -> dict[str, str]:
    return {**os.environ, data.DATA_ENV: source, "XDG_CACHE_HOME": str(tmp_path / "xdg")}


def test_the_data_step_downloads_once_and_tells_the_sha256_once(
    silso: tuple[_Server, Path], tmp_path: Path
) -> None:
    """`make data` (`python -m sunspots.domain.data`): the first run downloads and tells where and
    which file, in one line; the second finds it cached and says nothing."""
    server, _ = silso
    env = _env(tmp_path, f"{server.base}/SN_d_tot_V2.0.csv")
    runs = [
        subprocess.run(
            [sys.executable, "-m", "sunspots.domain.data"], env=env, capture_output=True, text=True
        )
        for _ in range(2)
    ]
    assert [r.returncode for r in runs] == [0, 0]
    digest = hashlib.sha256(SILSO_ROWS.encode()).hexdigest()
    assert len(runs[0].stderr.splitlines()) == 1 and f"sha256 {digest}" in runs[0].stderr
    assert runs[1].stderr == "" and runs[1].stdout == ""
    assert server.requests == 1


def test_the_data_step_that_cannot_download_exits_1_in_one_line(tmp_path: Path) -> None:
    url = _dead_url()
    done = subprocess.run(
        [sys.executable, "-m", "sunspots.domain.data"],
        env=_env(tmp_path, url),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert re.fullmatch(
        rf"cannot download the sunspot data from {re.escape(url)} \(.*Connection refused.*\); "
        rf"set {data.DATA_ENV} to a local copy of SILSO's daily file \(SN_d_tot_V2.0.csv\)\n",
        done.stderr,
    ), done.stderr


def test_a_test_session_without_data_ends_in_one_line_not_an_error_per_test(
    tmp_path: Path,
) -> None:
    """The tests' `data_path` fixture: no file to run on ends the whole session at the first
    test that needs one, with the data step's line and exit code 6."""
    url = _dead_url()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            __file__,
            "-k",
            "seed_facts or every_row",
        ],
        env=_env(tmp_path, url),
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert done.returncode == 6, done.stdout
    assert f"set {data.DATA_ENV} to a local copy" in done.stdout
    assert done.stdout.count(f"set {data.DATA_ENV}") == 1, done.stdout
    assert "error" not in done.stdout.lower().replace("urlopen error", ""), done.stdout
