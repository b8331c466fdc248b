"""A resumed CMA-ES study against one run through: 40 trials on BBOB functions, the
resumed one stopped after 20 and given its 20 trials back, as `tuner resume` does.

At the searcher level (tuner's searcher, built as the runner builds it on a resume; no
Ray, no storage), so only what CMA-ES proposes differs. Seed s is instance s+1.

    python -m bench.cmaes_resume [--functions 8 21] [--dimension 5] [--seeds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
from typing import Any

from bench.quality._problems import make


def best_regret(
    function: int, dimension: int, seed: int, trials: int, resume_at: int | None
) -> float:
    import cocoex

    from tests.search.test_multi_objective_search import Past
    from tuner.search import build_searcher
    from tuner.spec import load_spec

    problem = make(f"bbob-f{function}-d{dimension}-i{seed + 1}")
    assert problem.optimum is not None
    suite = cocoex.Suite(
        "bbob",
        "",
        f"function_indices:{function} dimensions:{dimension} instance_indices:{seed + 1}",
    )
    f = next(iter(suite))
    spec = load_spec(
        {
            "name": "resume",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
            "search_space": problem.space,
            "search": {"algorithm": "cmaes", "seed": seed},
        }
    )
    done: list[tuple[dict[str, Any], float]] = []
    searcher = build_searcher(spec)
    for i in range(trials):
        if i == resume_at:  # a new driver: the searcher gets the finished trials back
            searcher = build_searcher(
                spec, [Past(c, value=v, metrics={"loss": v}) for c, v in done]
            )
        config = searcher.suggest(str(i))
        value = float(f([config[f"x{j}"] for j in range(dimension)]))
        searcher.on_trial_complete(str(i), {"loss": value, "training_iteration": 1})
        done.append((config, value))
    return min(v for _, v in done) - problem.optimum


def _cell(xs: list[float]) -> str:
    q1, _, q3 = statistics.quantiles(xs, n=4)
    return f"{statistics.median(xs):.3g} [{q1:.3g}, {q3:.3g}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, nargs="+", default=[8, 21])
    parser.add_argument("--dimension", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    print("| problem | run through | resumed at half |")
    print("|---|---|---|")
    for fn in args.functions:
        through = [best_regret(fn, args.dimension, s, args.trials, None) for s in range(args.seeds)]
        resumed = [
            best_regret(fn, args.dimension, s, args.trials, args.trials // 2)
            for s in range(args.seeds)
        ]
        print(f"| bbob-f{fn}-d{args.dimension} | {_cell(through)} | {_cell(resumed)} |", flush=True)


if __name__ == "__main__":
    main()
