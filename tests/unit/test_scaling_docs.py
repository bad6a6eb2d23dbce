"""docs/scaling.md's tables of many series are generated, never edited by hand: its generated
section is exactly what bench.many_series writes from the committed results."""

from __future__ import annotations

import json

import pytest

from bench.many_series import BEGIN, COMMITTED, DOCS, END, generated_section, render

pytestmark = pytest.mark.unit


def test_the_committed_page_is_what_the_committed_results_give() -> None:
    result = json.loads(COMMITTED.read_text())
    assert generated_section() == render(result), (
        "docs/scaling.md's generated section differs from docs/scaling-results.json: run "
        "`python -m bench.many_series --docs` rather than editing the page"
    )


def test_the_section_has_each_count_and_its_targets() -> None:
    result = json.loads(COMMITTED.read_text())
    counts = {row["series"] for row in result["results"]}
    assert {1, 1000, 10000} <= counts
    text = DOCS.read_text()
    assert text.count(BEGIN) == text.count(END) == 1
    section = generated_section()
    assert "| scenario | figure | value | target | met |" in section
    assert "10,000 series" in section
