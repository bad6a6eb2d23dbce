"""docker-compose.yml, the Dockerfile and the monitoring files agree with the spec and the code.

No Docker engine runs here, so the compose file is checked the ways that need none: against
the Compose Specification's JSON schema (vendored in docker/compose-spec.json, see
docker/README.md), and against the code it starts: the console scripts in pyproject.toml, the
`[env: NAME]` variables each command's `--help` declares, the ports Prometheus scrapes, the
files it mounts and the Dockerfile stages it builds.
"""

from __future__ import annotations

import base64
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from consumer.modes import MODES
from devtools.broker import KAFKA_VERSION, free_port
from producer.__main__ import build_parser as producer_parser
from sunspots.kafka.settings import TOPIC_ENV
from sunspots.process.cli import ENV_PREFIX, KAFKA_ENV_PREFIX

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
LOCAL_DATA_OVERRIDE = REPO / "docker" / "compose.local-data.yml"
CLUSTER_ENV = REPO / "docker" / "cluster.env"
SCHEMA = REPO / "docker" / "compose-spec.json"
PROMETHEUS_CONFIG = REPO / "monitoring" / "prometheus" / "prometheus.yml"
GRAFANA = REPO / "monitoring" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sunspots.json"


def _load_healthcheck() -> Any:
    """docker/healthcheck.py is a script, not a package module: load it from its path."""
    spec = importlib.util.spec_from_file_location("healthcheck", REPO / "docker" / "healthcheck.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


healthcheck = _load_healthcheck()

# Variables that are read by the runtime rather than by our flags: Python itself.
RUNTIME_ENV = {"PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}

_VAR = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\})")


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}, $$."""

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg")
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == "-":
            return arg if value is None else value
        if op in (":?", "?"):
            missing = not value if op == ":?" else value is None
            if missing:
                raise ValueError(f"required variable {name} is not set: {arg}")
            return value or ""
        return value or ""

    return _VAR.sub(sub, text)


def _interpolate_tree(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, dict):
        return {key: _interpolate_tree(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(value, env) for value in node]
    return node


# What a user must set: compose refuses to start without it (see test_grafana_...).
USER_ENV = {"SUNSPOTS_GRAFANA_PASSWORD": "a password of the user's"}


def load_compose(path: Path = COMPOSE, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The file as compose sees it: YAML parsed and merged, then string values interpolated
    (here with only USER_ENV and `env`, so every default applies)."""
    return _interpolate_tree(yaml.safe_load(path.read_text()), {**USER_ENV, **(env or {})})


def validate(document: dict[str, Any], schema: dict[str, Any]) -> None:
    # The vendored schema declares draft 2019-09.
    jsonschema.Draft201909Validator(schema).validate(document)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text())


def our_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Services whose image is built from our Dockerfile."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command(service: dict[str, Any]) -> list[str]:
    """The console-script invocation a service runs, also from inside a `sh -c` loop."""
    cmd = service["command"]
    cmd = cmd.split() if isinstance(cmd, str) else list(cmd)
    if cmd[:2] == ["sh", "-c"]:
        scripts = "|".join(map(re.escape, console_scripts()))
        match = re.search(rf"\b(?:{scripts})\b[^;&|]*", cmd[2])
        assert match, f"no console script in {cmd[2]!r}"
        return match.group(0).split()
    return cmd


# --- the Compose Specification ----------------------------------------------------------------


def test_compose_file_validates_against_the_compose_spec(compose, schema) -> None:
    validate(compose, schema)


def test_local_data_override_validates_and_requires_a_path(schema) -> None:
    merged = load_compose(
        LOCAL_DATA_OVERRIDE, {"SUNSPOTS_SILSO_CSV": "../shared/data/SN_d_tot_V2.0.csv"}
    )
    validate(merged, schema)
    assert set(merged["services"]) <= set(load_compose()["services"])
    for service in merged["services"].values():
        # The mounted file is what the service reads.
        target = service["volumes"][0].split(":")[1]
        assert environment(service)["SUNSPOTS_DATA"] == target
    with pytest.raises(ValueError, match="SUNSPOTS_SILSO_CSV"):
        load_compose(LOCAL_DATA_OVERRIDE, {})


def test_the_schema_is_strict_enough_to_catch_a_typo(compose, schema) -> None:
    # Guards the guard: a misspelt key must fail, or the validation above proves nothing.
    broken = json.loads(json.dumps(compose))
    broken["services"]["forecaster"]["healthcheck"]["intervall"] = "5s"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, schema)
    broken = json.loads(json.dumps(compose))
    broken["services"]["forecaster"]["depends_on"]["kafka"]["condition"] = "service_ready"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken, schema)


# --- images and the Dockerfile ----------------------------------------------------------------


def dockerfile_stages(path: Path) -> dict[str, dict[str, Any]]:
    """Stage name -> {"from": parent, "lines": [instructions]} (continuations joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.IGNORECASE)
        if match:
            current = {"from": match.group(1), "lines": []}
            stages[match.group(2) or f"stage{len(stages)}"] = current
        elif current is not None:
            current["lines"].append(line)
    return stages


def stage_ancestry(stages: dict[str, dict[str, Any]], target: str) -> set[str]:
    """Every stage `target` is built from: its FROM chain and the stages it copies from."""
    seen: set[str] = set()
    todo = [target]
    while todo:
        name = todo.pop()
        if name in seen or name not in stages:
            continue
        seen.add(name)
        todo.append(stages[name]["from"])
        for line in stages[name]["lines"]:
            todo += re.findall(r"--from=(\S+)", line)
    return seen


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_built_services_use_existing_dockerfile_targets(compose) -> None:
    built = our_services(compose)
    assert {"topics", "forecaster", "classifier", "producer", "classifier-client", "train"} <= set(
        built
    )
    for name, service in built.items():
        build = service["build"]
        context = REPO / build["context"]
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        stages = dockerfile_stages(dockerfile)
        assert build["target"] in stages, f"{name}: no stage {build['target']} in {dockerfile}"


def test_images_run_as_a_non_root_user_on_a_slim_python_base() -> None:
    stages = dockerfile_stages(REPO / "docker" / "Dockerfile")
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"ARG PYTHON_IMAGE=python:[\d.]+-slim", text)
    for target in ("serve", "train"):
        users = [line.split()[1] for line in stages[target]["lines"] if line.startswith("USER ")]
        assert users and users[-1] not in {"root", "0"}, f"{target} must end as a non-root USER"


INSTRUCTIONS = {
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "HEALTHCHECK",
    "LABEL",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
}


def test_dockerfile_instructions_are_known_and_processes_get_signals() -> None:
    stages = dockerfile_stages(REPO / "docker" / "Dockerfile")
    for name, stage in stages.items():
        for line in stage["lines"]:
            instruction = line.split()[0].upper()
            assert instruction in INSTRUCTIONS, f"{name}: unknown instruction in {line!r}"
            # Exec form: the service is PID 1 and receives SIGTERM from `docker stop`, so the
            # consumers finish their batch and commit instead of being killed after the timeout.
            if instruction in {"CMD", "ENTRYPOINT"}:
                json.loads(line.split(None, 1)[1])
            if instruction == "HEALTHCHECK":
                json.loads(line[line.index("CMD") + 3 :])
    for name, service in load_compose()["services"].items():
        if "command" in service:
            assert isinstance(service["command"], list), f"{name}: use the exec (list) form"


def test_serving_image_carries_no_tensorflow() -> None:
    stages = dockerfile_stages(REPO / "docker" / "Dockerfile")
    serve = stage_ancestry(stages, "serve")
    assert "build-train" not in serve
    for name in serve:
        for line in stages[name]["lines"]:
            assert "[train]" not in line and "tensorflow" not in line.lower(), (name, line)
    # ...while the training image does install the extra.
    train_lines = [
        line for name in stage_ancestry(stages, "train") for line in stages[name]["lines"]
    ]
    assert any("[train]" in line for line in train_lines)


def test_dockerfile_copies_only_files_that_exist_and_are_not_ignored() -> None:
    stages = dockerfile_stages(REPO / "docker" / "Dockerfile")
    ignored = dockerignore_patterns()
    copies = [
        line.split()[1:]
        for stage in stages.values()
        for line in stage["lines"]
        if line.startswith("COPY ") and "--from=" not in line
    ]
    assert copies
    for args in copies:
        sources = [a for a in args if not a.startswith("--")][:-1]
        for source in sources:
            path = REPO / source.rstrip("/")
            assert path.exists(), f"COPY {source}: not in the repo"
            top = source.rstrip("/").split("/")[0]
            assert top not in ignored, f"COPY {source}: excluded by .dockerignore"


def test_default_model_paths_are_artifacts_the_serving_image_contains(compose) -> None:
    # The Dockerfile copies models/ to /app/models/; the package's own default path is relative
    # to a source checkout, so compose names the files explicitly.
    assert "COPY models/ /app/models/" in (REPO / "docker" / "Dockerfile").read_text()
    for service, variable in (
        ("forecaster", "SUNSPOTS_MODEL"),
        ("classifier", "SUNSPOTS_CLASSIFIER_MODEL"),
    ):
        path = environment(compose["services"][service])[variable]
        assert path.startswith("/app/models/"), f"{service}: {variable}={path}"
        artifact = REPO / "models" / path.removeprefix("/app/models/")
        assert artifact.is_file(), f"{service}: {artifact} is not in the repo"
        weights = json.loads(artifact.read_text())["weights_file"]
        assert (artifact.parent / weights).is_file(), f"{service}: {weights} missing"


def test_the_image_install_step_builds_from_the_copied_files_alone(tmp_path: Path) -> None:
    # What `pip install .` sees in the image: only the files the `source` stage copies. Built
    # offline with the venv's own setuptools (--no-build-isolation), so no registry is needed.
    stages = dockerfile_stages(REPO / "docker" / "Dockerfile")
    context = tmp_path / "context"
    context.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.csv", "*.egg-info")
    for line in stages["source"]["lines"]:
        if not line.startswith("COPY "):
            continue
        *sources, _ = line.split()[1:]
        for source in sources:
            path = REPO / source.rstrip("/")
            if path.is_dir():
                shutil.copytree(path, context / source.rstrip("/"), ignore=ignore)
            else:
                shutil.copy(path, context / source)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(context),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"the package does not build from the copied files:\n{done.stderr}"
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        scripts = dict(
            (part.strip() for part in line.split("=", 1))
            for line in archive.read(entry_points).decode().splitlines()
            if "=" in line
        )
    assert scripts == console_scripts()
    for target in scripts.values():
        module = target.split(":")[0].replace(".", "/")
        assert f"{module}.py" in names or f"{module}/__init__.py" in names, target
    assert not [n for n in names if n.endswith(".csv")]
    # The broker harness is a development tool (devtools/), never shipped.
    assert not [n for n in names if n.startswith("devtools/") or "/broker/" in n]


def test_silso_data_is_never_sent_to_the_docker_build() -> None:
    assert "**/*.csv" in dockerignore_patterns()


def test_third_party_images_are_pinned(compose) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), f"{name}: pin {image}"


def test_kafka_image_matches_the_broker_the_tests_run(compose) -> None:
    tag = compose["services"]["kafka"]["image"].split(":")[1]
    assert tag.split(".")[:2] == KAFKA_VERSION.split(".")[:2]


# --- commands and environment variables -------------------------------------------------------


@cache
def console_scripts() -> dict[str, str]:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    return pyproject["project"]["scripts"]


@cache
def declared_env(script: str, args: tuple[str, ...]) -> frozenset[str]:
    """The `[env: NAME]` markers of `<script> <args> --help`, run through its entry point."""
    module, func = console_scripts().get(script, script).split(":")
    # The serving commands must start without TensorFlow, which their image does not carry.
    block = "" if script == "sunspots-train" else "sys.modules['tensorflow'] = None; "
    code = (
        f"import sys; {block}sys.argv[0] = {script!r}; "
        f"from {module} import {func} as m; sys.exit(m())"
    )
    env = {k: v for k, v in os.environ.items() if k not in _all_compose_env()}
    env["COLUMNS"] = "200"
    done = subprocess.run(
        [sys.executable, "-c", code, *args, "--help"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, f"{script} {' '.join(args)} --help failed:\n{done.stderr}"
    # argparse wraps help text; a marker may straddle a line break.
    flat = " ".join(done.stdout.split())
    return frozenset(re.findall(r"\[env: ([A-Z0-9_]+)\]", flat))


@cache
def _all_compose_env() -> frozenset[str]:
    compose = load_compose()
    return frozenset(k for svc in compose["services"].values() for k in environment(svc))


def test_commands_are_console_scripts_that_accept_their_arguments(compose) -> None:
    for name, service in our_services(compose).items():
        script, *args = command(service)
        assert script in console_scripts(), f"{name}: {script} is not in [project.scripts]"
        # Runs `<command> --help` through the real entry point: the subcommand must exist.
        assert declared_env(script, tuple(args)), f"{name}: {script} declares no env vars"


def test_every_environment_variable_is_one_the_command_reads(compose) -> None:
    for name, service in our_services(compose).items():
        script, *args = command(service)
        known = declared_env(script, tuple(args)) | RUNTIME_ENV
        unknown = set(environment(service)) - known
        assert not unknown, f"{name}: {sorted(unknown)} are not read by `{script} {' '.join(args)}`"


def test_the_producer_resumes_so_a_recreated_container_sends_no_day_twice(
    compose, monkeypatch
) -> None:
    # A second `docker compose up --build -d` recreates the producer: without --resume it
    # replays from SUNSPOTS_START again and every day already on the topic is a dead letter.
    producer = compose["services"]["producer"]
    value = environment(producer)["SUNSPOTS_RESUME"]
    monkeypatch.setenv("SUNSPOTS_RESUME", value)
    assert producer_parser().parse_args([]).resume is True, value
    # Overridable from .env or the shell, like the producer's other settings.
    raw = yaml.safe_load(COMPOSE.read_text())["services"]["producer"]["environment"]
    assert raw["SUNSPOTS_RESUME"] == "${SUNSPOTS_RESUME:-true}"


def test_the_producer_restarts_only_after_a_failure_and_a_bounded_number_of_times(
    compose,
) -> None:
    # A replay that ended (exit 0) stays ended; a failed one resumes, at most five times, so a
    # refused setting (exit 2) does not restart for ever.
    assert compose["services"]["producer"]["restart"] == "on-failure:5"


def compose_variables(*paths: Path) -> set[str]:
    """The variables the compose files interpolate (`${NAME...}`): what `.env` can set."""
    return {
        m.group("name")
        for path in paths
        for m in _VAR.finditer(path.read_text())
        if m.group("name")
    }


def documented_settings(markdown: str) -> set[str]:
    """The variables in the first column of docs/compose.md's Settings table."""
    section = markdown.split("## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z_]+)`", row.split("|")[1])}


def test_docs_list_exactly_the_variables_compose_passes_on() -> None:
    # Only these reach a container; a `.env` line for any other changes nothing.
    used = compose_variables(COMPOSE, LOCAL_DATA_OVERRIDE)
    doc = (REPO / "docs" / "compose.md").read_text()
    assert documented_settings(doc) == used
    # A row taken away fails the check.
    without = "\n".join(
        line for line in doc.splitlines() if not line.startswith("| `SUNSPOTS_RESUME`")
    )
    assert documented_settings(without) == used - {"SUNSPOTS_RESUME"}


def test_the_projects_variables_share_one_prefix() -> None:
    # Our services' variables are SUNSPOTS_* or Kafka's KAFKA_*; so are the knobs the compose
    # files interpolate, but for what the broker image itself reads (KAFKA_PORT is the host
    # port of its listener).
    raw = yaml.safe_load(COMPOSE.read_text())
    for name, service in our_services(raw).items():
        for key in environment(service):
            assert key.startswith((ENV_PREFIX, KAFKA_ENV_PREFIX)) or key in RUNTIME_ENV, (
                f"{name}: {key}"
            )
    for path in (COMPOSE, LOCAL_DATA_OVERRIDE):
        for match in _VAR.finditer(path.read_text()):
            knob = match.group("name")
            if knob:
                assert knob.startswith(ENV_PREFIX) or knob == "KAFKA_PORT", f"{path.name}: {knob}"
    for knob in cluster_env():
        assert knob.startswith(ENV_PREFIX) or knob == "COMPOSE_PROFILES", f"cluster.env: {knob}"


def test_every_service_uses_the_same_topic_names(compose) -> None:
    values: dict[str, set[str]] = {}
    for service in our_services(compose).values():
        for key, value in environment(service).items():
            if key in TOPIC_ENV.values():
                values.setdefault(key, set()).add(value)
    assert set(values) == set(TOPIC_ENV.values())
    assert all(len(v) == 1 for v in values.values()), values


def kafka_probe(service: dict[str, Any]) -> tuple[str, str]:
    """A Kafka node's healthcheck: (bash script, the addresses it probes)."""
    test = service["healthcheck"]["test"]
    assert test[:3] == ["CMD", "bash", "-c"] and len(test) == 5, test
    return test[3], test[4]


def cluster_env() -> dict[str, str]:
    """docker/cluster.env: the variables that turn the compose Kafka into three nodes."""
    lines = CLUSTER_ENV.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def kafka_nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The Kafka services, by name."""
    return {name: svc for name, svc in compose["services"].items() if name.startswith("kafka")}


def active(compose: dict[str, Any], profiles: set[str]) -> dict[str, Any]:
    """The file with only the services `up` starts with these profiles."""
    services = {
        name: svc
        for name, svc in compose["services"].items()
        if not svc.get("profiles") or profiles & set(svc["profiles"])
    }
    return {**compose, "services": services}


def _listeners(value: str) -> dict[str, str]:
    """`NAME://host:port,...` -> {NAME: host:port}."""
    return dict(item.split("://") for item in value.split(","))


SETUPS = {
    "single node": ({}, set()),
    "cluster profile": (cluster_env(), {"cluster"}),
}


@pytest.mark.parametrize("setup", SETUPS)
def test_services_reach_kafka_on_an_advertised_listener(setup: str) -> None:
    env, profiles = SETUPS[setup]
    compose = load_compose(env=env)
    running = active(compose, profiles | set(env.get("COMPOSE_PROFILES", "").split(",")) - {""})
    nodes = {name: environment(svc) for name, svc in kafka_nodes(running).items()}

    def service(name: str) -> dict[str, Any]:
        return running["services"][name]

    assert len(nodes) == (3 if profiles else 1), sorted(nodes)
    internal = set()
    for name, kafka in nodes.items():
        advertised = _listeners(kafka["KAFKA_ADVERTISED_LISTENERS"])
        bound = {n: a.rsplit(":", 1)[1] for n, a in _listeners(kafka["KAFKA_LISTENERS"]).items()}
        for listener, addr in advertised.items():
            assert bound[listener] == addr.rsplit(":", 1)[1], f"{name}: {listener} moved port"
        # The advertised host is the container's host name; the host port is the bound one.
        assert advertised["INTERNAL"].split(":")[0] == service(name)["hostname"]
        assert [p.split(":")[1] for p in service(name)["ports"]] == [
            advertised["EXTERNAL"].rsplit(":", 1)[1]
        ], name
        assert advertised["INTERNAL"] in kafka_probe(service(name))[1].split(",")
        internal.add(advertised["INTERNAL"])
        protocols = dict(
            item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
        )
        assert set(protocols) == set(bound)
        cluster_id = kafka["CLUSTER_ID"]
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16 and len(cluster_id) == 22
    # The quorum is exactly these nodes, at their controller listeners.
    voters = {
        v.split("@")[0]: v.split("@")[1]
        for v in nodes["kafka"]["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    }
    assert len({k["KAFKA_CONTROLLER_QUORUM_VOTERS"] for k in nodes.values()}) == 1
    assert len({k["CLUSTER_ID"] for k in nodes.values()}) == 1
    for name, kafka in nodes.items():
        controller = _listeners(kafka["KAFKA_LISTENERS"])[kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]]
        assert (
            voters[kafka["KAFKA_NODE_ID"]]
            == f"{service(name)['hostname']}:{controller.split(':')[1]}"
        )
    assert len(voters) == len(nodes)
    # Replication the nodes can hold; a write survives one lost node when there are three.
    replicas = {int(k["KAFKA_DEFAULT_REPLICATION_FACTOR"]) for k in nodes.values()}
    in_sync = {int(k["KAFKA_MIN_INSYNC_REPLICAS"]) for k in nodes.values()}
    assert replicas == {len(nodes)} and in_sync == {max(1, len(nodes) - 1)}
    for kafka in nodes.values():
        assert int(kafka["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == len(nodes)
        assert int(kafka["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == max(1, len(nodes) - 1)
    # Node 1's healthcheck waits for all the nodes, since everything depends on it alone.
    assert set(kafka_probe(service("kafka"))[1].split(",")) == internal
    for name, app in our_services(running).items():
        if name == "train":
            continue
        bootstrap = set(environment(app)["KAFKA_BOOTSTRAP_SERVERS"].split(","))
        assert bootstrap == internal, f"{name}: {bootstrap} are not the nodes' listeners"


def test_the_cluster_profile_needs_its_settings(schema) -> None:
    """Without docker/cluster.env the extra nodes would not be voters of node 1's quorum:
    they are started only by the profile, and the file names it."""
    merged = load_compose(env=cluster_env())
    validate(merged, schema)
    assert cluster_env()["COMPOSE_PROFILES"] == "cluster"
    extra = [n for n, svc in kafka_nodes(load_compose()).items() if svc.get("profiles")]
    assert extra == ["kafka-2", "kafka-3"]
    assert all(load_compose()["services"][n]["profiles"] == ["cluster"] for n in extra)
    # The single node keeps its defaults: one voter, one replica.
    single = environment(load_compose()["services"]["kafka"])
    assert single["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@kafka:29093"
    assert single["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "1"


# --- health, ordering, ports ------------------------------------------------------------------


def test_depends_on_conditions_can_be_met(compose) -> None:
    services = compose["services"]
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    for name, service in services.items():
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            target = services[dep]
            check = target.get("healthcheck") or {}
            if spec["condition"] == "service_healthy":
                has_check = check.get("test") or ("build" in target and "HEALTHCHECK" in dockerfile)
                assert has_check and not check.get("disable"), f"{dep} has no healthcheck"
            if spec["condition"] == "service_completed_successfully":
                # A service that restarts never completes.
                assert target.get("restart", "no") == "no", f"{dep} must not restart"
                assert "profiles" not in target, f"{dep} is not started by default"


SCALABLE = ("forecaster", "classifier")


def test_consumers_scale_without_clashing(compose) -> None:
    """`--scale forecaster=N` must give N distinct instances: no fixed host name, container
    name, instance id or host port, so each replica's instance id is its own host name."""
    for name in SCALABLE:
        service = compose["services"][name]
        env = environment(service)
        for key in ("hostname", "container_name", "ports"):
            assert key not in service, f"{name}: {key} is the same for every replica"
        assert "SUNSPOTS_INSTANCE_ID" not in env, f"{name}: every replica would share it"
        port = env["SUNSPOTS_METRICS_PORT"]
        assert [str(p) for p in service["expose"]] == [port], f"{name}: expose {port}"
        # docker/healthcheck.py reads SUNSPOTS_METRICS_PORT itself.
        assert service["healthcheck"]["test"] == ["CMD", "python", "/app/healthcheck.py"]
        assert service["restart"] == "unless-stopped"  # a restart keeps the host name
    assert (
        "COPY docker/healthcheck.py /app/healthcheck.py"
        in (REPO / "docker" / "Dockerfile").read_text()
    )
    for name in ("producer", "topics", "train", "classifier-client"):
        assert compose["services"][name]["healthcheck"] == {"disable": True}, name


def test_the_instance_id_defaults_to_the_host_name() -> None:
    # What a replica gets when compose sets no SUNSPOTS_INSTANCE_ID.
    env = {k: v for k, v in os.environ.items() if k != "SUNSPOTS_INSTANCE_ID"}
    code = (
        "import socket, sys; from consumer.config import build_parser; "
        "args = build_parser().parse_args(['forecast']); "
        "sys.exit(0 if args.instance_id == socket.gethostname() else 1)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, timeout=60)
    assert done.returncode == 0


def test_prometheus_finds_every_replica_on_the_port_it_listens_on(compose) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in SCALABLE:
        port = environment(compose["services"][name])["SUNSPOTS_METRICS_PORT"]
        job = jobs[name]
        assert "static_configs" not in job, f"{name}: a static target is one replica only"
        # Docker's DNS answers the service name with an A record per replica.
        (sd,) = job["dns_sd_configs"]
        assert (sd["names"], sd["type"], str(sd["port"])) == ([name], "A", port)
        assert job.get("metrics_path", "/metrics") == "/metrics"
        # Every series says which service it came from (the dashboards and alerts use it).
        assert {"target_label": "service", "replacement": name} in job["relabel_configs"]


def test_mounted_files_exist_where_the_containers_expect_them(compose) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} missing"
            else:
                assert source in declared, f"{name}: volume {source} not declared"
    prometheus = compose["services"]["prometheus"]
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    # rule_files are relative to the config file, mounted beside it.
    assert "./monitoring/prometheus/rules:/etc/prometheus/rules:ro" in prometheus["volumes"]
    assert config["rule_files"] == ["rules/*.yml"]


def test_grafana_provisioning_matches_the_mounts_and_the_dashboard(compose) -> None:
    grafana = compose["services"]["grafana"]
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith("."))
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards_dir = mounts["./monitoring/grafana/dashboards"]
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/sunspots.yml").read_text())
    assert [p["options"]["path"] for p in providers["providers"]] == [dashboards_dir]
    home = environment(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home.startswith(dashboards_dir + "/")
    assert (GRAFANA / "dashboards" / Path(home).name).is_file()

    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    prometheus_port = compose["services"]["prometheus"]["ports"][0].rsplit(":", 1)[1]
    assert source["url"] == f"http://prometheus:{prometheus_port}"
    assert environment(grafana)["GF_AUTH_ANONYMOUS_ENABLED"] == "true"

    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])


def test_dashboard_has_the_panels_the_replay_is_watched_with() -> None:
    titles = {p["title"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    wanted = {
        "Forecast vs actual",
        "Signed error (actual − forecast)",
        "Absolute error",
        "Rolling RMSE: model vs persistence",
        "90 % interval coverage",
        "Throughput",
        "Inference latency",
        "Dead letters by reason",
        "Classifier traffic",
    }
    assert wanted <= titles, wanted - titles


def test_dashboard_shows_each_replica_and_their_sum() -> None:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    rows = [i for i, p in enumerate(panels) if p["type"] == "row"] + [len(panels)]
    row = next(i for i in rows[:-1] if panels[i]["title"] == "Instances")
    instances = panels[row + 1 : next(i for i in rows if i > row)]
    assert len(instances) >= 4
    for panel in instances:
        exprs = [t["expr"] for t in panel["targets"]]
        per_instance = [e for e in exprs if "by (instance)" in e]
        summed = [e for e in exprs if re.match(r"(sum|count)\(", e)]
        assert per_instance and summed, panel["title"]
        assert all(
            "{{instance}}" in t["legendFormat"]
            for t in panel["targets"]
            if "by (instance)" in t["expr"]
        )
    up = next(p for p in panels if p["title"] == "Services up")
    assert "{{instance}}" in up["targets"][0]["legendFormat"]


# --- exposure and privileges -------------------------------------------------------------------

# Services whose root file system stays writable, and why.
WRITABLE_ROOT = {
    # The apache/kafka image writes server.properties from KAFKA_* at start; its log dirs live
    # in the container.
    "kafka": "image writes its config at start",
    "kafka-2": "likewise",
    "kafka-3": "likewise",
}


def test_grafana_has_no_default_admin_password() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())
    for unset in ({}, {"SUNSPOTS_GRAFANA_PASSWORD": ""}):
        with pytest.raises(ValueError, match=r"SUNSPOTS_GRAFANA_PASSWORD.*docs/compose\.md"):
            _interpolate_tree(raw, unset)
    grafana = environment(load_compose()["services"]["grafana"])
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == USER_ENV["SUNSPOTS_GRAFANA_PASSWORD"]
    assert not any("PASSWORD" in k and v for k, v in grafana.items() if k.endswith("__FILE"))


@pytest.mark.parametrize("setup", SETUPS)
def test_host_ports_are_bound_to_loopback_unless_chosen(setup: str) -> None:
    env, profiles = SETUPS[setup]

    def published(extra: dict[str, str]) -> dict[str, list[str]]:
        compose = active(load_compose(env={**env, **extra}), profiles)
        return {n: svc["ports"] for n, svc in compose["services"].items() if svc.get("ports")}

    ports = published({})
    nodes = kafka_nodes(active(load_compose(env=env), profiles))
    assert set(ports) == {"prometheus", "grafana", *nodes}
    for name, entries in ports.items():
        for entry in entries:
            # host address:host port:container port, the address given.
            assert entry.count(":") == 2 and entry.startswith("127.0.0.1:"), f"{name}: {entry}"
    for entries in published({"SUNSPOTS_BIND": "192.0.2.7"}).values():
        assert all(e.startswith("192.0.2.7:") for e in entries)
    # Kafka tells host clients the name they can reach it by.
    named = active(load_compose(env={**env, "SUNSPOTS_KAFKA_HOST": "h"}), profiles)
    for service in kafka_nodes(named).values():
        assert "EXTERNAL://h:" in environment(service)["KAFKA_ADVERTISED_LISTENERS"]


def test_prometheus_offers_no_lifecycle_or_admin_api(compose) -> None:
    flags = compose["services"]["prometheus"]["command"]
    assert not any("enable-lifecycle" in f or "enable-admin-api" in f for f in flags), flags


def test_services_gain_no_privileges_and_write_only_where_they_must(compose) -> None:
    for name, service in compose["services"].items():
        assert service.get("security_opt") == ["no-new-privileges:true"], name
        if name in WRITABLE_ROOT:
            assert not service.get("read_only"), f"{name}: update WRITABLE_ROOT"
            continue
        assert service.get("read_only") is True, f"{name}: read-only root, or WRITABLE_ROOT"
        assert "/tmp" in service["tmpfs"], name
        # What it keeps goes to a named volume; files of the checkout are mounted read-only.
        for volume in service.get("volumes") or []:
            source, _, mode = [*volume.split(":"), ""][:3]
            assert not source.startswith(".") or mode == "ro", f"{name}: {volume}"
    assert environment(compose["services"]["grafana"])["GF_LOG_MODE"] == "console"


def _version(image: str) -> tuple[int, ...]:
    return tuple(int(x) for x in image.split(":")[1].lstrip("v").split("."))


def test_monitoring_images_are_current_major_versions(compose) -> None:
    # Prometheus 2 and Grafana 11 are out of support; a regression to them fails here.
    assert _version(compose["services"]["prometheus"]["image"]) >= (3, 0, 0)
    assert _version(compose["services"]["grafana"]["image"]) >= (12, 0, 0)
    # Grafana 12 no longer runs AngularJS panels (graph, singlestat, the old table).
    types = {p["type"] for p in json.loads(DASHBOARD.read_text())["panels"]}
    assert not types & {"graph", "singlestat", "table-old", "grafana-piechart-panel"}, types


def test_kafka_healthchecks_start_no_java_tool(compose) -> None:
    for name, service in kafka_nodes(load_compose(env=cluster_env())).items():
        script, _ = kafka_probe(service)
        assert "/dev/tcp/" in script and not re.search(r"\.sh\b|java|/opt/kafka", script), name
        check = service["healthcheck"]
        assert check["interval"] == "10s" and check["timeout"] == "10s", name


@pytest.fixture
def listening() -> Iterator[str]:
    """An address something accepts TCP connections on."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:
        yield f"127.0.0.1:{server.getsockname()[1]}"


def test_kafka_probe_passes_only_when_every_node_accepts(compose, listening: str) -> None:
    script, _ = kafka_probe(compose["services"]["kafka"])
    bash = shutil.which("bash")
    assert bash

    def probe(addresses: str) -> int:
        done = subprocess.run([bash, "-c", script, addresses], capture_output=True, timeout=30)
        return done.returncode

    closed = f"127.0.0.1:{free_port()}"
    assert probe(listening) == 0
    assert probe(f"{listening},{listening}") == 0
    assert probe(f"{listening},{closed}") != 0
    assert probe(closed) != 0


# --- docker/healthcheck.py --------------------------------------------------------------------


@pytest.fixture
def healthz_server() -> Iterator[tuple[int, list[int]]]:
    status = [200]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            code = status[0] if self.path == "/healthz" else 404
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], status
    finally:
        server.shutdown()
        server.server_close()


def run_healthcheck(port: int | None) -> int:
    env = {k: v for k, v in os.environ.items() if k != healthcheck.PORT_ENV}
    if port is not None:
        env[healthcheck.PORT_ENV] = str(port)
    script = REPO / "docker" / "healthcheck.py"
    return subprocess.run([sys.executable, str(script)], env=env, timeout=30).returncode


def test_healthcheck_passes_only_while_healthz_answers_200(healthz_server) -> None:
    port, status = healthz_server
    assert run_healthcheck(port) == 0
    status[0] = 503
    assert run_healthcheck(port) == 1


def test_healthcheck_fails_when_nothing_listens() -> None:
    assert run_healthcheck(free_port()) == 1


def test_healthcheck_follows_the_port_of_the_mode_the_container_runs() -> None:
    # PID 1's command line decides when the port variable is not set, as with `docker run
    # sunspot-stream:serve sunspots-consumer classify`.
    classify = ["/opt/venv/bin/python", "/opt/venv/bin/sunspots-consumer", "classify", ""]
    forecast = ["/opt/venv/bin/python", "/opt/venv/bin/sunspots-consumer", "forecast", ""]
    assert healthcheck.service_port({}, classify) == MODES["classify"].default_port == 8001
    assert healthcheck.service_port({}, forecast) == MODES["forecast"].default_port == 8000
    # The image's default command (`sunspots-consumer forecast`) when PID 1 cannot be read.
    assert healthcheck.service_port({}, []) == 8000
    assert healthcheck.service_port({healthcheck.PORT_ENV: "9123"}, classify) == 9123
