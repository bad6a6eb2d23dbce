"""The generated references of docs/ are the code's: each page is current (else "run make
docs"), each example record is valid against its topic's JSON Schema, and the generator covers
every command, every metric family the code declares and every exit code."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import jsonschema
import pytest

from consumer import metrics as metric_specs
from sunspots.wire.contracts import DEAD_LETTER_HEADERS, MESSAGES
from support import reference
from tests.conftest import REPO
from tests.unit.test_compose import console_scripts


@pytest.fixture(scope="module")
def examples() -> list[reference.Example]:
    return reference.examples()


def test_the_generated_pages_are_current() -> None:
    stale = reference.stale()
    assert not stale, f"run make docs: the generated tables of {', '.join(stale)} are stale"


def test_a_stale_table_is_found(tmp_path: Path) -> None:
    """The check can fail: a page whose metrics table lost a row is reported."""
    for page in reference.PAGES:
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / page, tmp_path / page)
    metrics = tmp_path / "docs" / "metrics.md"
    text = metrics.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `sunspot_series` |"))
    metrics.write_text(text.replace(row + "\n", ""))
    assert reference.stale(tmp_path) == ["docs/metrics.md"]


def test_every_page_has_its_markers() -> None:
    found = {
        m["name"]
        for page in reference.PAGES
        for m in reference.MARKER.finditer((REPO / page).read_text())
    }
    assert found == set(reference.SECTIONS)


def _schema(name: str) -> dict:
    return json.loads((REPO / "schemas" / name).read_text())


def test_each_example_is_valid_against_its_schema(examples) -> None:
    for ex in examples:
        if ex.schema == DEAD_LETTER_HEADERS:
            jsonschema.validate(ex.headers, _schema(ex.schema))
        else:
            jsonschema.validate(ex.value, _schema(ex.schema))


def test_an_example_that_breaks_its_schema_is_caught(examples) -> None:
    """The validation is real: a forecast without its interval fails it."""
    forecast = next(ex for ex in examples if ex.schema == "forecast.json")
    broken = {k: v for k, v in forecast.value.items() if k != "lower"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _schema("forecast.json"))


def test_every_topic_with_a_schema_has_an_example(examples) -> None:
    wanted = {topic for topic, _, _ in MESSAGES.values()} | {reference.TOPICS.dead_letter}
    assert {ex.topic for ex in examples} == wanted
    assert {ex.schema for ex in examples} == {*MESSAGES, DEAD_LETTER_HEADERS}


def test_the_examples_come_from_a_working_run(examples) -> None:
    """The forecaster forecast and scored, the classifier answered, the dead letter says why."""
    by_topic = {ex.topic: ex for ex in examples}
    evaluation = by_topic[reference.TOPICS.evaluations].value
    assert evaluation["error"] == pytest.approx(evaluation["actual"] - evaluation["forecast"])
    assert by_topic[reference.TOPICS.dead_letter].headers["reason"] == "missing_field"
    prediction = by_topic[reference.TOPICS.classifier_predictions].value
    probabilities = prediction["probabilities"]
    assert prediction["predicted_class"] == probabilities.index(max(probabilities))


def test_the_configuration_covers_every_console_script() -> None:
    scripts = {name.split()[0] for name, _ in reference.PARSERS if not name.startswith("python -m")}
    assert scripts == set(console_scripts())
    # and the one command that is not in the wheel, the development broker
    assert "python -m devtools.broker" in {name for name, _ in reference.PARSERS}


def test_the_metrics_reference_holds_every_declared_family() -> None:
    families = reference.service_families()
    declared = {
        *metric_specs.FLEET_FAMILIES,
        *metric_specs.SERIES_FAMILIES,
        *metric_specs.BAND_FAMILIES,
        *metric_specs.SCORE_FAMILIES,
        *metric_specs.DRIFT_FAMILIES,
    }
    for spec in declared:
        name = f"{spec.name}_total" if spec.kind == metric_specs.COUNTER else spec.name
        assert families[name][0].labels == tuple(spec.labels), name
    assert families["sunspot_consumer_ready"][1] == "both"


def test_every_exit_code_is_told_once() -> None:
    codes = [code for code, _, _ in reference.EXIT_MEANINGS]
    assert codes == list(range(10))


def test_every_exit_constant_of_the_code_is_in_the_table() -> None:
    """A new `EXIT_NAME = <code>` in the services' code must be told in the table."""
    table = reference.exit_codes()
    for folder in ("sunspots", "consumer", "producer", "training"):
        for path in (REPO / folder).rglob("*.py"):
            for name, code in re.findall(r"^(EXIT_[A-Z_]+) = (\d+)", path.read_text(), re.M):
                assert f"{name}" in table and f"| {code} |" in table, f"{path.name}: {name}"
