"""Why Kafka refused a client, told in one line with its cause, who and what, and an exit code.

On a secured cluster a client can be refused for reasons a retry will not mend, and kafka-python
reports most of them alike: a wrong password, a certificate the client does not trust, a host
name the certificate does not hold and a TLS port spoken to in plain text all end in
`Unable to bootstrap` once the client gave up, which sends its user looking for a network
problem. So when a client cannot bootstrap, `probe()` opens one connection of its own with the
same settings, step by step, and names the first step that fails:

1. TCP: refused or timed out → `unreachable` (a retry can help);
2. TLS (SSL, SASL_SSL): certificate not trusted, or not for this host name, or no TLS on the
   port → `tls`; a plain-text client whose broker answers only TLS → `tls` too;
3. SASL (SASL_*): mechanism not offered, credentials refused → `authentication`; a client
   without SASL whose broker demands it → `authentication` too.

Errors the brokers answer with once connected (`from_error()`) name the resource: topic, group,
transactional id or cluster authorization → `authorization`. Only `unreachable` is worth a
retry; each other cause has its own exit code (`EXIT_CODES`). The probe speaks the few requests
it needs (SaslHandshake v1, SaslAuthenticate v0, PLAIN and SCRAM-SHA-256/512) with the standard
library, so it depends on no kafka-python internals. No line ever holds a password: the probe
reports the broker's own message, which never repeats it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import socket
import ssl
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kafka.errors import (
    AuthorizationError,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    SaslAuthenticationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailedError,
)

from sunspots.kafka.settings import KafkaSettings

UNREACHABLE = "unreachable"
AUTHENTICATION = "authentication"
AUTHORIZATION = "authorization"
TLS = "tls"

# One exit code per cause, for every command (see docs/operations.md, exit codes).
EXIT_CODES = {UNREACHABLE: 4, AUTHENTICATION: 5, AUTHORIZATION: 6, TLS: 7}

# The errors with which brokers refuse a client; kafka-python may wrap them in another error.
REFUSAL_ERRORS = (AuthorizationError, SaslAuthenticationFailedError)
# kafka-python's authorization errors -> the kind of resource refused.
RESOURCE_KINDS: dict[type[AuthorizationError], str] = {
    TopicAuthorizationFailedError: "topic",
    GroupAuthorizationFailedError: "group",
    TransactionalIdAuthorizationFailedError: "transactional id",
    ClusterAuthorizationFailedError: "cluster",
}
ACL_ADVICE = "grant the ACLs listed in docs/security.md (Least privilege)"

# OpenSSL's verify codes for a certificate that does not name the host (name, IP address).
HOSTNAME_MISMATCH = (62, 64)
CLIENT_ID = "sunspots-probe"
SASL_HANDSHAKE, SASL_AUTHENTICATE, API_VERSIONS = 17, 36, 18
UNSUPPORTED_SASL_MECHANISM = 33


@dataclass(frozen=True)
class Refusal:
    """A named cause and the one line that tells it."""

    cause: str
    line: str

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.cause]

    @property
    def retry_helps(self) -> bool:
        return self.cause == UNREACHABLE


def refusal_error(error: BaseException) -> BaseException | None:
    """The brokers' refusal inside `error` (itself, its cause or an argument), if any."""
    inner = [error, error.__cause__, error.__context__, *getattr(error, "args", ())]
    return next((e for e in inner if isinstance(e, REFUSAL_ERRORS)), None)


def from_error(
    error: BaseException, kafka: KafkaSettings, resources: Mapping[str, str] | None = None
) -> Refusal | None:
    """The refusal an error the brokers answered with stands for, or None for any other error.
    `resources` names what this client uses, by kind: {"topic": ..., "group": ...}; the error's
    own argument, when it names the resource, wins."""
    error = refusal_error(error) or error
    if isinstance(error, SaslAuthenticationFailedError):
        return Refusal(
            AUTHENTICATION,
            f"authentication failed: Kafka at {kafka.bootstrap_servers} refused "
            f"{kafka.principal}: {error}",
        )
    if not isinstance(error, AuthorizationError):
        return None
    kind = next((k for t, k in RESOURCE_KINDS.items() if isinstance(error, t)), "resource")
    named = [name for a in getattr(error, "args", ()) for name in _names(a)]
    name = named[0] if named else (resources or {}).get(kind, "")
    what = "the cluster" if kind == "cluster" else f"{kind} {name}".strip()
    return Refusal(
        AUTHORIZATION,
        f"not authorized: Kafka at {kafka.bootstrap_servers} denied {kafka.principal} "
        f"access to {what} ({type(error).__name__}); {ACL_ADVICE}",
    )


def _names(argument: object) -> list[str]:
    """The resource names an error's argument holds: one name, or a set of topics (a client
    refused topics while it fetched their metadata)."""
    if isinstance(argument, str):
        return [argument] if argument and " " not in argument else []
    if isinstance(argument, set | frozenset | list | tuple):
        found = sorted(a for a in argument if isinstance(a, str) and " " not in a)
        return [" and ".join(found)] if found else []
    return []


def probe(kafka: KafkaSettings, timeout_s: float = 10.0) -> Refusal | None:
    """Connect to the bootstrap servers in turn as the clients do, until one takes this client
    (None: whatever failed was something else) or refuses it (that refusal); `unreachable`
    when no server answers."""
    security = dict(kafka.security)
    unreachable: Refusal | None = None
    for address in _servers(kafka):
        found = _probe_one(address.strip(), kafka, security, timeout_s)
        if found is None or not found.retry_helps:
            return found
        unreachable = unreachable or found
    return unreachable


def preflight(kafka: KafkaSettings) -> Refusal | None:
    """Before a client starts: a refusal no retry mends (authentication, TLS), else None, so
    that a wrong password is told at once rather than after kafka-python's bootstrap timeout.
    A broker out of reach is left to the clients, which wait for it."""
    found = probe(kafka)
    return found if found is not None and not found.retry_helps else None


def explain(
    error: BaseException, kafka: KafkaSettings, resources: Mapping[str, str] | None = None
) -> Refusal:
    """The refusal behind a client's failure: the brokers' own answer when it names one, else
    what a probe finds, else the servers are out of reach."""
    found = from_error(error, kafka, resources) or probe(kafka)
    if found is not None:
        return found
    return Refusal(UNREACHABLE, f"cannot reach Kafka at {kafka.bootstrap_servers}: {error}")


def of_failure(
    error: KafkaError, kafka: KafkaSettings, resources: Mapping[str, str] | None = None
) -> Refusal | None:
    """The refusal behind a failed Kafka request: for a connection failure (a timeout, no
    connection), what `explain` finds; for any other error, the brokers' refusal it carries, or
    None when it carries none (the brokers turned down the request itself)."""
    if isinstance(error, (KafkaTimeoutError, KafkaConnectionError)):
        return explain(error, kafka, resources)
    return from_error(error, kafka, resources)


def _servers(kafka: KafkaSettings) -> list[str]:
    return [s for s in kafka.bootstrap_servers.split(",") if s.strip()]


def _probe_one(
    address: str, kafka: KafkaSettings, security: dict[str, Any], timeout_s: float
) -> Refusal | None:
    host, _, port_text = address.rpartition(":")
    protocol = security.get("security_protocol", "PLAINTEXT")
    try:
        raw = socket.create_connection((host, int(port_text)), timeout=timeout_s)
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        return Refusal(UNREACHABLE, f"cannot reach Kafka at {address}: {reason}")
    try:
        if protocol in ("SSL", "SASL_SSL"):
            sock, refusal = _tls(raw, host, address, security)
        else:
            sock, refusal = raw, _plain_text_to_tls(raw, host, address, protocol, timeout_s)
        if refusal is None and sock is not None:
            refusal = _sasl(sock, address, kafka, security)
            sock.close()
        return refusal
    finally:
        raw.close()


def _tls(
    raw: socket.socket, host: str, address: str, security: dict[str, Any]
) -> tuple[ssl.SSLSocket | None, Refusal | None]:
    context = ssl.create_default_context(cafile=security.get("ssl_cafile"))
    context.check_hostname = bool(security.get("ssl_check_hostname", True))
    if security.get("ssl_certfile"):
        context.load_cert_chain(
            security["ssl_certfile"], security.get("ssl_keyfile"), security.get("ssl_password")
        )
    try:
        return context.wrap_socket(raw, server_hostname=host), None
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code in HOSTNAME_MISMATCH:
            line = (
                f"TLS failed: the certificate of Kafka at {address} is not valid for {host} "
                f"({exc.verify_message}); connect by a name the certificate holds"
            )
        else:
            line = (
                f"TLS failed: the certificate of Kafka at {address} is not trusted "
                f"({exc.verify_message}); give the CA that signed it with --ssl-cafile"
            )
        return None, Refusal(TLS, line)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return None, Refusal(
            TLS,
            f"TLS failed: the handshake with Kafka at {address} failed ({reason}); is it a TLS port?",
        )


def _plain_text_to_tls(
    raw: socket.socket, host: str, address: str, protocol: str, timeout_s: float
) -> Refusal | None:
    """A plain-text client whose broker closes on a plain request, but completes a TLS
    handshake, is speaking to a TLS port."""
    try:
        _request(raw, API_VERSIONS, 0, b"")
        return None
    except (OSError, ConnectionError, struct.error):
        pass
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        with socket.create_connection((host, int(address.rpartition(":")[2])), timeout_s) as s:
            context.wrap_socket(s, server_hostname=host).close()
    except (OSError, ssl.SSLError):
        return None
    return Refusal(
        TLS,
        f"TLS failed: Kafka at {address} speaks TLS but --security-protocol is {protocol}; "
        "set SSL or SASL_SSL (with --ssl-cafile)",
    )


def _sasl(
    sock: socket.socket, address: str, kafka: KafkaSettings, security: dict[str, Any]
) -> Refusal | None:
    protocol = security.get("security_protocol", "PLAINTEXT")
    mechanism = security.get("sasl_mechanism", "PLAIN")
    try:
        offered = _handshake(sock, mechanism)
        if not protocol.startswith("SASL_"):
            if offered is None:
                return None
            return Refusal(
                AUTHENTICATION,
                f"authentication failed: Kafka at {address} requires SASL ({', '.join(offered)}), but "
                f"--security-protocol is {protocol}; set SASL_SSL with --sasl-mechanism, "
                "--sasl-username and --sasl-password",
            )
        if offered is not None and mechanism not in offered:
            return Refusal(
                AUTHENTICATION,
                f"authentication failed: Kafka at {address} does not offer SASL {mechanism} "
                f"(it offers {', '.join(offered) or 'none'}); choose one with --sasl-mechanism",
            )
        user = str(security.get("sasl_plain_username", ""))
        password = str(security.get("sasl_plain_password", ""))
        if mechanism == "PLAIN":
            _authenticate(sock, f"\0{user}\0{password}".encode())
        else:
            _scram(sock, mechanism, user, password)
    except _AuthenticationFailed as exc:
        return Refusal(
            AUTHENTICATION,
            f"authentication failed: Kafka at {address} refused {kafka.principal} ({mechanism}): {exc}",
        )
    except (OSError, ConnectionError, struct.error):
        return None  # the connection went away for another reason: no verdict
    return None


class _AuthenticationFailed(Exception):
    """The broker's SaslAuthenticate error message."""


def _handshake(sock: socket.socket, mechanism: str) -> list[str] | None:
    """The mechanisms the listener offers, or None when it takes no SASL."""
    response = _request(sock, SASL_HANDSHAKE, 1, _string(mechanism))
    error, count = struct.unpack_from(">hi", response)
    offset, offered = 6, []
    for _ in range(max(count, 0)):
        (length,) = struct.unpack_from(">h", response, offset)
        offered.append(response[offset + 2 : offset + 2 + length].decode())
        offset += 2 + length
    if error not in (0, UNSUPPORTED_SASL_MECHANISM) or not offered:
        return None
    return offered


def _authenticate(sock: socket.socket, payload: bytes) -> bytes:
    response = _request(sock, SASL_AUTHENTICATE, 0, struct.pack(">i", len(payload)) + payload)
    error, length = struct.unpack_from(">hh", response)
    offset = 4
    message = ""
    if length >= 0:
        message = response[offset : offset + length].decode(errors="replace")
        offset += length
    if error != 0:
        raise _AuthenticationFailed(message or f"error {error}")
    (size,) = struct.unpack_from(">i", response, offset)
    return response[offset + 4 : offset + 4 + max(size, 0)]


def _scram(sock: socket.socket, mechanism: str, user: str, password: str) -> None:
    """SCRAM (RFC 5802) as Kafka speaks it, up to the server's verdict on the proof."""
    digest = "sha256" if mechanism == "SCRAM-SHA-256" else "sha512"
    name = user.replace("=", "=3D").replace(",", "=2C")
    bare = f"n={name},r={secrets.token_hex(16)}"
    server_first = _authenticate(sock, f"n,,{bare}".encode()).decode()
    attrs = dict(item.split("=", 1) for item in server_first.split(","))
    salted = hashlib.pbkdf2_hmac(
        digest, password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"])
    )
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    stored = hashlib.new(digest, client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    signature = hmac.new(stored, f"{bare},{server_first},{without_proof}".encode(), digest).digest()
    proof = base64.b64encode(bytes(a ^ b for a, b in zip(client_key, signature, strict=True)))
    _authenticate(sock, f"{without_proof},p={proof.decode()}".encode())


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _request(sock: socket.socket, api_key: int, version: int, body: bytes) -> bytes:
    """Send one request (header v1) and return the body of its response."""
    correlation = secrets.randbelow(2**31)
    message = struct.pack(">hhi", api_key, version, correlation) + _string(CLIENT_ID) + body
    sock.sendall(struct.pack(">i", len(message)) + message)
    (size,) = struct.unpack(">i", _read(sock, 4))
    response = _read(sock, size)
    if struct.unpack_from(">i", response)[0] != correlation:
        raise ConnectionError("unexpected response")
    return response[4:]


def _read(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = sock.recv(left)
        if not chunk:
            raise ConnectionError("connection closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def refused_at_start(kafka: KafkaSettings, reads: bool) -> tuple[str, int] | None:
    """The checks a command makes before its first client, in order: a compression codec it
    lacks (to write with, or, if it `reads`, any a batch may come in: a usage error, exit 2),
    then a refusal no retry mends (`preflight`). The first found, as the one line to tell and
    the exit code, or None."""
    from sunspots.kafka import codecs
    from sunspots.process.cli import EXIT_USAGE

    lacking = codecs.refusal(reads=reads, writes=kafka.compression_type)
    if lacking is not None:
        return lacking, EXIT_USAGE
    found = preflight(kafka)
    return None if found is None else (found.line, found.exit_code)
