"""Refusals: each broker error and probe finding has its cause, line and exit code.

The probe is tested here against small local servers that answer as a broker's SASL listener
does (and against a closed port); the secured-broker integration tests run it for real.
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator

import pytest
from kafka.errors import (
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
)

from consumer.health import Health
from consumer.retry import Backoff, Retry
from sunspots.kafka.refusal import (
    AUTHENTICATION,
    AUTHORIZATION,
    EXIT_CODES,
    UNREACHABLE,
    explain,
    from_error,
    probe,
    refusal_error,
)
from sunspots.kafka.settings import KafkaSettings, Secret

SASL = (
    ("security_protocol", "SASL_SSL"),
    ("sasl_mechanism", "SCRAM-SHA-512"),
    ("sasl_plain_username", "bob"),
    ("sasl_plain_password", Secret("hunter2-secret")),
)


def test_exit_codes_are_the_readmes() -> None:
    """Written out as the table of docs/operations.md gives them: the contract supervisors rely on."""
    assert EXIT_CODES == {"unreachable": 4, "authentication": 5, "authorization": 6, "tls": 7}


@pytest.mark.parametrize(
    ("error", "resource"),
    [
        (TopicAuthorizationFailedError("sunspots.observations"), "topic sunspots.observations"),
        (TopicAuthorizationFailedError(), "topic t-1"),
        # As a producer's send reports it: the set of topics refused.
        (TopicAuthorizationFailedError({"b.shadow", "a.shadow"}), "topic a.shadow and b.shadow"),
        (GroupAuthorizationFailedError(), "group g-1"),
        (TransactionalIdAuthorizationFailedError(), "transactional id g-1-a"),
        (ClusterAuthorizationFailedError(), "the cluster"),
    ],
)
def test_an_authorization_error_names_the_principal_and_the_resource(error, resource) -> None:
    kafka = KafkaSettings("k:9093", security=SASL)
    resources = {"topic": "t-1", "group": "g-1", "transactional id": "g-1-a"}
    refusal = from_error(error, kafka, resources)
    assert refusal is not None and refusal.cause == AUTHORIZATION
    assert refusal.line.startswith(
        f"not authorized: Kafka at k:9093 denied User:bob access to {resource} "
        f"({type(error).__name__}); grant the ACLs"
    )
    assert refusal.exit_code == 6 and not refusal.retry_helps


def test_a_wrapped_refusal_is_found_and_other_errors_are_not_refusals() -> None:
    inner = GroupAuthorizationFailedError()
    assert refusal_error(KafkaError("commit failed", inner)) is inner
    assert from_error(KafkaTimeoutError("slow"), KafkaSettings()) is None
    failed = from_error(SaslAuthenticationFailedError("bad"), KafkaSettings(security=SASL))
    assert failed is not None and failed.cause == AUTHENTICATION


def test_nothing_listening_is_unreachable_and_worth_a_retry() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before the probe
    kafka = KafkaSettings(f"127.0.0.1:{port}")
    found = probe(kafka, timeout_s=2)
    assert found is not None and found.cause == UNREACHABLE and found.retry_helps
    explained = explain(KafkaTimeoutError("Unable to bootstrap"), kafka)
    assert explained.cause == UNREACHABLE
    assert explained.exit_code == 4


# --- a listener that answers like a broker's SASL_PLAINTEXT one ------------------------------


def _frame(body: bytes, correlation: int) -> bytes:
    payload = struct.pack(">i", correlation) + body
    return struct.pack(">i", len(payload)) + payload


def _string(text: str) -> bytes:
    return struct.pack(">h", len(text)) + text.encode()


def _serve(answer: Callable[[int, bytes], bytes | None]) -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def run() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while header := conn.recv(4):
                    (size,) = struct.unpack(">i", header)
                    request = b""
                    while len(request) < size:
                        request += conn.recv(size - len(request))
                    api_key, _version, correlation = struct.unpack_from(">hhi", request)
                    body = answer(api_key, request)
                    if body is None:
                        break
                    conn.sendall(_frame(body, correlation))

    threading.Thread(target=run, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def sasl_listener() -> Iterator[int]:
    """Offers PLAIN only and refuses every credential, with Kafka's own message."""

    def answer(api_key: int, request: bytes) -> bytes | None:
        if api_key == 18:  # ApiVersions, which a SASL listener answers before authentication
            return struct.pack(">hi", 0, 0)
        if api_key == 17:  # SaslHandshake
            return struct.pack(">hi", 0, 1) + _string("PLAIN")
        if api_key == 36:  # SaslAuthenticate
            assert b"hunter2" in request  # the password goes to the broker, and only there
            message = "Authentication failed: Invalid username or password"
            return struct.pack(">h", 58) + _string(message) + struct.pack(">i", 0)
        return None

    yield from _serve(answer)


def _settings(port: int, *pairs: tuple[str, object]) -> KafkaSettings:
    return KafkaSettings(f"127.0.0.1:{port}", security=pairs)


def _as_bob(port: int, mechanism: str) -> KafkaSettings:
    return _settings(
        port,
        ("security_protocol", "SASL_PLAINTEXT"),
        ("sasl_mechanism", mechanism),
        ("sasl_plain_username", "bob"),
        ("sasl_plain_password", Secret("hunter2")),
    )


def test_refused_credentials_are_an_authentication_failure_without_the_password(
    sasl_listener,
) -> None:
    found = probe(_as_bob(sasl_listener, "PLAIN"), timeout_s=5)
    assert found is not None and found.cause == AUTHENTICATION and found.exit_code == 5
    assert found.line == (
        f"authentication failed: Kafka at 127.0.0.1:{sasl_listener} refused User:bob (PLAIN): "
        "Authentication failed: Invalid username or password"
    )
    assert "hunter2" not in found.line


def test_a_server_out_of_reach_does_not_hide_the_refusal_of_the_next(sasl_listener) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    bob = _as_bob(sasl_listener, "PLAIN")
    both = KafkaSettings(f"127.0.0.1:{closed},{bob.bootstrap_servers}", security=bob.security)
    found = probe(both, timeout_s=5)
    assert found is not None and found.cause == AUTHENTICATION


def test_a_mechanism_the_broker_does_not_offer_is_named(sasl_listener) -> None:
    found = probe(_as_bob(sasl_listener, "SCRAM-SHA-256"), timeout_s=5)
    assert found is not None and found.cause == AUTHENTICATION
    assert "does not offer SASL SCRAM-SHA-256 (it offers PLAIN)" in found.line


def test_a_client_without_sasl_is_told_the_broker_requires_it(sasl_listener) -> None:
    found = probe(_settings(sasl_listener), timeout_s=5)
    assert found is not None and found.cause == AUTHENTICATION
    assert "requires SASL (PLAIN), but --security-protocol is PLAINTEXT" in found.line


def test_a_listener_without_sasl_takes_a_plain_client() -> None:
    def answer(api_key: int, _request: bytes) -> bytes | None:
        if api_key == 17:  # a broker's non-SASL listener: ILLEGAL_SASL_STATE, no mechanisms
            return struct.pack(">hi", 34, 0)
        return struct.pack(">h", 0) + struct.pack(">i", 0)

    for port in _serve(answer):
        assert probe(_settings(port), timeout_s=5) is None


def test_a_secret_never_shows_in_a_repr() -> None:
    kafka = KafkaSettings(security=SASL)
    assert "hunter2" not in repr(kafka)
    assert "hunter2" not in f"{kafka!r} {dict(kafka.security)!r}"
    assert kafka.client_kwargs()["sasl_plain_password"] == "hunter2-secret"


def test_readyz_names_the_refusal() -> None:
    health = Health()
    health.model_loaded = health.assigned = True
    health.polled(connected=True)
    assert health.ready
    health.refused = "not authorized: Kafka at k:9093 denied User:bob access to group g"
    assert not health.ready
    assert "refused=not authorized: Kafka at k:9093 denied User:bob" in health.describe()


def test_the_retry_policy_gives_a_refusal_back_at_once() -> None:
    calls = []

    def step() -> None:  # refused once; a retry would succeed, but must not be made
        calls.append(1)
        if len(calls) == 1:
            raise KafkaError("commit failed", GroupAuthorizationFailedError())

    retry = Retry(threading.Event(), Health(), Backoff(first_s=0.01, max_s=0.01))
    with pytest.raises(KafkaError):
        retry(step, "committing", retry_on=(KafkaError,))
    assert calls == [1]


def test_the_start_up_check_tells_a_missing_codec_before_a_refusal(monkeypatch) -> None:
    """`refused_at_start`: a codec the command lacks is a usage error (2), told before any
    connection; then a refusal no retry mends, with its own code; else nothing."""
    from sunspots.kafka import codecs, refusal

    kafka = KafkaSettings()
    tls = refusal.Refusal(refusal.TLS, "TLS failed: not trusted")
    monkeypatch.setattr(refusal, "preflight", lambda settings: tls)
    monkeypatch.setattr(codecs, "refusal", lambda reads, writes: "lz4 cannot be read: no lz4")
    assert refusal.refused_at_start(kafka, reads=True) == ("lz4 cannot be read: no lz4", 2)
    monkeypatch.setattr(codecs, "refusal", lambda reads, writes: None)
    assert refusal.refused_at_start(kafka, reads=False) == ("TLS failed: not trusted", 7)
    monkeypatch.setattr(refusal, "preflight", lambda settings: None)
    assert refusal.refused_at_start(kafka, reads=False) is None
