"""Early stopping: a spec's `early_stopping` block as a Ray Tune scheduler.

Every scheduler measures a trial's progress in reports (``training_iteration``): boosting
rounds for xgboost, epochs for scikit-learn, calls of ``tuner.report`` for a python
trainer. ``grace_period`` and the trainer's budget (``max_rounds``, ``max_epochs`` or
``max_steps``) are counted in reports.

``hyperband`` is asynchronous HyperBand (ASHA run over several brackets, Li et al.
2020): Ray's synchronous HyperBandScheduler pauses trials at each rung and needs them to
checkpoint and resume, which a function trainer cannot do without restarting; the
asynchronous form never pauses and reaches the same budget allocation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from tuner.spec import StudySpec

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

TIME_ATTR = "training_iteration"


def budget(spec: StudySpec) -> int:
    """The most reports a trial makes: what early stopping cuts."""
    return spec.trainer.budget


def build_scheduler(spec: StudySpec) -> TrialScheduler:
    """The Ray Tune scheduler for a spec's early_stopping block."""
    return SCHEDULERS[spec.early_stopping.scheduler](spec)


def _fifo(spec: StudySpec) -> TrialScheduler:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _async_hyperband(spec: StudySpec, brackets: int) -> TrialScheduler:
    from ray.tune.schedulers import AsyncHyperBandScheduler

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


def _asha(spec: StudySpec) -> TrialScheduler:
    return _async_hyperband(spec, brackets=1)


def _hyperband(spec: StudySpec) -> TrialScheduler:
    es = spec.early_stopping
    rungs = math.log(budget(spec) / es.grace_period, es.reduction_factor)
    return _async_hyperband(spec, brackets=max(1, int(rungs) + 1))


def _median(spec: StudySpec) -> TrialScheduler:
    from ray.tune.schedulers import MedianStoppingRule

    es = spec.early_stopping
    return MedianStoppingRule(
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


# One line per name of the spec's `early_stopping.scheduler` (tuner.spec.SchedulerName).
SCHEDULERS: dict[str, Callable[[StudySpec], TrialScheduler]] = {
    "none": _fifo,
    "fifo": _fifo,
    "asha": _asha,
    "hyperband": _hyperband,
    "median": _median,
}
