"""The broker harness's pure parts: properties, cluster ids, and the missing-tool message."""

from __future__ import annotations

import re

import pytest

from devtools import broker


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


def test_cluster_nodes_share_a_quorum_and_replicate_like_production(tmp_path) -> None:
    from devtools.broker.cluster import LocalCluster

    cluster = LocalCluster(workdir=tmp_path)
    props = [node.properties() for node in cluster.nodes.values()]
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert len({p["controller.quorum.voters"] for p in props}) == 1
    assert props[0]["controller.quorum.voters"].count("@127.0.0.1:") == 3
    assert len({node.cluster_id for node in cluster.nodes.values()}) == 1
    for p in props:
        assert p["default.replication.factor"] == "3"
        assert p["min.insync.replicas"] == "2"
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"
        assert p["unclean.leader.election.enable"] == "false"
    assert len({p["log.dirs"] for p in props}) == 3
    assert cluster.bootstrap_servers.count(",") == 2


def test_secure_broker_listens_only_with_sasl_ssl_and_denies_by_default(tmp_path) -> None:
    from devtools.broker.security import Certificates, secure_properties

    certs = Certificates(*(tmp_path / n for n in ("ca.pem", "k.p12", "f.p12", "t.p12")), "pw")
    props = secure_properties(1, 2, 3, tmp_path, certs, {"admin": "a", "alice": "b"})
    protocols = dict(pair.split(":") for pair in props["listener.security.protocol.map"].split(","))
    advertised = props["advertised.listeners"]
    assert {protocols[name.split(":")[0]] for name in advertised.split(",")} == {"SASL_SSL"}
    assert protocols["CONTROLLER"] == "PLAINTEXT"  # loopback quorum only, never advertised
    assert props["allow.everyone.if.no.acl.found"] == "false"
    assert props["authorizer.class.name"].endswith("StandardAuthorizer")
    assert 'user_alice="b"' in props["listener.name.secure.plain.sasl.jaas.config"]
    assert props["listener.name.foreign.ssl.keystore.location"] == str(certs.foreign_keystore)
