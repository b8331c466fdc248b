"""Pareto fronts and hypervolumes of several objectives, on plain arrays.

Optuna's own routines do the work (its non-dominated test and its WFG hypervolume), so
the fronts that tuner stores and draws are the ones Optuna's samplers see. Every
function takes the objectives' values as an ``(n, k)`` array in objective order and
their modes (``"min"`` or ``"max"``); maximised objectives are negated inside.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["hypervolume", "hypervolume_history", "losses", "pareto_mask", "reference_point"]


def losses(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """``values`` as losses: every objective minimised (a ``max`` one negated)."""
    values = np.asarray(values, dtype=float).reshape(len(values), len(modes))
    signs = np.array([-1.0 if m == "max" else 1.0 for m in modes])
    return values * signs


def pareto_mask(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """Which rows no other row dominates (ties: every copy is on the front)."""
    from optuna.study._multi_objective import _is_pareto_front

    loss = losses(values, modes)
    if len(loss) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(_is_pareto_front(loss, assume_unique_lexsorted=False), dtype=bool)


def reference_point(values: np.ndarray, modes: Sequence[str]) -> np.ndarray:
    """A reference point for the hypervolume, in loss space: each objective's worst value
    plus a tenth of its range (plus a tenth of its size, or 1, where all are equal)."""
    loss = losses(values, modes)
    worst, best = loss.max(axis=0), loss.min(axis=0)
    span = worst - best
    pad = np.where(span > 0, span, np.maximum(np.abs(worst), 1.0)) * 0.1
    return worst + pad


def hypervolume(values: np.ndarray, modes: Sequence[str], reference: np.ndarray) -> float:
    """The hypervolume that ``values`` dominate up to ``reference`` (in loss space)."""
    from optuna._hypervolume import compute_hypervolume

    loss = losses(values, modes)
    loss = loss[(loss < reference).all(axis=1)]
    if len(loss) == 0:
        return 0.0
    front = loss[pareto_mask(loss, ["min"] * loss.shape[1])]
    return float(compute_hypervolume(front, reference, assume_pareto=True))


def hypervolume_history(
    values: np.ndarray, modes: Sequence[str], reference: np.ndarray, points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """The hypervolume after each of the first i rows, at up to ``points`` values of i
    (the last row always among them): ``(i, hypervolume)`` arrays."""
    n = len(values)
    if n == 0:
        return np.zeros(0, dtype=int), np.zeros(0)
    at = np.unique(np.linspace(1, n, num=min(points, n)).round().astype(int))
    loss = losses(values, modes)
    out = np.empty(len(at))
    front = np.empty((0, loss.shape[1]))
    done = 0
    for j, i in enumerate(at):
        # Only the front so far matters: keep it, add the new rows, prune again.
        front = np.vstack([front, loss[done:i]])
        front = front[pareto_mask(front, ["min"] * loss.shape[1])]
        done = i
        out[j] = hypervolume(front, ["min"] * loss.shape[1], reference)
    return at, out
