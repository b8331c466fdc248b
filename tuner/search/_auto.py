"""``search.algorithm: auto``: a registered algorithm picked from the space and the budget.

The rule (also in the spec's reference, docs/spec.md; the numbers behind it are in
bench/RESULTS.md, "Quality"):

1. a conditional parameter (``when``) or a categorical one -> **tpe** (Optuna's GP and
   CMA-ES treat categories and inactive parameters poorly; TPE models them directly);
2. every trial in flight at once (``max_concurrent >= num_trials``): no model ever sees
   a result -> **qmc** (a space-filling design);
3. a numeric space (float and int ranges only) with at most 200 trials, at most a
   quarter of them in flight, and torch installed -> **gp** (the most sample-efficient
   at small budgets; its cost per suggestion grows with the cube of the trials);
4. otherwise -> **tpe** (its constant liar held up best with many trials in flight).

Measured (bench/RESULTS.md, medium preset, 3 seeds): GP had the best median regret on
three of four BBOB problems at 40 sequential trials (CMA-ES on f21 in 10-D, 26.2 vs
28.5; mean rank 1.5 of 14 ways, TPE 4.5, CMA-ES 5.75); with 8 of 30 trials in flight
on BBOB f8 in 5-D, TPE (1130) and GP (1150) ended close, QMC far behind (3330), so QMC
is kept for the case where no feedback exists at all. auto does not pick bohb: under the same Hyperband brackets it beat TPE on
one of two xgboost problems and lost on the other (bench/RESULTS.md), so that choice is
left to the user.

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
# gp only while max_concurrent * IN_FLIGHT_SHARE <= num_trials
IN_FLIGHT_SHARE = 4


def pick(spec: StudySpec) -> tuple[str, str]:
    """The algorithm ``auto`` runs for `spec`, and why (one short phrase).

    Works on any spec: with ``algorithm`` other than auto it still says what auto
    would pick.
    """
    from tuner.spec import CategoricalParam

    params = spec.search_space.values()
    search = spec.search
    if any(p.when for p in params):
        return "tpe", "conditional space"
    if any(isinstance(p, CategoricalParam) or p.values is not None for p in params):
        return "tpe", "categorical parameters"
    if search.max_concurrent >= search.num_trials:
        return "qmc", f"all {search.num_trials} trials in flight at once"
    if search.max_concurrent * IN_FLIGHT_SHARE > search.num_trials:
        return "tpe", f"{search.max_concurrent} in flight of {search.num_trials} trials"
    if search.num_trials > GP_MAX_TRIALS:
        return "tpe", f"numeric space, {search.num_trials} trials (> {GP_MAX_TRIALS} for gp)"
    if importlib.util.find_spec("torch") is None:
        return "tpe", "numeric space, torch not installed for gp"
    return "gp", f"numeric space, {search.num_trials} trials"


def describe(spec: StudySpec) -> str:
    """The algorithm as stored and shown: ``auto→gp`` for auto, else its name."""
    if spec.search.algorithm != "auto":
        return spec.search.algorithm
    return f"auto→{pick(spec)[0]}"


def resolved(spec: StudySpec) -> str:
    """The registered algorithm that runs: auto's pick, else the spec's own."""
    return pick(spec)[0] if spec.search.algorithm == "auto" else spec.search.algorithm


def auto(spec: StudySpec, history: Any = (), warm: Any = ()) -> TunerSearcher:
    """The searcher of the algorithm :func:`pick` chooses (logged at INFO)."""
    import logging

    from tuner.search._registry import ALGORITHMS, check_available

    name, why = pick(spec)
    logging.getLogger("tuner").info("search.algorithm auto: %s (%s)", name, why)
    check_available(name)
    searcher: TunerSearcher = ALGORITHMS[name].load()(spec, history, warm)
    return searcher
