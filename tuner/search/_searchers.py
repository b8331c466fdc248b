"""Ray Tune searchers backed by Optuna samplers, and an exhaustive grid searcher.

Trials in flight: TPE runs with Optuna's ``constant_liar=True``, which scores running
trials as if they were the worst so far, so parallel suggestions spread out. GP uses a
kriging believer (``tuner.search._gp.BelieverGPSampler``): the GP fitted on finished
trials is conditioned on its own posterior mean at the running trials' params, kernel
not refitted, and EI's incumbent includes those believed values. CMA-ES, QMC and random
do not depend on pending results.

Several objectives: the Optuna study has one direction per objective, and a trial is
told with every objective's last reported value (Ray Tune's searcher API carries one
metric, but ``on_trial_complete`` gets the whole last result, and ``on_trial_result``
every report, which this searcher keeps). Optuna takes no intermediate values for
several objectives, so none are reported to it, and a pruned trial is told as completed
with its last values (NSGA-II and NSGA-III ignore pruned trials otherwise). TPE's
constant liar and GP's own handling of running trials apply to several objectives too.

Constraints: each trial's violations (``ConstraintSpec.violation``: <= 0 holds) are set
with Optuna 5's ``Trial.set_constraint`` (keys ``"0"``, ``"1"``, ... in the spec's order)
before it is told; trials of history get the same system attributes. TPE, NSGA-II,
NSGA-III and GP read them from every trial (``FrozenTrial.constraints``), so no
``constraints_func`` (deprecated in Optuna 5) is needed.

Every trial in flight is a RUNNING trial of the one Optuna study (``_Live``), with all
its params suggested at ``suggest``, so the samplers see them with no extra plumbing;
the trial being sampled has no params yet and is not among them. On resume nothing is
running. Measured on Hartmann6 with 4 in flight (bench/RESULTS.md), constant lies for
GP (worst, mean, best, nearest value) and Optuna 5.0's own qLogEI over running trials
did no better than ignoring them in simulation; the believer did (mean regret 0.033 vs
0.083, 8 seeds). Through Ray, believer and qLogEI each matched sequential GP on 7 of 8
seeds and stalled on one.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, cast

import optuna
from optuna.trial import FrozenTrial, create_trial
from optuna.trial import TrialState as OptunaState
from ray.tune.search import Searcher

from tuner._report import ERROR_KEY
from tuner.run._ledger import improves
from tuner.search._base import TunerSearcher
from tuner.search._space import grid_points, sample
from tuner.spec import StudySpec
from tuner.storage import TrialState

log = logging.getLogger(__name__)


class PastTrial(Protocol):
    """What a searcher needs to know of a trial finished before a resume."""

    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def state(self) -> str: ...
    @property
    def value(self) -> float | None: ...
    @property
    def steps(self) -> int: ...
    @property
    def metrics(self) -> dict[str, float]: ...


# The violation given for a constraint whose metric was never reported (finite: a GP
# models violations).
_UNREPORTED = 1.0


def violations(spec: StudySpec, metrics: dict[str, Any]) -> list[float]:
    """Each constraint's violation for a trial's final metrics (<= 0: it holds)."""
    out = []
    for c in spec.constraints:
        v = c.violation(metrics.get(c.metric) if _finite(metrics.get(c.metric)) else None)
        out.append(v if math.isfinite(v) else _UNREPORTED)
    return out


@dataclass
class _Live:
    trial: optuna.Trial
    last_step: int = 0
    last_value: float | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    best: dict[str, float] | None = None  # metrics of its best report (trial_value: best)


class OptunaSearcher(TunerSearcher):
    """A Ray Tune searcher that asks an Optuna sampler for each trial's config.

    Args:
        spec: the study spec (search space, objectives, constraints, seed, initial
            points).
        history: trials finished in an earlier run of the same study (resume); they
            are given to the sampler, as trials of its study, before the first
            suggestion. Parameters outside the space are dropped first.
        sampler: the Optuna sampler (see tuner.search._samplers).
        warm: the finished trials of a warm-start study, given to the sampler after
            `history` in the same way (a sampler that takes them otherwise, as CMA-ES's
            ``source_trials``, is given none here).
        pruned_as_complete: tell pruned trials as completed with their last value
            (for a sampler that learns from completed trials only; always so with
            several objectives, and under ``early_stopping.scheduler: extrapolate``).
        full_params_only: leave out trials of history that lack an active parameter
            of the space (a warm start from a study that did not search it): a sampler
            that models every parameter together (GP) would otherwise drop that
            parameter from its model, for every later trial, and sample it at random.
    """

    def __init__(
        self,
        spec: StudySpec,
        history: Sequence[PastTrial],
        sampler: optuna.samplers.BaseSampler,
        *,
        pruned_as_complete: bool = False,
        full_params_only: bool = False,
        warm: Sequence[PastTrial] = (),
    ) -> None:
        super().__init__(metric=spec.metric, mode=spec.mode)
        history = [*history, *warm]
        self._spec = spec
        self._directions: list[Literal["minimize", "maximize"]] = [
            "minimize" if m == "min" else "maximize" for m in spec.objective_modes
        ]
        self._sampler = sampler
        self._multi = spec.is_multi_objective
        # extrapolate stops a trial only when it cannot beat the best, so its value at
        # the stop ranks it among the completed ones; told as pruned, TPE would fit its
        # "good" group on the few completed trials (bench/RESULTS.md, issue 11).
        self._pruned_as_complete = (
            pruned_as_complete or self._multi or spec.early_stopping.scheduler == "extrapolate"
        )
        self._keep_best = spec.early_stopping.trial_value == "best"
        self._live: dict[str, _Live] = {}
        self._pruned: set[str] = set()
        self._study = optuna.create_study(directions=self._directions, sampler=self._sampler)
        if full_params_only:
            lacking = [(p, gaps) for p in history if (gaps := _missing(spec, p.params))]
            if lacking:
                log.warning(
                    "%d earlier trials lack parameter %s of this space; left out (a warm "
                    "start's warm_start.fixed can give the values they ran with)",
                    len(lacking),
                    lacking[0][1][0],
                )
                left_out = {id(p) for p, _ in lacking}
                history = [p for p in history if id(p) not in left_out]
        misfits: list[dict[str, Any]] = []
        primed = [_frozen(spec, p, self._pruned_as_complete, misfits) for p in history]
        self._study.add_trials([t for t in primed if t is not None])
        if misfits:  # e.g. a warm start from a study over a wider range
            log.warning(
                "%d earlier trials have a value outside this search space (e.g. %s); left out",
                len(misfits),
                misfits[0],
            )
        for point in spec.search.initial_points:
            # Not again on resume: a point that history already holds was run.
            self._study.enqueue_trial(dict(point), skip_if_exists=True)

    @property
    def optuna_study(self) -> optuna.Study:
        """The in-memory Optuna study the sampler works on (for tests and benches)."""
        return self._study

    def note_pruned(self, trial_id: str) -> None:
        """The scheduler stopped the trial early: it is told to Optuna as pruned."""
        self._pruned.add(trial_id)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        trial = self._study.ask()
        self._live[trial_id] = _Live(trial)
        return sample(trial, self._spec)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self._live.get(trial_id)
        if live is not None:
            self._report(live, result)

    def _report(self, live: _Live, result: dict[str, Any]) -> None:
        value = result.get(self.metric)
        if not _finite(value):
            return
        step = int(result.get("training_iteration", live.last_step + 1))
        if step <= live.last_step:
            return  # Ray repeats a trial's last result when its function returns
        live.metrics.update({k: float(v) for k, v in result.items() if _finite(v)})
        live.last_step, live.last_value = step, float(cast(float, value))
        best = None if live.best is None else live.best[self.metric]
        if self._keep_best and improves(live.last_value, best, self.mode):
            live.best = dict(live.metrics)
        if not self._multi:  # Optuna keeps no intermediate values for several objectives
            live.trial.report(live.last_value, step)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        live = self._live.pop(trial_id, None)
        if live is None:
            return
        error = error or ERROR_KEY in (result or {})  # it failed in its own process
        if result and not error:
            # The result a scheduler stops a trial on reaches the searcher only here
            # (Ray does not pass it to on_trial_result): without it a pruned trial's
            # value at the rung it was judged on, or any value at all when it was
            # stopped at its first report, is lost to the sampler.
            self._report(live, result)
        pruned = trial_id in self._pruned
        self._pruned.discard(trial_id)
        final = {k: float(v) for k, v in (result or {}).items() if _number(v)}
        metrics = {**live.metrics, **final}
        if self._keep_best and live.best is not None:
            metrics = live.best  # the trial's value is its best report's
        values = [metrics.get(m) for m in self._spec.objective_metrics]
        if error or not all(_finite(v) for v in values):
            self._study.tell(live.trial, state=OptunaState.FAIL)
            return
        for i, v in enumerate(violations(self._spec, metrics)):
            live.trial.set_constraint(str(i), v)
        if pruned and not self._pruned_as_complete:
            # TPE ranks pruned trials by their last intermediate value.
            self._study.tell(live.trial, state=OptunaState.PRUNED)
        else:
            # A pruned trial's last value still marks its region as poor for GP,
            # which is what the scheduler decided.
            self._study.tell(live.trial, cast(list[float], values))


class GridSearcher(TunerSearcher):
    """Every combination of the grid, each exactly once, in a fixed order.

    Args:
        spec: the study spec.
        history: trials finished before a resume; their configs are not run again.
        warm: a warm-start study's finished trials; their configs are not run either.
    """

    def __init__(
        self, spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
    ) -> None:
        super().__init__(metric=spec.metric, mode=spec.mode)
        done = [_key(t.params) for t in [*history, *warm]]
        self._points = [p for p in grid_points(spec) if _key(p) not in done]
        self._next = 0

    @property
    def remaining(self) -> int:
        """Grid points not yet suggested: grid search decides its own trial count."""
        return len(self._points) - self._next

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if self._next >= len(self._points):
            return Searcher.FINISHED
        point = self._points[self._next]
        self._next += 1
        return dict(point)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        return None


def _missing(spec: StudySpec, params: dict[str, Any]) -> list[str]:
    """The parameters active for `params` (by the space's `when` conditions) that it
    does not name."""
    missing: list[str] = []
    assigned: dict[str, Any] = {}
    for name, p in spec.ordered_params:
        if not p.is_active(assigned):
            continue
        if name not in params:
            missing.append(name)
            continue
        assigned[name] = params[name]
    return missing


def _key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _frozen(
    spec: StudySpec,
    past: PastTrial,
    pruned_as_complete: bool,
    misfits: list[dict[str, Any]],
) -> FrozenTrial | None:
    """An earlier trial as Optuna sees it (told as on_trial_complete would have), or None
    if its params do not fit the space (then appended to `misfits`). Parameters the space
    does not have are dropped (a warm start from a study with other parameters)."""
    from tuner._compat.optuna import constraint_attrs
    from tuner.search._space import distribution

    params = {k: v for k, v in past.params.items() if k in spec.search_space}
    metrics = dict(getattr(past, "metrics", None) or {})
    if not spec.is_multi_objective and _finite(past.value):
        metrics.setdefault(spec.metric, cast(float, past.value))
    values = [metrics.get(m) for m in spec.objective_metrics]
    # As Trial.set_constraint keeps them (see on_trial_complete).
    system = constraint_attrs(violations(spec, metrics))
    try:
        dists = {name: distribution(spec.search_space[name]) for name in params}
        pruned = past.state == TrialState.PRUNED
        known = all(_finite(v) for v in values)
        if (past.state == TrialState.COMPLETED or (pruned and pruned_as_complete)) and known:
            return create_trial(
                params=params,
                distributions=dists,
                values=cast(list[float], values),
                system_attrs=system,
            )
        if pruned and _finite(past.value) and not spec.is_multi_objective:
            return create_trial(
                params=params,
                distributions=dists,
                state=OptunaState.PRUNED,
                intermediate_values={max(past.steps, 1): float(past.value)},  # type: ignore[arg-type]
            )
        if past.state == TrialState.FAILED:
            return create_trial(params=params, distributions=dists, state=OptunaState.FAIL)
    except (KeyError, ValueError):
        misfits.append(past.params)
    return None
