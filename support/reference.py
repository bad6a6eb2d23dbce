"""The reference pages' tables, generated from the code so that they cannot drift from it.

Four references are written between marker comments in the docs pages
(`<!-- generated: NAME -->` … `<!-- end generated -->`), by `make docs`
(`python -m support.reference`); `tests/unit/test_reference.py` regenerates them and fails
with "run make docs" when a page is stale:

- `configuration`: every flag of every console script, its variable, default and help, read
  from the commands' own argparse parsers (built with the project's variables unset);
- `metrics`: every metric family the two consumer services export, read from the
  prometheus_client registries they build, after a small real workload so that labelled
  families show their labels;
- `topics`: one example record per topic, made by the real code paths (the replay's
  observations, the forecaster and the classifier processors with the committed models, the
  model commands' record), each validated against its JSON Schema by the test;
- `exit-codes`: the exit codes from the constants the commands exit with.

This is the one module that imports the services' internals for the docs: when modules move,
only the imports here change.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from prometheus_client import CollectorRegistry

from consumer import __main__ as consumer_main
from consumer import config as consumer_config
from consumer import metrics as metric_specs
from consumer.classifier import Classifier
from consumer.forecaster import Forecaster
from consumer.health import Health
from consumer.lag import LagCollector
from consumer.loop_metrics import LoopMetrics
from consumer.metrics import ClassifierMetrics, ForecasterMetrics, LifecycleMetrics
from consumer.series_metrics import SeriesSelection
from consumer.stops import EXIT_INPUT, EXIT_STALLED
from consumer.topic_changes import TopicChangeMetrics
from consumer.watchdog import PartitionState
from devtools.broker import __main__ as broker_main
from producer import __main__ as producer_main
from producer import classify as producer_classify
from producer.replay import ReplayConfig, observations
from sunspots.domain.artifact import (
    DEFAULT_CLASSIFIER,
    DEFAULT_FORECASTER,
    load_classifier,
    load_forecaster,
)
from sunspots.kafka.refusal import AUTHENTICATION, AUTHORIZATION, EXIT_CODES, TLS, UNREACHABLE
from sunspots.kafka.settings import Topics
from sunspots.kafka.topics import build_parser as topics_parser
from sunspots.lifecycle import records
from sunspots.lifecycle.publishing import EXIT_BAD_INPUT, EXIT_KAFKA
from sunspots.process import cli
from sunspots.wire.contracts import DEAD_LETTER_HEADERS
from sunspots.wire.schemas import Observation, encode_classifier_request
from support.records import Record
from training import __main__ as training_main

REPO = Path(__file__).resolve().parent.parent
MARKER = re.compile(
    r"(<!-- generated: (?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S
)
PAGES = ("docs/configuration.md", "docs/metrics.md", "docs/topics.md", "docs/operations.md")
TOPICS = Topics()


# --- configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    """One row of the configuration table."""

    flag: str
    env: str
    default: str
    help: str


# The console scripts (pyproject.toml's [project.scripts]) and how each builds its parser.
PARSERS: tuple[tuple[str, Callable[[], argparse.ArgumentParser]], ...] = (
    ("sunspots-consumer", consumer_config.build_parser),
    ("sunspots-producer", producer_main.build_parser),
    ("sunspots-producer classify", producer_classify.build_parser),
    ("sunspots-topics", topics_parser),
    ("sunspots-train", training_main.build_parser),
    ("python -m devtools.broker", broker_main.build_parser),
)
ENV_MARK = re.compile(r"\s*\[env: (?P<env>[A-Z0-9_]+)\]$")
DEFAULT_MARK = re.compile(r" \(default: .*\)$", re.S)


@contextmanager
def project_variables_unset() -> Iterator[None]:
    """The flags' defaults are read from the environment when a parser is built: build them
    with none of the project's variables set, so the table shows the code's defaults."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith((cli.ENV_PREFIX, cli.KAFKA_ENV_PREFIX)) or name in cli.RENAMED_ENV:
            del os.environ[name]
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def commands() -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by its name, subcommands included."""
    out: dict[str, argparse.ArgumentParser] = {}
    with project_variables_unset():
        for name, build in PARSERS:
            parser = build()
            subcommands = _subcommands(parser)
            if subcommands:
                out.update({f"{name} {sub}": p for sub, p in subcommands.items()})
            else:
                out[name] = parser
    return out


def _actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    # argparse has no public list of a parser's arguments; `_actions` is the standard
    # library's own, stable since Python 2.7 (the reference test fails if it goes).
    return list(parser._actions)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in _actions(parser):
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def flags(parser: argparse.ArgumentParser) -> list[Flag]:
    """The flags of `parser` that have a variable (every flag but --help and positionals)."""
    out = []
    for action in _actions(parser):
        found = ENV_MARK.search(action.help or "")
        if not action.option_strings or not found:
            continue
        text = DEFAULT_MARK.sub("", (action.help or "")[: found.start()]).replace("%%", "%")
        if action.choices:
            text += " (" + ", ".join(f"`{c}`" for c in action.choices) + ")"
        out.append(Flag(action.option_strings[0], found["env"], _shown(action.default), text))
    return out


def _shown(default: Any) -> str:
    """A default as the table shows it: paths from the repository, the host name named."""
    if default is None or default == "":
        return "–"
    if isinstance(default, Path):
        default = default.relative_to(REPO) if default.is_absolute() else default
    if isinstance(default, bool):
        default = str(default).lower()
    if isinstance(default, list):
        default = ",".join(map(str, default))
    if default == socket.gethostname():
        return "the host name"
    return f"`{default}`"


def configuration() -> str:
    """One table per set of commands that share flags, in the order the commands come."""
    by_flag: dict[Flag, list[str]] = {}
    for name, parser in commands().items():
        for flag in flags(parser):
            by_flag.setdefault(flag, []).append(name)
    groups: dict[tuple[str, ...], list[Flag]] = {}
    for flag, names in by_flag.items():
        groups.setdefault(tuple(names), []).append(flag)
    lines = []
    for names, rows in groups.items():
        lines += ["", "**" + ", ".join(f"`{n}`" for n in names) + "**", ""]
        lines += ["| flag | variable | default | meaning |", "| --- | --- | --- | --- |"]
        lines += [f"| `{f.flag}` | `{f.env}` | {f.default} | {_cell(f.help)} |" for f in rows]
    return "\n".join(lines[1:]) + "\n"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


# --- metrics ------------------------------------------------------------------------------


class _OnePartition:
    """A watchdog watching one partition, so the lag collector shows its labels."""

    stalls_total = 0

    def snapshot(self) -> list[PartitionState]:
        return [PartitionState(_TopicPartition(TOPICS.observations, 0), 0, False)]


@dataclass(frozen=True)
class _TopicPartition:
    topic: str
    partition: int


# Observations of 2017-06-20 … 2017-07-02 from SILSO's daily file (value, std dev, observers),
# with one day missing (SILSO's -1) so that a window reset shows: enough for the committed
# forecaster (window 10) to forecast and score.
DAYS = pd.date_range("2017-06-20", periods=13)
VALUES = [31, 35, 24, 23, 25, 18, 21, 19, 16, 12, 11, 23, 13]
STDS = [3.0, 1.1, 0.8, 1.0, 2.2, 1.6, 2.1, 1.3, 1.6, 0.7, 0.6, 2.1, 4.1]
COUNTS = [25, 47, 44, 46, 17, 31, 43, 43, 30, 32, 40, 4, 42]


def observation_records(series: str = "silso") -> list[Record]:
    """The replay's observations of DAYS for `series`, as the producer makes them."""
    frame = pd.DataFrame(
        {
            "date": DAYS,
            "sunspot_number": [float(v) for v in VALUES],
            "std_dev": STDS,
            "observations": COUNTS,
            "provisional": [False] * len(DAYS),
        }
    )
    config = ReplayConfig(data="", series=series)
    made = [obs for day in observations(frame, config) for obs in day]
    return [Record(o.encode(), series.encode(), i) for i, o in enumerate(made)]


def forecaster_run() -> tuple[Forecaster, list[Any]]:
    """The committed forecaster on the example observations and one record it cannot read."""
    reg = CollectorRegistry()
    forecaster = Forecaster(
        load_forecaster(DEFAULT_FORECASTER),
        TOPICS,
        ForecasterMetrics(reg),
        series_metrics=SeriesSelection.parse("all"),
    )
    records = observation_records()
    bad = Record(b'{"series": "silso", "date": "2017-07-03"}', b"silso", len(records))
    gap = Observation("lab-1", date(2017, 6, 20), None, None, None, None)
    reset = Record(gap.encode(), b"lab-1", len(records) + 1)
    return forecaster, forecaster.process([*records, bad, reset]) + forecaster.changelog()


def classifier_run() -> tuple[CollectorRegistry, list[Any], Record]:
    """The committed classifier on one request of the lesson's."""
    reg = CollectorRegistry()
    classifier = Classifier(load_classifier(DEFAULT_CLASSIFIER), TOPICS, ClassifierMetrics(reg))
    request = Record(
        encode_classifier_request("r1", [0, 0, 0, 0, 0, 1]),
        b"r1",
        0,
        topic=TOPICS.classifier_requests,
    )
    bad = Record(b"[]", b"r2", 1, topic=TOPICS.classifier_requests)
    return reg, classifier.process([request, bad]), request


def _lifecycle_labels(lifecycle: LifecycleMetrics) -> None:
    """The model lifecycle's labelled counters, which only a models topic moves: their labels
    given by name, so that a label renamed in consumer.metrics fails here."""
    lifecycle.switches.labels(role=records.CHAMPION)
    lifecycle.rejections.labels(reason=records.NOT_A_MODEL_RECORD)
    lifecycle.drift_alarms.labels(role=records.CHAMPION)


def _loop_metrics(reg: CollectorRegistry) -> None:
    """What both services register beside their processor's metrics (consumer.__main__)."""
    LagCollector(_OnePartition(), reg)
    sensor = LoopMetrics(reg, Health())
    sensor.on_transaction("commit", 0.0)
    changes = TopicChangeMetrics(reg)
    changes.changes.labels(topic=TOPICS.forecasts, change="created")
    changes.unread.labels(topic=TOPICS.observations)


@dataclass(frozen=True)
class Family:
    """One metric family as exported: name (counters with `_total`), type, labels, help."""

    name: str
    kind: str
    labels: tuple[str, ...]
    help: str


# The per-series families the forecaster's collector declares, with their labels: a family
# with no sample in the example run (no drift alarm yet) takes its labels from here.
DECLARED = {
    f.name: f.labels
    for f in (
        *metric_specs.FLEET_FAMILIES,
        *metric_specs.SERIES_FAMILIES,
        *metric_specs.BAND_FAMILIES,
        *metric_specs.SCORE_FAMILIES,
        *metric_specs.DRIFT_FAMILIES,
    )
}


def families(reg: CollectorRegistry) -> dict[str, Family]:
    """The families `reg` exports, each with the labels its samples carry."""
    out = {}
    for metric in reg.collect():
        labels: dict[str, None] = dict.fromkeys(DECLARED.get(metric.name, ()))
        for sample in metric.samples:
            labels.update(dict.fromkeys(k for k in sample.labels if k not in ("le", "quantile")))
        name = f"{metric.name}_total" if metric.type == "counter" else metric.name
        out[name] = Family(name, metric.type, tuple(labels), " ".join(metric.documentation.split()))
    return out


def service_families() -> dict[str, tuple[Family, str]]:
    """Every family of the two consumer services, with the services that export it; the
    process's own (process_*, python_*) left out."""
    forecaster, _ = forecaster_run()
    forecast_reg = forecaster.metrics.registry
    _lifecycle_labels(forecaster.metrics.lifecycle)
    _loop_metrics(forecast_reg)
    classify_reg, _, _ = classifier_run()
    _loop_metrics(classify_reg)
    forecast, classify = families(forecast_reg), families(classify_reg)
    out = {}
    for name in sorted(forecast.keys() | classify.keys()):
        both = name in forecast and name in classify
        where = "both" if both else "forecast" if name in forecast else "classify"
        out[name] = ((forecast | classify)[name], where)
    return out


def metrics() -> str:
    """The `metrics` reference: one table row per metric family the services export, with its
    labels and which service."""
    lines = ["| metric | type | labels | service | help |", "| --- | --- | --- | --- | --- |"]
    for family, where in service_families().values():
        labels = ", ".join(f"`{label}`" for label in family.labels) or "–"
        lines.append(
            f"| `{family.name}` | {family.kind} | {labels} | {where} | {_cell(family.help)} |"
        )
    return "\n".join(lines) + "\n"


# --- topics -------------------------------------------------------------------------------

# Fields of a model record too long to show whole; the page shows their first characters.
CUT_FIELDS = ("metadata", "weights")
SHOWN_CHARS = 40


@dataclass(frozen=True)
class Example:
    """One record of a topic as the code writes it: key, value (JSON) and headers."""

    topic: str
    schema: str
    key: str | None
    value: dict[str, Any] | None
    headers: dict[str, str]


def examples() -> list[Example]:
    """One record per topic, from the real code paths (see the module's docstring)."""
    _, outputs = forecaster_run()
    _, answers, request = classifier_run()
    observation = observation_records()[-1]
    first: dict[str, Any] = {}
    for out in [*outputs, *answers]:
        first.setdefault(out.topic, out)
    model = records.make_record(
        records.CHAMPION,
        DEFAULT_FORECASTER.read_text(),
        DEFAULT_FORECASTER.with_suffix(".npz").read_bytes(),
        "sunspots-train publish",
        "2026-01-01T00:00:00+00:00",
    )
    wanted = [
        (TOPICS.observations, "observation.json", observation),
        (TOPICS.forecasts, "forecast.json", first[TOPICS.forecasts]),
        (TOPICS.evaluations, "evaluation.json", first[TOPICS.evaluations]),
        (TOPICS.state, "state.json", _latest(outputs, TOPICS.state)),
        (TOPICS.dead_letter, DEAD_LETTER_HEADERS, first[TOPICS.dead_letter]),
        (TOPICS.classifier_requests, "classifier-request.json", request),
        (
            TOPICS.classifier_predictions,
            "classifier-prediction.json",
            first[TOPICS.classifier_predictions],
        ),
    ]
    out = [_example(topic, schema, rec) for topic, schema, rec in wanted]
    model_value = json.loads(records.encode(model))
    out.append(Example(TOPICS.models, "model-record.json", records.CHAMPION, model_value, {}))
    return out


def _latest(outputs: list[Any], topic: str, key: bytes = b"silso") -> Any:
    return [o for o in outputs if o.topic == topic and o.key == key][-1]


def _example(topic: str, schema: str, record: Any) -> Example:
    headers = {k: v.decode() for k, v in getattr(record, "headers", ())}
    value = record.value.decode() if record.value is not None else None
    if topic != TOPICS.dead_letter and value is not None:
        value = json.loads(value)
    key = record.key.decode() if record.key is not None else None
    return Example(topic, schema, key, value, headers)


def topics() -> str:
    """The `topics` reference: each topic's example record, key, headers and value, with a link
    to its schema; long fields of a models record are cut."""
    lines = []
    for ex in examples():
        shown = ex.value
        if isinstance(shown, dict) and ex.topic == TOPICS.models:
            shown = {k: _cut(v) if k in CUT_FIELDS else v for k, v in shown.items()}
        lines += ["", f"**`{ex.topic}`** ([schema](../schemas/{ex.schema}))", ""]
        lines += [f"- key: `{ex.key}`"]
        if ex.headers:
            lines += ["- headers:", "", "```json", json.dumps(ex.headers, indent=2), "```"]
        lines += ["- value:", "", "```json", _json(shown), "```"]
    return "\n".join(lines[1:]) + "\n"


def _cut(text: str) -> str:
    return f"{text[:SHOWN_CHARS]}… ({len(text):,} characters)"


def _json(value: Any) -> str:
    """One line per top-level field, floats to 4 decimals: the model's low bits differ from
    one CPU to another (tests/portable.py), the page must not."""
    if not isinstance(value, dict):  # a dead letter's value: the original bytes
        return str(value)
    fields = [
        f"  {json.dumps(k)}: {json.dumps(_rounded(v), ensure_ascii=False)}"
        for k, v in value.items()
    ]
    return "{\n" + ",\n".join(fields) + "\n}"


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


# --- exit codes ---------------------------------------------------------------------------

# What each exit code means, by the constant the commands exit with.
EXIT_MEANINGS: tuple[tuple[int, str, str], ...] = (
    (0, "–", "finished, or stopped by SIGTERM/SIGINT after finishing the batch in hand and "
     "committing it"),
    (producer_main.EXIT_REFUSED, "producer.__main__.EXIT_REFUSED, sunspots.lifecycle.publishing.EXIT_KAFKA",
     "`sunspots-producer`: Kafka refused records with an error a retry will not mend (a record "
     "too large); `producer classify`: some requests got no answer in time; the model commands "
     "(`publish`, `promote`, `retire`): a Kafka failure other than a refusal (4–7); "
     "`sunspots-train forecaster --from-topic`: any Kafka error, refusals included"),
    (cli.EXIT_USAGE, "sunspots.process.cli.EXIT_USAGE, sunspots.lifecycle.publishing.EXIT_BAD_INPUT",
     "bad start-up input, told in one line with no traceback: a bad flag or variable, a "
     "renamed variable, inconsistent security settings, an unreadable secret file, a missing, "
     "unreadable or inconsistent model, unreadable data or a date range with no data, a metrics "
     "port that is taken, a broker that cannot be reached (`producer classify`), topics the "
     "brokers refuse to create as asked (`sunspots-topics`: a replication factor above the "
     "number of brokers), a compression library kafka-python lacks "
     "([compression](#compression)); the model commands: a bad artifact or a missing models "
     "topic (they never create it)"),
    (consumer_main.EXIT_FENCED, "consumer.__main__.EXIT_FENCED",
     "consumers: fenced, because another process took over this `--instance-id` "
     "([processing guarantees](guarantees.md#processing-guarantees)); a supervisor restarts it"),
    (EXIT_CODES[UNREACHABLE], "sunspots.kafka.refusal.EXIT_CODES[unreachable]",
     "`sunspots-producer`: Kafka out of reach, at start or mid-replay (nothing acknowledged "
     "within `--delivery-timeout`, or records still in flight a few seconds after "
     "SIGTERM/SIGINT); run it again later with `--resume`. `sunspots-topics`: Kafka out of "
     "reach"),
    (EXIT_CODES[AUTHENTICATION], "sunspots.kafka.refusal.EXIT_CODES[authentication]",
     "`sunspots-producer`, consumers, `sunspots-topics`, the model commands: authentication "
     "failed (a wrong user name or password, a SASL mechanism the brokers do not offer, no SASL "
     "where the brokers require it)"),
    (EXIT_CODES[AUTHORIZATION], "sunspots.kafka.refusal.EXIT_CODES[authorization]",
     "`sunspots-producer`, consumers, `sunspots-topics`, the model commands: not authorized: an "
     "ACL is missing for a topic (for the forecaster also a shadow topic, or the models topic "
     "with `--auto-promote`), the group, the transactional id or the cluster; the line names "
     "the principal and the resource ([security.md](security.md#least-privilege))"),
    (EXIT_CODES[TLS], "sunspots.kafka.refusal.EXIT_CODES[tls]",
     "`sunspots-producer`, consumers, `sunspots-topics`, the model commands: TLS failed: the "
     "brokers' certificate is not trusted (`--ssl-cafile`) or not for the host name connected "
     "to, or a plain-text client met a TLS port"),
    (EXIT_INPUT, "consumer.stops.EXIT_INPUT",
     "consumers: input they cannot read or follow: a record batch the client cannot decode (a "
     "compression codec it lacks, a corrupt batch), or a change to a topic they read or write "
     "that they may not mend themselves (with `--create-topics false`, partitions added to the "
     "input that the state changelog lacks, a topic they write deleted, a compacted topic no "
     "longer compacted; a topic they write that refuses their records as too large); the line "
     "names the topic, the partition, the offset or the counts and settings, and what to do "
     "([progress](#progress-stalls-and-stopping), "
     "[topic changes](guarantees.md#topics-changed-while-the-services-run))"),
    (EXIT_STALLED, "consumer.stops.EXIT_STALLED",
     "consumers: no progress: a partition with records waiting made none for `--stall-limit` "
     "seconds, or a stop was still unfinished `--shutdown-grace` seconds after SIGTERM/SIGINT "
     "(or a second signal came); what was not committed is processed again after a restart, "
     "so a supervisor simply restarts it"),
)  # fmt: skip


def exit_codes() -> str:
    assert EXIT_BAD_INPUT == cli.EXIT_USAGE and EXIT_KAFKA == producer_main.EXIT_REFUSED
    lines = ["| code | constant | meaning |", "| --- | --- | --- |"]
    lines += [f"| {code} | {_cell(name)} | {_cell(text)} |" for code, name, text in EXIT_MEANINGS]
    return "\n".join(lines) + "\n"


# --- the pages ----------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[], str]] = {
    "configuration": configuration,
    "metrics": metrics,
    "topics": topics,
    "exit-codes": exit_codes,
}


def render(text: str, sections: dict[str, str]) -> str:
    """`text` with each generated section replaced by its fresh body."""

    def fresh(match: re.Match[str]) -> str:
        return match[1] + sections[match["name"]] + match[4]

    return MARKER.sub(fresh, text)


def stale(root: Path = REPO) -> list[str]:
    """The pages whose generated sections differ from the code's."""
    sections = {name: make() for name, make in SECTIONS.items()}
    pages = [root / page for page in PAGES]
    return [
        str(p.relative_to(root)) for p in pages if render(p.read_text(), sections) != p.read_text()
    ]


def main(argv: list[str] | None = None) -> int:
    """Write the pages (`--check`: only say which are stale, exit 1 if any)."""
    args = argparse.ArgumentParser(prog="python -m support.reference", description=__doc__)
    args.add_argument("--check", action="store_true")
    check = args.parse_args(argv).check
    # The example run dead-letters two records on purpose: their warnings are not news here.
    logging.basicConfig(level=logging.ERROR)
    sections = {name: make() for name, make in SECTIONS.items()}
    changed = []
    for page in PAGES:
        path = REPO / page
        text = path.read_text()
        new = render(text, sections)
        if new != text:
            changed.append(page)
            if not check:
                path.write_text(new)
    sys.stderr.write("".join(f"{'stale' if check else 'wrote'}: {p}\n" for p in changed))
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
