"""bench.processor_cost measures what it says: one changelog record per batch for one series,
one per observation when every observation of a batch is another series, and the snapshot and
the copy timed on the series held.

Small sizes, so that it runs in a few seconds; docs/scaling.md's figures come from the
command's defaults."""

from __future__ import annotations

from bench.processor_cost import measure, records, without
from consumer.series import SeriesPolicy, SeriesState


def test_one_series_writes_a_changelog_record_per_batch() -> None:
    row = measure(series=1, observations=200, batch=50)
    assert row["observations"] == 200
    assert row["changelog_records_per_obs"] == 4 / 200  # four batches, one series each
    # Every window is full past the warm-up: each observation forecasts and scores.
    assert row["outputs_per_obs"] == 2.02


def test_many_series_write_one_per_observation() -> None:
    row = measure(series=60, observations=600, batch=50)
    assert row["changelog_records_per_obs"] == 1.0
    assert row["outputs_per_obs"] == 3.0
    assert row["snapshot_us"] > 0 and row["copy_us"] > 0


def test_the_records_take_one_day_of_every_series_in_turn() -> None:
    fed = records(series=3, days=2)
    assert [r.key for r in fed] == [b"silso-0", b"silso-1", b"silso-2"] * 2
    assert [r.offset for r in fed] == list(range(6))


def test_without_makes_the_steps_free_and_puts_them_back() -> None:
    snapshot, copy = SeriesState.snapshot, SeriesState.copy
    with without(["snapshot", "copy"]):
        row = measure(series=60, observations=600, batch=50)
        state = SeriesState.new("s", 0, SeriesPolicy())
        assert state.snapshot() == b"{}" and state.copy() is state
    assert row["changelog_records_per_obs"] == 1.0  # still written, as a constant
    assert (SeriesState.snapshot, SeriesState.copy) == (snapshot, copy)
