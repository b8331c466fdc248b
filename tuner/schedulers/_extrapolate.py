"""``extrapolate``: stop a trial whose own learning curve, followed to the budget, ends
worse than the trials that ended on their own (see :func:`extrapolated_final`).

Imported by the registry's factory only (it imports Ray).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tuner._report import ERROR_KEY
from tuner.schedulers._rules import MIN_REPORTS, budget, extrapolated_final, new_report

if TYPE_CHECKING:
    from tuner.spec import StudySpec

__all__ = ["ExtrapolateStopping", "extrapolate"]


class ExtrapolateStopping(FIFOScheduler):
    """Stop a trial whose extrapolated final value (:func:`extrapolated_final` of its
    reports so far) is worse than the best value of the trials that ended on their
    own; asynchronous, nothing is paused.

    Args:
        metric, mode: the study's metric and whether it is minimised.
        max_t: the reports a trial makes when it runs to its end.
        grace_period: reports a trial makes before it can be stopped.
        min_samples: trials that must have ended on their own before any is stopped.
        trial_value: ``last`` or ``best``: what a trial's value is (its last report,
            or its best one), for the ended trials and for the estimate alike.
    """

    def __init__(
        self,
        metric: str,
        mode: str,
        *,
        max_t: int,
        grace_period: int,
        min_samples: int,
        trial_value: str = "last",
    ) -> None:
        super().__init__()
        self._metric = metric
        self._sign = 1.0 if mode == "min" else -1.0  # lower is better inside
        self._max_t = max_t
        self._judged_from = max(grace_period, MIN_REPORTS)  # the first report judged
        self._min_samples = min_samples
        self._keep_best = trial_value == "best"
        self._curves: dict[str, list[float]] = {}  # trial -> its reports, signed
        self._stopped: set[str] = set()
        self._ended = 0  # trials that ended on their own (at the budget or by patience)
        self._best_final = math.inf  # the best value among them

    def _value(self, curve: list[float]) -> float:
        return min(curve) if self._keep_best else curve[-1]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        value = new_report(result, self._metric, self._curves.get(trial.trial_id, ()))
        if value is None:
            return TrialScheduler.CONTINUE
        curve = self._curves.setdefault(trial.trial_id, [])
        curve.append(self._sign * value)
        n = len(curve)
        if n < self._judged_from or n >= self._max_t or self._ended < self._min_samples:
            return TrialScheduler.CONTINUE
        estimate = extrapolated_final(curve, self._max_t)
        if self._keep_best:
            estimate = min(estimate, min(curve))
        if estimate > self._best_final:
            self._stopped.add(trial.trial_id)
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        curve = self._curves.get(trial.trial_id)
        failed = ERROR_KEY in result  # it did not end on its own
        if curve and trial.trial_id not in self._stopped and not failed:
            self._ended += 1
            self._best_final = min(self._best_final, self._value(curve))

    def debug_string(self) -> str:
        return (
            f"ExtrapolateStopping: {len(self._curves)} trials, "
            f"{self._ended} ended, {len(self._stopped)} stopped"
        )


def extrapolate(spec: StudySpec) -> TrialScheduler:
    """The spec's extrapolate rule."""
    es = spec.early_stopping
    return ExtrapolateStopping(
        spec.metric,
        spec.mode,
        max_t=budget(spec),
        grace_period=es.grace_period,
        min_samples=es.min_samples,
        trial_value=es.trial_value,
    )
