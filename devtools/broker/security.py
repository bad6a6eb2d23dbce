"""A local Apache Kafka that only speaks SASL_SSL, with ACLs, for the secured-cluster tests.

Users run the services against secured clusters, so the tests need one: TLS with a private
certificate authority, SASL users (SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN), and the
StandardAuthorizer with `allow.everyone.if.no.acl.found=false`, so that a principal may do
exactly what its ACLs allow. Everything is made in the broker's work directory with the JDK's
`keytool`: a CA, the broker's key signed by it for 127.0.0.1 and localhost, and a second key
for a host name that is not ours, served on a second listener so that a client's host-name
check can be seen to fail. The SCRAM users are created when the storage is formatted.

The controller listener stays PLAINTEXT on loopback; its principal (`User:ANONYMOUS`) and the
broker's own admin are super users.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devtools.broker import (
    DEFAULT_HEAP,
    KAFKA_VERSION,
    ONE_NODE_TOPICS,
    TEST_TUNING,
    BrokerError,
    LocalBroker,
    free_port,
)

ADMIN = "admin"
MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
INTER_BROKER_MECHANISM = "SCRAM-SHA-512"
# A host name certificates are issued for that is not this machine's.
FOREIGN_HOST = "kafka.example.invalid"


@dataclass(frozen=True)
class Certificates:
    """The files make_certificates writes for a TLS broker and its clients, all PKCS12 but the
    CA's PEM, with one password."""

    ca_pem: Path  # what clients trust
    keystore: Path  # the broker's key, for 127.0.0.1 and localhost
    foreign_keystore: Path  # a key for FOREIGN_HOST only, signed by the same CA
    truststore: Path  # the CA, for the broker's own (inter-broker) connections
    password: str


def _keytool(*args: str, stdin: str | None = None) -> str:
    keytool = shutil.which("keytool")
    if keytool is None:
        raise BrokerError("keytool not found: install a Java 17+ JDK or JRE (openjdk-17)")
    done = subprocess.run([keytool, *args], input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise BrokerError(f"keytool {args[0]} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def _signed_key(directory: Path, name: str, san: str, ca: Path, password: str) -> Path:
    """A PKCS12 keystore holding a key for `san`, signed by the CA, with the chain."""
    store = directory / f"{name}.p12"
    common = ["-keystore", str(store), "-storetype", "PKCS12", "-storepass", password]
    _keytool(
        "-genkeypair", "-alias", name, "-dname", f"CN={name}", "-keyalg", "RSA",
        "-keysize", "2048", "-validity", "3", *common,
    )  # fmt: skip
    request = _keytool("-certreq", "-alias", name, *common)
    signed = _keytool(
        "-gencert", "-alias", "ca", "-keystore", str(ca), "-storepass", password,
        "-ext", f"SAN={san}", "-validity", "3", "-rfc", stdin=request,
    )  # fmt: skip
    ca_pem = _keytool(
        "-exportcert", "-rfc", "-alias", "ca", "-keystore", str(ca), "-storepass", password
    )
    (directory / "ca.pem").write_text(ca_pem)
    _keytool(
        "-importcert", "-alias", "ca", "-file", str(directory / "ca.pem"), "-noprompt", *common
    )
    (directory / f"{name}.pem").write_text(signed)
    _keytool("-importcert", "-alias", name, "-file", str(directory / f"{name}.pem"), *common)
    return store


def make_certificates(directory: Path, password: str = "sunspots-test") -> Certificates:
    """A private CA and the broker's keys, made with keytool in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = directory / "ca.p12"
    _keytool(
        "-genkeypair", "-alias", "ca", "-dname", "CN=sunspots test CA", "-keyalg", "RSA",
        "-keysize", "2048", "-validity", "3", "-ext", "bc:c", "-keystore", str(ca),
        "-storetype", "PKCS12", "-storepass", password,
    )  # fmt: skip
    keystore = _signed_key(directory, "broker", "IP:127.0.0.1,DNS:localhost", ca, password)
    foreign = _signed_key(directory, "foreign", f"DNS:{FOREIGN_HOST}", ca, password)
    truststore = directory / "truststore.p12"
    _keytool(
        "-importcert", "-alias", "ca", "-file", str(directory / "ca.pem"), "-noprompt",
        "-keystore", str(truststore), "-storetype", "PKCS12", "-storepass", password,
    )  # fmt: skip
    return Certificates(directory / "ca.pem", keystore, foreign, truststore, password)


def _jaas(module: str, users: dict[str, str], plain: bool) -> str:
    user_entries = "".join(f' user_{u}="{p}"' for u, p in users.items()) if plain else ""
    return (
        f"org.apache.kafka.common.security.{module} required "
        f'username="{ADMIN}" password="{users[ADMIN]}"{user_entries};'
    )


def secure_properties(
    port: int, foreign_port: int, controller_port: int, log_dir: Path, certs: Certificates,
    users: dict[str, str],
) -> dict[str, str]:  # fmt: skip
    """One node whose only client listeners are SASL_SSL (SECURE, and FOREIGN with the key of
    another host name), with the StandardAuthorizer denying what no ACL allows."""
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
        "listeners": (
            f"SECURE://127.0.0.1:{port},FOREIGN://127.0.0.1:{foreign_port},"
            f"CONTROLLER://127.0.0.1:{controller_port}"
        ),
        "advertised.listeners": f"SECURE://127.0.0.1:{port},FOREIGN://127.0.0.1:{foreign_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SECURE",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,SECURE:SASL_SSL,FOREIGN:SASL_SSL",
        "sasl.enabled.mechanisms": ",".join(MECHANISMS),
        "sasl.mechanism.inter.broker.protocol": INTER_BROKER_MECHANISM,
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "allow.everyone.if.no.acl.found": "false",
        "super.users": f"User:{ADMIN};User:ANONYMOUS",
        "ssl.truststore.location": str(certs.truststore),
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.password": certs.password,
        "log.dirs": str(log_dir),
        **ONE_NODE_TOPICS,
        **TEST_TUNING,
    }
    for listener, keystore in (("secure", certs.keystore), ("foreign", certs.foreign_keystore)):
        prefix = f"listener.name.{listener}"
        props[f"{prefix}.ssl.keystore.location"] = str(keystore)
        props[f"{prefix}.ssl.keystore.type"] = "PKCS12"
        props[f"{prefix}.ssl.keystore.password"] = certs.password
        props[f"{prefix}.ssl.key.password"] = certs.password
        for mechanism in MECHANISMS:
            module = "plain.PlainLoginModule" if mechanism == "PLAIN" else "scram.ScramLoginModule"
            props[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = _jaas(
                module, users, mechanism == "PLAIN"
            )
    return props


class SecureBroker(LocalBroker):
    """A LocalBroker with SASL_SSL listeners only, TLS from a private CA, and ACLs enforced.

    `users` maps user names to passwords (the admin is added); each gets SCRAM-SHA-256 and
    SCRAM-SHA-512 credentials at format time and a PLAIN entry.
    """

    def __init__(
        self,
        users: dict[str, str],
        workdir: Path | None = None,
        heap: str = DEFAULT_HEAP,
        version: str = KAFKA_VERSION,
        admin_password: str = "admin-secret",
    ) -> None:
        super().__init__(workdir=workdir, heap=heap, version=version)
        self.users = {ADMIN: admin_password, **users}
        self.foreign_port = free_port()
        self.certificates = make_certificates(self.workdir / "tls")
        self._properties = secure_properties(
            self.port, self.foreign_port, self.controller_port, self.workdir / "data",
            self.certificates, self.users,
        )  # fmt: skip
        self.format_args = tuple(
            arg
            for user, password in self.users.items()
            for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
            for arg in ("--add-scram", f'{mechanism}=[name="{user}",password="{password}"]')
        )

    @property
    def foreign_bootstrap_servers(self) -> str:
        """The listener that presents a certificate for another host name."""
        return f"127.0.0.1:{self.foreign_port}"

    def client_kwargs(
        self, user: str = ADMIN, password: str | None = None, mechanism: str = "SCRAM-SHA-512"
    ) -> dict[str, Any]:
        """kafka-python keyword arguments for `user` (the admin by default)."""
        return {
            "bootstrap_servers": self.bootstrap_servers,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": user,
            "sasl_plain_password": self.users[user] if password is None else password,
            "ssl_cafile": str(self.certificates.ca_pem),
        }
