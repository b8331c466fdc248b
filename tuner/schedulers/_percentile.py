"""``percentile``: Optuna's PercentilePruner as a Ray Tune scheduler.

Imported by the registry's factory only (it imports Ray).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tuner.schedulers._rules import new_report

if TYPE_CHECKING:
    from tuner.spec import StudySpec

__all__ = ["PercentileStopping", "percentile"]


class PercentileStopping(FIFOScheduler):
    """Stop a trial whose best value so far is outside the best `percentile` % of the
    other trials' best values so far after as many reports (the trials that got that far,
    running, stopped or completed), once it has made `grace_period` reports and
    `min_samples` others are there to compare with. Asynchronous, nothing is paused.
    """

    def __init__(
        self,
        metric: str,
        mode: str,
        *,
        grace_period: int,
        percentile: float,
        min_samples: int,
    ) -> None:
        super().__init__()
        self._metric = metric
        self._sign = 1.0 if mode == "min" else -1.0  # lower is better inside
        self._grace = grace_period
        self._percentile = percentile
        self._min_samples = min_samples
        self._best: dict[str, list[float]] = {}  # trial -> best so far after each report

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        import numpy as np

        value = new_report(result, self._metric, self._best.get(trial.trial_id, ()))
        if value is None:
            return TrialScheduler.CONTINUE
        curve = self._best.setdefault(trial.trial_id, [])
        best = min(curve[-1], self._sign * value) if curve else self._sign * value
        curve.append(best)
        n = len(curve)
        if n < self._grace:
            return TrialScheduler.CONTINUE
        others = [
            c[n - 1] for tid, c in self._best.items() if tid != trial.trial_id and len(c) >= n
        ]
        if len(others) < self._min_samples:
            return TrialScheduler.CONTINUE
        cutoff = float(np.percentile(others, self._percentile))
        return TrialScheduler.STOP if best > cutoff else TrialScheduler.CONTINUE

    def debug_string(self) -> str:
        return f"PercentileStopping: {len(self._best)} trials, best {self._percentile:g}% go on"


def percentile(spec: StudySpec) -> TrialScheduler:
    """The spec's percentile rule."""
    es = spec.early_stopping
    return PercentileStopping(
        spec.metric,
        spec.mode,
        grace_period=es.grace_period,
        percentile=es.percentile,
        min_samples=es.min_samples,
    )
