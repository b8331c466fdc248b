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
is :class:`MultiObjectiveASHA`: the same rungs (``grace_period`` x
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

``percentile`` (``PercentileStopping``) compares a trial's best value so far with the
other trials' best values so far after as many reports, and stops it outside the best
``percentile`` % of them: stricter than Ray's median rule, which compares with the
others' running means (measured on xgboost in bench/RESULTS.md, issue 11).

``extrapolate`` (``ExtrapolateStopping``) judges a trial by its own learning curve
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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tuner._report import ERROR_KEY
from tuner.spec import StudySpec

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

TIME_ATTR = "training_iteration"


def budget(spec: StudySpec) -> int:
    """The most reports a trial makes: what early stopping cuts."""
    return spec.trainer.budget


def build_scheduler(spec: StudySpec) -> TrialScheduler:
    """The Ray Tune scheduler for a spec's early_stopping block."""
    if spec.is_multi_objective and spec.early_stopping.scheduler == "asha":
        return _mo_asha(spec)
    return SCHEDULERS[spec.early_stopping.scheduler](spec)


def _mo_asha(spec: StudySpec) -> TrialScheduler:
    es = spec.early_stopping
    return _mo_asha_class()(
        list(zip(spec.objective_metrics, spec.objective_modes, strict=True)),
        max_t=budget(spec),
        grace_period=es.grace_period,
        reduction_factor=es.reduction_factor,
        rank=es.multi_objective,
        weights=es.weights,
    )


def rungs(max_t: int, grace_period: int, reduction_factor: float) -> list[int]:
    """The rungs' milestones, in reports, lowest first (as Ray's ASHA puts them)."""
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
        order = _nondominated_order(values)
    return ids.index(trial_id) in order[:keep]


def _nondominated_order(values: Any) -> list[int]:
    """Indices best first: by non-dominated front, then by crowding distance within it."""
    from optuna.study._multi_objective import _fast_non_domination_rank

    ranks = _fast_non_domination_rank(values)
    order: list[int] = []
    for r in sorted(set(ranks.tolist())):
        members = [i for i in range(len(values)) if ranks[i] == r]
        crowd = _crowding(values[members])
        order += [m for _, m in sorted(zip(-crowd, members, strict=True))]
    return order


def _crowding(front: Any) -> Any:
    """NSGA-II's crowding distance of each point of one front (extremes: inf)."""
    import numpy as np

    n, m = front.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(front[:, j], kind="stable")
        span = front[order[-1], j] - front[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span == 0:
            continue
        gaps = (front[order[2:], j] - front[order[:-2], j]) / span
        distance[order[1:-1]] += gaps
    return distance


def __getattr__(name: str) -> Any:
    # MultiObjectiveASHA subclasses Ray's FIFOScheduler: made on first use, so that
    # importing this module does not import Ray.
    if name == "MultiObjectiveASHA":
        cls = _mo_asha_class()
        globals()[name] = cls
        return cls
    raise AttributeError(name)


@functools.cache
def _mo_asha_class() -> Any:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class MultiObjectiveASHA(FIFOScheduler):
        """Asynchronous successive halving on several objectives (see the module).

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
            loss = [
                v if mode == "min" else -v
                for v, (_, mode) in zip(values, self._objectives, strict=True)
            ]
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

    return MultiObjectiveASHA


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
    es = spec.early_stopping
    return _median_class()(
        time_attr=TIME_ATTR,
        metric=spec.metric,
        mode=spec.mode,
        grace_period=es.grace_period,
        min_samples_required=es.min_samples,
        # Never pause a trial to time-slice: a function trainer cannot be resumed.
        # It must be inf: Ray compares `now - last_pause > min_time_slice` with
        # last_pause = -inf for a trial never paused, and only inf > inf is false.
        min_time_slice=math.inf,
    )


@functools.cache
def _median_class() -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    class MedianStopping(MedianStoppingRule):
        """Ray's median stopping rule, less the results of trials that failed in their
        own process: such a trial's last result carries its error and no metric (Ray's
        rule would keep it and fail on it when it ranks the next trial)."""

        def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict) -> None:
            if ERROR_KEY not in result:
                super().on_trial_complete(tune_controller, trial, result)

    return MedianStopping


def _new_report(result: dict, metric: str | None, curve: Sequence[float]) -> float | None:
    """The metric of a result that extends a trial's `curve` (one value a report so far):
    None for a result without a finite value or a report the curve already holds (Ray
    can hand a result over twice)."""
    value, t = result.get(metric), result.get(TIME_ATTR)
    if not isinstance(value, int | float) or not math.isfinite(value) or t is None:
        return None
    if int(t) <= len(curve):
        return None
    return float(value)


def _percentile(spec: StudySpec) -> TrialScheduler:
    es = spec.early_stopping
    return _percentile_class()(
        spec.metric,
        spec.mode,
        grace_period=es.grace_period,
        percentile=es.percentile,
        min_samples=es.min_samples,
    )


@functools.cache
def _percentile_class() -> Any:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class PercentileStopping(FIFOScheduler):
        """Stop a trial whose best value so far is outside the best `percentile` % of
        the other trials' best values so far after as many reports (the trials that
        got that far, running, stopped or completed), once it has made `grace_period`
        reports and `min_samples` others are there to compare with. Optuna's
        PercentilePruner as a Ray scheduler; asynchronous, nothing is paused.
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

            value = _new_report(result, self._metric, self._best.get(trial.trial_id, ()))
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

    return PercentileStopping


def _extrapolate(spec: StudySpec) -> TrialScheduler:
    es = spec.early_stopping
    return _extrapolate_class()(
        spec.metric,
        spec.mode,
        max_t=budget(spec),
        grace_period=es.grace_period,
        min_samples=es.min_samples,
        trial_value=es.trial_value,
    )


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


@functools.cache
def _extrapolate_class() -> Any:
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

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
            value = _new_report(result, self._metric, self._curves.get(trial.trial_id, ()))
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

    return ExtrapolateStopping


# One line per name of the spec's `early_stopping.scheduler` (tuner.spec.SchedulerName).
SCHEDULERS: dict[str, Callable[[StudySpec], TrialScheduler]] = {
    "none": _fifo,
    "fifo": _fifo,
    "asha": _asha,
    "hyperband": _hyperband,
    "median": _median,
    "percentile": _percentile,
    "extrapolate": _extrapolate,
}
