"""The broker harness's pure parts: properties, cluster ids, and the missing-tool message."""

from __future__ import annotations

import re

import pytest

from sunspots import broker


def test_properties_describe_one_kraft_node_on_loopback(tmp_path) -> None:
    props = dict(
        line.split("=", 1) for line in broker.server_properties(9092, 9093, tmp_path).splitlines()
    )
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["log.dirs"] == str(tmp_path)


def test_cluster_id_is_22_url_safe_characters_never_read_as_an_option() -> None:
    ids = [broker._cluster_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", i) for i in ids)


@pytest.mark.parametrize(("missing", "names"), [("java", "openjdk-17"), ("mvn", "maven")])
def test_missing_tool_is_named_in_one_line(monkeypatch, tmp_path, missing, names) -> None:
    real_which = broker.shutil.which
    monkeypatch.setattr(broker.shutil, "which", lambda t: None if t == missing else real_which(t))
    monkeypatch.setattr(broker, "_java_major", lambda java: 17)
    with pytest.raises(broker.BrokerError) as info:
        broker.classpath_dir("0.0.0-test", cache_dir=tmp_path)
    message = str(info.value)
    assert "\n" not in message and missing in message and names in message


def test_old_java_is_refused(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(broker, "_java_major", lambda java: 11)
    with pytest.raises(broker.BrokerError, match="Java 17 or newer"):
        broker.classpath_dir("0.0.0-test", cache_dir=tmp_path)
