"""Bayesian search with trials in flight: does GP still find the optimum?

Hartmann6 (6-d, minimum -3.32237), 60 trials, three ways in one run:

- optuna-sequential: bare Optuna GPSampler, one trial at a time (the reference);
- raytune-optunasearch-4: bare Ray Tune with its OptunaSearch(GPSampler), 4 in flight
  (Optuna 5.0 gives the running trials to qLogEI);
- tuner-gp-4: tuner's gp search, 4 in flight (kriging believer for pending trials).

Regret = best value found - global minimum (0 is perfect).

    python -m bench.gp_parallel [--seeds 3] [--first-seed 0] [--trials 60] [--ways W1,W2]
        [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench._results import publish

HARTMANN_MIN = -3.32237
_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
NAMES = [f"x{i}" for i in range(6)]


def hartmann6(x: np.ndarray) -> float:
    return float(-np.sum(_ALPHA * np.exp(-np.sum(_A * (x - _P) ** 2, axis=1))))


def objective(config: dict) -> None:
    import tuner

    tuner.report(step=1, value=hartmann6(np.array([config[n] for n in NAMES])))


def run_optuna_sequential(seed: int, trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.GPSampler(seed=seed))
    study.optimize(
        lambda t: hartmann6(np.array([t.suggest_float(n, 0, 1) for n in NAMES])), n_trials=trials
    )
    return study.best_value - HARTMANN_MIN


def run_raytune(seed: int, trials: int) -> float:
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    def trainable(config: dict) -> None:
        tune.report({"value": hartmann6(np.array([config[n] for n in NAMES]))})

    searcher = OptunaSearch(
        space={n: optuna.distributions.FloatDistribution(0, 1) for n in NAMES},
        sampler=optuna.samplers.GPSampler(seed=seed),
        metric="value",
        mode="min",
    )
    with tempfile.TemporaryDirectory() as d:
        result = tune.Tuner(
            tune.with_resources(trainable, {"cpu": 0.5}),  # 4 in flight on 2 cores
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=trials,
                max_concurrent_trials=4,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=d, verbose=0),
        ).fit()
    return min(r.metrics["value"] for r in result) - HARTMANN_MIN


def run_tuner(seed: int, trials: int) -> float:
    import tuner

    spec = {
        "name": f"hartmann-gp-{seed}",
        "metric": "value",
        "mode": "min",
        "trainer": {"kind": "python", "function": objective, "max_steps": 1},
        "search_space": {n: {"type": "float", "low": 0.0, "high": 1.0} for n in NAMES},
        "search": {"algorithm": "gp", "num_trials": trials, "max_concurrent": 4, "seed": seed},
        "resources": {"cpus_per_trial": 0.5},
    }
    with tempfile.TemporaryDirectory() as d:
        study = tuner.create_study(spec, storage=f"sqlite:///{d}/bench.db").run(progress=False)
        best = study.best_trial
        assert best is not None and best.value is not None
        return best.value - HARTMANN_MIN


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--ways", default=None, help="comma-separated subset of the ways")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    args = parser.parse_args()

    from tuner._ray import ensure_ray

    ensure_ray(None)
    ways = {
        "optuna-sequential": run_optuna_sequential,
        "raytune-optunasearch-4": run_raytune,
        "tuner-gp-4": run_tuner,
    }
    if args.ways:
        ways = {w: ways[w] for w in args.ways.split(",")}
    rows = []
    for label, fn in ways.items():
        regrets, started = [], time.monotonic()
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            regrets.append(fn(seed, args.trials))
            print(f"{label} seed {seed}: regret {regrets[-1]:.4f}", flush=True)
        rows.append((label, regrets, time.monotonic() - started))
    lines = [
        f"| way | regret per seed ({args.trials} trials) | mean regret | wall s |",
        "|---|---|---|---|",
    ]
    for label, regrets, seconds in rows:
        per_seed = ", ".join(f"{r:.3f}" for r in regrets)
        lines.append(f"| {label} | {per_seed} | {statistics.mean(regrets):.3f} | {seconds:.0f} |")
    publish(args.out, "GP with trials in flight (Hartmann6)", lines)


if __name__ == "__main__":
    main()
