"""Pareto dominance and feasibility: the one place tuner decides them.

Used by the run's ledger (the live Pareto front), the storage (the Pareto set it reads
and the ``feasible`` flag it derives) and the multi-objective ASHA scheduler (ranking a
rung). Everything here works on *losses*: values turned so that lower is better on every
objective (:func:`losses`). This module imports nothing of tuner and nothing heavy at its
top (numpy inside the functions that take arrays), so any part of tuner can use it.

Conventions, the same everywhere:

- ``a`` dominates ``b`` when it is no worse on every objective and better on one
  (:func:`dominates`); equal points do not dominate each other, so :func:`pareto_flags`
  and :func:`nondominated_ranks` keep every copy of an equal point.
- ``a`` covers ``b`` when it is no worse on every objective (:func:`covers`): the
  ledger's running front (:func:`add_to_front`) keeps the first of equal points only.
- A bound holds for a value that is a finite real number (not a bool) inside
  ``[min, max]`` (:func:`violation`, :func:`holds`, :func:`feasible`); a metric that was
  not reported breaks every bound on it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

__all__ = [
    "Bound",
    "add_to_front",
    "covers",
    "crowding_distance",
    "dominates",
    "feasible",
    "holds",
    "losses",
    "nondominated_order",
    "nondominated_ranks",
    "pareto_flags",
    "violation",
]

P = TypeVar("P", bound=Sequence[float])

Bound = tuple[str, float | None, float | None]
"""A constraint as ``(metric, lower, upper)``; either bound may be None (open)."""


def losses(values: Sequence[float], modes: Sequence[str]) -> list[float]:
    """`values` turned so that lower is better: negated where the mode is ``max``.

    Raises:
        ValueError: `values` and `modes` differ in length.
    """
    return [v if mode == "min" else -v for v, mode in zip(values, modes, strict=True)]


def covers(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether loss vector `a` is no worse than `b` on every objective (equal counts)."""
    return all(x <= y for x, y in zip(a, b, strict=True))


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether loss vector `a` Pareto-dominates `b`: no worse on all, better on one."""
    return covers(a, b) and any(x < y for x, y in zip(a, b, strict=True))


def add_to_front(front: Sequence[P], point: P, modes: Sequence[str]) -> list[P]:
    """The running front after `point` arrives (values in their own modes, not losses).

    A point covered by a member (dominated by it, or equal to it) leaves the front as it
    is; otherwise the members it covers leave and it joins, last.
    """
    loss = losses(point, modes)
    members = [losses(f, modes) for f in front]
    if any(covers(m, loss) for m in members):
        return list(front)
    return [f for f, m in zip(front, members, strict=True) if not covers(loss, m)] + [point]


def pareto_flags(points: Sequence[Sequence[float]]) -> list[bool]:
    """For each loss vector, whether no other one dominates it (equal ones all kept)."""
    import numpy as np

    if not len(points):
        return []
    flags: list[bool] = _front_mask(np.asarray(points, dtype=np.float64)).tolist()
    return flags


def _front_mask(values: Any) -> Any:
    """The non-dominated rows of an ``n x m`` array of losses, as a boolean array."""
    import numpy as np

    # Equal rows share a verdict: decide on the distinct rows, in lexicographic order.
    unique, inverse = np.unique(values, axis=0, return_inverse=True)
    return _sorted_front_mask(unique)[inverse.reshape(-1)]


def _sorted_front_mask(rows: Any) -> Any:
    """:func:`_front_mask` of distinct rows in lexicographic order, where a row can only
    be dominated by one before it."""
    import numpy as np

    if rows.shape[1] == 2:
        # On the front: its second loss is below that of every row before it.
        second = rows[:, 1]
        on = np.ones(len(rows), dtype=bool)
        on[1:] = second[1:] < np.minimum.accumulate(second)[:-1]
        return on
    # The first row left is on the front; drop every row it dominates; repeat.
    on = np.zeros(len(rows), dtype=bool)
    index, rest = np.arange(len(rows)), rows
    while len(rest):
        on[index[0]] = True
        better_somewhere = np.any(rest < rest[0], axis=1)
        index, rest = index[better_somewhere], rest[better_somewhere]
    return on


def nondominated_ranks(points: Sequence[Sequence[float]]) -> list[int]:
    """Each loss vector's non-dominated front, 0 the best (NSGA-II's sorting): front k
    is what no other point dominates once fronts 0..k-1 are taken out."""
    import numpy as np

    if not len(points):
        return []
    unique, inverse = np.unique(np.asarray(points, dtype=np.float64), axis=0, return_inverse=True)
    ranks = np.full(len(unique), -1)
    left = np.arange(len(unique))  # a subset of sorted distinct rows stays so
    rank = 0
    while left.size:
        on = _sorted_front_mask(unique[left])
        ranks[left[on]] = rank
        left = left[~on]
        rank += 1
    out: list[int] = ranks[inverse.reshape(-1)].tolist()
    return out


def crowding_distance(front: Any) -> Any:
    """NSGA-II's crowding distance of each point of one front (an ``n x m`` array of
    losses); the extremes of each objective, and every point of a front of 1 or 2, inf."""
    import numpy as np

    front = np.asarray(front, dtype=np.float64)
    n, m = front.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(front[:, j], kind="stable")
        span = front[order[-1], j] - front[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span == 0:
            continue
        gaps = (front[order[2:], j] - front[order[:-2], j]) / span
        distance[order[1:-1]] += gaps
    return distance


def nondominated_order(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the loss vectors best first: by non-dominated front, then by crowding
    distance within a front (larger first), then by index."""
    import numpy as np

    values = np.asarray(points, dtype=np.float64)
    ranks = nondominated_ranks(points)
    order: list[int] = []
    for r in sorted(set(ranks)):
        members = [i for i in range(len(values)) if ranks[i] == r]
        crowd = crowding_distance(values[members])
        order += [m for _, m in sorted(zip((-crowd).tolist(), members, strict=True))]
    return order


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def violation(value: Any, lower: float | None, upper: float | None) -> float:
    """How far `value` is outside ``[lower, upper]`` (None: that side is open): <= 0 it
    holds, inf when it is not a finite number (not reported, NaN, a bool or a string)."""
    number = _number(value)
    if number is None or not math.isfinite(number):
        return math.inf
    out = -math.inf
    if upper is not None:
        out = max(out, number - upper)
    if lower is not None:
        out = max(out, lower - number)
    return out


def holds(value: Any, lower: float | None, upper: float | None) -> bool:
    """Whether `value` is a finite number inside ``[lower, upper]``."""
    return violation(value, lower, upper) <= 0


def feasible(metrics: Mapping[str, Any], bounds: Sequence[Bound]) -> bool:
    """Whether every bound holds for its metric in `metrics` (no bounds: True)."""
    return all(holds(metrics.get(metric), lower, upper) for metric, lower, upper in bounds)
