"""Helpers for the monitoring tests: a real Prometheus server, PromQL names, the compose broker,
and the environment variables a command reads.

The Prometheus server is Debian's `prometheus` binary started on the project's own
monitoring/prometheus/prometheus.yml, rendered with only the targets (and, to keep the test
short, the intervals) replaced; the rule files are copied beside it unchanged.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
import subprocess
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from devtools.broker import BrokerError, LocalBroker, free_port
from support.http import get
from support.services import REPO, Service

PROMETHEUS_DIR = REPO / "monitoring" / "prometheus"
DASHBOARD = REPO / "monitoring" / "grafana" / "dashboards" / "sunspots.json"


# --- metrics ----------------------------------------------------------------------------------


def sample_value(text: str, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The value of sample `name{labels}` in an exposition, or None when it is absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(
                sample.labels.get(k) == v for k, v in (labels or {}).items()
            ):
                return sample.value
    return None


_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}


def exported_names(text: str) -> set[str]:
    """Every series name an exposition can produce, including families with no sample yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


# --- the commands' environment variables -----------------------------------------------------

_OPTION = re.compile(r"^  -")  # argparse lists each option from column 2
_ENV_MARKER = re.compile(r"\[env: ([A-Za-z0-9_]+)\]")


def flag_env(main: Callable[[list[str]], int], *args: str) -> dict[str, str]:
    """Flag -> the environment variable it falls back to, read from the `[env: NAME]` markers
    of `main([*args, "--help"])`: the services are configured by environment the way the
    commands themselves name it, so a renamed variable cannot leave a test behind."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        main([*args, "--help"])
    blocks: list[list[str]] = []  # an option's lines: its flags, then its wrapped help
    current: list[str] | None = None
    for line in out.getvalue().splitlines():
        if _OPTION.match(line):
            current = [line]
            blocks.append(current)
        elif current is not None and line.startswith("   "):
            current.append(line)
        else:
            current = None
    found: dict[str, str] = {}
    for block in blocks:
        invocation = re.split(r"\s{2,}", block[0].strip(), maxsplit=1)[0]
        marker = _ENV_MARKER.search(" ".join(" ".join(block).split()))
        if marker:
            for flag in re.findall(r"--[\w-]+", invocation):
                found[flag] = marker.group(1)
    assert found, f"no [env: NAME] markers in the help of {main.__module__} {' '.join(args)}"
    return found


# --- PromQL -----------------------------------------------------------------------------------

_PROMQL_WORDS = {
    "and",
    "or",
    "unless",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
}

# Grafana's template variables, replaced by values Prometheus accepts.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "5m",
    "$series": ".*",
}


def grafana_to_promql(expr: str) -> str:
    for variable, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


def promql_metric_names(expr: str) -> set[str]:
    """Metric names an expression selects (identifiers that are not functions or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range and subquery durations
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        before = text[match.start() - 1] if match.start() else " "
        if before.isdigit() or before == ".":
            continue  # the unit of a duration (5m) or the exponent of a number (1e3)
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group(0).lower() in _PROMQL_WORDS:
            continue
        names.add(match.group(0))
    return names


def dashboard_queries(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, expr) for every query of every panel, the annotations' and the template
    variables'."""
    dashboard = json.loads(path.read_text())
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    for annotation in dashboard.get("annotations", {}).get("list", []):
        if "expr" in annotation:
            queries.append((f"annotation {annotation['name']}", annotation["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        definition = variable.get("definition", "")
        match = re.fullmatch(r"label_values\((.+),\s*\w+\)", definition)
        if match:
            queries.append((f"variable {variable['name']}", match.group(1)))
    return queries


def rule_expressions() -> list[tuple[str, str]]:
    exprs = []
    for path in sorted((PROMETHEUS_DIR / "rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                exprs.append((rule.get("alert") or rule.get("record"), rule["expr"]))
    return exprs


# --- Prometheus -------------------------------------------------------------------------------


class PrometheusServer:
    """The real `prometheus` binary on the project's config, targets pointed at test ports."""

    def __init__(
        self,
        workdir: Path,
        port: int,
        targets: Mapping[str, str | list[str]],
        interval: str = "1s",
    ) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise AssertionError("prometheus not found: install Debian's prometheus package")
        self.port = port
        config = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
        # Only what a test machine needs differs: where the targets are, how often to scrape.
        config["global"].update(
            scrape_interval=interval, evaluation_interval=interval, scrape_timeout=interval
        )
        jobs = {job["job_name"] for job in config["scrape_configs"]}
        assert set(targets) <= jobs, f"no scrape jobs {set(targets) - jobs} in prometheus.yml"
        for job in config["scrape_configs"]:
            name = job["job_name"]
            address = targets.get(name, f"127.0.0.1:{port}" if name == "prometheus" else None)
            assert address, f"no test target for scrape job {name}"
            # No Docker DNS here: a job that finds its replicas by DNS gets the test's
            # addresses as static targets; its relabelling stays as it is.
            job.pop("dns_sd_configs", None)
            static = (job.get("static_configs") or [{}])[0]
            addresses = [address] if isinstance(address, str) else list(address)
            job["static_configs"] = [{**static, "targets": addresses}]
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        shutil.copytree(PROMETHEUS_DIR / "rules", workdir / "rules")
        command = [
            binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        self.process = Service(command, workdir / "prometheus.log", port).start()

    def wait_ready(self, timeout: float = 30.0) -> PrometheusServer:
        self.process.wait_ready(timeout, path="/-/ready")
        return self

    def api(self, path: str, **params: str) -> dict[str, Any]:
        query = urllib.parse.urlencode(params)
        status, body = get(self.port, f"/api/v1/{path}?{query}")
        payload = json.loads(body)
        payload["http_status"] = status
        return payload

    def query(self, expr: str) -> dict[str, Any]:
        return self.api("query", query=expr)

    def vector(self, expr: str) -> list[tuple[dict[str, str], float]]:
        payload = self.query(expr)
        assert payload["status"] == "success", f"{expr}: {payload}"
        return [(r["metric"], float(r["value"][1])) for r in payload["data"]["result"]]

    def stop(self) -> None:
        self.process.stop(20)


def names_of(items: Iterable[tuple[str, str]]) -> dict[str, set[str]]:
    """Metric name -> where it is used, for the (where, expr) pairs given."""
    used: dict[str, set[str]] = {}
    for where, expr in items:
        for name in promql_metric_names(grafana_to_promql(expr)):
            used.setdefault(name, set()).add(where)
    return used


# --- the compose file's Kafka settings on a real broker ---------------------------------------

# Variables the apache/kafka image's start-up reads itself instead of turning into properties.
_IMAGE_ONLY_ENV = {"KAFKA_VERSION", "KAFKA_LOG4J_ROOT_LOGLEVEL", "KAFKA_LOG4J_LOGGERS"}


def image_env_to_properties(env: Mapping[str, str]) -> dict[str, str]:
    """The apache/kafka image's rule: KAFKA_A_B -> a.b, `__` -> `_`, `___` -> `-`."""
    props = {}
    for key, value in env.items():
        if not key.startswith("KAFKA_") or key.endswith("_OPTS") or key in _IMAGE_ONLY_ENV:
            continue
        name = key[len("KAFKA_") :].lower()
        name = name.replace("___", "\0").replace("__", "\1").replace("_", ".")
        props[name.replace("\0", "-").replace("\1", "_")] = str(value)
    return props


def localize_listeners(props: dict[str, str], hosts: set[str]) -> dict[str, int]:
    """Point every listener of `props` at 127.0.0.1 on a free port; return name -> port."""
    ports: dict[str, int] = {}
    renamed: dict[str, str] = {}
    for item in props["listeners"].split(","):
        name, address = item.split("://")
        ports[name] = free_port()
        renamed[address.rsplit(":", 1)[1]] = str(ports[name])

    def rewrite(value: str) -> str:
        out = []
        for item in value.split(","):
            head, _, address = item.rpartition("://") if "://" in item else item.rpartition("@")
            host, port = address.rsplit(":", 1)
            host = "127.0.0.1" if host in hosts or host == "" else host
            sep = "://" if "://" in item else "@"
            out.append(f"{head}{sep}{host}:{renamed.get(port, port)}")
        return ",".join(out)

    for key in ("listeners", "advertised.listeners", "controller.quorum.voters"):
        props[key] = rewrite(props[key])
    return ports


class ComposeConfiguredBroker(LocalBroker):
    """The session harness's broker jars, configured from the compose file's `kafka` service.

    Its KAFKA_* variables become server.properties as the apache/kafka image does it, and
    storage is formatted with its CLUSTER_ID. Only what cannot hold outside a container
    changes: host names become 127.0.0.1, container ports free ports, log.dirs a temporary
    directory, and the heap and cleaner buffer shrink to test size.
    """

    def __init__(self, env: Mapping[str, str], hosts: set[str]) -> None:
        super().__init__(heap="512m")
        self.cluster_id = env["CLUSTER_ID"]
        self.props = image_env_to_properties(env)
        self.listener_ports = localize_listeners(self.props, hosts)
        self.props["log.dirs"] = str(self.workdir / "data")
        self.props.setdefault("log.cleaner.dedupe.buffer.size", "8388608")

    def listener(self, name: str) -> str:
        return f"127.0.0.1:{self.listener_ports[name]}"

    def _format(self, lib: Path) -> None:
        props = self.workdir / "server.properties"
        props.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        log4j = REPO / "devtools" / "broker" / "log4j2.properties"
        shutil.copy(log4j, self.workdir / "log4j2.properties")
        cmd = self._java(
            lib, "kafka.tools.StorageTool", "format", "-t", self.cluster_id, "-c", str(props)
        )
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise BrokerError(
                f"formatting with the compose settings failed:\n{done.stdout}{done.stderr}"
            )
        self._formatted = True
