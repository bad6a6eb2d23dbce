"""consumer.slicing: a poll's records cut into slices of whole series, each series in order."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from consumer.output import Output
from consumer.slicing import batch_outputs, slices


@dataclass(frozen=True)
class Rec:
    key: bytes | None
    offset: int


def records(keys: list[bytes | None]) -> list[Rec]:
    return [Rec(k, i) for i, k in enumerate(keys)]


def test_a_poll_within_the_size_is_one_slice() -> None:
    batch = records([b"a", b"b", None])
    assert [list(s) for s in slices(batch, 3)] == [batch]
    assert [list(s) for s in slices([], 3)] == [[]]  # an empty batch is still processed once


def test_many_series_are_sliced_whole_and_one_series_is_cut_in_order() -> None:
    many = records([f"s{i % 300}".encode() for i in range(3_000)])  # 300 series, 10 days each
    cut = [list(s) for s in slices(many, 1_000)]
    assert len(cut) == 3 and all(len(s) <= 2_000 for s in cut)
    owners = {r.key: i for i, s in enumerate(cut) for r in s}
    assert all(owners[r.key] == i for i, s in enumerate(cut) for r in s)  # whole series
    one = records([b"silso"] * 2_500)
    assert [[r.offset for r in s] for s in slices(one, 1_000)] == [
        list(range(0, 1_000)),
        list(range(1_000, 2_000)),
        list(range(2_000, 2_500)),
    ]


@given(st.lists(st.sampled_from([b"a", b"b", b"c", b"d", None, b""]), max_size=300),
       st.integers(1, 50))  # fmt: skip
def test_every_record_is_in_one_slice_and_each_series_keeps_its_order(
    keys: list[bytes | None], size: int
) -> None:
    batch = records(keys)
    cut = [list(s) for s in slices(batch, size)]
    assert sorted(r.offset for s in cut for r in s) == list(range(len(batch)))
    assert all(len(s) <= max(2 * size, len(batch) if len(batch) <= size else 0) for s in cut)
    for key in set(keys):
        seen = [r.offset for s in cut for r in s if r.key == key]
        assert seen == sorted(seen)


def test_a_batch_is_let_go_once_processed_before_its_changelog_is_made() -> None:
    """batch_outputs: each slice's outputs in turn, then the changelog's, made only once the
    batch's records are emptied (their memory let go before the snapshots)."""
    batch = records([b"a"] * 5)
    seen: list[int] = []

    class Processor:
        def process(self, part: list[Rec]) -> list[Output]:
            seen.append(len(batch))  # the batch is whole while its slices are processed
            return [Output("out", str(r.offset).encode()) for r in part]

        def changelog(self) -> list[Output]:
            seen.append(len(batch))
            return [Output("state", b"snapshot", b"a", partition=0)]

    made = [o.value for o in batch_outputs(Processor(), batch, 2)]
    assert made == [b"0", b"1", b"2", b"3", b"4", b"snapshot"]
    assert seen == [5, 5, 5, 0] and batch == []
