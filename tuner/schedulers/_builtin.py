"""Ray Tune's own schedulers as the spec names them: none/fifo, asha, hyperband, median.

Imported by the registry's factories only (it imports Ray). ``asha`` with several
objectives is :class:`~tuner.schedulers._mo_asha.MultiObjectiveASHA`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ray.tune.schedulers import (
    AsyncHyperBandScheduler,
    FIFOScheduler,
    MedianStoppingRule,
    TrialScheduler,
)

from tuner.schedulers._rules import TIME_ATTR, budget

if TYPE_CHECKING:
    from tuner.spec import StudySpec

__all__ = ["asha", "fifo", "hyperband", "median"]


def fifo(spec: StudySpec) -> TrialScheduler:
    """No early stopping: every trial runs to its end."""
    return FIFOScheduler()


def _async_hyperband(spec: StudySpec, brackets: int) -> TrialScheduler:
    es = spec.early_stopping
    return AsyncHyperBandScheduler(
        time_attr=TIME_ATTR,
        metric=spec.metric,
        mode=spec.mode,
        max_t=budget(spec),
        grace_period=es.grace_period,
        reduction_factor=es.reduction_factor,
        brackets=brackets,
    )


def asha(spec: StudySpec) -> TrialScheduler:
    """Asynchronous successive halving (one bracket); with several objectives, MO-ASHA."""
    if spec.is_multi_objective:
        from tuner.schedulers._mo_asha import mo_asha

        return mo_asha(spec)
    return _async_hyperband(spec, brackets=1)


def hyperband(spec: StudySpec) -> TrialScheduler:
    """Asynchronous HyperBand: ASHA over as many brackets as there are rungs."""
    es = spec.early_stopping
    rungs = math.log(budget(spec) / es.grace_period, es.reduction_factor)
    return _async_hyperband(spec, brackets=max(1, int(rungs) + 1))


class MedianStopping(MedianStoppingRule):
    """Ray's median stopping rule, less a trial's last result when it holds no value of
    the metric: tuner's marks of how a trial ended (its error, or that its function
    returned) carry none, and Ray's rule would keep them and fail on them when it ranks
    the next trial."""

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
        if self._metric in result:
            super().on_trial_complete(tune_controller, trial, result)


def median(spec: StudySpec) -> TrialScheduler:
    """Ray's median stopping rule, never pausing a trial."""
    es = spec.early_stopping
    return MedianStopping(
        time_attr=TIME_ATTR,
        metric=spec.metric,
        mode=spec.mode,
        grace_period=es.grace_period,
        min_samples_required=es.min_samples,
        # Never pause a trial to time-slice: a function trainer cannot be resumed.
        # It must be inf: Ray compares `now - last_pause > min_time_slice` with
        # last_pause = -inf for a trial never paused, and only inf > inf is false.
        min_time_slice=math.inf,  # type: ignore[arg-type]
    )
