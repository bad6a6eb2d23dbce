"""The README serves users first and stays true to the code: its sections come in the order a
newcomer needs them, it stays short, the README and the configuration page name every setting
the commands read, and the links of the README and of docs/ resolve."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.unit.test_compose import declared_env

README = (REPO / "README.md").read_text()
CONFIGURATION = (REPO / "docs" / "configuration.md").read_text()
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

COMMANDS = [
    ("sunspots-consumer", ("forecast",)),
    ("sunspots-consumer", ("classify",)),
    ("sunspots-producer", ()),
    ("sunspots-producer", ("classify",)),
    ("sunspots-topics", ()),
    # not a console script: the broker harness stays out of the wheel (python -m devtools.broker)
    ("devtools.broker.__main__:main", ("status",)),
    ("sunspots-train", ("forecaster",)),
    ("sunspots-train", ("publish",)),
]


def test_sections_come_in_the_order_a_user_needs_them() -> None:
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert sections == [
        "What it is",
        "Quick start",
        "Send your own data",
        "Configuration",
        "Operations",
        "Troubleshooting",
        "Development",
        "Documentation",
        "Data and licence",
    ]
    operations = README.split("## Operations", 1)[1].split("\n## ", 1)[0]
    for topic in ("Exit codes", "/readyz", "Dead letters", "Several instances"):
        assert topic.lower() in operations.lower(), topic


def test_the_readme_is_short_and_opens_with_its_contents() -> None:
    assert len(README.splitlines()) <= 300
    contents = README.split("\n## ", 1)[0]
    for title in re.findall(r"^## (.+)$", README, re.MULTILINE):
        assert f"[{title}](#" in contents, title


@pytest.mark.parametrize(("script", "args"), COMMANDS)
def test_every_variable_a_command_reads_is_documented(script: str, args: tuple) -> None:
    """In the configuration page's table (generated: tests/unit/test_reference.py keeps it
    current); the README names the exceptions to the naming rule."""
    missing = {name for name in declared_env(script, args) if f"`{name}`" not in CONFIGURATION}
    assert not missing, f"{script} {' '.join(args)}: {sorted(missing)}"


def test_the_readme_names_the_exceptions_to_the_naming_rule() -> None:
    for name in ("KAFKA_PORT", "KAFKA_HEAP", "KAFKA_NODES", "SUNSPOTS_KAFKA_VERSION"):
        assert f"`{name}`" in README and f"`{name}`" in CONFIGURATION, name


def test_the_test_command_is_the_one_ci_runs() -> None:
    assert "make test" in README
    assert re.search(r"^make test$", (REPO / ".ci" / "run").read_text(), re.MULTILINE)


def _anchors(page: Path) -> set[str]:
    titles = re.findall(r"^#+ (.+)$", page.read_text(), re.MULTILINE)
    return {re.sub(r"[^a-z0-9 -]", "", t.lower()).replace(" ", "-") for t in titles}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_local_links_resolve(page: Path) -> None:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    for target, anchor in re.findall(r"\]\(([^)#:]*)(?:#([^)]+))?\)", text):
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{page.name}: {target}"
        if anchor and path.suffix == ".md":
            assert anchor in _anchors(path), f"{page.name}: {target}#{anchor}"
