"""The Optuna-backed algorithms: each a function ``(spec, history, warm) -> OptunaSearcher``.

Registered by name in :mod:`tuner.search._registry`. Samplers that would warn about
falling back to independent sampling for conditional spaces are told not to: tuner's
conditional spaces are deliberate.

Several objectives: nsga2, nsga3, tpe and gp are Optuna's multi-objective samplers
(random and qmc do not depend on the values). Constraints reach nsga2, nsga3, tpe and
gp as each trial's Optuna constraint values; random, qmc and cmaes ignore them (the storage
still marks infeasible trials, and only feasible ones are best).

A warm start's trials are added to the sampler's study after the study's own history,
except for cmaes, which learns nothing from trials it did not sample: they set its
starting distribution through Optuna's ``source_trials`` (WS-CMA-ES,
:mod:`tuner.search._cmaes`).

Ray Tune pickles the searcher, sampler included, when a study starts and at every
experiment checkpoint. Optuna 5.1's genetic samplers (NSGA-II, NSGA-III) hold a
``threading.Lock``, which does not pickle; tuner uses subclasses that leave it out of
their pickled state and make a new one when unpickled (a private attribute, so they
live in :mod:`tuner._compat.optuna`, with their check).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna

from tuner.search._searchers import OptunaSearcher, PastTrial
from tuner.spec import StudySpec

__all__ = ["cmaes", "gp", "nsga2", "nsga3", "qmc", "random", "tpe"]


def resumed_seed(seed: int | None, history: Sequence[PastTrial]) -> int | None:
    """The seed of a sampler that goes on after `history` (the study's own trials).

    A resumed sampler seeded as the first run's would replay the first run's start-up
    suggestions (TPE's and GP's random start, random search itself): trials 9, 10, 11
    of a resumed study repeated trials 1, 0, 2. Each resume instead gets a seed derived
    from the spec's seed and the number of trials already run, so it is as reproducible
    as the first run (the same history gives the same suggestions) and never replays
    it. The first run (no history) keeps the spec's seed; no seed stays no seed.
    """
    if seed is None or not history:
        return seed
    import numpy as np

    return int(np.random.SeedSequence([seed, len(history)]).generate_state(1)[0])


def _sampler(cls: Callable[..., optuna.samplers.BaseSampler], **kwargs: Any) -> Any:
    # Some of these samplers are experimental in Optuna and say so on every build.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return cls(**kwargs)


def tpe(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """TPE with constant liar, so parallel suggestions spread out."""
    sampler = _sampler(
        optuna.samplers.TPESampler,
        seed=resumed_seed(spec.search.seed, history),
        multivariate=True,
        group=True,
        constant_liar=True,
    )
    return OptunaSearcher(spec, history, sampler, warm=warm)


def gp(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """GP with a kriging believer for trials in flight (needs torch: tuner[gp]); with
    several objectives, Optuna's GPSampler (LogEHVI, which accounts for running trials)."""
    from tuner.search._gp import BelieverGPSampler

    cls = optuna.samplers.GPSampler if spec.is_multi_objective else BelieverGPSampler
    seed = resumed_seed(spec.search.seed, history)
    sampler = _sampler(cls, seed=seed, warn_independent_sampling=False)
    # GP learns from completed trials only: give it pruned trials as completed. Its
    # search space is the parameters every trial has, so a warm-start trial without one
    # would take that parameter out of the model for good: such trials are left out.
    return OptunaSearcher(
        spec, history, sampler, pruned_as_complete=True, full_params_only=True, warm=warm
    )


def cmaes(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """CMA-ES; a warm start's trials and, on a resume, the study's own earlier ones set
    its starting distribution (WS-CMA-ES); the own ones are told as its study's trials
    too."""
    from tuner.search._cmaes import WarmCmaEsSampler, searched, source_trials

    source = source_trials(spec, warm, history) if warm or history else []
    seed = resumed_seed(spec.search.seed, history)
    options: dict[str, Any] = {"seed": seed, "warn_independent_sampling": False}
    if source:
        options.update(space=searched(spec), source_trials=source)
    sampler = _sampler(WarmCmaEsSampler if source else optuna.samplers.CmaEsSampler, **options)
    return OptunaSearcher(spec, history, sampler)


def qmc(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """Quasi-Monte Carlo points; a resume goes on along the sequence after the points
    its history used (:class:`tuner._compat.optuna.SkippingQMCSampler`)."""
    from tuner._compat.optuna import SkippingQMCSampler

    sampler = _sampler(
        SkippingQMCSampler,
        seed=resumed_seed(spec.search.seed, history),
        warn_independent_sampling=False,
    )
    sampler.skip = len(history)
    return OptunaSearcher(spec, history, sampler, warm=warm)


def random(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """Independent random sampling."""
    sampler = _sampler(optuna.samplers.RandomSampler, seed=resumed_seed(spec.search.seed, history))
    return OptunaSearcher(spec, history, sampler, warm=warm)


def nsga2(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """NSGA-II (Optuna's defaults: generations of 50 trials)."""
    from tuner._compat.optuna import NSGAIISampler

    sampler = _sampler(NSGAIISampler, seed=resumed_seed(spec.search.seed, history))
    return OptunaSearcher(spec, history, sampler, warm=warm)


def nsga3(
    spec: StudySpec, history: Sequence[PastTrial] = (), warm: Sequence[PastTrial] = ()
) -> OptunaSearcher:
    """NSGA-III, for three or more objectives (Optuna's defaults)."""
    from tuner._compat.optuna import NSGAIIISampler

    sampler = _sampler(NSGAIIISampler, seed=resumed_seed(spec.search.seed, history))
    return OptunaSearcher(spec, history, sampler, warm=warm)
