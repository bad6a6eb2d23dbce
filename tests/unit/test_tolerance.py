"""The comparison of recomputed figures with committed ones: within the stated bound for floats,
exact for everything else, and every difference named by its path."""

from __future__ import annotations

from dataclasses import dataclass

from tests.tolerance import RECOMPUTED_ABS, differences


@dataclass(frozen=True)
class _Cal:
    quantiles: tuple[float, ...]
    alpha: float


def test_floats_within_the_bound_agree_and_beyond_it_are_named() -> None:
    committed = {"q": [-6.4243610651736205, 0.0010392317305191012], "days": 932, "band": "0-10"}
    # The differences seen between two CPUs: 3e-8 absolute, 4e-5 relative near zero.
    recomputed = {"q": [-6.42436109723586, 0.0010391888860211264], "days": 932, "band": "0-10"}
    assert differences(recomputed, committed) == []
    moved = {**recomputed, "q": [-6.4243610651736205, 0.0010392317305191012 + 10 * RECOMPUTED_ABS]}
    assert differences(moved, committed) == [f".q[1]: {moved['q'][1]!r} != 0.0010392317305191012"]


def test_large_figures_are_bounded_relatively() -> None:
    assert differences(95.53628109207902 * (1 + 5e-7), 95.53628109207902) == []
    assert len(differences(95.53628109207902 * (1 + 5e-6), 95.53628109207902)) == 1


def test_counts_names_and_shapes_are_exact() -> None:
    assert differences({"days": 933}, {"days": 932}) == [".days: 933 != 932"]
    assert differences({"band": "all"}, {"band": "0-10"}) == [".band: 'all' != '0-10'"]
    assert differences([1.0, 2.0], [1.0]) == [".: 2 items != 1"]
    assert differences({"a": 1}, {"b": 1}) == [".: keys ['a'] != ['b']"]
    assert differences(True, 1) == [".: True != 1"]


def test_dataclasses_compare_by_their_fields() -> None:
    assert differences(_Cal((1.0, 2.0), 0.1), _Cal((1.0 + 1e-7, 2.0), 0.1)) == []
    assert differences(_Cal((1.0, 2.0), 0.1), _Cal((1.0, 2.0), 0.2)) == [".alpha: 0.1 != 0.2"]
