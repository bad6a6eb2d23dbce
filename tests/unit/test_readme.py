"""The README serves users first and stays true to the code: its sections come in the order a
newcomer needs them, it names every setting the commands read, and its links resolve."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO
from tests.unit.test_compose import declared_env

README = (REPO / "README.md").read_text()

COMMANDS = [
    ("sunspots-consumer", ("forecast",)),
    ("sunspots-consumer", ("classify",)),
    ("sunspots-producer", ()),
    ("sunspots-producer", ("classify",)),
    ("sunspots-topics", ()),
    # not a console script: the broker harness stays out of the wheel (python -m devtools.broker)
    ("devtools.broker.__main__:main", ("status",)),
]


def test_sections_come_in_the_order_a_user_needs_them() -> None:
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert sections == [
        "Quick start",
        "Configuration",
        "Operations",
        "Troubleshooting",
        "How it works",
        "Development",
    ]
    operations = README.split("## Operations", 1)[1].split("\n## ", 1)[0]
    for topic in ("Exit codes", "/readyz", "Dead letters", "Several instances"):
        assert topic in operations, topic


@pytest.mark.parametrize(("script", "args"), COMMANDS)
def test_every_variable_a_command_reads_is_in_the_readme(script: str, args: tuple) -> None:
    missing = {name for name in declared_env(script, args) if f"`{name}`" not in README}
    assert not missing, f"{script} {' '.join(args)}: {sorted(missing)}"


def test_the_test_command_is_the_one_ci_runs() -> None:
    assert "make test" in README
    assert re.search(r"^make test$", (REPO / ".ci" / "run").read_text(), re.MULTILINE)


def test_local_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#:]+)\)", README):
        assert (REPO / target).exists(), target
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
        for title in re.findall(r"^#+ (.+)$", README, re.MULTILINE)
    }
    for anchor in re.findall(r"\]\(#([^)]+)\)", README):
        assert anchor in anchors, anchor
