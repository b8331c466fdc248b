"""Optuna's private names that tuner touches (see :mod:`tuner._compat`). Imports Optuna.

- the system attribute key Optuna keeps a trial's constraint values under
  (:func:`constraint_attrs`), for trials tuner hands a sampler that it did not sample;
- the WFG hypervolume routine (:func:`compute_hypervolume`);
- the GP internals the kriging believer (:mod:`tuner.search._gp`) reads and overrides:
  ``GPSampler._sample_relative_impl`` and ``_optimize_acqf``, ``_gp.gp.GPRegressor``
  and its fitted state, ``_gp.acqf.LogEI``'s ``_gpr`` and ``_threshold``,
  ``_gp.search_space.SearchSpace``, ``samplers._gp.sampler._get_params`` and
  ``study._constrained_optimization._is_constrained_optimization``;
- the genetic samplers' ``_thread_lock`` (Optuna >= 5.1), left out of their pickles
  (:class:`NSGAIISampler`, :class:`NSGAIIISampler`);
- the logger of Optuna's in-memory storage (:data:`IN_MEMORY_STORAGE_LOGGER`).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import pickle
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import optuna

from tuner._compat import incompatible

__all__ = [
    "GP_IMPL",
    "IN_MEMORY_STORAGE_LOGGER",
    "NSGAIIISampler",
    "NSGAIISampler",
    "SkippingQMCSampler",
    "believing",
    "check_constraints_key",
    "check_genetic_samplers_pickle",
    "check_gp_internals",
    "check_gp_regressor_state",
    "check_hypervolume",
    "check_in_memory_logger",
    "check_qmc_sample_id",
    "compute_hypervolume",
    "constraint_attrs",
    "gp_regressor_missing",
    "is_constrained",
    "log_ei_parts",
    "running_params",
    "set_log_ei",
]

# -- constraints ------------------------------------------------------------------


def _constraints_key() -> str | None:
    try:
        from optuna.study._constrained_optimization import _CONSTRAINTS_KEY
    except ImportError:
        return None
    return _CONSTRAINTS_KEY if isinstance(_CONSTRAINTS_KEY, str) else None


def check_constraints_key() -> str | None:
    """None if a trial made with :func:`constraint_attrs` has those constraints."""
    if _constraints_key() is None:
        return "optuna.study._constrained_optimization._CONSTRAINTS_KEY is missing"
    trial = optuna.trial.create_trial(value=0.0, system_attrs=constraint_attrs([1.5, -2.0]))
    if trial.constraints != {"0": 1.5, "1": -2.0}:
        return f"a trial's constraints under that key read as {trial.constraints}"
    return None


def constraint_attrs(violations: Sequence[float]) -> dict[str, float]:
    """A trial's constraint values as the system attributes ``Trial.set_constraint``
    keeps them under, for ``create_trial(system_attrs=...)``.

    Raises:
        IncompatibleDependency: this Optuna keeps them otherwise (only asked with
            constraint values: a study without constraints needs no key).
    """
    if not violations:
        return {}
    key = _constraints_key()
    if key is None:
        raise incompatible("optuna", "optuna.study._constrained_optimization._CONSTRAINTS_KEY")
    return {f"{key}:{i}": v for i, v in enumerate(violations)}


# -- hypervolume ------------------------------------------------------------------

_HYPERVOLUME_ARGS = ["loss_vals", "reference_point", "assume_pareto"]


def _hypervolume() -> Any:
    try:
        from optuna._hypervolume import compute_hypervolume as routine
    except ImportError:
        return None
    return routine


def check_hypervolume() -> str | None:
    """None if Optuna's hypervolume routine is there, takes what tuner passes and
    measures a known square."""
    import numpy as np

    routine = _hypervolume()
    if routine is None:
        return "optuna._hypervolume.compute_hypervolume is missing"
    args = list(inspect.signature(routine).parameters)
    if args != _HYPERVOLUME_ARGS:
        return f"optuna._hypervolume.compute_hypervolume takes {args}, not {_HYPERVOLUME_ARGS}"
    got = routine(np.array([[1.0, 1.0]]), np.array([3.0, 2.0]), assume_pareto=True)
    if got != 2.0:
        return f"optuna._hypervolume.compute_hypervolume of a 2 x 1 box is {got}"
    return None


def compute_hypervolume(loss_vals: Any, reference_point: Any, *, assume_pareto: bool) -> float:
    """The hypervolume of ``loss_vals`` (every objective minimised) up to the reference
    point (Optuna's WFG routine).

    Raises:
        IncompatibleDependency: this Optuna has no such routine.
    """
    routine = _hypervolume()
    if routine is None:
        raise incompatible("optuna", "optuna._hypervolume.compute_hypervolume")
    return float(routine(loss_vals, reference_point, assume_pareto=assume_pareto))


# -- the GP internals of the kriging believer -------------------------------------

GP_IMPL = "_sample_relative_impl"
"""The GPSampler method the believer overrides, with these arguments."""
_GP_IMPL_ARGS = ["self", "study", "completed_trials", "running_trials", "search_space"]
GP_OPTIMIZE = "_optimize_acqf"
"""The GPSampler method the believer overrides to condition the acquisition function."""
# What believing() reads of a fitted GPRegressor besides its constructor's arguments.
REGRESSOR_STATE = (
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


def check_gp_internals() -> str | None:
    """None if this Optuna has the GP internals the believer uses, else what is missing
    (what the classes and modules say; :func:`gp_regressor_missing` checks a fitted GP)."""
    try:
        from optuna._gp import acqf, gp, search_space
        from optuna.samplers._gp import sampler
        from optuna.study import _constrained_optimization
    except ImportError as e:  # pragma: no cover - depends on the installed Optuna
        return f"optuna._gp is not importable ({e})"
    impl = getattr(optuna.samplers.GPSampler, GP_IMPL, None)
    if impl is None or list(inspect.signature(impl).parameters) != _GP_IMPL_ARGS:
        return f"GPSampler.{GP_IMPL} is missing or has another signature"
    if not callable(getattr(optuna.samplers.GPSampler, GP_OPTIMIZE, None)):
        return f"GPSampler.{GP_OPTIMIZE} is missing"
    regressor_args = list(inspect.signature(gp.GPRegressor).parameters)
    if regressor_args != _REGRESSOR_ARGS:
        return f"GPRegressor takes {regressor_args}, not {_REGRESSOR_ARGS}"
    if not callable(getattr(gp.GPRegressor, "_cache_matrix", None)):
        return "GPRegressor._cache_matrix is missing"
    if not callable(getattr(search_space.SearchSpace, "get_normalized_params", None)):
        return "SearchSpace.get_normalized_params is missing"
    if not callable(getattr(sampler, "_get_params", None)) or not hasattr(acqf, "LogEI"):
        return "optuna.samplers._gp.sampler._get_params or acqf.LogEI is missing"
    if not callable(getattr(_constrained_optimization, "_is_constrained_optimization", None)):
        return "optuna.study._constrained_optimization._is_constrained_optimization is missing"
    return None


def check_gp_regressor_state() -> str | None:
    """None if a GPRegressor has the state :func:`believing` reads and a LogEI the
    ``_gpr`` and ``_threshold`` the believer replaces (needs torch: None without it,
    as gp itself is then refused with a SpecError naming ``tuner[gp]``)."""
    if importlib.util.find_spec("torch") is None:
        return None
    if (missing := check_gp_internals()) is not None:
        return missing
    import torch
    from optuna._gp.acqf import LogEI
    from optuna._gp.gp import GPRegressor
    from optuna._gp.search_space import SearchSpace

    gpr = GPRegressor(
        is_categorical=torch.tensor([False]),
        X_train=torch.tensor([[0.2], [0.8]], dtype=torch.float64),
        y_train=torch.tensor([0.0, 1.0], dtype=torch.float64),
        inverse_squared_lengthscales=torch.tensor([1.0], dtype=torch.float64),
        kernel_scale=torch.tensor(1.0, dtype=torch.float64),
        noise_var=torch.tensor(0.01, dtype=torch.float64),
    )
    gpr._cache_matrix()
    if missing_state := gp_regressor_missing(gpr):
        return f"a GPRegressor has no {', '.join(missing_state)}"
    space = SearchSpace({"x": optuna.distributions.FloatDistribution(0.0, 1.0)})
    parts = log_ei_parts(LogEI(gpr, space, 0.5))
    if isinstance(parts, str):
        return parts
    X = torch.tensor([[0.5]], dtype=torch.float64)
    with torch.no_grad():
        mean, _ = gpr.posterior(X)
        mean, _ = believing(gpr, X, mean).posterior(X)
    if mean.shape != (1,):
        return f"a believing GPRegressor's posterior mean has shape {tuple(mean.shape)}"
    return None


def is_constrained(trials: Sequence[Any]) -> bool:
    """Whether Optuna's GPSampler treats these trials as a constrained study."""
    from optuna.study._constrained_optimization import _is_constrained_optimization

    return bool(_is_constrained_optimization(trials))


def running_params(search_space: dict[str, Any], trials: list[Any]) -> Any:
    """The running trials' params, normalised as the GP sees them (an n x d array)."""
    from optuna._gp.search_space import SearchSpace
    from optuna.samplers._gp.sampler import _get_params

    params = [_get_params(t) for t in trials]
    return SearchSpace(search_space).get_normalized_params(trials, params)


def log_ei_parts(acqf: Any) -> tuple[Any, float] | str:
    """A LogEI acquisition function's fitted GP and incumbent, or why it has none."""
    from optuna._gp.acqf import LogEI

    gpr = getattr(acqf, "_gpr", None)
    if not isinstance(acqf, LogEI) or gpr is None or not hasattr(acqf, "_threshold"):
        return f"{type(acqf).__name__} is not LogEI with _gpr and _threshold"
    return gpr, float(acqf._threshold)


def set_log_ei(acqf: Any, gpr: Any, threshold: float) -> None:
    """Give a LogEI acquisition function another GP and incumbent."""
    acqf._gpr = gpr
    acqf._threshold = threshold


def gp_regressor_missing(gpr: Any) -> list[str]:
    """The attributes :func:`believing` reads that a fitted GPRegressor lacks."""
    return [a for a in REGRESSOR_STATE if not hasattr(gpr, a)]


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


# -- the genetic samplers' lock ---------------------------------------------------

_LOCK = "_thread_lock"


class _FreshLock:
    """Pickles a genetic sampler without its ``_thread_lock`` and gives the copy a new one.

    The lock (Optuna >= 5.1) guards the sampler's generation cache against threads of one
    process; a copy in another process has no such threads to share it with.
    """

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop(_LOCK, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        setattr(self, _LOCK, threading.Lock())


class NSGAIISampler(_FreshLock, optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II sampler, picklable (Ray Tune pickles the searcher)."""


class NSGAIIISampler(_FreshLock, optuna.samplers.NSGAIIISampler):
    """Optuna's NSGA-III sampler, picklable (Ray Tune pickles the searcher)."""


def check_genetic_samplers_pickle() -> str | None:
    """None if the genetic samplers pickle, and a copy samples: their only lock is the
    one :class:`_FreshLock` leaves out (or they have none)."""
    for cls in (NSGAIISampler, NSGAIIISampler):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = cls(seed=0)
        try:
            copy = pickle.loads(pickle.dumps(sampler))
        except (TypeError, pickle.PicklingError) as e:
            return f"{cls.__name__} does not pickle ({e})"
        logger = logging.getLogger(IN_MEMORY_STORAGE_LOGGER)  # "A new study created"
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            study = optuna.create_study(sampler=copy, directions=["minimize", "minimize"])
        finally:
            logger.setLevel(level)
        study.ask().suggest_float("x", 0.0, 1.0)
    return None


# -- logging ------------------------------------------------------------------------

IN_MEMORY_STORAGE_LOGGER = "optuna.storages._in_memory"
"""The logger that says "A new study created in memory" (bohb quietens it)."""


def check_in_memory_logger() -> str | None:
    """None if Optuna's in-memory storage is the module that logger is named after."""
    if importlib.util.find_spec(IN_MEMORY_STORAGE_LOGGER) is None:
        return f"{IN_MEMORY_STORAGE_LOGGER} is missing"
    return None


# -- QMC: where a resumed sequence goes on ------------------------------------------


class SkippingQMCSampler(optuna.samplers.QMCSampler):
    """Optuna's QMCSampler that skips the first `skip` points of its sequence.

    Optuna counts the points a study used in the study's own attributes, which a
    resumed searcher's new in-memory study does not have: it would start the sequence
    over and replay the first run's points. Each trial of history used at most one
    point (the very first trial is random), so skipping ``len(history)`` points never
    replays one. The count is the private ``QMCSampler._find_sample_id``
    (:func:`check_qmc_sample_id`).
    """

    skip = 0

    def _find_sample_id(self, study: optuna.Study, search_space: dict[str, Any]) -> int:
        return int(super()._find_sample_id(study, search_space)) + self.skip


def check_qmc_sample_id() -> str | None:
    """None if QMCSampler counts its sequence in ``_find_sample_id(study, space)``."""
    method = getattr(optuna.samplers.QMCSampler, "_find_sample_id", None)
    if not callable(method):
        return "optuna.samplers.QMCSampler._find_sample_id is missing"
    if list(inspect.signature(method).parameters)[1:] != ["study", "search_space"]:
        return "optuna.samplers.QMCSampler._find_sample_id takes other arguments"
    return None
