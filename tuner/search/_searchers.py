"""Ray Tune searchers backed by Optuna samplers, and an exhaustive grid searcher.

Why not Ray's own ``OptunaSearch``: it hides trials in flight from samplers that do not
look at running trials. Optuna's GPSampler fits its Gaussian process on completed
trials only, so with four trials in flight it proposes four near-identical points
(measured: regret 0.20-0.25 on Hartmann6 in 60 trials, against 0.00-0.01 run one at a
time). Here every sampler sees the trials in flight:

- TPE runs with Optuna's ``constant_liar=True``, which scores running trials as if they
  were the worst so far.
- GP gets the same lie made explicit: each suggestion is asked of a scratch study holding
  the finished trials plus every running trial as finished with the worst value so far
  ("constant liar", Ginsbourger et al. 2010), so the acquisition moves away from points
  already being evaluated.
- CMA-ES, QMC and random do not depend on pending results.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial
from ray.tune.search import Searcher

from tuner.search._space import grid_points, sample
from tuner.spec import StudySpec

optuna.logging.set_verbosity(optuna.logging.WARNING)
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


def make_sampler(algorithm: str, seed: int | None) -> optuna.samplers.BaseSampler:
    """The Optuna sampler behind an algorithm name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if algorithm == "tpe":
            return optuna.samplers.TPESampler(
                seed=seed, multivariate=True, group=True, constant_liar=True
            )
        if algorithm == "gp":
            return optuna.samplers.GPSampler(seed=seed, warn_independent_sampling=False)
        if algorithm == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        if algorithm == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        if algorithm == "random":
            return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"no Optuna sampler for algorithm {algorithm!r}")


@dataclass
class _Live:
    trial: optuna.Trial | None  # None for the GP path, which keeps params itself
    params: dict[str, Any]
    distributions: dict[str, BaseDistribution]
    last_step: int = 0
    last_value: float | None = None


class OptunaSearcher(Searcher):
    """A Ray Tune searcher that asks an Optuna sampler for each trial's config.

    Args:
        spec: the study spec (search space, metric, mode, algorithm, seed).
        history: trials finished in an earlier run of the same study (resume); they are
            given to the sampler before the first suggestion.
    """

    def __init__(self, spec: StudySpec, history: Sequence[PastTrial] = ()) -> None:
        super().__init__(metric=spec.metric, mode=spec.mode)
        self._spec = spec
        self._direction = "minimize" if spec.mode == "min" else "maximize"
        self._sampler = make_sampler(spec.search.algorithm, spec.search.seed)
        self._liar = spec.search.algorithm == "gp"
        self._live: dict[str, _Live] = {}
        self._pruned: set[str] = set()
        self._finished: list[FrozenTrial] = [_frozen(spec, t) for t in history]
        self._finished = [t for t in self._finished if t is not None]
        if not self._liar:
            self._study = optuna.create_study(direction=self._direction, sampler=self._sampler)
            self._study.add_trials(self._finished)

    def note_pruned(self, trial_id: str) -> None:
        """Called by tuner's recorder when a scheduler stopped the trial early."""
        self._pruned.add(trial_id)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self._liar:
            scratch = optuna.create_study(direction=self._direction, sampler=self._sampler)
            scratch.add_trials(self._finished + self._lies())
            trial = scratch.ask()
            params = sample(trial, self._spec)
            self._live[trial_id] = _Live(None, params, dict(trial.distributions))
        else:
            trial = self._study.ask()
            params = sample(trial, self._spec)
            self._live[trial_id] = _Live(trial, params, dict(trial.distributions))
        return params

    def _lies(self) -> list[FrozenTrial]:
        values = [t.value for t in self._finished if t.state == TrialState.COMPLETE]
        if not values or not self._live:
            return []
        worst = max(values) if self._direction == "minimize" else min(values)
        return [
            create_trial(params=live.params, distributions=live.distributions, value=worst)
            for live in self._live.values()
        ]

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        live = self._live.get(trial_id)
        value = result.get(self.metric)
        if live is None or not _finite(value):
            return
        step = int(result.get("training_iteration", live.last_step + 1))
        if step <= live.last_step:
            return  # Ray repeats a trial's last result when its function returns
        live.last_step, live.last_value = step, float(value)
        if live.trial is not None:
            live.trial.report(live.last_value, step)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        live = self._live.pop(trial_id, None)
        if live is None:
            return
        pruned = trial_id in self._pruned
        self._pruned.discard(trial_id)
        value = (result or {}).get(self.metric, live.last_value)
        if error or not _finite(value):
            state, value = TrialState.FAIL, None
        elif pruned and not self._liar:
            # TPE ranks pruned trials by their last intermediate value.
            state = TrialState.PRUNED
        else:
            # GP learns from completed trials only; a pruned trial's last value still
            # marks its region as poor, which is what the scheduler decided.
            state = TrialState.COMPLETE
        if live.trial is not None:
            self._study.tell(live.trial, value if state == TrialState.COMPLETE else None, state=state)
        else:
            frozen = create_trial(
                params=live.params,
                distributions=live.distributions,
                value=value if state == TrialState.COMPLETE else None,
                state=state,
            )
            self._finished.append(frozen)


class GridSearcher(Searcher):
    """Every combination of the grid, each exactly once, in a fixed order.

    Args:
        spec: the study spec.
        history: trials finished before a resume; their configs are not run again.
    """

    def __init__(self, spec: StudySpec, history: Sequence[PastTrial] = ()) -> None:
        super().__init__(metric=spec.metric, mode=spec.mode)
        done = [_key(t.params) for t in history]
        self._points = [p for p in grid_points(spec) if _key(p) not in done]
        self._next = 0

    @property
    def remaining(self) -> int:
        return len(self._points) - self._next

    def note_pruned(self, trial_id: str) -> None:
        """Grid search ignores outcomes."""

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._next >= len(self._points):
            return Searcher.FINISHED
        point = self._points[self._next]
        self._next += 1
        return dict(point)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        return None


def _key(params: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(params.items()))


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _frozen(spec: StudySpec, past: PastTrial) -> FrozenTrial | None:
    """An earlier trial as Optuna sees it, or None if its params no longer fit the space."""
    from tuner.search._space import distribution

    try:
        dists = {name: distribution(spec.search_space[name]) for name in past.params}
        if past.state == "completed" and _finite(past.value):
            return create_trial(params=past.params, distributions=dists, value=past.value)
        if past.state == "pruned" and _finite(past.value):
            return create_trial(
                params=past.params,
                distributions=dists,
                state=TrialState.PRUNED,
                intermediate_values={max(past.steps, 1): float(past.value)},  # type: ignore[arg-type]
            )
        if past.state == "failed":
            return create_trial(params=past.params, distributions=dists, state=TrialState.FAIL)
    except (KeyError, ValueError):
        log.warning("trial with params %s does not fit the search space; skipped", past.params)
    return None
