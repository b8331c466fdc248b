"""The rules the schedulers share, without Ray: rungs, MO-ASHA's ranking, extrapolation."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from tuner import _pareto

if TYPE_CHECKING:
    from tuner.spec import StudySpec

__all__ = [
    "MIN_REPORTS",
    "SHRINK_CAP",
    "TIME_ATTR",
    "budget",
    "extrapolated_final",
    "new_report",
    "promoted",
    "rungs",
]

TIME_ATTR = "training_iteration"


def budget(spec: StudySpec) -> int:
    """The most reports a trial makes: what early stopping cuts."""
    return spec.trainer.budget


def rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The rungs' milestones, in reports, lowest first and below `max_t`, as Ray's ASHA
    puts them: ``grace_period`` x ``reduction_factor``^k. Hyperband's brackets and bohb's
    budgets (which add `max_t` itself) are these too."""
    out = []
    k = 0
    while (milestone := grace_period * reduction_factor**k) < max_t:
        out.append(int(milestone))
        k += 1
    return out


def promoted(
    losses: dict[str, list[float]],
    trial_id: str,
    keep: int,
    rank: str,
    weights: list[float] | None = None,
) -> bool:
    """Whether `trial_id` is among the `keep` best of the loss vectors at a rung.

    Args:
        losses: trial id -> its objectives at the rung, each to be minimised.
        rank: ``nondominated`` (non-dominated sorting, then crowding distance) or
            ``scalarized`` (weighted sum).
    """
    import numpy as np

    ids = list(losses)
    values = np.array([losses[i] for i in ids], dtype=float)
    if rank == "scalarized":
        w = np.array(weights if weights is not None else [1.0] * values.shape[1])
        order = sorted(range(len(ids)), key=lambda i: (float(values[i] @ w), i))
    else:
        order = _pareto.nondominated_order(values.tolist())
    return ids.index(trial_id) in order[:keep]


def new_report(result: dict, metric: str | None, curve: Sequence[float]) -> float | None:
    """The metric of a result that extends a trial's `curve` (one value a report so far):
    None for a result without a finite value or a report the curve already holds (Ray
    can hand a result over twice)."""
    value, t = result.get(metric), result.get(TIME_ATTR)
    if not isinstance(value, int | float) or not math.isfinite(value) or t is None:
        return None
    if int(t) <= len(curve):
        return None
    return float(value)


MIN_REPORTS = 4
"""extrapolate judges a curve from its 4th report on (whatever ``grace_period`` says): the
shrinking of its fall per doubling needs two doublings of the steps. With fewer, its
first report alone would be the estimate, worse than any final, and every trial would
stop at its first report."""

SHRINK_CAP = 0.95
"""extrapolate: the fall per doubling of the steps is taken to shrink by at least 5% a
doubling (the ratio of two consecutive falls is capped at this)."""


def extrapolated_final(values: Sequence[float], max_t: int) -> float:
    """The value a curve reaches at report `max_t` if its fall per doubling of the steps
    goes on shrinking as it did over its last two doublings.

    `values` are a trial's reports 1..t, lower is better. With ``v(s)`` the report at step
    s, ``d1 = v(t/2) - v(t)`` is the fall over the last doubling of the steps and
    ``d0 = v(t/4) - v(t/2)`` the fall over the one before; each of the ``log2(max_t / t)``
    doublings left falls by ``q`` times the one before, ``q = d1 / d0`` capped at
    :data:`SHRINK_CAP` (also when the doubling before did not fall, or t < 4): a
    geometric series. A last doubling that did not fall gives the last value.

    A curve with the same fall every doubling (a line against log(step)) is followed at
    almost its slope; one whose falls shrink (most learning curves) is followed as they
    shrink, so a trial still improving, but by less each doubling, is judged by where
    that takes it (``1 + 1/step`` is extrapolated exactly). Measured against the earlier
    rule (a line over the last half of the reports, no shrinking) in bench/RESULTS.md,
    issue 11: it stops near-misses earlier, for a quarter fewer rounds at about the same
    final best.
    """
    t = len(values)
    last = values[-1]
    if t < 2 or t >= max_t:
        return last

    def at(step: float) -> float:
        return values[max(1, round(step)) - 1]

    d1 = at(t / 2) - last
    if d1 <= 0:
        return last
    d0 = at(t / 4) - at(t / 2) if t >= 4 else 0.0
    q = min(SHRINK_CAP, d1 / d0) if d0 > 0 else SHRINK_CAP
    doublings = math.log2(max_t / t)
    return last - d1 * q * (1 - q**doublings) / (1 - q)
