"""Clients the project did not write, driven from the tests: librdkafka's kcat and Kafka's own
Java client (tests/interop/KafkaInterop.java, run with Java's single-file launcher against the
kafka-clients jar the broker harness fetched), and the project's own reader beside them.

Every reader here returns the same plain rows, `(topic, partition, offset, key, value)` as text
with an absent key or value as `NULL`, so what kcat, the Java client and support.run_topics read
can be compared with `==`. A missing kcat or JDK fails the test with one line that says what to
install: `make test` installs them (scripts/ensure-tools).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable, Sequence

import pytest

from devtools.broker import classpath_dir
from support.run_topics import read_to_end
from support.services import REPO

JAVA_PROGRAM = REPO / "tests" / "interop" / "KafkaInterop.java"
NULL = "NULL"
Row = tuple[str, int, int, str, str]  # topic, partition, offset, key, value
TIMEOUT_S = 120


def require_tools() -> None:
    """Fail at once, in one line, unless kcat and a JDK (the single-file launcher compiles
    the Java client) are installed."""
    missing = [tool for tool in ("kcat", "java", "javac") if shutil.which(tool) is None]
    if missing:
        pytest.fail(
            f"the interop tests need {' and '.join(missing)}, which are not installed: run "
            "scripts/ensure-tools (make test does), or install kcat and a Java 17 JDK",
            pytrace=False,
        )


def _run(command: Sequence[str], stdin: str = "") -> str:
    done = subprocess.run(
        list(command), input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    assert done.returncode == 0, f"{command[0]} exited with {done.returncode}:\n{done.stderr}"
    return done.stdout


def kcat_produce(
    bootstrap: str, topic: str, records: Iterable[tuple[str, str]], codec: str
) -> None:
    """kcat sends each (key, value) to `topic` in `codec`, partitioned by the key's murmur2
    hash as the Java and Python clients partition (the README's recipe does the same). It
    lingers 100 ms (librdkafka's default is 5) so that a writer's records share a batch even on
    a loaded machine: the tests judge each writer's codec on its batches of several records."""
    lines = "".join(f"{key}\t{value}\n" for key, value in records)
    command = ["kcat", "-b", bootstrap, "-P", "-t", topic, "-K", "\t", "-z", codec]
    _run([*command, "-X", "partitioner=murmur2_random", "-X", "linger.ms=100"], lines)


def kcat_read(bootstrap: str, topic: str) -> list[Row]:
    """Every committed record of `topic`, read by kcat (read_committed) to its end."""
    out = _run(
        [
            "kcat",
            "-b",
            bootstrap,
            "-C",
            "-t",
            topic,
            "-e",
            "-q",
            "-Z",  # NULL for an absent key or value
            "-X",
            "isolation.level=read_committed",
            "-f",
            "%t\t%p\t%o\t%k\t%s\n",
        ]
    )
    return sorted(_rows(out))


def java(*args: str, stdin: str = "") -> str:
    """The Java client's output for `KafkaInterop.java <args>`."""
    classpath = f"{classpath_dir()}/*"
    return _run(["java", "-cp", classpath, str(JAVA_PROGRAM), *args], stdin)


def java_produce(bootstrap: str, records: Iterable[tuple[str, str, str]], codec: str) -> None:
    """The Java client sends each (topic, key, value), idempotent, in `codec`."""
    lines = "".join(f"{topic}\t{key}\t{value}\n" for topic, key, value in records)
    java("produce", bootstrap, codec, stdin=lines)


def java_read(bootstrap: str, *topics: str) -> dict[str, list[Row]]:
    """Every committed record of each topic, read by the Java client (read_committed)."""
    rows = _rows(java("consume", bootstrap, str(TIMEOUT_S), *topics))
    return {topic: sorted(r for r in rows if r[0] == topic) for topic in topics}


def project_read(bootstrap: str, topic: str) -> list[Row]:
    """Every committed record of `topic`, read by the project's own reader (support.run_topics)."""
    return sorted(
        (r.topic, r.partition, r.offset, _text(r.key), _text(r.value))
        for r in read_to_end(bootstrap, topic)
    )


def _text(raw: bytes | None) -> str:
    return NULL if raw is None else raw.decode()


def _rows(out: str) -> list[Row]:
    rows = []
    for line in out.splitlines():
        topic, partition, offset, key, value = line.split("\t", 4)
        rows.append((topic, int(partition), int(offset), key, value))
    return rows
