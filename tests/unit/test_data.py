"""The SILSO reader: missing values, the seed's facts, and errors that name the line."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from sunspots import data


@pytest.fixture(scope="module")
def frame(data_path: Path) -> pd.DataFrame:
    return data.load_daily(data_path)


def test_reads_every_row_with_types(frame: pd.DataFrame) -> None:
    assert len(frame) == 76_002
    assert frame["date"].iloc[0] == pd.Timestamp("1818-01-01")
    assert frame["date"].iloc[-1] == pd.Timestamp("2026-01-31")
    assert frame["observations"].dtype.kind == "i"
    assert frame["provisional"].dtype == bool


def test_missing_values_are_nan_never_minus_one(frame: pd.DataFrame) -> None:
    assert not (frame["sunspot_number"] < 0).any()
    assert not (frame["std_dev"] < 0).any()
    assert math.isnan(frame["sunspot_number"].iloc[0])
    assert frame["sunspot_number"].isna().sum() == 3247


def test_seed_facts(frame: pd.DataFrame) -> None:
    assert data.last_unobserved_index(frame) == 11313
    trimmed = data.trim_unobserved(frame)
    # Row 11313 is 1848-12-22 (the data README says 1849-12-31, but the index is what counts).
    assert trimmed["date"].iloc[0] == pd.Timestamp("1848-12-23")
    assert not trimmed["sunspot_number"].isna().any()
    split = data.split_by_year(data.select_range(trimmed, end="2017-06-30"))
    assert len(split.train) == 55_160
    assert len(split.test) == 6_391


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
