"""The Optuna-backed algorithms: each a function ``(spec, history) -> OptunaSearcher``.

Registered by name in :mod:`tuner.search._registry`. Samplers that would warn about
falling back to independent sampling for conditional spaces are told not to: tuner's
conditional spaces are deliberate.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna

from tuner.search._searchers import OptunaSearcher, PastTrial
from tuner.spec import StudySpec

__all__ = ["cmaes", "gp", "qmc", "random", "tpe"]


def _sampler(cls: Callable[..., optuna.samplers.BaseSampler], **kwargs: Any) -> Any:
    # Some of these samplers are experimental in Optuna and say so on every build.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(**kwargs)


def tpe(spec: StudySpec, history: Sequence[PastTrial] = ()) -> OptunaSearcher:
    """TPE with constant liar, so parallel suggestions spread out."""
    sampler = _sampler(
        optuna.samplers.TPESampler,
        seed=spec.search.seed,
        multivariate=True,
        group=True,
        constant_liar=True,
    )
    return OptunaSearcher(spec, history, sampler)


def gp(spec: StudySpec, history: Sequence[PastTrial] = ()) -> OptunaSearcher:
    """GP with a kriging believer for trials in flight (needs torch: tuner[gp])."""
    from tuner.search._gp import BelieverGPSampler

    sampler = _sampler(BelieverGPSampler, seed=spec.search.seed, warn_independent_sampling=False)
    # GP learns from completed trials only: give it pruned trials as completed.
    return OptunaSearcher(spec, history, sampler, pruned_as_complete=True)


def cmaes(spec: StudySpec, history: Sequence[PastTrial] = ()) -> OptunaSearcher:
    """CMA-ES."""
    sampler = _sampler(
        optuna.samplers.CmaEsSampler, seed=spec.search.seed, warn_independent_sampling=False
    )
    return OptunaSearcher(spec, history, sampler)


def qmc(spec: StudySpec, history: Sequence[PastTrial] = ()) -> OptunaSearcher:
    """Quasi-Monte Carlo points."""
    sampler = _sampler(
        optuna.samplers.QMCSampler, seed=spec.search.seed, warn_independent_sampling=False
    )
    return OptunaSearcher(spec, history, sampler)


def random(spec: StudySpec, history: Sequence[PastTrial] = ()) -> OptunaSearcher:
    """Independent random sampling."""
    return OptunaSearcher(
        spec, history, _sampler(optuna.samplers.RandomSampler, seed=spec.search.seed)
    )
