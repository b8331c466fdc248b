"""How should GP treat trials in flight? (simulation, no Ray)

Hartmann6, 60 trials, 4 always in flight, completed in random order. Before each
suggestion the sampler sees the finished trials and, depending on the strategy, the
pending ones:

- sequential: the reference, one trial at a time (nothing is ever pending);
- none: pending trials ignored (GPSampler on finished trials only);
- qlogei: pending trials given as RUNNING to Optuna's GPSampler (its own qLogEI);
- believer: pending trials given as RUNNING to tuner's BelieverGPSampler (kriging
  believer: the GP conditioned on its posterior mean there, kernel not refitted, and
  EI's incumbent raised to the best believed value);
- believer-keep: the same, but EI's incumbent stays the best finished value;
- worst, mean, best: each pending trial told as finished with that value so far;
- nearest: told as finished with the value of the nearest finished trial.

Mean regret over seeds.

    python -m bench.gp_liar [--seeds 8] [--strategies none,qlogei,believer] [--out FILE]
"""

from __future__ import annotations

import argparse
import collections
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from bench._results import append_section
from bench.gp_parallel import HARTMANN_MIN, NAMES, hartmann6

DISTS = {n: FloatDistribution(0.0, 1.0) for n in NAMES}
STRATEGIES = (
    *("sequential", "none", "qlogei", "believer", "believer-keep"),
    *("worst", "mean", "best", "nearest"),
)
RUNNING = ("qlogei", "believer", "believer-keep")  # they see pending trials as RUNNING


def _lie(strategy: str, done: list, params: dict) -> float | None:
    values = [t.value for t in done]
    if strategy in ("none", *RUNNING) or not values:
        return None
    if strategy == "nearest":
        X = np.array([[t.params[n] for n in NAMES] for t in done])
        p = np.array([params[n] for n in NAMES])
        return float(values[int(np.argmin(((X - p) ** 2).sum(axis=1)))])
    return {"worst": max(values), "mean": statistics.mean(values), "best": min(values)}[strategy]


def run(strategy: str, seed: int, trials: int = 60, in_flight: int = 4) -> float:
    from tuner.search._gp import BelieverGPSampler

    if strategy == "sequential":
        in_flight = 1
    sampler: optuna.samplers.BaseSampler = optuna.samplers.GPSampler(seed=seed)
    if strategy.startswith("believer"):
        sampler = BelieverGPSampler(seed=seed, raise_threshold=strategy == "believer")
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
                elif strategy in RUNNING:
                    lies.append(
                        create_trial(params=params, distributions=DISTS, state=TrialState.RUNNING)
                    )
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
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    lines = [
        "| pending trials | regret per seed | mean regret | s per ask |",
        "|---|---|---|---|",
    ]
    for strategy in args.strategies.split(","):
        if strategy not in STRATEGIES:
            parser.error(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
        started = time.perf_counter()
        seeds = range(args.first_seed, args.first_seed + args.seeds)
        regrets = [run(strategy, seed) for seed in seeds]
        per_ask = (time.perf_counter() - started) / (args.seeds * 60)
        per_seed = ", ".join(f"{r:.3f}" for r in regrets)
        row = f"| {strategy} | {per_seed} | {statistics.mean(regrets):.3f} | {per_ask:.3f} |"
        print(row, flush=True)
        lines.append(row)
    table = "\n".join(lines)
    append_section(args.out, "GP: trials in flight (simulation)", table)


if __name__ == "__main__":
    main()
