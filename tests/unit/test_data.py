"""The SILSO reader: missing values, the seed's facts, and errors that name the line."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from sunspots import data
from tests.datafacts import DataFile


@pytest.fixture(scope="module")
def frame(data_path: Path) -> pd.DataFrame:
    return data.load_daily(data_path)


def _raw_rows(path: Path) -> list[list[str]]:
    """The file's rows split by hand, without the reader under test."""
    return [line.split(";") for line in path.read_text().splitlines() if line.strip()]


def test_reads_every_row_with_types(frame: pd.DataFrame, data_file: DataFile) -> None:
    facts = data_file.facts
    assert len(frame) == len(_raw_rows(data_file.path))
    assert len(frame) == facts.rows, data_file.note
    assert frame["date"].iloc[0] == pd.Timestamp(facts.first_date), data_file.note
    assert frame["date"].iloc[-1] == pd.Timestamp(facts.last_date), data_file.note
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
    facts = data_file.facts
    assert data.last_unobserved_index(frame) == facts.last_unobserved_row, data_file.note
    assert frame["date"].iloc[facts.last_unobserved_row] == pd.Timestamp(
        facts.last_unobserved_date
    ), data_file.note
    trimmed = data.trim_unobserved(frame)
    assert trimmed["date"].iloc[0] == pd.Timestamp(facts.complete_from), data_file.note
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
    """A loopback HTTP server that counts requests, serving one fixed body."""

    def __init__(self, body: bytes) -> None:
        import http.server
        import threading

        outer = self
        self.requests = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests += 1
                self.send_response(200)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/sn.csv"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


def test_url_is_downloaded_once_and_cached(tmp_path: Path) -> None:
    server = _Server((GOOD + "2000;01;02;2000.004;  -1; -1.0;   0;1\n").encode())
    try:
        first = data.resolve_source(server.url, tmp_path)
        second = data.resolve_source(server.url, tmp_path)
    finally:
        server.close()
    assert first == second
    assert server.requests == 1
    assert len(data.read_daily(first)) == 2


def test_download_that_does_not_parse_is_not_cached(tmp_path: Path) -> None:
    server = _Server(b"<html>maintenance</html>\n")
    try:
        with pytest.raises(data.DataFormatError, match=":1: expected 8 fields"):
            data.resolve_source(server.url, tmp_path)
    finally:
        server.close()
    assert list(tmp_path.iterdir()) == []
