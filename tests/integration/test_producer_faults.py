"""The replay producer when its broker goes away: a bounded, told and resumable stop.

Each test runs a broker of its own, so killing it disturbs no other test. The producer replays
a paced range of days for three series onto two partitions; the broker is killed once records
are on the topic and the replay is still sending (both read from the broker and the process).
Then:

* left alone, the producer gives up after its delivery timeout with exit code 4 and one error
  line naming the broker, the cause and the last date acknowledged; the topic holds every day
  of every series up to that date, none twice; `--resume` against the restarted broker sends
  the rest, so that the topic ends with every day of every series exactly once;
* told to stop (SIGTERM) while the broker is down, it exits within a few seconds with exit
  code 4 and a line saying how many records were left unacknowledged.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from devtools.broker import LocalBroker
from producer.replay import SHUTDOWN_GRACE_S
from sunspots.kafka.settings import KafkaSettings, Topics
from sunspots.kafka.topics import create_topics
from support.polling import wait_for
from support.run_progress import Progress
from support.run_topics import read_to_end, unique_topics, values
from support.services import Service, replay_range

pytestmark = pytest.mark.fault

START, END = "1990-01-01", "2009-12-31"
SERIES, SHIFT = 3, 27
SPEED = 300  # days a second: about 24 s for the range, so the kill lands mid-replay
DELIVERY_TIMEOUT = 6.0
EXIT_UNREACHABLE = 4
# What bounds a stop beyond the producer's own timeouts: a loaded test machine.
SLACK_S = 20.0
FAILURE = re.compile(
    r"ERROR producer: (?P<what>.+?); last date acknowledged (?P<last>\S+) "
    r"\((?P<acked>[\d,]+) of (?P<planned>[\d,]+) records\); (?P<advice>.+)$",
    re.MULTILINE,
)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[LocalBroker]:
    broker = LocalBroker(workdir=tmp_path / "kafka").start()
    try:
        yield broker
    finally:
        broker.cleanup()


def _replay(broker: LocalBroker, topics: Topics, data: Path, log_dir: Path, *extra: str) -> Service:
    return replay_range(
        broker.bootstrap_servers,
        topics,
        data,
        log_dir,
        START,
        END,
        SPEED,
        "--series-count",
        str(SERIES),
        "--series-shift-days",
        str(SHIFT),
        "--delivery-timeout",
        str(DELIVERY_TIMEOUT),
        *extra,
    )


def _expected() -> set[tuple[str, str]]:
    """Every (series, date) of the replay: series i starts i × SHIFT days after START."""
    first, last = date.fromisoformat(START), date.fromisoformat(END)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    return {(f"silso-{i}", d.isoformat()) for i in range(SERIES) for d in days[i * SHIFT :]}


def _on_topic(broker: LocalBroker, topics: Topics) -> Counter[tuple[str, str]]:
    records = values(read_to_end(broker.bootstrap_servers, topics.observations))
    return Counter((r["series"], r["date"]) for r in records)


def _kill_mid_replay(broker: LocalBroker, topics: Topics, replay: Service) -> int:
    """Kill the broker once a few hundred records are on the topic while the replay still
    sends; the records on the topic just before the kill."""
    with Progress(broker.bootstrap_servers) as progress:
        written = wait_for(
            "records on the topic",
            lambda: (n := progress.ends(topics.observations).written) >= 600 and n,
            120,
        )
    replay.check_running()
    broker.kill()
    return written


def _errors(replay: Service) -> list[str]:
    return [line for line in replay.log(10**7).splitlines() if " ERROR producer" in line]


def test_broker_lost_mid_replay_ends_in_one_line_and_resume_completes(
    broker, data_path, tmp_path, unique
) -> None:
    topics = unique_topics(unique)
    create_topics(KafkaSettings(broker.bootstrap_servers, topics), partitions=2)
    replay = _replay(broker, topics, data_path, tmp_path).start()
    try:
        before = _kill_mid_replay(broker, topics, replay)
        killed = time.monotonic()
        code = replay.wait(DELIVERY_TIMEOUT + SHUTDOWN_GRACE_S + SLACK_S)
        took = time.monotonic() - killed
    finally:
        replay.kill()
    print(f"\nbroker killed with {before} records on the topic; the producer exited {code} after")
    print(f"{took:.1f} s (delivery timeout {DELIVERY_TIMEOUT:g} s, grace {SHUTDOWN_GRACE_S:g} s)")
    errors = _errors(replay)
    print("\n".join(errors))
    assert code == EXIT_UNREACHABLE, replay.log()
    assert len(errors) == 1, replay.log()
    told = FAILURE.search(errors[0])
    assert told, errors[0]
    assert told["what"].startswith(
        f"cannot deliver to Kafka at {broker.bootstrap_servers} for {DELIVERY_TIMEOUT:g} s: "
        "KafkaTimeoutError"
    ), told["what"]
    assert told["advice"] == "resume with --resume"
    last = told["last"]
    expected = _expected()
    assert told["planned"] == f"{len(expected):,}"
    assert last != "none" and START <= last < END, "the kill must land mid-replay"

    broker.start()
    on_topic = _on_topic(broker, topics)
    assert max(on_topic.values()) == 1, "a record was written twice"
    assert set(on_topic) <= expected
    # Everything up to the last date acknowledged is there; after it, at most what reached
    # the broker without its acknowledgement reaching the producer.
    assert {k for k in expected if k[1] <= last} <= set(on_topic)
    acked = int(told["acked"].replace(",", ""))
    assert len(on_topic) >= acked
    print(f"on the topic after the kill: {len(on_topic)} records, last date acknowledged {last}")

    (tmp_path / "resume").mkdir()
    resumed = _replay(broker, topics, data_path, tmp_path / "resume", "--resume", "--speed", "0")
    resumed.start()
    try:
        assert resumed.wait(300) == 0, resumed.log()
    finally:
        resumed.kill()
    said = re.search(r"resume: continuing after the last date of each series on \S+: (.+)$",
                     resumed.log(10**7), re.MULTILINE)  # fmt: skip
    assert said, resumed.log()
    print(said.group(0))
    final = _on_topic(broker, topics)
    assert set(final) == expected, (
        f"missing {sorted(expected - set(final))[:5]}, extra {sorted(set(final) - expected)[:5]}"
    )
    assert max(final.values()) == 1, [k for k, n in final.items() if n > 1][:5]
    # The resumed run said where each series continued: its last date on the topic.
    for series in (f"silso-{i}" for i in range(SERIES)):
        on_it = max(d for s, d in on_topic if s == series)
        assert f"{series} {on_it}" in said.group(1)


def test_sigterm_while_the_broker_is_down_exits_within_the_grace(
    broker, data_path, tmp_path, unique
) -> None:
    topics = unique_topics(unique)
    create_topics(KafkaSettings(broker.bootstrap_servers, topics), partitions=2)
    # Kafka's default delivery timeout (120 s): the stop must come from the signal.
    replay = replay_range(
        broker.bootstrap_servers, topics, data_path, tmp_path, START, END, SPEED
    ).start()
    try:
        written = _kill_mid_replay(broker, topics, replay)
        logged = len(replay.log(10**7))
        # Records sent after the kill are in flight and cannot be acknowledged.
        wait_for(
            "a progress line counting records sent after the kill",
            lambda: any(
                int(n) > written
                for n in re.findall(r"progress: .* (\d+) records,", replay.log(10**7)[logged:])
            ),
            30,
        )
        signalled = time.monotonic()
        code = replay.terminate(SHUTDOWN_GRACE_S + SLACK_S)
        took = time.monotonic() - signalled
    finally:
        replay.kill()
    errors = _errors(replay)
    print(f"\nSIGTERM with the broker down: exit {code} after {took:.1f} s")
    print("\n".join(errors))
    assert code == EXIT_UNREACHABLE, replay.log()
    assert len(errors) == 1, replay.log()
    told = FAILURE.search(errors[0])
    assert told, errors[0]
    assert re.fullmatch(
        rf"stopped with [\d,]+ records in flight that Kafka at {broker.bootstrap_servers} did "
        rf"not acknowledge within {SHUTDOWN_GRACE_S:g} s",
        told["what"],
    ), told["what"]
    assert "SIGTERM received" in replay.log(10**7)
