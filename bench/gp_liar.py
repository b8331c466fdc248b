"""Which lie helps Optuna's GPSampler with trials in flight? (simulation, no Ray)

Hartmann6, 60 trials, 4 always in flight, completed in random order. Before each
suggestion the GP sees the finished trials plus each pending trial told as finished
with a lie: none (pending ignored), worst, mean or best value so far, or the value of
the nearest finished trial (a cheap "kriging believer"). Mean regret over seeds.

    python -m bench.gp_liar [--seeds 8] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from bench._results import append_section
from bench.gp_parallel import HARTMANN_MIN, NAMES, hartmann6

DISTS = {n: FloatDistribution(0.0, 1.0) for n in NAMES}
STRATEGIES = ("none", "worst", "mean", "best", "nearest")


def _lie(strategy: str, done: list, params: dict) -> float | None:
    values = [t.value for t in done]
    if strategy == "none" or not values:
        return None
    if strategy == "nearest":
        X = np.array([[t.params[n] for n in NAMES] for t in done])
        p = np.array([params[n] for n in NAMES])
        return float(values[int(np.argmin(((X - p) ** 2).sum(axis=1)))])
    return {"worst": max(values), "mean": statistics.mean(values), "best": min(values)}[strategy]


def run(strategy: str, seed: int, trials: int = 60, in_flight: int = 4) -> float:
    sampler = optuna.samplers.GPSampler(seed=seed)
    rng = np.random.default_rng(seed)
    done: list = []
    pending: collections.deque = collections.deque()
    asked = 0
    while asked < trials or pending:
        while asked < trials and len(pending) < in_flight:
            lies = []
            for params in pending:
                value = _lie(strategy, done, params)
                if value is not None:
                    lies.append(create_trial(params=params, distributions=DISTS, value=value))
            scratch = optuna.create_study(sampler=sampler)
            scratch.add_trials(done + lies)
            t = scratch.ask()
            pending.append({n: t.suggest_float(n, 0.0, 1.0) for n in NAMES})
            asked += 1
        params = pending[int(rng.integers(len(pending)))]
        pending.remove(params)
        value = hartmann6(np.array([params[n] for n in NAMES]))
        done.append(create_trial(params=params, distributions=DISTS, value=value))
    return min(t.value for t in done) - HARTMANN_MIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    lines = ["| lie for pending trials | regret per seed | mean regret |", "|---|---|---|"]
    for strategy in STRATEGIES:
        regrets = [run(strategy, seed) for seed in range(args.seeds)]
        row = f"| {strategy} | {', '.join(f'{r:.3f}' for r in regrets)} | {statistics.mean(regrets):.3f} |"
        print(row, flush=True)
        lines.append(row)
    table = "\n".join(lines)
    append_section(args.out, "GP: which lie for trials in flight (simulation)", table)


if __name__ == "__main__":
    main()
