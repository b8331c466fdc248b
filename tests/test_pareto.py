"""tuner._pareto: dominance, the Pareto set, non-dominated sorting and feasibility."""

from __future__ import annotations

import ast
import itertools
import math
import random
from pathlib import Path

import pytest

from tuner import _pareto


def brute_dominates(a, b):
    return all(x <= y for x, y in zip(a, b, strict=True)) and a != b


def random_points(seed: int, n: int, m: int, ties: bool) -> list[list[float]]:
    rng = random.Random(seed)
    if ties:  # few distinct values: equal points and equal coordinates
        return [[float(rng.randint(0, 3)) for _ in range(m)] for _ in range(n)]
    return [[rng.gauss(0, 1) for _ in range(m)] for _ in range(n)]


CASES = [
    (seed, n, m, ties)
    for seed, (n, m, ties) in enumerate(
        itertools.product([1, 2, 7, 30], [2, 3], [False, True]),
    )
]


def test_dominance_needs_no_worse_everywhere_and_better_somewhere():
    assert _pareto.dominates([1, 2], [1, 3])
    assert not _pareto.dominates([1, 2], [1, 2])  # equal points do not dominate
    assert not _pareto.dominates([0, 3], [1, 2])  # a trade-off
    assert _pareto.covers([1, 2], [1, 2]) and not _pareto.covers([0, 3], [1, 2])


def test_losses_turn_maximised_objectives_round():
    assert _pareto.losses([1.0, 2.0], ["min", "max"]) == [1.0, -2.0]
    with pytest.raises(ValueError):
        _pareto.losses([1.0], ["min", "max"])


@pytest.mark.parametrize(("seed", "n", "m", "ties"), CASES)
def test_pareto_flags_are_the_points_no_other_dominates(seed, n, m, ties):
    points = random_points(seed, n, m, ties)
    expected = [not any(brute_dominates(q, p) for q in points) for p in points]
    assert _pareto.pareto_flags(points) == expected


def test_equal_points_are_all_on_the_pareto_set():
    assert _pareto.pareto_flags([[1, 1], [1, 1], [2, 2], [0, 3]]) == [True, True, False, True]
    assert _pareto.pareto_flags([]) == []


@pytest.mark.parametrize(("seed", "n", "m", "ties"), CASES)
def test_nondominated_ranks_peel_fronts(seed, n, m, ties):
    points = random_points(seed, n, m, ties)
    ranks = _pareto.nondominated_ranks(points)
    ranked = list(zip(points, ranks, strict=True))
    for p, r in ranked:
        # nothing of its own front or a later one dominates it ...
        assert not any(brute_dominates(q, p) for q, s in ranked if s >= r)
        # ... and, past the first front, something of the front before does
        if r > 0:
            assert any(brute_dominates(q, p) for q, s in ranked if s == r - 1)


def test_crowding_distance_favours_the_extremes_and_the_lonely():
    front = [[0.0, 4.0], [1.0, 3.0], [3.0, 1.0], [4.0, 0.0]]
    d = _pareto.crowding_distance(front).tolist()
    assert d[0] == d[3] == math.inf
    # [1, 3]: gaps (3 - 0) / 4 on each objective; [3, 1]: the same by symmetry
    assert d[1] == pytest.approx(1.5) and d[2] == pytest.approx(1.5)
    assert _pareto.crowding_distance([[0.0, 1.0], [1.0, 0.0]]).tolist() == [math.inf] * 2


def test_nondominated_order_is_by_front_then_crowding():
    # a and b are the first front's extremes, e is between them, d is dominated by e
    points = {"a": [1.0, -1.0], "e": [0.9, -0.9], "b": [0.5, 0.0], "d": [1.0, -0.8]}
    order = _pareto.nondominated_order(list(points.values()))
    names = [list(points)[i] for i in order]
    assert set(names[:2]) == {"a", "b"} and names[2:] == ["e", "d"]


def test_the_running_front_keeps_the_first_of_equal_points():
    modes = ["min", "max"]
    front = _pareto.add_to_front([], (1.0, 5.0), modes)
    front = _pareto.add_to_front(front, (2.0, 4.0), modes)  # dominated: left out
    assert front == [(1.0, 5.0)]
    front = _pareto.add_to_front(front, (1.0, 5.0), modes)  # equal: left out
    front = _pareto.add_to_front(front, (0.5, 1.0), modes)  # a trade-off: joins
    assert front == [(1.0, 5.0), (0.5, 1.0)]
    front = _pareto.add_to_front(front, (0.5, 6.0), modes)  # dominates both
    assert front == [(0.5, 6.0)]


@pytest.mark.parametrize(
    ("value", "lower", "upper", "violation"),
    [
        (5.0, None, 10.0, -5.0),
        (10.0, None, 10.0, 0.0),  # the bound itself holds
        (12.0, None, 10.0, 2.0),
        (1.0, 2.0, None, 1.0),
        (3.0, 2.0, 4.0, -1.0),
        (None, None, 10.0, math.inf),  # never reported
        (math.nan, None, 10.0, math.inf),
        (math.inf, 0.0, None, math.inf),
        (True, 0.0, 2.0, math.inf),  # a bool is not a number here
        ("3", 0.0, 5.0, math.inf),
    ],
)
def test_violation_and_holds(value, lower, upper, violation):
    assert _pareto.violation(value, lower, upper) == violation
    assert _pareto.holds(value, lower, upper) == (violation <= 0)


def test_feasible_needs_every_bound_to_hold():
    bounds = [("size", None, 20.0), ("acc", 0.9, None)]
    assert _pareto.feasible({"size": 10, "acc": 0.95}, bounds)
    assert not _pareto.feasible({"size": 30, "acc": 0.95}, bounds)
    assert not _pareto.feasible({"size": 10}, bounds)  # acc never reported
    assert _pareto.feasible({}, [])


def test_ledger_storage_and_spec_agree_on_feasibility():
    from tuner.spec._model import ConstraintSpec
    from tuner.storage._objectives import StudyObjectives

    spec = {"constraints": [{"metric": "size", "max": 20.0}, {"metric": "acc", "min": 0.9}]}
    objectives = StudyObjectives.of(spec, "loss", "min")
    constraints = [ConstraintSpec(**c) for c in spec["constraints"]]
    for metrics in [{"size": 10, "acc": 0.95}, {"size": 20, "acc": 0.9}, {"size": 21, "acc": 1}]:
        by_spec = all(c.violation(metrics.get(c.metric)) <= 0 for c in constraints)
        assert objectives.derive(metrics).feasible == by_spec


def test_pareto_imports_nothing_of_tuner_or_anything_heavy():
    tree = ast.parse(Path(_pareto.__file__).read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert all(n.split(".")[0] in {"__future__", "math", "collections", "typing"} for n in names)
