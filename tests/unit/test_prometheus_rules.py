"""The Prometheus config and alert rules pass promtool, and the alerts fire on synthetic series.

`promtool` comes with Debian's `prometheus` package, which .ci/run installs. The rule tests in
monitoring/prometheus/tests/ feed synthetic series to the real rule engine (`promtool test
rules`), so "model worse than persistence" and "no forecasts" are proven to fire, and to stay
silent on series that should not alert.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "monitoring" / "prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = sorted((PROMETHEUS / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROMETHEUS / "tests").glob("*.yml"))

ALERTS = {
    "ConsumerDown",
    "NoForecasts",
    "ForecastWorseThanPersistence",
    "IntervalCoverageOutOfRange",
    "IntervalBandCoverageOutOfRange",
    "ForecasterDeadLettersRising",
    "ClassifierDeadLettersRising",
    "SunspotForecastDrift",
    "SunspotModelRejected",
    "SunspotChallengerBetter",
    "SunspotConsumerStalled",
    "SunspotConsumerRewinding",
    "SunspotConsumerRestoreSlow",
    "SunspotNoReadyConsumer",
}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's prometheus package (.ci/run does)")
    return path


def run(promtool: str, *args: str | Path) -> str:
    done = subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def alert_names(path: Path) -> set[str]:
    groups = yaml.safe_load(path.read_text())["groups"]
    return {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}


def test_config_is_valid_and_finds_the_rule_files(promtool: str) -> None:
    # check config also parses every rule file that rule_files matches.
    output = run(promtool, "check", "config", CONFIG)
    assert f"SUCCESS: {len(RULES)} rule files found" in output


def test_rules_are_valid(promtool: str) -> None:
    assert RULES, "no rule files in monitoring/prometheus/rules"
    run(promtool, "check", "rules", *RULES)
    names = set().union(*(alert_names(path) for path in RULES))
    assert names == ALERTS


def test_alerts_fire_on_synthetic_series(promtool: str) -> None:
    assert RULE_TESTS, "no rule tests in monitoring/prometheus/tests"
    output = run(promtool, "test", "rules", *RULE_TESTS)
    assert "SUCCESS" in output


def test_every_alert_has_a_rule_test() -> None:
    tested = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                if check.get("exp_alerts"):
                    tested.add(check["alertname"])
    assert tested == ALERTS, ALERTS - tested


def test_a_broken_rule_test_fails(promtool: str, tmp_path: Path) -> None:
    # The rule tests are only evidence if a wrong expectation makes promtool fail.
    (tmp_path / "rules").mkdir()
    for path in RULES:
        shutil.copy(path, tmp_path / "rules" / path.name)
    case = yaml.safe_load(RULE_TESTS[0].read_text())
    case["rule_files"] = [f"rules/{path.name}" for path in RULES]
    first = next(t for t in case["tests"] if any(c.get("exp_alerts") for c in t["alert_rule_test"]))
    for check in first["alert_rule_test"]:
        check["exp_alerts"] = []
    case["tests"] = [first]
    broken = tmp_path / "broken_test.yml"
    broken.write_text(yaml.safe_dump(case))
    done = subprocess.run(
        [promtool, "test", "rules", str(broken)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0 and "FAILED" in done.stdout + done.stderr
