"""The replay's account of deliveries, what it plans to send on resume, and its one-line outcome."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pandas as pd
import pytest
from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError, TopicAuthorizationFailedError

from producer.__main__ import build_parser, outcome
from producer.delivery import Delivery, DeliveryLedger, failure_line
from producer.replay import ReplayConfig, ReplayResult, observations, plan, series_ids
from sunspots.kafka.settings import KafkaSettings

DAY0 = date(1999, 4, 10)


def _days(n: int) -> list[date]:
    return [DAY0 + timedelta(days=i) for i in range(n)]


def _ledger(days: int, series: tuple[str, ...] = ("a",)) -> tuple[DeliveryLedger, list[int]]:
    """A ledger with `days` days of one record per series sent; the tickets in order."""
    ledger = DeliveryLedger(days * len(series))
    tickets = []
    for when in _days(days):
        day = ledger.day(when)
        tickets += [ledger.sending(day, s) for s in series]
    return ledger, tickets


def test_everything_acknowledged_in_any_order() -> None:
    ledger, tickets = _ledger(4, ("a", "b"))
    for ticket in reversed(tickets):
        ledger.acknowledged(ticket, object())
    d = ledger.apply()
    assert d.complete and not d.refused
    assert (d.sent, d.acknowledged, d.lost) == (8, 8, 0)
    assert d.last_acknowledged == DAY0 + timedelta(days=3)


def test_last_date_acknowledged_is_the_end_of_the_unbroken_prefix() -> None:
    ledger, tickets = _ledger(5, ("a", "b"))
    # Days 0 and 1 complete, day 2 has one record lost, days 3-4 acknowledged (other series).
    for ticket in tickets[:5]:
        ledger.acknowledged(ticket)
    ledger.failed(tickets[5], KafkaTimeoutError("expired"))
    for ticket in tickets[6:]:
        ledger.acknowledged(ticket)
    d = ledger.apply()
    assert d.last_acknowledged == DAY0 + timedelta(days=1)
    assert (d.acknowledged, d.lost) == (9, 1)
    assert not d.complete and not d.refused
    # Series b lost day 2 but got days 3 and 4 through: --resume would skip day 2.
    assert d.gaps == {"b": DAY0 + timedelta(days=2)}
    assert d.resume_from == DAY0 + timedelta(days=2)
    assert "--start 1999-04-12" in d.advice()


def test_records_still_in_flight_count_as_lost() -> None:
    ledger, tickets = _ledger(3)
    ledger.acknowledged(tickets[0])
    d = ledger.apply()
    assert (d.lost, d.last_acknowledged, d.gaps) == (2, DAY0, {})
    assert d.error is None and not d.complete
    assert d.advice() == "resume with --resume"


def test_nothing_acknowledged_has_no_last_date() -> None:
    ledger, tickets = _ledger(2)
    ledger.failed(tickets[0], KafkaTimeoutError("expired"))
    d = ledger.apply()
    assert d.last_acknowledged is None
    assert "last date acknowledged none (0 of 2 records)" in d.where()


def test_the_first_error_is_kept_and_closing_failures_are_losses_only() -> None:
    ledger, tickets = _ledger(3)
    ledger.closing()
    ledger.failed(tickets[0], KafkaTimeoutError("closed forcefully"))
    assert ledger.apply().error is None and ledger.apply().lost == 3
    ledger, tickets = _ledger(3)
    first = TopicAuthorizationFailedError()
    ledger.failed(tickets[1], first)
    ledger.failed(tickets[2], KafkaTimeoutError("later"))
    d = ledger.apply()
    assert d.error is first and d.refused


def test_a_settled_record_is_not_settled_again() -> None:
    ledger, tickets = _ledger(1)
    ledger.acknowledged(tickets[0])
    ledger.failed(tickets[0], KafkaTimeoutError("late"))
    d = ledger.apply()
    assert d.complete and d.acknowledged == 1


def test_wait_below_returns_when_records_settle() -> None:
    ledger, tickets = _ledger(3)
    assert not ledger.wait_below(3, 0.01)
    timer = threading.Timer(0.05, ledger.acknowledged, (tickets[0],))
    timer.start()
    try:
        assert ledger.wait_below(3, 10.0)
    finally:
        timer.join()
    assert ledger.unsettled == 2 and ledger.sent == 3


# --- the one line and the exit code -----------------------------------------------------------


def _delivery(**kw: object) -> Delivery:
    fields = dict(
        planned=9131,
        sent=6000,
        acknowledged=5012,
        lost=988,
        last_acknowledged=date(1999, 4, 12),
        error=None,
    )
    return Delivery(**{**fields, **kw})  # type: ignore[arg-type]


def test_unreachable_line_names_the_bootstrap_the_wait_the_date_and_the_way_on() -> None:
    error = KafkaTimeoutError("Expiring 5 record(s) for t-0: 30000 ms has passed")
    line = failure_line(_delivery(error=error), "k1:9092,k2:9092", 30.0, 5.0)
    assert line == (
        "cannot deliver to Kafka at k1:9092,k2:9092 for 30 s: KafkaTimeoutError: Expiring 5 "
        "record(s) for t-0: 30000 ms has passed; last date acknowledged 1999-04-12 (5,012 of "
        "9,131 records); resume with --resume"
    )


def test_refused_and_stopped_lines_say_something_else() -> None:
    refused = failure_line(_delivery(error=TopicAuthorizationFailedError()), "k:9092", 30, 5)
    assert refused.startswith("Kafka at k:9092 refused records: [Error 29]")
    assert "resume with --resume once that is mended" in refused
    stopped = failure_line(_delivery(), "k:9092", 30, 5)
    assert stopped.startswith("stopped with 988 records in flight that Kafka at k:9092 did not")
    assert "within 5 s; last date acknowledged 1999-04-12" in stopped


@pytest.mark.parametrize(
    ("error", "lost", "code"),
    [
        (None, 0, 0),
        (KafkaTimeoutError("expired"), 10, 4),  # docs/operations.md's exit codes: 4 out of reach
        (None, 10, 4),
        (MessageSizeTooLargeError(), 10, 1),  # 1: refused records
        (TopicAuthorizationFailedError(), 10, 6),
    ],
)
def test_exit_codes(error: BaseException | None, lost: int, code: int, caplog) -> None:
    result = ReplayResult(_delivery(error=error, lost=lost, sent=5012 + lost), seconds=2.0)
    assert outcome(result, KafkaSettings("k:9092"), 30.0) == code
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == (0 if code == 0 else 1)


# --- flags ------------------------------------------------------------------------------------


def test_resume_is_a_switch_and_a_variable(monkeypatch) -> None:
    assert build_parser().parse_args([]).resume is False
    assert build_parser().parse_args(["--resume"]).resume is True
    assert build_parser().parse_args(["--resume", "false"]).resume is False
    monkeypatch.setenv("SUNSPOTS_RESUME", "yes")
    assert build_parser().parse_args([]).resume is True


def test_delivery_timeout_has_a_floor(monkeypatch) -> None:
    assert build_parser().parse_args(["--delivery-timeout", "30"]).delivery_timeout == 30.0
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--delivery-timeout", "1"])
    assert stopped.value.code == 2
    monkeypatch.setenv("SUNSPOTS_DELIVERY_TIMEOUT", "12.5")
    assert build_parser().parse_args([]).delivery_timeout == 12.5


# --- what a resumed replay sends --------------------------------------------------------------


def _frame(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.to_datetime(_days(n)),
            "sunspot_number": [float(i) for i in range(n)],
            "std_dev": [1.0] * n,
            "observations": [10] * n,
            "provisional": [False] * n,
        }
    )


def test_resume_plan_skips_what_each_series_has() -> None:
    config = ReplayConfig(data="-", series="s", series_count=3, series_shift_days=2)
    frame = _frame(10)
    dates = frame["date"].dt.date.tolist()
    whole = plan(dates, config, {})
    assert whole == type(whole)(0, 10, 10 + 8 + 6)
    after = {"s-0": dates[5], "s-1": dates[3]}  # s-2 not on the topic yet: from its start
    todo = plan(dates, config, after)
    assert todo.first_row == 4 and todo.days == 6  # s-2 starts 2 × 2 days late
    sent = [o for day in observations(frame, config, after) for o in day]
    assert len(sent) == todo.records == 4 + 6 + 6
    by_series = {s: [o.date for o in sent if o.series == s] for s in series_ids(config)}
    assert by_series["s-0"] == dates[6:]
    assert by_series["s-1"] == dates[4:]
    assert by_series["s-2"] == dates[4:]
    # Values keep their lag: s-1 on dates[4] carries the value of dates[2].
    assert next(o for o in sent if o.series == "s-1").sunspot_number == 2.0


def test_a_finished_replay_plans_nothing() -> None:
    config = ReplayConfig(data="-")
    dates = _frame(5)["date"].dt.date.tolist()
    assert plan(dates, config, {"silso": dates[-1]}) == type(plan(dates, config, {}))(5, 0, 0)
