"""Every alert links to its runbook, and every runbook belongs to an alert.

An alert's `runbook_url` annotation is `docs/runbooks.md#<anchor>` (a repository-relative URL:
docs/runbooks.md says why); the anchor must be a section heading of docs/runbooks.md as a code
host renders it (GitHub's slug: lower case, punctuation dropped, spaces as hyphens), and each
`## ` section there must be named after an alert of the rule files, so that neither drifts when
an alert is added, renamed or removed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES = sorted((REPO / "monitoring" / "prometheus" / "rules").glob("*.yml"))
RUNBOOKS = REPO / "docs" / "runbooks.md"
PREFIX = "docs/runbooks.md#"


def alerts() -> dict[str, dict[str, str]]:
    """Each alert's name and its annotations, from every rule file."""
    found: dict[str, dict[str, str]] = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found[rule["alert"]] = rule.get("annotations", {})
    return found


def slug(heading: str) -> str:
    """The anchor a code host gives a Markdown heading (GitHub's rule)."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def sections(markdown: str) -> dict[str, str]:
    """The page's `## ` sections: anchor -> heading. Fenced code is not a heading."""
    found, fenced = {}, False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and line.startswith("## "):
            heading = line[3:].strip()
            found[slug(heading)] = heading
    return found


def test_every_alert_has_a_runbook_url_whose_anchor_is_a_section() -> None:
    anchors = sections(RUNBOOKS.read_text())
    assert alerts(), "no alerts found in the rule files"
    for name, notes in alerts().items():
        url = notes.get("runbook_url")
        assert url, f"{name} has no runbook_url annotation"
        assert url.startswith(PREFIX), f"{name}: {url} does not point into {PREFIX}"
        anchor = url.removeprefix(PREFIX)
        assert anchor in anchors, f"{name}: no section of docs/runbooks.md has the anchor #{anchor}"
        assert anchors[anchor] == name, f"{name} links to the section of {anchors[anchor]}"


def test_every_runbook_section_names_a_real_alert() -> None:
    names = set(alerts())
    headings = set(sections(RUNBOOKS.read_text()).values())
    assert headings - names == set(), "sections without an alert"
    assert names - headings == set(), "alerts without a section"


def test_links_between_runbooks_point_at_sections() -> None:
    markdown = RUNBOOKS.read_text()
    anchors = sections(markdown)
    for anchor in re.findall(r"\]\(#([^)]+)\)", markdown):
        assert anchor in anchors, f"a link to #{anchor}, which is no section"


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("ConsumerDown", "consumerdown"),
        ("Resetting the state changelog", "resetting-the-state-changelog"),
        ("0.3.0 - Unreleased", "030---unreleased"),
    ],
)
def test_the_slug_is_the_code_hosts(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_missing_section_is_caught() -> None:
    # The check is only evidence if a section taken away makes it fail.
    markdown = RUNBOOKS.read_text().replace("## ConsumerDown\n", "## Consumer down\n")
    assert "consumerdown" not in sections(markdown)
