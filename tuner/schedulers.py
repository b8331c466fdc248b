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
    from ray.tune.schedulers import (
        AsyncHyperBandScheduler,
        FIFOScheduler,
        MedianStoppingRule,
    )

    es = spec.early_stopping
    max_t = budget(spec)
    if es.scheduler in ("none", "fifo"):
        return FIFOScheduler()
    if es.scheduler == "asha":
        return AsyncHyperBandScheduler(
            time_attr=TIME_ATTR,
            metric=spec.metric,
            mode=spec.mode,
            max_t=max_t,
            grace_period=es.grace_period,
            reduction_factor=es.reduction_factor,
            brackets=1,
        )
    if es.scheduler == "hyperband":
        rungs = math.log(max_t / es.grace_period, es.reduction_factor)
        return AsyncHyperBandScheduler(
            time_attr=TIME_ATTR,
            metric=spec.metric,
            mode=spec.mode,
            max_t=max_t,
            grace_period=es.grace_period,
            reduction_factor=es.reduction_factor,
            brackets=max(1, int(rungs) + 1),
        )
    if es.scheduler == "median":
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
    raise ValueError(f"unknown scheduler {es.scheduler!r}")  # the spec rules this out
