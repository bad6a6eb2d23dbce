"""Bad start-up input ends a command with one clear line and exit code 2 (no broker needed).

Each case runs the real command as a subprocess, as an operator would, with the bad value
given as a flag or as its environment variable.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sunspots.domain.artifact import DEFAULT_CLASSIFIER, DEFAULT_FORECASTER
from sunspots.process.cli import RENAMED_ENV
from tests.conftest import REPO


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    # A clean environment: no variable of ours leaks in from the shell that runs the tests.
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUNSPOTS_")}
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**base, **(env or {})},
    )


def assert_one_clear_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1, done.stderr
    assert message in errors[0], done.stderr


def assert_usage_error(done: subprocess.CompletedProcess[str], message: str) -> None:
    """A bad flag or variable: the whole of stderr is the one line, no screen of usage."""
    assert_one_clear_error(done, message)
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert "--help" in done.stderr


# --- flags and variables ----------------------------------------------------------------------


def test_an_unknown_log_level_flag() -> None:
    done = _run("-m", "consumer", "forecast", "--log-level", "verbose")
    assert_usage_error(done, "argument --log-level: not a log level: 'verbose'")


def test_an_unknown_log_level_variable() -> None:
    done = _run("-m", "producer", env={"SUNSPOTS_LOG_LEVEL": "verbose"})
    assert_usage_error(
        done, "environment variable SUNSPOTS_LOG_LEVEL='verbose' is not valid for --log-level"
    )


def test_a_boolean_variable_that_is_not_true_or_false() -> None:
    # Once read as "not true", so silently false.
    done = _run("-m", "consumer", "forecast", env={"SUNSPOTS_CREATE_TOPICS": "on"})
    assert_usage_error(done, "SUNSPOTS_CREATE_TOPICS='on' is not valid for --create-topics")
    assert "not a boolean" in done.stderr


def test_a_boolean_flag_that_is_not_true_or_false() -> None:
    done = _run("-m", "consumer", "classify", "--create-topics", "sometimes")
    assert_usage_error(done, "argument --create-topics: not a boolean: 'sometimes'")


def test_a_choice_from_the_environment_is_checked_like_the_flag() -> None:
    done = _run("-m", "consumer", "forecast", env={"SUNSPOTS_PROCESSING": "maybe"})
    assert_usage_error(done, "SUNSPOTS_PROCESSING='maybe' is not valid for --processing")
    assert "choose from exactly_once, at_least_once" in done.stderr


def test_an_invalid_choice_flag() -> None:
    done = _run("-m", "consumer", "forecast", "--processing", "maybe")
    assert_usage_error(done, "invalid choice: 'maybe'")


def test_a_port_out_of_range() -> None:
    done = _run("-m", "consumer", "forecast", "--metrics-port", "70000")
    assert_usage_error(done, "not a TCP port (1-65535): '70000'")


def test_a_count_below_one_from_the_environment() -> None:
    done = _run("-m", "consumer", "forecast", env={"SUNSPOTS_MAX_POLL_RECORDS": "0"})
    assert_usage_error(done, "SUNSPOTS_MAX_POLL_RECORDS='0' is not valid for --max-poll-records")


def test_a_shutdown_grace_of_zero_from_the_environment() -> None:
    done = _run("-m", "consumer", "classify", env={"SUNSPOTS_SHUTDOWN_GRACE": "0"})
    assert_usage_error(done, "SUNSPOTS_SHUTDOWN_GRACE='0' is not valid for --shutdown-grace")
    assert "must be above 0" in done.stderr


def test_a_stall_limit_below_the_stall_timeout() -> None:
    done = _run("-m", "consumer", "forecast", "--stall-timeout", "60", "--stall-limit", "30")
    assert_usage_error(done, "--stall-limit (30 s) must be 0 or at least --stall-timeout (60 s)")


def test_a_malformed_date_flag() -> None:
    done = _run("-m", "producer", "--start", "2000-13-01")
    assert_usage_error(done, "not a YYYY-MM-DD date: '2000-13-01'")


def test_a_malformed_date_variable() -> None:
    done = _run("-m", "training", "forecaster", env={"SUNSPOTS_END": "last june"})
    assert_usage_error(done, "SUNSPOTS_END='last june' is not valid for --end")


def test_a_flag_overrides_a_bad_variable() -> None:
    # Precedence: the flag wins, so the variable's value is never used, nor refused.
    done = _run(
        "-m", "producer", "--log-level", "INFO", "--help", env={"SUNSPOTS_LOG_LEVEL": "loud"}
    )
    assert done.returncode == 0, done.stderr


def test_a_common_variable_of_other_software_is_not_read_nor_refused() -> None:
    done = _run("-m", "producer", "--help", env={"LOG_LEVEL": "chatty", "METRICS_PORT": "x"})
    assert done.returncode == 0, done.stderr


def test_a_renamed_variable_names_its_new_name() -> None:
    old, new = "CONSUMER_GROUP", "SUNSPOTS_GROUP"
    assert RENAMED_ENV[old] == new
    done = _run("-m", "consumer", "forecast", env={old: "8000"})
    assert_usage_error(done, f"environment variable {old} was renamed {new}")


# --- model artifacts ---------------------------------------------------------------------------


def test_a_missing_model() -> None:
    done = _run("-m", "consumer", "forecast", "--model", "/nonexistent/model.json")
    assert_one_clear_error(
        done, "cannot load the model: model metadata not found: /nonexistent/model.json"
    )


def test_a_missing_classifier_model_from_its_variable() -> None:
    done = _run("-m", "consumer", "classify", env={"SUNSPOTS_CLASSIFIER_MODEL": "/nope/c.json"})
    assert_one_clear_error(done, "cannot load the model: model metadata not found: /nope/c.json")


def _copy_artifact(source: Path, target_dir: Path) -> tuple[Path, dict]:
    """A copy of a committed artifact (metadata and weights) and its metadata, to spoil."""
    meta = json.loads(source.read_text())
    shutil.copy(source.parent / meta["weights_file"], target_dir / meta["weights_file"])
    shutil.copy(source, target_dir / source.name)
    return target_dir / source.name, meta


def test_a_forecaster_artifact_with_the_classifiers_weights(tmp_path: Path) -> None:
    # Both files are sound and the checksum matches; they just do not make a forecaster.
    path, meta = _copy_artifact(DEFAULT_FORECASTER, tmp_path)
    _, classifier = _copy_artifact(DEFAULT_CLASSIFIER, tmp_path)
    for key in ("weights_file", "weights_sha256", "network"):
        meta[key] = classifier[key]
    path.write_text(json.dumps(meta))
    done = _run("-m", "consumer", "forecast", "--model", str(path))
    assert_one_clear_error(done, "forecaster network must map 1 feature to 1 output")


def test_weights_that_do_not_belong_to_the_metadata(tmp_path: Path) -> None:
    path, meta = _copy_artifact(DEFAULT_FORECASTER, tmp_path)
    (tmp_path / meta["weights_file"]).write_bytes(b"not the weights")
    done = _run("-m", "consumer", "forecast", "--model", str(path))
    assert_one_clear_error(done, "checksum mismatch")


def test_metadata_of_the_wrong_shape(tmp_path: Path) -> None:
    path, meta = _copy_artifact(DEFAULT_FORECASTER, tmp_path)
    meta["scaling"] = [1.0, 2.0]
    path.write_text(json.dumps(meta))
    done = _run("-m", "consumer", "forecast", "--model", str(path))
    assert_one_clear_error(done, "'scaling' must be a JSON object")


def test_a_classifier_artifact_given_to_the_forecaster() -> None:
    done = _run("-m", "consumer", "forecast", "--model", str(DEFAULT_CLASSIFIER))
    assert_one_clear_error(done, "expected a 'sunspot-forecaster' artifact")


def test_a_history_shorter_than_the_models_input() -> None:
    done = _run("-m", "consumer", "forecast", "--history", "5")
    assert_one_clear_error(done, "reads 10 values; series keep 5 (--history)")


# --- the metrics port -------------------------------------------------------------------------


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_metrics_port_in_use(busy_port: int) -> None:
    done = _run("-m", "consumer", "forecast", "--metrics-port", str(busy_port))
    assert_one_clear_error(done, f"cannot serve /metrics on port {busy_port}")
    assert "--metrics-port or SUNSPOTS_METRICS_PORT" in done.stderr


# --- data -------------------------------------------------------------------------------------


def test_a_missing_data_file() -> None:
    done = _run("-m", "producer", "--data", "/nonexistent/sn.csv")
    assert_one_clear_error(
        done, "cannot read the sunspot data: sunspot data file not found: /nonexistent/sn.csv"
    )


def test_a_date_range_with_no_data(data_path: Path) -> None:
    done = _run("-m", "producer", "--data", str(data_path), "--start", "2100-01-01")
    assert_one_clear_error(done, "nothing to replay: no day of")


def test_training_on_a_missing_data_file() -> None:
    done = _run("-m", "training", "forecaster", "--data", "/nonexistent/sn.csv")
    assert_one_clear_error(done, "cannot read the sunspot data")


# --- kafka-python without a codec's library ---------------------------------------------------

# Runs `python -m <module> <args>` with the given modules hidden from the import system, as an
# install without kafka-python's codec extras lacks them (kafka.codec then reports the codec
# missing through its public has_* checks).
STRIPPED = (
    "import runpy, sys\n"
    "for name in sys.argv[1].split(','): sys.modules[name] = None\n"
    "module = sys.argv[2]\n"
    "sys.argv = [module, *sys.argv[3:]]\n"
    "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
)
INSTALL = "install them with pip install 'kafka-python[lz4,snappy,zstd]'"


def _stripped(hidden: str, module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return _run("-c", STRIPPED, hidden, module, *args)


@pytest.mark.parametrize(
    "command",
    [
        ("consumer", "forecast"),
        ("producer", "classify", "--sequence", "0,0,0,0,0,1"),
        ("producer", "--resume"),
        ("training", "promote"),
    ],
    ids=["consumer", "classify-client", "replay-resume", "promote"],
)
def test_a_command_that_reads_refuses_to_start_without_every_codec(command) -> None:
    done = _stripped("snappy,zstandard", *command)
    assert_one_clear_error(done, "kafka-python cannot read snappy and zstd record batches")
    assert "the python-snappy and zstandard libraries are not installed" in done.stderr
    assert INSTALL in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("producer", "--compression-type", "lz4"),
        ("training", "publish", str(DEFAULT_FORECASTER), "--compression-type", "lz4"),
    ],
    ids=["replay", "publish"],
)
def test_a_command_that_writes_a_codec_it_lacks_refuses_to_start(command) -> None:
    done = _stripped("lz4", *command)
    assert_one_clear_error(done, "kafka-python cannot write lz4 record batches")
    assert "the lz4 library is not installed" in done.stderr
