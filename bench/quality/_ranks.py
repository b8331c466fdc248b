"""How early a study's winner stands out from its own curve: the question under every
early-stopping rule.

    python -m bench.quality._ranks --problems xgb-breast_cancer,xgb-digits --seeds 10

For each seed it replays a study without early stopping (``tuner-tpe``, 30 trials, as
bench/quality/_sim.py does: tuner's own searcher, no Ray), takes the trial that ends
best, and asks where it stood among the study's trials at step r (r = 5, 10, 20, 30,
50 of the budget) when each trial is judged by what its first r reports say:

- ``value``: its report at r (what asha, hyperband and median compare);
- ``extrapolate``: :func:`tuner.schedulers.extrapolated_final` of its reports 1..r
  (what ``early_stopping.scheduler: extrapolate`` compares with the best final);
- ``exp fit``: ``a + b * exp(-c * t)`` fitted to them (least squares), at the budget;
- ``power fit``: ``a + b * t ** -c`` fitted to them, at the budget.

A rule that cuts to the best third at step r keeps the winner only where its rank is
10 or better of 30; the table gives the winner's median rank [quartiles] over the seeds
and in how many seeds it was in that third. A judge that cannot put the winner in the
best third by a third of the budget cannot meet issue 11's early-stopping goal (within
1% of no stopping's best at a third of its rounds) by stopping on it alone.
"""

from __future__ import annotations

import argparse
import math
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.quality import _sim
from bench.quality._problems import make

STEPS = (5, 10, 20, 30, 50)


def _fit(model: Callable[..., np.ndarray], p0: Callable[[np.ndarray], tuple[float, ...]]):
    def judge(values: Sequence[float], max_t: int) -> float:
        from scipy.optimize import curve_fit

        y = np.asarray(values, dtype=float)
        x = np.arange(1, len(y) + 1, dtype=float)
        try:
            params, _ = curve_fit(
                model, x, y, p0=p0(y), bounds=([-np.inf, 0, 0], [np.inf, np.inf, 5]), maxfev=4000
            )
        except (RuntimeError, ValueError):  # no fit: judged by its last report
            return float(y[-1])
        return float(model(float(max_t), *params))

    return judge


def _judges() -> dict[str, Callable[[Sequence[float], int], float]]:
    from tuner.schedulers import extrapolated_final

    return {
        "value": lambda values, max_t: values[-1],
        "extrapolate": extrapolated_final,
        "exp fit": _fit(
            lambda t, a, b, c: a + b * np.exp(-c * t), lambda y: (y[-1], y[0] - y[-1] + 1e-6, 0.1)
        ),
        "power fit": _fit(
            lambda t, a, b, c: a + b * t ** (-c), lambda y: (y[-1] / 2, y[0] - y[-1] / 2, 0.5)
        ),
    }


def winner_ranks(problem_name: str, seed: int, trials: int = 30) -> dict[tuple[str, int], int]:
    """(judge, step) -> the rank (1 = best) of the trial that ends best, among the trials
    of one no-stopping study, when every trial is judged from its reports up to step."""
    problem = make(problem_name)
    run = _sim.replay("tuner-tpe", problem, seed, trials)
    curves = [_sim.curve(problem, config) for config in run["configs"]]
    winner = min(range(len(curves)), key=lambda i: curves[i][-1])
    out: dict[tuple[str, int], int] = {}
    for name, judge in _judges().items():
        for r in STEPS:
            if r >= problem.max_steps:
                continue
            judged = [judge(c[:r], problem.max_steps) for c in curves]
            out[name, r] = 1 + sum(v < judged[winner] for v in judged)
    return out


def main(argv: list[str] | None = None) -> None:
    import logging
    import warnings

    import optuna

    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("tuner").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="xgb-breast_cancer,xgb-digits")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-quality-sim.pkl"))
    args = parser.parse_args(argv)
    if args.cache.exists():
        _sim._CACHE.update(pickle.loads(args.cache.read_bytes()))
    third = math.ceil(args.trials / 3)
    try:
        for name in args.problems.split(","):
            ranks = [winner_ranks(name, seed, args.trials) for seed in range(args.seeds)]
            steps = sorted({r for _, r in ranks[0]})
            print(
                f"\n{name}: the winner's rank of {args.trials} at step r, median [quartiles]"
                f" over {args.seeds} seeds (seeds with it in the best {third})"
            )
            print("| judged by | " + " | ".join(f"r = {r}" for r in steps) + " |")
            print("|---|" + "---|" * len(steps))
            for judge in _judges():
                cells = []
                for r in steps:
                    got = [seed_ranks[judge, r] for seed_ranks in ranks]
                    q1, med, q3 = np.percentile(got, [25, 50, 75])
                    top = sum(x <= third for x in got)
                    cells.append(f"{med:g} [{q1:g}, {q3:g}] ({top})")
                print(f"| {judge} | " + " | ".join(cells) + " |", flush=True)
    finally:
        args.cache.write_bytes(pickle.dumps(_sim._CACHE))


if __name__ == "__main__":
    main()
