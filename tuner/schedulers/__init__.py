"""Early stopping: a spec's `early_stopping` block as a Ray Tune scheduler.

Every scheduler measures a trial's progress in reports (``training_iteration``): boosting
rounds for xgboost, epochs for scikit-learn, calls of ``tuner.report`` for a python
trainer. ``grace_period`` and the trainer's budget (``max_rounds``, ``max_epochs`` or
``max_steps``) are counted in reports.

``hyperband`` is asynchronous HyperBand (ASHA run over several brackets, Li et al.
2020): Ray's synchronous HyperBandScheduler pauses trials at each rung and needs them to
checkpoint and resume, which a function trainer cannot do without restarting; the
asynchronous form never pauses and reaches the same budget allocation.

Several objectives (``objectives:``): ``none``/``fifo`` never stop a trial. ``asha``
is :class:`~tuner.schedulers._mo_asha.MultiObjectiveASHA`: the same rungs (``grace_period`` x
``reduction_factor``^k reports) and the same asynchronous rule, with trials at a rung
ranked on every objective, by ``early_stopping.multi_objective``:

- ``nondominated`` (default; MO-ASHA, Schmucker et al. 2021): non-dominated sorting of
  the objective vectors recorded at the rung, ties within a front broken by crowding
  distance (NSGA-II's; the extremes of a front first);
- ``scalarized``: the weighted sum of the objectives (``weights``, default all 1), each
  signed so that lower is better.

A trial reaching a rung goes on when it ranks among the top ceil(n / reduction_factor)
of the n trials recorded there (itself included), and stops otherwise. ``hyperband``,
``median`` and ``percentile`` take one objective; the spec refuses them with several.

``percentile`` (:class:`~tuner.schedulers._percentile.PercentileStopping`) compares a trial's best value so far with the
other trials' best values so far after as many reports, and stops it outside the best
``percentile`` % of them: stricter than Ray's median rule, which compares with the
others' running means (measured on xgboost in bench/RESULTS.md, issue 11).

``extrapolate`` (:class:`~tuner.schedulers._extrapolate.ExtrapolateStopping`) judges a trial by its own learning curve
(Domhan et al. 2015, kept simple): after ``grace_period`` reports it follows the
trial's curve to the budget, its fall per doubling of the steps shrinking as it did over
the last two doublings (:func:`extrapolated_final`), and stops the trial when even that
estimate is worse than the best final value of the trials that ended on their own (at
the budget or by patience), once ``min_samples`` of them have. A curve still falling
steeply (an xgboost run with a small eta) is kept, however far behind it is at equal
reports; one that has flattened, or whose falls shrink too fast to reach the best,
stops. tuner's Optuna searcher tells a trial it stops as completed with its value at the
stop (told as pruned, TPE fitted its "good" group on the few completed trials; measured
in bench/RESULTS.md, issue 11). The estimate is an estimate, not a bound: a curve whose
fall per doubling grows (an exponential decay well before its time constant) is
underrated, which ``grace_period`` is there to cover.

``early_stopping.patience`` is not a scheduler: a trial stops itself on a plateau of
its own metric (``tuner._report``) and completes, whichever scheduler runs.

The schedulers are listed in :mod:`tuner.schedulers._registry` (name, factory, whether
they take several objectives, whether they have rungs); the spec takes its names and
rules from there. This package imports Ray only when a scheduler is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuner.schedulers._registry import SCHEDULER_NAMES, SCHEDULERS, Scheduler
from tuner.schedulers._rules import (
    MIN_REPORTS,
    SHRINK_CAP,
    TIME_ATTR,
    budget,
    extrapolated_final,
    promoted,
    rungs,
)

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from tuner.spec import StudySpec

__all__ = [
    "MIN_REPORTS",
    "SCHEDULERS",
    "SCHEDULER_NAMES",
    "SHRINK_CAP",
    "TIME_ATTR",
    "Scheduler",
    "budget",
    "build_scheduler",
    "extrapolated_final",
    "promoted",
    "rungs",
]


def build_scheduler(spec: StudySpec) -> TrialScheduler:
    """The Ray Tune scheduler for a spec's early_stopping block (imports Ray)."""
    scheduler: TrialScheduler = SCHEDULERS[spec.early_stopping.scheduler].load()(spec)
    return scheduler
