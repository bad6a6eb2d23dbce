"""scripts/ensure-tools: the programs the tests need are there, installed, or named in one line.

The script runs with a PATH of stand-ins, so no test installs or hides a real package: a fake
`id` says who runs it, a fake `apt-get` records what it was asked to install and puts stubs of
those programs on the PATH.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

SCRIPT = REPO / "scripts" / "ensure-tools"
TOOLS = ("java", "javac", "mvn", "prometheus", "promtool", "kcat", "jq")


def _stub(bin_dir: Path, name: str, body: str = "exit 0") -> None:
    path = bin_dir / name
    path.write_text(f"#!/bin/bash\n{body}\n")
    path.chmod(0o755)


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


def _run(bin_dir: Path, uid: int) -> subprocess.CompletedProcess[str]:
    _stub(bin_dir, "id", f"echo {uid}")
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={"PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_nothing_to_do_when_every_tool_is_there(bin_dir) -> None:
    for tool in TOOLS:
        _stub(bin_dir, tool)
    done = _run(bin_dir, uid=1000)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_without_root_one_line_names_what_to_install(bin_dir) -> None:
    for tool in ("java", "javac", "mvn"):
        _stub(bin_dir, tool)
    _stub(bin_dir, "apt-get", "exit 99")  # must not be called
    done = _run(bin_dir, uid=1000)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    assert "prometheus promtool kcat jq" in done.stderr
    # Two commands, one package: Debian's prometheus carries promtool.
    assert "sudo apt-get install prometheus kcat jq" in done.stderr


def test_as_root_without_apt_one_line_names_what_to_install(bin_dir) -> None:
    done = _run(bin_dir, uid=0)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1, done.stderr
    # Two commands, one package: the JDK carries java and javac.
    assert "apt-get install openjdk-17-jdk-headless maven prometheus kcat jq" in done.stderr


def test_as_root_with_apt_installs_exactly_the_missing_packages(bin_dir, tmp_path) -> None:
    for tool in ("java", "javac", "mvn", "promtool", "jq"):
        _stub(bin_dir, tool)
    calls = tmp_path / "apt-calls"
    # The stand-in apt-get logs its arguments and, on install, provides the programs.
    _stub(
        bin_dir,
        "apt-get",
        f'echo "$*" >> {calls}\n'
        f'if [ "$1" = install ]; then for t in prometheus kcat; do '
        f'printf "#!/bin/bash\\n" > {bin_dir}/$t; /bin/chmod +x {bin_dir}/$t; done; fi',
    )
    done = _run(bin_dir, uid=0)
    assert done.returncode == 0, done.stderr
    update, install = calls.read_text().splitlines()
    assert update.startswith("update")
    assert install.split()[-2:] == ["prometheus", "kcat"]
    assert "-y" in install.split()


def test_an_install_that_provides_nothing_fails(bin_dir) -> None:
    for tool in ("java", "javac", "mvn", "prometheus", "promtool", "jq"):
        _stub(bin_dir, tool)
    _stub(bin_dir, "apt-get")  # "succeeds" without installing kcat
    done = _run(bin_dir, uid=0)
    assert done.returncode == 1
    assert "kcat is still not on PATH" in done.stderr
