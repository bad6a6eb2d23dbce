"""The stall detector's decisions (consumer.stalls), on a clock the tests give."""

from __future__ import annotations

from kafka import TopicPartition

from consumer.stalls import Change, Stalls

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)
TIMEOUT, LIMIT, GAP = 60.0, 300.0, 15.0


def stalls(limit: float = LIMIT) -> Stalls:
    detector = Stalls(TIMEOUT, limit, max_gap_s=GAP)
    detector.assign([TP0])
    detector.commit({TP0: 10})
    return detector


def probe_every(detector: Stalls, start: float, until: float, end: int, step: float = 5.0):
    """Probes from `start` to `until` (included) that all find `end`; every change made."""
    changes: list[tuple[float, Change]] = []
    now = start
    while now <= until:
        changes += [(now, c) for c in detector.probed(now, {TP0: end})]
        now += step
    return changes


def test_records_waiting_without_progress_are_reported_once_past_the_timeout() -> None:
    detector = stalls()
    changes = probe_every(detector, 0.0, 120.0, end=15)
    assert changes == [(60.0, Change("stalled", TP0, 5, 60.0))]
    assert detector.watches[TP0].lag == 5 and detector.watches[TP0].reported


def test_progress_ends_the_stall_and_starts_the_clock_again() -> None:
    detector = stalls()
    probe_every(detector, 0.0, 60.0, end=15)
    detector.commit({TP0: 12})  # the loop committed two more records
    assert detector.probed(65.0, {TP0: 15}) == [Change("resumed", TP0, 3, 0.0)]
    assert detector.watches[TP0].stalled_s == 0.0
    # Stalled again only a whole timeout later.
    changes = probe_every(detector, 70.0, 200.0, end=15)
    assert [(t, c.kind) for t, c in changes] == [(125.0, "stalled")]


def test_a_partition_read_to_its_end_is_not_stalled() -> None:
    detector = stalls()
    assert probe_every(detector, 0.0, 50.0, end=15) == []
    detector.commit({TP0: 15})
    assert probe_every(detector, 55.0, 500.0, end=15) == []
    assert detector.watches[TP0].lag == 0


def test_transaction_markers_past_the_last_commit_are_no_records_waiting() -> None:
    # A transactional producer upstream: the commit marker takes an offset after the last
    # record. The loop committed 10 (the record before it) and read on to 11, the end.
    detector = stalls()
    detector.read({TP0: 11})
    assert probe_every(detector, 0.0, 600.0, end=11) == []
    assert detector.watches[TP0].lag == 0


def test_a_rewind_voids_what_was_read() -> None:
    detector = stalls()
    detector.read({TP0: 15})
    assert probe_every(detector, 0.0, 20.0, end=15) == []
    detector.rewind()  # sought back to the committed 10: five records to process again
    changes = probe_every(detector, 25.0, 100.0, end=15)
    assert [(t, c.kind, c.lag) for t, c in changes] == [(80.0, "stalled", 5)]  # 60 s after 20


def test_reading_further_is_progress() -> None:
    detector = stalls()
    now, changes = 0.0, []
    for position in range(10, 40):  # every probe finds the loop further on, never at the end
        detector.read({TP0: position})
        changes += detector.probed(now, {TP0: 50})
        now += 5.0
    assert changes == []


def test_the_limit_is_told_once_and_zero_means_never() -> None:
    detector = stalls()
    changes = probe_every(detector, 0.0, 600.0, end=15)
    assert [(t, c.kind) for t, c in changes] == [(60.0, "stalled"), (300.0, "limit")]
    report_only = stalls(limit=0.0)
    changes = probe_every(report_only, 0.0, 3600.0, end=15)
    assert [c.kind for _, c in changes] == ["stalled"]


def test_time_the_brokers_do_not_answer_does_not_count() -> None:
    detector = stalls()
    probe_every(detector, 0.0, 50.0, end=15)  # 50 s stalled
    detector.blind()  # the broker went away for ten minutes; probes failed meanwhile
    assert detector.probed(650.0, {TP0: 15}) == []  # back: the outage did not count
    changes = probe_every(detector, 655.0, 700.0, end=15)
    assert [(t, c.kind) for t, c in changes] == [(660.0, "stalled")]


def test_a_frozen_process_counts_only_one_gap() -> None:
    detector = stalls()
    probe_every(detector, 0.0, 30.0, end=15)  # 30 s stalled
    # SIGSTOP for 400 s: the next probe is 400 s later; only GAP of it counts.
    assert detector.probed(430.0, {TP0: 15}) == []
    assert detector.watches[TP0].stalled_s == 30.0 + GAP


def test_a_partition_the_loop_has_not_told_of_waits_for_the_groups_offset() -> None:
    detector = Stalls(TIMEOUT, LIMIT, GAP)
    detector.assign([TP0, TP1])
    detector.commit({TP1: 3})
    assert detector.unknown() == [TP0]
    detector.probed(0.0, {TP0: 8, TP1: 8})
    assert detector.watches[TP0].lag is None and detector.watches[TP1].lag == 5
    detector.baseline({TP0: 2, TP1: 0})  # only the unknown one takes the group's offset
    assert detector.watches[TP0].committed == 2 and detector.watches[TP1].committed == 3
    assert detector.unknown() == []


def test_a_revoked_partition_is_forgotten_and_a_reassigned_one_starts_afresh() -> None:
    detector = stalls()
    probe_every(detector, 0.0, 60.0, end=15)
    detector.revoke([TP0])
    assert detector.watches == {}
    detector.commit({TP0: 99})  # a late commit of a revoked partition changes nothing
    assert detector.watches == {}
    detector.assign([TP0])
    assert detector.watches[TP0].reported is False and detector.unknown() == [TP0]
