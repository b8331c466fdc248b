"""What does tuner cost on top of Ray Tune? The same study three ways, in one run.

200 trials of a trivial objective that reports 10 intermediate results, TPE search
(multivariate, constant liar, seeded), 2 trials in flight on a local Ray:

- tuner: `tuner.create_study(...).run()`, every trial and result recorded in SQLite;
- bare Ray Tune: the same TPE sampler through Ray's OptunaSearch, with Ray Tune's best
  settings (actors reused, per-trial loggers off, no console output);
- bare Optuna: `study.optimize` in memory, one process (no Ray at all).

    python -m bench.overhead [--trials 200] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

from bench._results import publish, timed_study

REPORTS = 10


def objective(config: dict) -> None:
    import tuner

    for step in range(REPORTS):
        tuner.report(step=step, loss=(config["x"] - 0.3) ** 2 + 1 / (step + 1))


def run_tuner(trials: int) -> float:

    spec = {
        "name": "overhead",
        "metric": "loss",
        "trainer": {"kind": "python", "function": objective, "max_steps": REPORTS},
        "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "search": {"algorithm": "tpe", "num_trials": trials, "max_concurrent": 2, "seed": 0},
    }
    seconds, recorded = timed_study(spec)
    assert len(recorded) == trials and all(t.steps == REPORTS for t in recorded)
    return seconds


def run_raytune(trials: int) -> float:
    import optuna
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    def trainable(config: dict) -> None:
        for step in range(REPORTS):
            tune.report({"loss": (config["x"] - 0.3) ** 2 + 1 / (step + 1)})

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.TPESampler(
            seed=0, multivariate=True, group=True, constant_liar=True
        )
    searcher = OptunaSearch(
        space={"x": optuna.distributions.FloatDistribution(-1.0, 1.0)},
        sampler=sampler,
        metric="loss",
        mode="min",
    )
    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        result = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=searcher,
                num_samples=trials,
                max_concurrent_trials=2,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(storage_path=d, verbose=0),
        ).fit()
        seconds = time.perf_counter() - started
    assert len(result) == trials
    return seconds


def run_optuna(trials: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sampler = optuna.samplers.TPESampler(
            seed=0, multivariate=True, group=True, constant_liar=True
        )
    study = optuna.create_study(sampler=sampler)

    def opt_objective(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", -1.0, 1.0)
        loss = 0.0
        for step in range(REPORTS):
            loss = (x - 0.3) ** 2 + 1 / (step + 1)
            trial.report(loss, step)
        return loss

    started = time.perf_counter()
    study.optimize(opt_objective, n_trials=trials)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2, help="best of N, order alternated")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    args = parser.parse_args()

    from tuner._ray import ensure_ray

    ensure_ray(None)  # same Ray for both Ray runs; its start-up is not counted
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    run_raytune(10)  # warm-up: worker processes and imports, for both Ray ways alike
    run_tuner(10)
    times: dict[str, list[float]] = {"raytune": [], "tuner": [], "optuna": []}
    ways = {"raytune": run_raytune, "tuner": run_tuner, "optuna": run_optuna}
    for r in range(args.repeats):
        order = list(ways) if r % 2 == 0 else list(reversed(ways))
        for way in order:
            times[way].append(ways[way](args.trials))
            print(f"{way}: {times[way][-1]:.2f} s", flush=True)
    raytune, tuner_s, optuna_s = (min(times[w]) for w in ("raytune", "tuner", "optuna"))

    n = args.trials
    lines = [
        f"Best of {args.repeats} runs each, order alternated, after a warm-up.",
        "",
        f"| way | wall s ({n} trials x {REPORTS} reports) | ms per trial | vs bare Ray Tune |",
        "|---|---|---|---|",
        f"| tuner (SQLite, every result recorded) | {tuner_s:.1f} | {1000 * tuner_s / n:.0f} | "
        f"{tuner_s / raytune:.2f}x |",
        f"| bare Ray Tune (OptunaSearch, reuse_actors) | {raytune:.1f} | {1000 * raytune / n:.0f} | 1.00x |",
        f"| bare Optuna (in memory, 1 process) | {optuna_s:.1f} | {1000 * optuna_s / n:.0f} | "
        f"{optuna_s / raytune:.2f}x |",
        "",
        f"tuner's cost over bare Ray Tune: {1000 * (tuner_s - raytune) / n:+.1f} ms per trial.",
    ]
    publish(args.out, "Per-trial overhead", lines)


if __name__ == "__main__":
    main()
