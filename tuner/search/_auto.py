"""``search.algorithm: auto``: a registered algorithm picked from the space and the budget.

The rule (also in the spec's reference, docs/spec.md; the numbers behind it are in
bench/RESULTS.md, "Quality"):

1. ``early_stopping`` is asha or hyperband -> **bohb** (TPE fitted at the largest rung
   with enough results, so trials stopped early inform the search);
2. a conditional parameter (``when``) or a categorical one -> **tpe** (Optuna's GP and
   CMA-ES treat categories and inactive parameters poorly; TPE models them directly);
3. more trials in flight than a model can use (``max_concurrent`` above a quarter of
   ``num_trials``: most trials start before a model has seen a quarter of the results)
   -> **qmc** (a low-discrepancy design, no feedback needed);
4. a numeric space (float and int ranges only) with at most 200 trials, and torch
   installed -> **gp** (the most sample-efficient at small budgets; its cost per
   suggestion grows with the cube of the trials);
5. otherwise -> **tpe**.

This module imports nothing heavy: the spec and ``tuner show`` read it.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tuner.search._base import TunerSearcher
    from tuner.spec import StudySpec

__all__ = ["GP_MAX_TRIALS", "auto", "describe", "pick"]

GP_MAX_TRIALS = 200
# qmc once max_concurrent * IN_FLIGHT_SHARE > num_trials
IN_FLIGHT_SHARE = 4


def pick(spec: StudySpec) -> tuple[str, str]:
    """The algorithm ``auto`` runs for `spec`, and why (one short phrase).

    Works on any spec: with ``algorithm`` other than auto it still says what auto
    would pick.
    """
    from tuner.spec import CategoricalParam

    params = spec.search_space.values()
    search = spec.search
    if spec.early_stopping.scheduler in ("asha", "hyperband"):
        return "bohb", f"{spec.early_stopping.scheduler} early stopping"
    if any(p.when for p in params):
        return "tpe", "conditional space"
    if any(isinstance(p, CategoricalParam) or p.values is not None for p in params):
        return "tpe", "categorical parameters"
    if search.max_concurrent * IN_FLIGHT_SHARE > search.num_trials:
        return "qmc", (
            f"{search.max_concurrent} in flight of {search.num_trials} trials, more than a "
            "model can use"
        )
    if search.num_trials <= GP_MAX_TRIALS and importlib.util.find_spec("torch") is not None:
        return "gp", f"numeric space, {search.num_trials} trials"
    if search.num_trials <= GP_MAX_TRIALS:
        return "tpe", "numeric space, torch not installed for gp"
    return "tpe", f"numeric space, {search.num_trials} trials (> {GP_MAX_TRIALS} for gp)"


def describe(spec: StudySpec) -> str:
    """The algorithm as stored and shown: ``auto→gp`` for auto, else its name."""
    if spec.search.algorithm != "auto":
        return spec.search.algorithm
    return f"auto→{pick(spec)[0]}"


def resolved(spec: StudySpec) -> str:
    """The registered algorithm that runs: auto's pick, else the spec's own."""
    return pick(spec)[0] if spec.search.algorithm == "auto" else spec.search.algorithm


def auto(spec: StudySpec, history: Any = ()) -> TunerSearcher:
    """The searcher of the algorithm :func:`pick` chooses (logged at INFO)."""
    import logging

    from tuner.search._registry import ALGORITHMS, check_available

    name, why = pick(spec)
    logging.getLogger("tuner").info("search.algorithm auto: %s (%s)", name, why)
    check_available(name)
    searcher: TunerSearcher = ALGORITHMS[name].load()(spec, history)
    return searcher
