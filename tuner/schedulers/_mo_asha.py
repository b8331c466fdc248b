"""MO-ASHA: asynchronous successive halving on several objectives (Schmucker et al. 2021).

Imported by the registry's ``asha`` factory only (it imports Ray).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tuner import _pareto
from tuner.schedulers._rules import TIME_ATTR, budget, promoted, rungs

if TYPE_CHECKING:
    from tuner.spec import StudySpec

__all__ = ["MultiObjectiveASHA", "mo_asha"]


class MultiObjectiveASHA(FIFOScheduler):
    """Asynchronous successive halving on several objectives (see :mod:`tuner.schedulers`).

    Args:
        objectives: ``(metric, mode)`` of each objective.
        max_t: the reports a trial makes when it runs to its end.
        grace_period: reports before the first rung.
        reduction_factor: 1/reduction_factor of the trials go on at each rung.
        rank: ``nondominated`` or ``scalarized``.
        weights: scalarized: one weight per objective (default all 1).
    """

    def __init__(
        self,
        objectives: list[tuple[str, str]],
        *,
        max_t: int,
        grace_period: int,
        reduction_factor: float,
        rank: str = "nondominated",
        weights: list[float] | None = None,
    ) -> None:
        super().__init__()
        self._objectives = objectives
        self._modes = [mode for _, mode in objectives]
        self._max_t = max_t
        self._rf = reduction_factor
        self._rank = rank
        self._weights = weights
        # Highest rung first: a trial is judged at the highest rung it has reached.
        self._rungs: list[tuple[int, dict[str, list[float]]]] = [
            (m, {}) for m in reversed(rungs(max_t, grace_period, reduction_factor))
        ]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        t = result.get(TIME_ATTR)
        raw = [result.get(metric) for metric, _ in self._objectives]
        values = [float(v) for v in raw if isinstance(v, int | float)]
        if t is None or len(values) < len(raw) or not all(map(math.isfinite, values)):
            return TrialScheduler.CONTINUE
        if t >= self._max_t:
            return TrialScheduler.STOP
        loss = _pareto.losses(values, self._modes)
        for milestone, recorded in self._rungs:
            if t < milestone or trial.trial_id in recorded:
                continue
            recorded[trial.trial_id] = loss
            keep = math.ceil(len(recorded) / self._rf)
            if not promoted(recorded, trial.trial_id, keep, self._rank, self._weights):
                return TrialScheduler.STOP
            break
        return TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        sizes = ", ".join(f"{m}: {len(r)}" for m, r in self._rungs)
        return f"MultiObjectiveASHA({self._rank}; rungs {sizes})"


def mo_asha(spec: StudySpec) -> TrialScheduler:
    """MO-ASHA for a spec with several objectives, ranking as ``multi_objective`` says."""
    es = spec.early_stopping
    return MultiObjectiveASHA(
        list(zip(spec.objective_metrics, spec.objective_modes, strict=True)),
        max_t=budget(spec),
        grace_period=es.grace_period,
        reduction_factor=es.reduction_factor,
        rank=es.multi_objective,
        weights=es.weights,
    )
