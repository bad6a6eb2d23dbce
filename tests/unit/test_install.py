"""Installs are reproducible: an SPDX license, a pinned build backend, and one lock that the
Makefile, CI and the image all install with, covering every dependency pyproject.toml names."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from sunspots.kafka.codecs import EXTRAS
from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
LOCK = REPO / "requirements" / "lock.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_license_is_an_spdx_expression() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"


def test_the_build_backend_is_pinned_and_the_lock_agrees() -> None:
    (requirement,) = map(Requirement, PYPROJECT["build-system"]["requires"])
    assert requirement.name == "setuptools"
    (spec,) = requirement.specifier
    assert spec.operator == "=="
    # The virtualenv (dev extra) builds with the same setuptools as an isolated build.
    assert _pins()["setuptools"] == spec.version


def test_every_dependency_is_pinned_in_the_lock() -> None:
    # Fails after a dependency is added to pyproject.toml until `make lock` is run.
    project = PYPROJECT["project"]
    declared = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared += extra
    pins = _pins()
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate():
            continue
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in {LOCK.name}: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{LOCK.name} pins {name}=={pins[name]}, outside {requirement.specifier}"
        )


def test_the_codec_extras_are_declared_and_their_libraries_pinned() -> None:
    # Every command reads every Kafka codec (sunspots.kafka.codecs): the image installs from the lock,
    # so the libraries of kafka-python's codec extras must be in it.
    (kafka,) = [
        Requirement(text)
        for text in PYPROJECT["project"]["dependencies"]
        if Requirement(text).name == "kafka-python"
    ]
    assert set(EXTRAS.split(",")) <= kafka.extras
    pins = _pins()
    for extra in kafka.extras:
        needed = [
            need
            for need in map(Requirement, metadata.requires("kafka-python") or [])
            if need.marker is not None and need.marker.evaluate({"extra": extra})
        ]
        assert needed, f"kafka-python[{extra}] names no package"
        for need in needed:
            assert canonicalize_name(need.name) in pins, f"{need.name}: run `make lock`"


def test_the_lock_says_nothing_about_the_machine_it_was_made_on() -> None:
    text = LOCK.read_text()
    assert not re.search(r"^\s*--", text, re.MULTILINE), "options (find-links, index) in the lock"
    assert "make lock" in text


def test_every_install_uses_the_lock() -> None:
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert installs and all("-c $(LOCK)" in line for line in installs)
    assert "LOCK := requirements/lock.txt" in makefile
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("-c requirements/lock.txt" in line for line in installs)
    # CI runs the Makefile's targets, so it installs the same way.
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci and "pip install" not in ci
