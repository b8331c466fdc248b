"""CMA-ES warm-started from earlier trials (WS-CMA-ES): another study's, or on a resume
its own study's.

Optuna's ``CmaEsSampler`` learns only from trials it sampled itself in this process (it
keeps its state in their system attributes), so trials added to its study, a resume's
own history or a warm start's, do not move its search distribution: a resumed study
would start again from the centre of the space. Both reach it through
``source_trials`` instead (Nomura et al., "Warm Starting CMA-ES for Hyperparameter
Optimization", AAAI 2021): the mean and covariance of the best tenth of the source
trials become CMA-ES's starting distribution. Optuna 5.0 applies these restrictions,
which :func:`source_trials` and :class:`WarmCmaEsSampler` meet:

- a source trial is used only if its parameters are exactly the ones CMA-ES searches
  (``_is_compatible_search_space``), and a set that no source trial matches is an error
  at the next suggestion ("No compatible source_trials"). The source trials are cut to
  the numeric parameters without a ``when`` condition, and the sampler's relative
  search space is fixed to those (:func:`searched`): Optuna's default, the parameters
  every finished trial has, would change with the trials a conditional parameter is
  active in. Categorical and conditional parameters are sampled independently, as
  they are without a warm start once the trials differ;
- only completed source trials (pruned ones only with ``consider_pruned_trials``);
- the best tenth must hold a trial: at least :data:`MIN_SOURCE_TRIALS`, else the study
  starts cold;
- not with ``x0``, ``sigma0`` or ``use_separable_cma`` (tuner sets none of them).

With source trials the sampler needs no random start-up trial: the relative search
space is known before any trial finishes, so the first trial is drawn from the warm
distribution.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import FloatDistribution, IntDistribution
from optuna.trial import TrialState as OptunaState
from optuna.trial import create_trial

from tuner.search._searchers import PastTrial, _frozen, _missing
from tuner.search._space import distribution

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial

    from tuner.spec import StudySpec

__all__ = ["MIN_SOURCE_TRIALS", "WarmCmaEsSampler", "searched", "source_trials"]

log = logging.getLogger(__name__)

# cmaes.get_warm_start_mgd takes the best floor(0.1 * n) source solutions and asserts
# that is at least one.
MIN_SOURCE_TRIALS = 10


class WarmCmaEsSampler(optuna.samplers.CmaEsSampler):
    """``CmaEsSampler`` started from `source_trials`, over a fixed relative search space.

    Args:
        space: the parameters CMA-ES searches (:func:`searched`); every source trial
            has exactly these.
        source_trials: completed trials of an earlier study (:func:`source_trials`).
        **kwargs: passed to ``CmaEsSampler`` (not ``x0``, ``sigma0``,
            ``use_separable_cma`` or ``n_startup_trials``).
    """

    def __init__(
        self,
        space: dict[str, BaseDistribution],
        source_trials: list[FrozenTrial],
        **kwargs: Any,
    ) -> None:
        super().__init__(source_trials=source_trials, n_startup_trials=0, **kwargs)
        self._warm_space = dict(space)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return dict(self._warm_space)


def searched(spec: StudySpec) -> dict[str, BaseDistribution]:
    """The parameters a warm-started CMA-ES searches: numeric, without a ``when``
    condition, with more than one value (sorted by name, as Optuna sorts them)."""
    out: dict[str, BaseDistribution] = {}
    for name, p in spec.search_space.items():
        d = distribution(p)
        if not p.when and isinstance(d, FloatDistribution | IntDistribution) and not d.single():
            out[name] = d
    return dict(sorted(out.items()))


def source_trials(
    spec: StudySpec, warm: Sequence[PastTrial], history: Sequence[PastTrial] = ()
) -> list[FrozenTrial]:
    """The trials WS-CMA-ES starts from, cut to :func:`searched`'s parameters: a warm
    start's, and on a resume the study's own earlier ones (CMA-ES's state lives in the
    trials it sampled in the run that ended, so without them a resumed study would
    start again from the centre of the space); empty when fewer than
    :data:`MIN_SOURCE_TRIALS` are usable.

    A trial is usable if it has every active parameter of the space, each value lies in
    the space, and it completed with a value. One line says how many were left out and
    why (and when the study starts cold): a warning where warm-start trials were given,
    else (a resume) an info line.
    """
    if not history:
        what = "warm-start trials"
    elif warm:
        what = "earlier trials (this study's and its warm start's)"
    else:
        what = "earlier trials of this study"
    notify = log.warning if warm else log.info
    earlier = [*history, *warm]
    space = searched(spec)
    if not space:
        notify(
            "cmaes: no numeric parameter without a `when` condition to warm-start; "
            "the %d %s are not used",
            len(earlier),
            what,
        )
        return []
    kept: list[FrozenTrial] = []
    lacking: list[str] = []  # the first missing parameter of each trial without one
    misfits: list[dict[str, Any]] = []
    unfinished = 0
    for past in earlier:
        gaps = _missing(spec, past.params)
        if gaps:
            lacking.append(gaps[0])
            continue
        before = len(misfits)
        frozen = _frozen(spec, past, False, misfits)
        if len(misfits) > before:
            continue
        if frozen is None or frozen.state != OptunaState.COMPLETE:
            unfinished += 1
            continue
        kept.append(
            create_trial(
                params={name: frozen.params[name] for name in space},
                distributions=space,
                value=frozen.value,
            )
        )
    why = []
    if lacking:
        why.append(
            f"{len(lacking)} lack parameter {lacking[0]} (warm_start.fixed can give the "
            "value they ran with)"
        )
    if misfits:
        why.append(f"{len(misfits)} have a value outside this search space (e.g. {misfits[0]})")
    if unfinished:
        why.append(f"{unfinished} did not complete with a value")
    left_out = f"; left out: {', '.join(why)}" if why else ""
    if len(kept) < MIN_SOURCE_TRIALS:
        notify(
            "cmaes: %d of %d %s usable, fewer than the %d that WS-CMA-ES needs (it starts "
            "from their best tenth); this study starts cold%s",
            len(kept),
            len(earlier),
            what,
            MIN_SOURCE_TRIALS,
            left_out,
        )
        return []
    (notify if why else log.info)(
        "cmaes: %d of %d %s set its starting distribution%s",
        len(kept),
        len(earlier),
        what,
        left_out,
    )
    return kept
