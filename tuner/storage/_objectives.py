"""A study's objectives and constraints as storage sees them, and the Pareto set.

The storage derives a finished trial's ``values`` (every objective's final value, in
the spec's order), ``feasible`` (every constraint holds) and constraint values from its
final metrics and the study's stored spec (:meth:`StudyObjectives.derive`), so the
driver's events need not carry them.

The Pareto set is computed when read, never stored: the completed, feasible trials
with every objective's value that no other such trial dominates
(:func:`pareto_flags`, :mod:`tuner._pareto`'s non-dominated test). :func:`hypervolume_history`
is the hypervolume of the Pareto set after each trial (Optuna's WFG routine).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tuner import _pareto

__all__ = ["Derived", "StudyObjectives", "hypervolume_history", "pareto_flags", "reference_point"]


@dataclass(frozen=True)
class Derived:
    """What a finished trial's final metrics say about its objectives and constraints."""

    values: list[float] | None  # None: an objective was not reported (or not finite)
    feasible: bool
    constraint_values: dict[str, float | None]


@dataclass(frozen=True)
class StudyObjectives:
    """The objectives (metric and mode each) and constraints of one study.

    Build it with :meth:`of` from the study's stored spec.
    """

    metrics: tuple[str, ...]
    modes: tuple[str, ...]
    constraints: tuple[_pareto.Bound, ...] = ()  # (metric, min, max) each

    @classmethod
    def of(cls, spec: Mapping[str, Any], metric: str, mode: str) -> StudyObjectives:
        """From a stored spec (a dict), falling back to the study's metric and mode."""
        objectives = spec.get("objectives") or [{"metric": metric, "mode": mode}]
        constraints = tuple(
            (c["metric"], c.get("min"), c.get("max")) for c in spec.get("constraints") or ()
        )
        return cls(
            tuple(o["metric"] for o in objectives),
            tuple(o.get("mode", "min") for o in objectives),
            constraints,
        )

    @classmethod
    def from_json(cls, spec_json: str, metric: str, mode: str) -> StudyObjectives:
        try:
            spec = json.loads(spec_json)
        except ValueError:
            spec = {}
        return cls.of(spec if isinstance(spec, dict) else {}, metric, mode)

    @property
    def multi(self) -> bool:
        """Whether there are two or more objectives."""
        return len(self.metrics) > 1

    def derive(self, metrics: Mapping[str, Any]) -> Derived:
        """The objective values, feasibility and constraint values of final `metrics`."""
        values = [_number(metrics.get(m)) for m in self.metrics]
        complete = all(v is not None and math.isfinite(v) for v in values)
        constrained = {metric: _number(metrics.get(metric)) for metric, _, _ in self.constraints}
        feasible = _pareto.feasible(constrained, self.constraints)
        return Derived(
            [v for v in values if v is not None] if complete else None, feasible, constrained
        )

    def losses(self, values: Sequence[float]) -> list[float]:
        """`values` turned so that lower is better on every objective."""
        return _pareto.losses(values, self.modes)


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def pareto_flags(
    objectives: StudyObjectives, candidates: Sequence[Sequence[float] | None]
) -> list[bool]:
    """For each candidate's values (None: not a candidate), whether no other candidate
    dominates it. Equal values are all kept (:func:`tuner._pareto.pareto_flags`)."""
    index = [i for i, v in enumerate(candidates) if v is not None]
    flags = [False] * len(candidates)
    rows = [objectives.losses(c) for c in candidates if c is not None]
    for i, on in zip(index, _pareto.pareto_flags(rows), strict=True):
        flags[i] = on
    return flags


def reference_point(objectives: StudyObjectives, points: Sequence[Sequence[float]]) -> list[float]:
    """The hypervolume's reference point (in losses): the worst of each objective, pushed
    out by a tenth of its range (1 where the range is 0), so that every point counts."""
    losses = [objectives.losses(p) for p in points]
    out = []
    for column in zip(*losses, strict=True):
        worst, best = max(column), min(column)
        out.append(worst + (0.1 * (worst - best) or 1.0))
    return out


def hypervolume_history(
    objectives: StudyObjectives,
    candidates: Sequence[Sequence[float] | None],
    reference: Sequence[float] | None = None,
) -> list[float]:
    """The hypervolume of the Pareto set after each trial, in the order given (None: a
    trial that is not a candidate: running, pruned, failed or infeasible).

    `reference` is in losses (every objective minimised); default
    :func:`reference_point` of the candidates. Points beyond it add nothing.
    """
    import numpy as np

    from tuner._compat.optuna import compute_hypervolume

    points = [c for c in candidates if c is not None]
    if not points:
        return [0.0] * len(candidates)
    ref = list(reference if reference is not None else reference_point(objectives, points))
    minimise = ["min"] * len(ref)
    front: list[list[float]] = []
    out: list[float] = []
    hv = 0.0
    for c in candidates:
        if c is not None:
            loss = objectives.losses(c)
            if all(x < r for x, r in zip(loss, ref, strict=True)):
                grown = _pareto.add_to_front(front, loss, minimise)
                if grown[-1] is loss:  # it joined the front (nothing there covers it)
                    front = grown
                    hv = float(
                        compute_hypervolume(np.array(front), np.array(ref), assume_pareto=True)
                    )
        out.append(hv)
    return out
