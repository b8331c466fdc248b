"""GP search that accounts for trials in flight with a kriging believer.

``BelieverGPSampler`` is Optuna's ``GPSampler`` with one change, made only when trials
are running (Ginsbourger et al., "Kriging is well-suited to parallelize optimization",
2010): the GP is fitted, kernel hyperparameters included, on finished trials only; it
is then conditioned on each running trial's params with the GP's own posterior mean
there as a fake observation, *without* refitting the kernel. The posterior mean does
not move, the posterior variance collapses near every pending point, and, as a believed
value counts as an observation, the incumbent of log expected improvement is the best
of the finished and believed values. EI then moves away from the pending points and
from the basin they already exploit. With nothing running it is exactly ``GPSampler``.

Optuna 5's own ``GPSampler`` handles running trials with qLogEI (fantasies drawn at
the pending points); on Hartmann6 with 4 in flight it did no better than ignoring them
(bench/RESULTS.md). The conditioned GP is a new ``GPRegressor`` over the finished and
the pending points, with the fitted kernel's parameters: the same posterior as Optuna
5.0's ``GPRegressor.append_running_data`` (gone in 5.1), built only from the
constructor and ``_cache_matrix`` that every Optuna 5 release has. The fitted GP itself
is left as it was, so Optuna's cache of kernel parameters for the next fit is unchanged.

This reaches into Optuna's private GP modules. ``check_internals`` says whether the
pieces used are there; if they are not, the sampler behaves as plain ``GPSampler`` and
logs one warning.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna
from optuna.study._constrained_optimization import _is_constrained_optimization

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)

_IMPL = "_sample_relative_impl"
_IMPL_ARGS = ["self", "study", "completed_trials", "running_trials", "search_space"]
# What believing() reads of a fitted GPRegressor besides its constructor's arguments.
_REGRESSOR_STATE = (
    "_is_categorical",
    "_X_train",
    "_y_train",
    "inverse_squared_lengthscales",
    "kernel_scale",
    "noise_var",
)
_REGRESSOR_ARGS = [
    "is_categorical",
    "X_train",
    "y_train",
    "inverse_squared_lengthscales",
    "kernel_scale",
    "noise_var",
]


def check_internals() -> str | None:
    """None if this Optuna has the GP internals the believer uses, else what is missing."""
    try:
        from optuna._gp import acqf, gp, search_space
        from optuna.samplers._gp import sampler
    except ImportError as e:  # pragma: no cover - depends on the installed Optuna
        return f"optuna._gp is not importable ({e})"
    impl = getattr(optuna.samplers.GPSampler, _IMPL, None)
    if impl is None or list(inspect.signature(impl).parameters) != _IMPL_ARGS:
        return f"GPSampler.{_IMPL} is missing or has another signature"
    if not callable(getattr(optuna.samplers.GPSampler, "_optimize_acqf", None)):
        return "GPSampler._optimize_acqf is missing"
    regressor_args = list(inspect.signature(gp.GPRegressor).parameters)
    if regressor_args != _REGRESSOR_ARGS:
        return f"GPRegressor takes {regressor_args}, not {_REGRESSOR_ARGS}"
    if not callable(getattr(gp.GPRegressor, "_cache_matrix", None)):
        return "GPRegressor._cache_matrix is missing"
    if not callable(getattr(search_space.SearchSpace, "get_normalized_params", None)):
        return "SearchSpace.get_normalized_params is missing"
    if not callable(getattr(sampler, "_get_params", None)) or not hasattr(acqf, "LogEI"):
        return "optuna.samplers._gp.sampler._get_params or acqf.LogEI is missing"
    return None


class BelieverGPSampler(optuna.samplers.GPSampler):
    """``optuna.samplers.GPSampler`` with a kriging believer for running trials.

    Takes the same arguments as ``GPSampler``, and ``raise_threshold``: whether the
    incumbent of EI includes the believed values (the default, the textbook believer);
    False keeps the best finished value (measured worse, kept for the benchmark). Running trials are those of the study in
    state RUNNING whose params cover the GP's search space (the trial being sampled has
    none yet, so it is never one of them). Multi-objective or constrained studies keep
    Optuna's own handling of running trials.
    """

    def __init__(self, *, raise_threshold: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._raise_threshold = raise_threshold
        self._unavailable = check_internals()
        self._warned = False
        # Normalized params of the running trials, set for the duration of one
        # _sample_relative_impl call and consumed by _optimize_acqf.
        self._believe: np.ndarray | None = None
        self.n_believed = 0  # running trials conditioned on in the last suggestion

    def _sample_relative_impl(
        self,
        study: Study,
        completed_trials: list[FrozenTrial],
        running_trials: list[FrozenTrial],
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        self.n_believed = 0
        if (
            not running_trials
            or len(study.directions) != 1
            or _is_constrained_optimization(completed_trials)
            or self._fallback()
        ):
            return super()._sample_relative_impl(
                study, completed_trials, running_trials, search_space
            )

        from optuna._gp.search_space import SearchSpace
        from optuna.samplers._gp.sampler import _get_params

        params = [_get_params(t) for t in running_trials]
        self._believe = SearchSpace(search_space).get_normalized_params(running_trials, params)
        try:
            # No running trials: the GP is fitted on finished trials and the acquisition
            # is plain LogEI; _optimize_acqf conditions it on the pending points.
            return super()._sample_relative_impl(study, completed_trials, [], search_space)
        finally:
            self._believe = None

    def _optimize_acqf(self, acqf: Any, best_params: np.ndarray | None) -> np.ndarray:
        if self._believe is not None:
            self._condition(acqf, self._believe)
        return super()._optimize_acqf(acqf, best_params)

    def _condition(self, acqf: Any, X: np.ndarray) -> None:
        import torch
        from optuna._gp.acqf import LogEI

        gpr = getattr(acqf, "_gpr", None)
        if not isinstance(acqf, LogEI) or gpr is None or not hasattr(acqf, "_threshold"):
            # This suggestion is made from finished trials only; later ones fall back.
            self._unavailable = f"{type(acqf).__name__} is not LogEI with _gpr and _threshold"
            self._fallback()
            return
        if missing := [a for a in _REGRESSOR_STATE if not hasattr(gpr, a)]:
            # Instance attributes that believing() reads; check_internals cannot see them.
            self._unavailable = f"the fitted GPRegressor has no {', '.join(missing)}"
            self._fallback()
            return
        X_running = torch.from_numpy(X)
        with torch.no_grad():
            mean, _ = gpr.posterior(X_running)
            # Condition the fitted GP on its own mean at the pending points (kernel unchanged).
            acqf._gpr = believing(gpr, X_running, mean)
        if self._raise_threshold:
            # Values are standardized and maximized here; the believed ones are data too.
            acqf._threshold = max(float(acqf._threshold), float(mean.max()))
        self.n_believed = len(X)
        log.debug("GP: believing %d trials in flight", len(X))

    def _fallback(self) -> bool:
        if self._unavailable is None:
            return False
        if not self._warned:
            log.warning(
                "GP: this Optuna's GP internals differ (%s); trials in flight are handled "
                "by plain GPSampler",
                self._unavailable,
            )
            self._warned = True
        return True


def believing(gpr: Any, X_running: Any, y_running: Any) -> Any:
    """A copy of a fitted ``GPRegressor`` that also has ``y_running`` observed at
    ``X_running``: the same kernel parameters, not refitted, its matrices cached."""
    import torch
    from optuna._gp.gp import GPRegressor

    believer = GPRegressor(
        is_categorical=gpr._is_categorical,
        X_train=torch.cat([gpr._X_train, X_running], dim=0),
        y_train=torch.cat([gpr._y_train.reshape(-1), y_running.reshape(-1)], dim=0),
        inverse_squared_lengthscales=gpr.inverse_squared_lengthscales,
        kernel_scale=gpr.kernel_scale,
        noise_var=gpr.noise_var,
    )
    believer._cache_matrix()
    return believer
