"""``search.algorithm: bohb``: TPE over Hyperband's rungs (Falkner et al. 2018, BOHB).

Hyperband (or ASHA) stops most trials at a low rung; plain TPE then learns from few
trials trained on the whole budget, and sees the pruned ones only as "worse than every
completed trial". BOHB's sampler instead fits TPE on one budget: the largest rung (or
the whole budget) at which enough trials have a result, each trial valued by what it
reported at that rung, whether it was later stopped, completed or is still running.
Early in a study that is the first rung, which every trial reaches, so the model guides
the search after a handful of cheap results; as trials get through, it moves up to
budgets closer to the final one.

Trials in flight without a result at that budget are told to TPE as the worst value
there (a constant liar), so parallel suggestions spread out. What each fit used is kept
in :attr:`BOHBSampler.fits` (the tests read it).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, TPESampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState, create_trial

from tuner.schedulers import rungs
from tuner.search._searchers import OptunaSearcher, PastTrial
from tuner.spec import StudySpec

__all__ = ["BOHBSampler", "Fit", "bohb", "budgets"]


@dataclass(frozen=True)
class Fit:
    """What one suggestion's model was fitted on."""

    trial: int  # the number of the trial being suggested
    budget: int  # the rung (steps) whose values it was fitted on
    observed: int  # trials with a value at that budget
    from_pruned: int  # of which trials stopped early


def budgets(spec: StudySpec) -> list[int]:
    """The budgets BOHB fits at: the rungs Hyperband's brackets compare trials at
    (:func:`tuner.schedulers.rungs`, the schedulers' own), and the whole budget."""
    es = spec.early_stopping
    max_t = spec.trainer.budget
    return sorted({*rungs(max_t, es.grace_period, es.reduction_factor), max_t})


class BOHBSampler(BaseSampler):
    """TPE fitted on the trials' values at one budget (see the module docstring).

    Args:
        budgets: the rungs and the whole budget, in steps (``training_iteration``).
        seed: seed of the TPE sampler.
        min_points: results a budget needs before TPE is fitted on it; below that
            at the lowest budget, samples are random. Default: parameters + 2, at least 6.
    """

    def __init__(
        self, budgets: Sequence[int], *, seed: int | None = None, min_points: int | None = None
    ) -> None:
        self._budgets = sorted(budgets)
        self._min_points = min_points
        self._seed = seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._tpe = TPESampler(
                seed=seed, multivariate=True, group=True, n_startup_trials=1, constant_liar=False
            )
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._view: tuple[int, Study | None] = (-1, None)
        self.fits: list[Fit] = []

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()
        self._random.reseed_rng()

    def _needed(self, study: Study) -> int:
        if self._min_points is not None:
            return self._min_points
        dims = max((len(t.distributions) for t in study.get_trials(deepcopy=False)), default=1)
        return max(6, dims + 2)

    def _view_for(self, study: Study, trial: FrozenTrial) -> Study | None:
        """The study TPE is fitted on for `trial` (None: too few results: random)."""
        if self._view[0] == trial.number:
            return self._view[1]
        others = [t for t in study.get_trials(deepcopy=False) if t.number != trial.number]
        needed = self._needed(study)
        chosen: tuple[int, dict[int, float]] | None = None
        for budget in reversed(self._budgets):
            values = {
                t.number: v
                for t in others
                if (v := _value_at(t, budget, self._budgets[-1])) is not None
            }
            if len(values) >= needed:
                chosen = (budget, values)
                break
        view = None
        if chosen is not None:
            budget, values = chosen
            view = _quiet_study(study.direction, self._tpe)
            worst = (max if study.direction == StudyDirection.MINIMIZE else min)(values.values())
            frozen = []
            for t in others:
                if t.number in values:
                    value = values[t.number]
                elif t.state == TrialState.RUNNING and t.params:
                    value = worst  # in flight, nothing at this budget yet: a constant liar
                else:
                    continue
                frozen.append(
                    create_trial(params=t.params, distributions=t.distributions, value=value)
                )
            view.add_trials(frozen)
            pruned = sum(1 for t in others if t.number in values and t.state == TrialState.PRUNED)
            self.fits.append(Fit(trial.number, budget, len(values), pruned))
        self._view = (trial.number, view)
        return view

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        view = self._view_for(study, trial)
        if view is None:
            return {}
        return self._tpe.infer_relative_search_space(view, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        view = self._view_for(study, trial)
        if view is None or not search_space:
            return {}
        return self._tpe.sample_relative(view, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        view = self._view_for(study, trial)
        if view is None:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        return self._tpe.sample_independent(view, trial, param_name, param_distribution)


def _quiet_study(direction: StudyDirection, sampler: BaseSampler) -> Study:
    # A view a suggestion: Optuna would log "A new study created in memory" each time.
    from tuner._compat.optuna import IN_MEMORY_STORAGE_LOGGER

    logger = logging.getLogger(IN_MEMORY_STORAGE_LOGGER)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return optuna.create_study(direction=direction, sampler=sampler)
    finally:
        logger.setLevel(level)


def _value_at(trial: FrozenTrial, budget: int, max_t: int) -> float | None:
    """What `trial` reported at `budget` steps (its last report at or before it), if
    it got that far; a completed trial counts at the whole budget with its value."""
    if trial.state == TrialState.COMPLETE and budget >= max_t and trial.value is not None:
        return float(trial.value) if math.isfinite(trial.value) else None
    if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return None
    steps = trial.intermediate_values
    if not steps or max(steps) < budget:
        return None
    value = steps[max(s for s in steps if s <= budget)] if min(steps) <= budget else None
    return float(value) if value is not None and math.isfinite(value) else None


def bohb(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """BOHB: TPE fitted at Hyperband's rungs (the spec checks early_stopping is
    asha or hyperband)."""
    from tuner.search._samplers import resumed_seed

    sampler = BOHBSampler(budgets(spec), seed=resumed_seed(spec.search.seed, history))
    return OptunaSearcher(spec, history, sampler, warm=warm)
