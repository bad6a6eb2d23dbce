"""The Grafana dashboard without Grafana: its layout, the metrics its queries name, and the
Models row the model lifecycle is watched with.

What Prometheus makes of the queries is checked against a real server and live services in
tests/integration/test_monitoring.py; here only what needs neither: that no two panels cover
the same cells, that every metric a panel, an annotation, the series variable or an alert rule
names is one consumer/metrics.py (or consumer/lag.py, consumer/loop_metrics.py) declares, and that the
lifecycle's and the loop's panels show what they say.
"""

from __future__ import annotations

import json
import re
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from consumer.forecaster import Forecaster
from consumer.health import Health
from consumer.lag import LagCollector
from consumer.loop_metrics import LoopMetrics
from consumer.metrics import ClassifierMetrics, ForecasterMetrics
from sunspots.domain.artifact import DEFAULT_FORECASTER, load_forecaster
from sunspots.domain.drift import DriftPolicy
from sunspots.kafka.settings import Topics
from tests.integration.monitoring_helpers import (
    DASHBOARD,
    dashboard_queries,
    exported_names,
    names_of,
    rule_expressions,
)

PanelJson = dict[str, Any]
COMPOSE_DOC = Path(__file__).resolve().parents[2] / "docs" / "compose.md"


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panel(dashboard: dict[str, Any], title: str) -> PanelJson:
    (found,) = [p for p in dashboard["panels"] if p["title"] == title]
    return found


def exprs(panel: PanelJson) -> list[str]:
    return [target["expr"] for target in panel["targets"]]


def row_panels(dashboard: dict[str, Any], title: str) -> list[PanelJson]:
    """The panels under row `title`, up to the next row."""
    panels = dashboard["panels"]
    start = next(i for i, p in enumerate(panels) if p["type"] == "row" and p["title"] == title)
    rest = panels[start + 1 :]
    end = next((i for i, p in enumerate(rest) if p["type"] == "row"), len(rest))
    return rest[:end]


class NoPartitions:
    """A watchdog with nothing assigned: the lag collector still declares its families."""

    stalls_total = 0

    def snapshot(self) -> list:
        return []


def declared_names() -> set[str]:
    """Every series name the services' metric declarations can export, `up` (Prometheus') too:
    the forecaster's fleet-wide metrics and its collector's per-series families (declared
    even while it holds no series)."""
    registry = CollectorRegistry()
    Forecaster(load_forecaster(DEFAULT_FORECASTER), Topics(), ForecasterMetrics(registry))
    ClassifierMetrics(registry)
    LagCollector(NoPartitions(), registry)
    LoopMetrics(registry, Health())
    return exported_names(generate_latest(registry).decode()) | {"up"}


def test_no_two_panels_cover_the_same_cells(dashboard: dict[str, Any]) -> None:
    def cells(p: PanelJson) -> set[tuple[int, int]]:
        g = p["gridPos"]
        return {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }

    for a, b in combinations(dashboard["panels"], 2):
        assert not cells(a) & cells(b), f"{a['title']!r} overlaps {b['title']!r}"


def test_every_query_names_only_declared_metrics() -> None:
    used = names_of([*dashboard_queries(), *rule_expressions()])
    missing = {name: sorted(where) for name, where in used.items() if name not in declared_names()}
    assert not missing, f"not declared in consumer/metrics.py: {missing}"
    # Not vacuous: the lifecycle's metrics are among those checked, the annotation's included.
    assert {
        "sunspot_model_info",
        "sunspot_model_skill",
        "sunspot_drift_statistic",
        "sunspot_drift_alarms_total",
        "sunspot_model_rejections_created",
        "sunspot_series_evaluations_total",
        "sunspot_interval_covered_total",
    } <= set(used)
    assert any(where.startswith("annotation ") for where in set().union(*used.values()))


def test_a_misspelt_metric_is_caught() -> None:
    used = names_of([("panel", "sum(sunspot_model_switch_total)")])
    assert set(used) - declared_names() == {"sunspot_model_switch_total"}


def test_the_served_model_panel_names_version_and_role(dashboard: dict[str, Any]) -> None:
    (target,) = panel(dashboard, "Model version and role")["targets"]
    assert target["expr"] == "max by (model_version, role) (sunspot_model_info)"
    assert "{{role}}" in target["legendFormat"] and "{{model_version}}" in target["legendFormat"]


def test_the_models_row_shows_each_lifecycle_metric(dashboard: dict[str, Any]) -> None:
    models = row_panels(dashboard, "Models")
    shown = {name for p in models for name in names_of((p["title"], e) for e in exprs(p))}
    assert {
        "sunspot_model_info",
        "sunspot_model_rmse",
        "sunspot_model_skill",
        "sunspot_model_interval_coverage",
        "sunspot_model_switches_total",
        "sunspot_model_rejections_total",
        "sunspot_model_promotions_total",
        "sunspot_drift_statistic",
    } <= shown
    table = panel(dashboard, "Models running")
    assert table["type"] == "table"
    assert all(t.get("format") == "table" and t.get("instant") for t in table["targets"])
    assert "by (instance, role, model_version)" in exprs(table)[0]
    # Each model's line is told apart by role and version.
    for title in (
        "Rolling RMSE by model: champion vs challenger",
        "Skill against persistence by model",
        "90 % interval coverage by model",
    ):
        first = panel(dashboard, title)["targets"][0]
        assert "{{role}}" in first["legendFormat"] and "{{model_version}}" in first["legendFormat"]
    rejections = panel(dashboard, "Model switches, rejections by reason, promotions")
    assert any("by (reason)" in e for e in exprs(rejections))


def test_the_drift_panel_draws_the_detectors_threshold(dashboard: dict[str, Any]) -> None:
    drift = panel(dashboard, "Drift statistic (Page-Hinkley)")
    assert "{{role}}" in drift["targets"][0]["legendFormat"]
    defaults = drift["fieldConfig"]["defaults"]
    assert defaults["custom"]["thresholdsStyle"]["mode"] != "off"
    steps = [s["value"] for s in defaults["thresholds"]["steps"] if s["value"] is not None]
    assert steps == [DriftPolicy().threshold]


def test_drift_alarms_are_annotated_with_their_role(dashboard: dict[str, Any]) -> None:
    (annotation,) = [a for a in dashboard["annotations"]["list"] if a["name"] == "Drift alarms"]
    assert annotation["enable"] is True
    assert (
        annotation["datasource"]["uid"] == panel(dashboard, "Models running")["datasource"]["uid"]
    )
    # The fleet-wide count: every series' alarm is marked, whichever are exported one by one.
    assert "sunspot_drift_alarms_total" in annotation["expr"]
    assert "{{role}}" in annotation["textFormat"]
    assert set(annotation["tagKeys"].split(",")) == {"role"}


def test_the_fleet_row_aggregates_every_series(dashboard: dict[str, Any]) -> None:
    """Its panels read only fleet-wide metrics (no `series` label, no $series filter), and
    cover what an operator of many series watches."""
    fleet = row_panels(dashboard, "Fleet: all series")
    for p in fleet:
        assert not any("series=" in e or "$series" in e for e in exprs(p)), p["title"]
    shown = {name for p in fleet for name in names_of((p["title"], e) for e in exprs(p))}
    assert {
        "sunspot_series",
        "sunspot_drift_detected_series",
        "sunspot_drift_alarms_total",
        "sunspot_interval_covered_total",
        "sunspot_interval_evaluations_total",
        "sunspot_model_squared_error_total",
        "sunspot_model_persistence_squared_error_total",
        "sunspot_model_covered_total",
        "sunspot_model_evaluations_total",
        "sunspot_forecast_abs_error_bucket",
    } <= shown
    coverage = panel(dashboard, "90 % interval coverage by activity band, all series")
    assert (
        "by (band)" in exprs(coverage)[0] and coverage["targets"][0]["legendFormat"] == "{{band}}"
    )
    rmse = panel(dashboard, "RMSE by model, all series")
    assert "by (role, model_version)" in exprs(rmse)[0]


def test_the_consumer_progress_row_shows_each_loop_metric(dashboard: dict[str, Any]) -> None:
    progress = row_panels(dashboard, "Consumer progress")
    shown = {name for p in progress for name in names_of((p["title"], e) for e in exprs(p))}
    assert {
        "sunspot_consumer_lag",
        "sunspot_consumer_stalled",
        "sunspot_consumer_rewinds_total",
        "sunspot_consumer_aborts_total",
        "sunspot_consumer_fenced_total",
        "sunspot_consumer_restore_seconds_sum",
        "sunspot_consumer_restore_seconds_count",
        "sunspot_consumer_restored_records_total",
        "sunspot_consumer_batch_seconds_bucket",
        "sunspot_consumer_publish_step_seconds_bucket",
        "sunspot_consumer_ready",
    } <= shown
    # Rewinds are told apart by cause, the transaction's steps by step, both per service.
    rewinds = panel(dashboard, "Rewinds, aborts and fencing")
    assert (
        "by (job, cause)" in exprs(rewinds)[0]
        and "{{cause}}" in rewinds["targets"][0]["legendFormat"]
    )
    (steps,) = panel(dashboard, "Transaction steps, p99")["targets"]
    assert "by (le, job, step)" in steps["expr"] and "{{step}}" in steps["legendFormat"]


def documented_rows(markdown: str) -> list[str]:
    """The rows docs/compose.md's dashboard section lists: its numbered `N. **Row**` items."""
    section = markdown.split("## The dashboard\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\d+\. \*\*(.+?)\*\*", section, flags=re.MULTILINE)


def test_docs_compose_lists_the_rows_in_the_dashboards_order(dashboard: dict[str, Any]) -> None:
    # Grafana draws rows top to bottom by their grid position, not by their place in the JSON.
    rows = sorted(
        (p for p in dashboard["panels"] if p["type"] == "row"), key=lambda p: p["gridPos"]["y"]
    )
    assert documented_rows(COMPOSE_DOC.read_text()) == [row["title"] for row in rows]


def test_a_row_out_of_order_in_the_docs_is_caught() -> None:
    # The check is evidence only if the docs' old order (Instances next to last, the interval
    # row last) fails it.
    text = COMPOSE_DOC.read_text()
    listed = documented_rows(text)
    old = [r for r in listed if r not in ("Instances", "Prediction interval by solar activity")]
    old[-1:-1] = ["Instances"]
    old.append("Prediction interval by solar activity")
    items = "".join(f"{n}. **{row}**: …\n" for n, row in enumerate(old, 1))
    assert documented_rows(f"## The dashboard\n\n{items}\n## Alerts\n") == old
    assert old != listed
