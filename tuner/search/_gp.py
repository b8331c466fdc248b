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

This reaches into Optuna's private GP modules, through :mod:`tuner._compat.optuna`
(every private name goes through there). ``check_gp_internals`` there says whether the
pieces used are there; if they are not, the sampler behaves as plain ``GPSampler`` and
logs one warning.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import optuna

from tuner._compat import optuna as compat

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.study import Study
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)


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
        self._unavailable = compat.check_gp_internals()
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
            or self._fallback()  # before is_constrained, which reads an Optuna internal
            or compat.is_constrained(completed_trials)
        ):
            return super()._sample_relative_impl(
                study, completed_trials, running_trials, search_space
            )

        self._believe = compat.running_params(search_space, running_trials)
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

        parts = compat.log_ei_parts(acqf)
        if isinstance(parts, str):
            # This suggestion is made from finished trials only; later ones fall back.
            self._unavailable = parts
            self._fallback()
            return
        gpr, threshold = parts
        if missing := compat.gp_regressor_missing(gpr):
            # Instance attributes that believing() reads; the class check cannot see them.
            self._unavailable = f"the fitted GPRegressor has no {', '.join(missing)}"
            self._fallback()
            return
        X_running = torch.from_numpy(X)
        with torch.no_grad():
            mean, _ = gpr.posterior(X_running)
            # Condition the fitted GP on its own mean at the pending points (kernel unchanged).
            believer = compat.believing(gpr, X_running, mean)
        if self._raise_threshold:
            # Values are standardized and maximized here; the believed ones are data too.
            threshold = max(threshold, float(mean.max()))
        compat.set_log_ei(acqf, believer, threshold)
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
