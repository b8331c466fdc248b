"""Pareto fronts and hypervolumes (tuner._pareto) against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner import _pareto


def brute_front(values: np.ndarray, modes: list[str]) -> np.ndarray:
    loss = _pareto.losses(values, modes)
    out = []
    for i, a in enumerate(loss):
        dominated = any((b <= a).all() and (b < a).any() for j, b in enumerate(loss) if j != i)
        out.append(not dominated)
    return np.array(out, dtype=bool)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(2, 3).flatmap(
        lambda k: st.tuples(
            st.lists(st.lists(st.integers(0, 6), min_size=k, max_size=k), min_size=1, max_size=25),
            st.lists(st.sampled_from(["min", "max"]), min_size=k, max_size=k),
        )
    )
)
def test_front_is_what_brute_force_finds(case):
    rows, modes = case
    values = np.array(rows, dtype=float)
    assert (_pareto.pareto_mask(values, modes) == brute_front(values, modes)).all()


def test_two_objective_hypervolume_is_the_staircase_area():
    # min/min, front (1, 3), (2, 2), (3, 1), reference (4, 4): 3 + 2 + 1 = 6.
    values = np.array([[1, 3], [2, 2], [3, 1], [3, 3]], dtype=float)
    assert _pareto.hypervolume(values, ["min", "min"], np.array([4.0, 4.0])) == pytest.approx(6)
    # A maximised objective is negated: the same front, mirrored.
    mirrored = values * [1, -1]
    assert _pareto.hypervolume(mirrored, ["min", "max"], np.array([4.0, 4.0])) == pytest.approx(6)


def test_hypervolume_history_grows_and_ends_at_the_whole_front():
    rng = np.random.default_rng(0)
    values = rng.random((120, 2))
    ref = _pareto.reference_point(values, ["min", "min"])
    assert (ref > values.max(axis=0)).all()
    at, hv = _pareto.hypervolume_history(values, ["min", "min"], ref, points=30)
    assert at[-1] == 120 and len(at) <= 30
    assert (np.diff(hv) >= -1e-12).all()
    assert hv[-1] == pytest.approx(_pareto.hypervolume(values, ["min", "min"], ref))
    for i, h in zip(at[:5], hv[:5], strict=True):
        assert h == pytest.approx(_pareto.hypervolume(values[:i], ["min", "min"], ref))


def test_three_objective_hypervolume_of_one_point_is_its_box():
    values = np.array([[1.0, 1.0, 1.0]])
    assert _pareto.hypervolume(values, ["min"] * 3, np.array([2.0, 3.0, 4.0])) == pytest.approx(
        1 * 2 * 3
    )
    # Points at or beyond the reference add nothing.
    assert _pareto.hypervolume(np.array([[5.0, 0, 0]]), ["min"] * 3, np.ones(3)) == 0.0


def test_all_tied_points_are_all_on_the_front():
    values = np.array(list(itertools.repeat([1.0, 2.0], 4)))
    assert _pareto.pareto_mask(values, ["min", "min"]).all()
