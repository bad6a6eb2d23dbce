"""The services on a secured cluster: SASL_SSL only, ACLs enforced, each refusal told clearly.

One broker for the module (`SecureBroker`: a private CA, SCRAM and PLAIN users made when its
storage is formatted, the StandardAuthorizer with `allow.everyone.if.no.acl.found=false`).
Topics are created by the admin; each service's principal gets exactly the ACLs docs/security.md
lists (`sunspots.kafka.acls.grants`), and with them the producer, the forecaster and the classifier
run a replay exactly once, each with another SASL mechanism (SCRAM-SHA-256, SCRAM-SHA-512,
PLAIN) and its password in a file; the model commands publish, promote and retire as the
publisher. Refused clients (no credentials, plain text, a wrong password, no write on the
observations topic, no transactional id, an untrusted certificate, a foreign host name; a
publisher without its transactional id or without write on the models topic) each end with
one line naming the cause, their own exit code, no password anywhere, and nothing written.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    KafkaAdminClient,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
)
from kafka.errors import CoordinatorNotAvailableError

from devtools.broker.security import SecureBroker
from producer.classify import ask
from sunspots.domain import lesson
from sunspots.domain.artifact import MODELS_DIR, load_forecaster
from sunspots.kafka import acls
from sunspots.kafka.refusal import ACL_ADVICE
from sunspots.kafka.settings import KafkaSettings, Topics, topic_flag
from sunspots.kafka.topics import create_topics
from sunspots.lifecycle import records as registry
from support.polling import wait_for
from support.run_topics import read_topic, unique_topics, values
from support.services import REPO, Service, consumer, instance_id, running
from tests.integration.offline import assert_matches, offline_run

pytestmark = pytest.mark.integration

# The transaction timeout of the consumers' producers (docs/guarantees.md, processing guarantees).
TRANSACTION_TIMEOUT_S = 60
# The exit codes of docs/operations.md's table, written out: the contract users' supervisors rely on.
EXIT_CODES = {"authentication": 5, "authorization": 6, "tls": 7}

PASSWORDS = {
    "producer": "producer-Pw-7f3a",
    "forecaster": "forecaster-Pw-91c2",
    "classifier": "classifier-Pw-44d0",
    "stranger": "stranger-Pw-0b5e",  # authenticated, but granted nothing
    "half": "half-Pw-c8e1",  # the forecaster's grants without its transactional id
    "publisher": "publisher-Pw-3e9a",  # runs the model commands
    "notxid": "notxid-Pw-6b27",  # the publisher's grants without its transactional id
    "readonly": "readonly-Pw-d410",  # the publisher's grants without Write on the models topic
    "noshadow": "noshadow-Pw-2c81",  # the forecaster's grants without Write on the shadow topics
}
WRONG_PASSWORD = "not-the-Pw-5d17"
START, END = "2017-01-01", "2017-03-31"  # 90 days: 80 forecasts scored
RESOURCE_TYPES = {
    "topic": ResourceType.TOPIC,
    "group": ResourceType.GROUP,
    "transactional-id": ResourceType.TRANSACTIONAL_ID,
}


@pytest.fixture(scope="module")
def broker() -> Iterator[SecureBroker]:
    secured = SecureBroker(PASSWORDS).start()
    try:
        yield secured
    finally:
        secured.cleanup()


def _admin_settings(broker: SecureBroker, topics: Topics) -> KafkaSettings:
    kwargs = broker.client_kwargs()
    security = tuple((k, v) for k, v in kwargs.items() if k != "bootstrap_servers")
    return KafkaSettings(broker.bootstrap_servers, topics, security)


def _admin_config(broker: SecureBroker) -> dict[str, Any]:
    return {k: v for k, v in broker.client_kwargs().items() if k != "bootstrap_servers"}


def _grant(broker: SecureBroker, user: str, grants: list[acls.Grant]) -> None:
    """Allow `user` exactly `grants`, and wait until the broker's authorizer holds them (a
    client started at once could otherwise be judged on the ACLs before)."""
    wanted = [_acl(user, g) for g in grants]
    everything = ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)
    mine = ACLFilter(f"User:{user}", None, ACLOperation.ANY, ACLPermissionType.ANY, everything)
    admin = KafkaAdminClient(**broker.client_kwargs())
    try:
        made = admin.create_acls(wanted)
        assert not made["failed"], made
        wait_for(
            f"the ACLs of {user}", lambda: set(wanted) <= set(admin.describe_acls(mine)[0]), 30
        )
    finally:
        admin.close()


def _acl(user: str, grant: acls.Grant) -> ACL:
    pattern = ACLResourcePatternType.PREFIXED if grant.prefixed else ACLResourcePatternType.LITERAL
    return ACL(
        f"User:{user}",
        "*",
        ACLOperation[grant.operation.upper()],
        ACLPermissionType.ALLOW,
        ResourcePattern(RESOURCE_TYPES[grant.resource], grant.name, pattern),
    )


@pytest.fixture
def topics(broker: SecureBroker, unique: str) -> Topics:
    """This test's topics, created by the admin as an operator would (`sunspots-topics`)."""
    mine = unique_topics(unique)
    create_topics(_admin_settings(broker, mine), partitions=1)
    return mine


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "secrets"
    directory.mkdir()
    return directory


def _client_env(
    broker: SecureBroker,
    user: str | None,
    secrets: Path,
    password: str | None = None,
    **overrides: str,
) -> dict[str, str]:
    """A service's environment for `user`, its password in a file as Docker secrets give it."""
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SSL_CAFILE": str(broker.certificates.ca_pem),
    }
    if user is not None:
        secret = secrets / f"{user}.password"
        secret.write_text((password or PASSWORDS[user]) + "\n")
        env |= {
            "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD_FILE": str(secret),
        }
    return {**env, **overrides}


def _run(
    command: list[str], env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """A command run to its end with `env` as its only Kafka and service settings."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SUNSPOTS_", "KAFKA_"))}
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**base, **env}
    )


def _producer(
    env: dict[str, str], topics: Topics, data_path: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    args = ["--data", str(data_path), "--start", START, "--end", END, "--delivery-timeout", "20"]
    args += ["--topic-observations", topics.observations, *extra]
    return _run([sys.executable, "-m", "producer", *args], env, 180)


def _service(broker: SecureBroker, topics: Topics, mode: str, group: str, env: dict, log_dir: Path):
    """`python -m consumer <mode>` on the admin's topics, as instance `<group>-a` (not started)."""
    return consumer(
        mode,
        broker.bootstrap_servers,
        topics,
        group,
        log_dir / f"{mode}-{group}.log",
        "--create-topics",
        "false",
        "--metrics-host",
        "127.0.0.1",
        instance_id=instance_id(group, "a"),
        env=env,
    )


def _no_secret_in(*texts: str) -> None:
    for text in texts:
        for password in (*PASSWORDS.values(), WRONG_PASSWORD):
            assert password not in text


def _one_line(stderr: str, logger: str, expected: str) -> str:
    """The run's own error: exactly one line, from `logger`, holding `expected`."""
    ours = [line for line in stderr.splitlines() if f"ERROR {logger}:" in line]
    assert len(ours) == 1, stderr
    assert expected in ours[0], stderr
    assert "Traceback" not in stderr, stderr
    return ours[0]


def _observations(broker: SecureBroker, topics: Topics) -> int:
    return len(
        read_topic(broker.bootstrap_servers, topics.observations, idle=1.0, **_admin_config(broker))
    )


# --- granted exactly the ACLs of docs/security.md, the services run a replay exactly once -


def test_with_the_listed_acls_the_services_run_a_replay_exactly_once(
    broker, topics, unique, secrets_dir, data_file, forecaster_model, tmp_path
) -> None:
    group_f, group_c = f"gf-{unique}", f"gc-{unique}"
    _grant(broker, "producer", acls.grants(acls.PRODUCER, topics))
    _grant(broker, "forecaster", acls.grants(acls.FORECASTER, topics, group_f))
    _grant(broker, "classifier", acls.grants(acls.CLASSIFIER, topics, group_c))

    def service(mode: str, user: str, group: str, mechanism: str) -> Service:
        env = _client_env(broker, user, secrets_dir, KAFKA_SASL_MECHANISM=mechanism)
        return _service(broker, topics, mode, group, env, tmp_path)

    offline = offline_run(data_file, forecaster_model, START, END)
    with (
        running(service("forecast", "forecaster", group_f, "SCRAM-SHA-512")) as fc,
        running(service("classify", "classifier", group_c, "PLAIN")) as cl,
    ):
        fc.wait_ready(120)
        cl.wait_ready(120)
        env = _client_env(broker, "producer", secrets_dir, KAFKA_SASL_MECHANISM="SCRAM-SHA-256")
        done = _producer(env, topics, data_file.path)
        assert done.returncode == 0, done.stderr
        admin = _admin_config(broker)
        forecasts = values(
            read_topic(broker.bootstrap_servers, topics.forecasts, len(offline.forecasts), **admin)
        )
        evaluations = values(
            read_topic(
                broker.bootstrap_servers, topics.evaluations, len(offline.evaluations), **admin
            )
        )
        admin_kafka = _admin_settings(broker, topics)
        answers = ask(admin_kafka, lesson.SEQUENCES, timeout=60)
        assert [a.predicted_class for a in answers] == lesson.CLASSES
        predictions = read_topic(broker.bootstrap_servers, topics.classifier_predictions, **admin)
        assert len(predictions) == len(lesson.SEQUENCES)  # each answered once
        metrics = [fc.get("/metrics")[1], cl.get("/metrics")[1]]
        assert fc.terminate() == 0 and cl.terminate() == 0
    assert_matches(offline, forecasts, evaluations)
    _no_secret_in(done.stderr, fc.log(), cl.log(), *metrics)


# --- refused: one line with the cause, its exit code, nothing written ------------------------


# (case, client settings, cause, the start of the line the producer ends with)
REFUSALS = [
    ("no-credentials", dict(user=None, KAFKA_SECURITY_PROTOCOL="SSL"), "authentication",
     "authentication failed: Kafka at {bootstrap} requires SASL"),
    ("plain-text", dict(user=None, KAFKA_SECURITY_PROTOCOL="PLAINTEXT", KAFKA_SSL_CAFILE=""),
     "tls", "TLS failed: Kafka at {bootstrap} speaks TLS but --security-protocol is PLAINTEXT"),
    ("wrong-password", dict(user="producer", password=WRONG_PASSWORD), "authentication",
     "authentication failed: Kafka at {bootstrap} refused User:producer (SCRAM-SHA-512): "
     "Authentication failed during authentication due to invalid credentials"),
    ("no-write-acl", dict(user="stranger"), "authorization",
     "not authorized: Kafka at {bootstrap} denied User:stranger access to topic {topic} "
     "(TopicAuthorizationFailedError)"),
    ("untrusted-certificate", dict(user="producer", KAFKA_SSL_CAFILE=""), "tls",
     "TLS failed: the certificate of Kafka at {bootstrap} is not trusted"),
    ("foreign-host-name", dict(user="producer", foreign=True), "tls",
     "TLS failed: the certificate of Kafka at {bootstrap} is not valid for 127.0.0.1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("client", "cause", "expected"),
    [pytest.param(*case, id=name) for name, *case in REFUSALS],
)
def test_a_refused_producer_says_why_in_one_line(
    broker, topics, secrets_dir, data_file, client, cause, expected
) -> None:
    client = dict(client)
    user, password = client.pop("user"), client.pop("password", None)
    bootstrap = broker.foreign_bootstrap_servers if client.pop("foreign", False) else None
    env = _client_env(broker, user, secrets_dir, password, **client)
    if bootstrap:
        env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
    env = {k: v for k, v in env.items() if v}
    done = _producer(env, topics, data_file.path)
    assert done.returncode == EXIT_CODES[cause], done.stderr
    shown = env["KAFKA_BOOTSTRAP_SERVERS"]
    _one_line(done.stderr, "producer", expected.format(bootstrap=shown, topic=topics.observations))
    _no_secret_in(done.stdout, done.stderr)
    assert _observations(broker, topics) == 0


def test_the_host_name_check_can_be_turned_off(broker, topics, secrets_dir, data_file) -> None:
    """The listener whose certificate names another host takes a client that does not check."""
    _grant(broker, "producer", acls.grants(acls.PRODUCER, topics))
    env = _client_env(broker, "producer", secrets_dir, KAFKA_SSL_CHECK_HOSTNAME="false")
    env["KAFKA_BOOTSTRAP_SERVERS"] = broker.foreign_bootstrap_servers
    done = _producer(env, topics, data_file.path)
    assert done.returncode == 0, done.stderr
    assert _observations(broker, topics) == 90


def _refused_forecaster(service: Service, cause: str, expected: str) -> None:
    """The forecaster exits with the cause's code and one line, its password nowhere."""
    with running(service) as fc:
        code = fc.wait(180)
    assert code == EXIT_CODES[cause], fc.log()
    _one_line(fc.log(), "consumer", expected)
    _no_secret_in(fc.log())


def test_a_forecaster_without_its_transactional_id_says_so_and_writes_nothing(
    broker, topics, unique, secrets_dir, data_file, tmp_path
) -> None:
    """Observations wait on the topic, so a forecaster that could write would: it writes
    nothing and commits no offset."""
    group = f"gh-{unique}"
    grants = acls.grants(acls.FORECASTER, topics, group)
    _grant(broker, "half", [g for g in grants if g.resource != "transactional-id"])
    _grant(broker, "producer", acls.grants(acls.PRODUCER, topics))
    done = _producer(_client_env(broker, "producer", secrets_dir), topics, data_file.path)
    assert done.returncode == 0, done.stderr
    assert _observations(broker, topics) == 90
    _refused_forecaster(
        _service(
            broker, topics, "forecast", group, _client_env(broker, "half", secrets_dir), tmp_path
        ),
        "authorization",
        f"not authorized: Kafka at {broker.bootstrap_servers} denied User:half access to "
        f"transactional id {group}-{instance_id(group, 'a')} "
        "(TransactionalIdAuthorizationFailedError)",
    )
    admin = _admin_config(broker)
    assert read_topic(broker.bootstrap_servers, topics.forecasts, idle=1.0, **admin) == []
    assert read_topic(broker.bootstrap_servers, topics.dead_letter, idle=1.0, **admin) == []
    _assert_no_offsets(broker, group)


def _assert_no_offsets(broker: SecureBroker, group: str) -> None:
    """The group committed no offset: none listed, or no offsets topic on the broker at all
    (no group has committed yet, so its coordinator is not available)."""
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers, **_admin_config(broker))
    try:
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
        except CoordinatorNotAvailableError:
            assert "__consumer_offsets" not in admin.list_topics()
            return
        assert [o for o in offsets.values() if o.offset > 0] == [], offsets
    finally:
        admin.close()


def test_a_forecaster_refused_a_shadow_topic_says_so_and_commits_nothing(
    broker, topics, unique, secrets_dir, data_file, tmp_path
) -> None:
    """A challenger on the models topic, but no Write on the shadow topics: the first batch's
    shadow forecasts are refused, and the forecaster stops with that refusal (not after the
    transaction's timeout, not as a broker that went away)."""
    group = f"gs-{unique}"
    shadow = {topics.forecasts_shadow, topics.evaluations_shadow}
    grants = acls.grants(acls.FORECASTER, topics, group)
    _grant(broker, "noshadow", [g for g in grants if g.name not in shadow])
    _grant(broker, "producer", acls.grants(acls.PRODUCER, topics))
    w27 = MODELS_DIR / "sunspot_lstm_w27.json"
    record = registry.make_record(
        "challenger", w27.read_text(), w27.with_suffix(".npz").read_bytes(), "admin@test"
    )
    admin = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, **_admin_config(broker))
    admin.send(topics.models, key=b"challenger", value=registry.encode(record)).get(30)
    admin.close()
    done = _producer(_client_env(broker, "producer", secrets_dir), topics, data_file.path)
    assert done.returncode == 0, done.stderr
    env = _client_env(broker, "noshadow", secrets_dir)
    started = time.monotonic()
    _refused_forecaster(
        _service(broker, topics, "forecast", group, env, tmp_path),
        "authorization",
        f"not authorized: Kafka at {broker.bootstrap_servers} denied User:noshadow access to "
        f"topic {topics.forecasts_shadow} (TopicAuthorizationFailedError)",
    )
    stopped = time.monotonic() - started
    print(f"\nrefused and stopped {stopped:.1f} s after its start")
    # Before the broker's 60 s transaction timeout could have aborted the batch: the refusal
    # itself stopped it, not a timeout.
    assert stopped < TRANSACTION_TIMEOUT_S
    config = _admin_config(broker)
    assert read_topic(broker.bootstrap_servers, topics.forecasts, idle=1.0, **config) == []
    _assert_no_offsets(broker, group)


def test_a_forecaster_with_a_wrong_password_stops_at_once(
    broker, topics, unique, secrets_dir, tmp_path
) -> None:
    group = f"gw-{unique}"
    env = _client_env(broker, "forecaster", secrets_dir, WRONG_PASSWORD)
    _refused_forecaster(
        _service(broker, topics, "forecast", group, env, tmp_path),
        "authentication",
        f"authentication failed: Kafka at {broker.bootstrap_servers} refused User:forecaster "
        "(SCRAM-SHA-512): Authentication failed during authentication due to invalid credentials",
    )


def test_sunspots_topics_with_a_wrong_password_says_so_in_one_line(broker, secrets_dir) -> None:
    env = _client_env(broker, "producer", secrets_dir, WRONG_PASSWORD)
    done = _run([str(Path(sys.executable).with_name("sunspots-topics"))], env, 120)
    assert done.returncode == 5, done.stderr
    _one_line(
        done.stderr,
        "sunspots.kafka.topics",
        f"cannot create the topics: authentication failed: Kafka at {broker.bootstrap_servers} "
        "refused User:producer (SCRAM-SHA-512)",
    )
    _no_secret_in(done.stdout, done.stderr)


# --- the model commands as the publisher: exactly its grants, or a refusal in one line -------

MODEL = MODELS_DIR / "sunspot_lstm.json"


def _model_command(
    broker: SecureBroker, topics: Topics, user: str, secrets: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """`python -m training ARGS` as `user`, on this test's models topic (made by the admin)."""
    command = [sys.executable, "-m", "training", *args, topic_flag("models"), topics.models]
    return _run(command, _client_env(broker, user, secrets), 120)


def _models(broker: SecureBroker, topics: Topics, expected: int | None = None) -> list:
    return read_topic(
        broker.bootstrap_servers, topics.models, expected, idle=1.0, **_admin_config(broker)
    )


def test_with_the_listed_acls_the_publisher_publishes_promotes_and_retires(
    broker, topics, secrets_dir
) -> None:
    _grant(broker, "publisher", acls.grants(acls.PUBLISHER, topics))
    version = load_forecaster(MODEL).model_version
    steps = [
        (["publish", str(MODEL), "--role", "challenger"], f"published {version} as challenger"),
        (["promote"], f"promoted {version} from challenger to champion"),
        (["retire", "--role", "challenger"], "retired the challenger"),
    ]
    outputs = []
    for args, said in steps:
        done = _model_command(broker, topics, "publisher", secrets_dir, *args)
        assert done.returncode == 0, done.stderr
        assert f"{said} on {topics.models}" in done.stderr
        outputs += [done.stdout, done.stderr]
    keys = [(r.key.decode(), r.value is None) for r in _models(broker, topics, 4)]
    assert keys == [
        (registry.CHALLENGER, False),
        (registry.CHAMPION, False),
        (registry.CHALLENGER, True),
        (registry.CHALLENGER, True),
    ]
    _no_secret_in(*outputs)


# (case, user, the publisher's grant left out, the line the command ends with)
MODEL_REFUSALS = [
    ("no-transactional-id", "notxid", ("Write", "transactional-id"),
     "publish: cannot connect to Kafka: not authorized: Kafka at {bootstrap} denied "
     "User:notxid access to transactional id sunspots-models-publisher "
     "(TransactionalIdAuthorizationFailedError); "),
    ("no-write-on-the-models-topic", "readonly", ("Write", "topic"),
     "publish: cannot write the models topic: not authorized: Kafka at {bootstrap} denied "
     "User:readonly access to topic {models} (TopicAuthorizationFailedError); "),
]  # fmt: skip


@pytest.mark.parametrize(
    ("user", "withheld", "expected"),
    [pytest.param(*case, id=name) for name, *case in MODEL_REFUSALS],
)
def test_a_publisher_without_a_grant_is_refused_in_one_line(
    broker, topics, secrets_dir, user, withheld, expected
) -> None:
    grants = acls.grants(acls.PUBLISHER, topics)
    _grant(broker, user, [g for g in grants if (g.operation, g.resource) != withheld])
    done = _model_command(
        broker, topics, user, secrets_dir, "publish", str(MODEL), "--role", "challenger"
    )
    assert done.returncode == EXIT_CODES["authorization"], done.stderr
    expected = expected.format(bootstrap=broker.bootstrap_servers, models=topics.models)
    line = _one_line(done.stderr, "sunspots.lifecycle.publishing", expected + ACL_ADVICE)
    assert line.endswith(expected + ACL_ADVICE), line
    _no_secret_in(done.stdout, done.stderr)
    assert _models(broker, topics) == []


def test_a_principal_that_may_not_see_the_models_topic_is_told_both_causes(
    broker, topics, secrets_dir
) -> None:
    """Granted nothing: the brokers list no models topic to it, as if there were none; the
    line says it may be either, and names the principal."""
    done = _model_command(
        broker, topics, "stranger", secrets_dir, "publish", str(MODEL), "--role", "challenger"
    )
    assert done.returncode == 2, done.stderr
    _one_line(
        done.stderr,
        "sunspots.lifecycle.publishing",
        f"the models topic {topics.models} does not exist, or User:stranger may not see it",
    )
    _no_secret_in(done.stdout, done.stderr)


# --- a refusal is one line: kafka-python's own lines stay below the project's ----------------


@pytest.mark.parametrize(
    ("user", "password", "cause", "expected"),
    [
        pytest.param(
            "stranger",
            None,
            "authorization",
            "not authorized: Kafka at {bootstrap} denied User:stranger access to topic {topic} "
            f"(TopicAuthorizationFailedError); {ACL_ADVICE}; last date acknowledged none "
            "(0 of 90 records)",
            id="denied-its-topic",
        ),
        pytest.param(
            "producer",
            WRONG_PASSWORD,
            "authentication",
            "authentication failed: Kafka at {bootstrap} refused User:producer (SCRAM-SHA-512): "
            "Authentication failed during authentication due to invalid credentials with SASL "
            "mechanism SCRAM-SHA-512",
            id="wrong-password",
        ),
    ],
)
def test_a_refused_producers_whole_stderr_is_its_one_line(
    broker, topics, secrets_dir, data_file, user, password, cause, expected
) -> None:
    """At `--log-level warning` (its INFO lines about the replay aside) a refused producer's
    stderr is the project's one line: not kafka-python's ERROR lines before it
    (ClusterAuthorizationFailedError, `Topic … is not authorized`, `Exception occurred waiting
    for metadata`)."""
    env = _client_env(broker, user, secrets_dir, password, SUNSPOTS_LOG_LEVEL="warning")
    done = _producer(env, topics, data_file.path)
    assert done.returncode == EXIT_CODES[cause], done.stderr
    line = expected.format(bootstrap=broker.bootstrap_servers, topic=topics.observations)
    # `date time LEVEL logger: message`: everything but the time stamp.
    assert [text.split(" ", 2)[2] for text in done.stderr.splitlines()] == [
        f"ERROR producer: {line}"
    ], done.stderr
