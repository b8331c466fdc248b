"""Population Based Training on a learning-rate schedule: tuner's pbt vs Ray Tune's PBT.

The problem: minibatch SGD (batch 8, 20 updates a step) on a generated linear
regression (20 features with standard deviations from 1 down to 0.03, label noise 2,
4000 training rows); the tuned parameter is the learning rate `lr` in [0.001, 1]
(log). Validation loss: the mean squared error against the noise-free targets of 2000
held-out rows (least squares on the training rows reaches 0.018). A large rate is best
early and a small one late: at 24 steps the best fixed rate (about 0.2) ends at 0.36,
a rate decayed 0.85x a step from 0.8 at 0.13. The data and the minibatches (one stream
per step, the same for every trial) are fixed; a seed changes only the search. A step
is about 1 ms of numpy and a 0.1 s sleep (`--step-seconds`, a heavier model's step):
in a first try with no sleep (population 4, budget 8) tuner's pbt cut no trial at all,
the trials' workers starting seconds apart on the loaded 2-core machine (up to 2 s
apart even with the sleep), longer than a whole trial of ms steps took.

Three ways, the same population, perturbation interval, budget (steps a line trains)
and CPUs a trial, all trials of a population in flight at once:

- tuner-pbt: ``tuner.create_study(spec).run()`` with ``search.algorithm: pbt`` (SQLite
  and its artifacts store in a temp dir); the trainer saves its weights every step
  with ``tuner.report(checkpoint=...)`` and starts from ``tuner.get_checkpoint()``;
- raytune-pbt: Ray Tune's ``PopulationBasedTraining`` (no searcher), a function
  trainable saving ``ray.tune.Checkpoint.from_directory`` every step and starting from
  ``ray.tune.get_checkpoint()``, mutations over the same range (clipped into it, as
  tuner clips); every checkpoint kept (Ray's default);
- tuner-tpe+asha: tuner's tpe with asha (grace period = the perturbation interval,
  reduction factor 3), no checkpoints, with enough trials that the steps trained come
  close to the population x budget the PBT ways train.

Value: the best final validation loss among the trials (lines) that reached the budget.
Steps: every step any trial trained, counted by the trainer itself. Ray's trials that
fail with "Could not recover from checkpoint" are counted.

    python -m bench.pbt [--seeds 5] [--first-seed 0] [--population 6] [--budget 24]
        [--interval 4] [--asha-trials 14] [--step-seconds 0.1]
        [--ways tuner-pbt,raytune-pbt,tuner-tpe+asha] [--out FILE]
    python -m bench.pbt --quick    # 1 seed, population 4, budget 8: the script runs
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bench._results import publish

LOW, HIGH = 1e-3, 1.0  # the learning rate's range (log)
FEATURES, TRAIN, VALID = 20, 4000, 2000
BATCH, UPDATES = 8, 20  # minibatch size, SGD updates a step
WAYS = ("tuner-pbt", "raytune-pbt", "tuner-tpe+asha")
RECOVER = "Could not recover from checkpoint"


# -- the problem ---------------------------------------------------------------------


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Training rows and targets, validation rows and their noise-free targets."""
    rng = np.random.default_rng(12345)
    scales = np.logspace(0, -1.5, FEATURES)
    w_true = rng.normal(size=FEATURES) * 3
    x_train = rng.normal(size=(TRAIN, FEATURES)) * scales
    y_train = x_train @ w_true + rng.normal(size=TRAIN) * 2.0
    x_valid = rng.normal(size=(VALID, FEATURES)) * scales
    return x_train, y_train, x_valid, x_valid @ w_true


def train_step(w: np.ndarray, lr: float, step: int) -> np.ndarray:
    """`UPDATES` minibatch SGD updates of the weights at rate `lr`; step `step`'s batches."""
    x, y, _, _ = data()
    rng = np.random.default_rng([7, step])
    for _ in range(UPDATES):
        rows = rng.integers(TRAIN, size=BATCH)
        xb = x[rows]
        w = w - lr * xb.T @ (xb @ w - y[rows]) / BATCH
    return w


def valid_loss(w: np.ndarray) -> float:
    _, _, x, y = data()
    loss = float(np.mean((x @ w - y) ** 2))
    return loss if np.isfinite(loss) else 1e12  # a diverged rate: worst, but comparable


def _state(folder: Path | str | None) -> tuple[int, np.ndarray]:
    """The first step to train and the weights, from a checkpoint folder or afresh."""
    if folder is None:
        return 0, np.zeros(FEATURES)
    folder = Path(folder)
    step = json.loads((folder / "state.json").read_text())["step"]
    return step + 1, np.load(folder / "w.npy")


def _save(folder: str, step: int, w: np.ndarray) -> None:
    np.save(os.path.join(folder, "w.npy"), w)
    with open(os.path.join(folder, "state.json"), "w") as f:
        json.dump({"step": step}, f)


def _count(log: str, what: str) -> None:
    with open(log, "a") as f:  # one short append: atomic on a local disk
        f.write(f"{what}\n")


def tuner_trainer(
    config: dict, *, budget: int, log: str, checkpoints: bool, seconds: float
) -> None:
    import tuner

    restored = tuner.get_checkpoint() if checkpoints else None
    start, w = _state(restored)
    if restored is not None:
        _count(log, "restore")
    for step in range(start, budget):
        w = train_step(w, config["lr"], step)
        time.sleep(seconds)  # a heavier model's step
        _count(log, "step")
        if checkpoints:
            with tempfile.TemporaryDirectory() as folder:
                _save(folder, step, w)
                tuner.report(step=step, checkpoint=folder, loss=valid_loss(w))
        else:
            tuner.report(step=step, loss=valid_loss(w))


def ray_trainer(config: dict, *, budget: int, log: str, seconds: float) -> None:
    from ray import tune

    restored = tune.get_checkpoint()
    if restored is None:
        start, w = _state(None)
    else:
        with restored.as_directory() as folder:
            start, w = _state(folder)
        _count(log, "restore")
    for step in range(start, budget):
        w = train_step(w, config["lr"], step)
        time.sleep(seconds)  # a heavier model's step
        _count(log, "step")
        with tempfile.TemporaryDirectory() as folder:
            _save(folder, step, w)
            tune.report(
                {"loss": valid_loss(w), "step": step},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )


# -- the three ways --------------------------------------------------------------------


@dataclass
class Setting:
    population: int
    budget: int
    interval: int
    quantile: float
    resample: float
    asha_trials: int
    seconds: float  # a step's sleep

    @property
    def cpus(self) -> float:
        return 2 / self.population  # the whole population at once on 2 CPUs


@dataclass
class Outcome:
    best: float  # best final validation loss of a line that reached the budget
    steps: int  # steps trained, all trials together
    restores: int  # trials (Ray: restarts) that started from a checkpoint
    trials: int
    failed: int  # trials that failed (for Ray: any error)
    unrecovered: int  # of those, "Could not recover from checkpoint"
    seconds: float


def _counts(log: str) -> tuple[int, int]:
    """Steps trained and starts from a checkpoint, as the trainers logged them."""
    lines = Path(log).read_text().split() if Path(log).exists() else []
    return lines.count("step"), lines.count("restore")


def _tuner_way(algorithm: str, s: Setting, seed: int) -> Outcome:
    import tuner

    pbt = algorithm == "pbt"
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "steps")
        search: dict[str, Any] = {"algorithm": algorithm, "seed": seed}
        if pbt:
            search |= {
                "population": s.population,
                "perturbation_interval": s.interval,
                "quantile_fraction": s.quantile,
                "resample_probability": s.resample,
            }
        else:
            search["num_trials"] = s.asha_trials
        spec: dict[str, Any] = {
            "name": f"pbt-bench-{algorithm}-{seed}",
            "metric": "loss",
            "mode": "min",
            "trainer": {
                "kind": "python",
                "function": functools.partial(
                    tuner_trainer,
                    budget=s.budget,
                    log=log,
                    checkpoints=pbt,
                    seconds=s.seconds,
                ),
                "max_steps": s.budget,
            },
            "search_space": {"lr": {"type": "float", "low": LOW, "high": HIGH, "log": True}},
            "search": {**search, "max_concurrent": s.population},
            "resources": {"cpus_per_trial": s.cpus},
        }
        if not pbt:
            spec["early_stopping"] = {
                "scheduler": "asha",
                "grace_period": s.interval,
                "reduction_factor": 3,
            }
        started = time.perf_counter()
        study = tuner.create_study(spec, storage=f"sqlite:///{d}/bench.db").run(progress=False)
        seconds = time.perf_counter() - started
        trials = study.trials()
        done = [t.value for t in trials if t.state == "completed" and t.value is not None]
        failed = sum(t.state == "failed" for t in trials)
        unrecovered = sum(RECOVER in (t.error or "") for t in trials)
        best = min(done) if done else float("nan")
        return Outcome(best, *_counts(log), len(trials), failed, unrecovered, seconds)


def _raytune_pbt(s: Setting, seed: int) -> Outcome:
    from ray import tune
    from ray.tune.schedulers import PopulationBasedTraining

    random.seed(seed)  # Ray's PBT explores with `random`, its Domains sample with numpy
    np.random.seed(seed)
    scheduler = PopulationBasedTraining(
        time_attr="training_iteration",
        metric="loss",
        mode="min",
        perturbation_interval=s.interval,
        quantile_fraction=s.quantile,
        resample_probability=s.resample,
        hyperparam_mutations={"lr": tune.loguniform(LOW, HIGH)},
        custom_explore_fn=lambda c: {**c, "lr": min(max(c["lr"], LOW), HIGH)},
    )
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "steps")
        trainable = tune.with_resources(
            tune.with_parameters(ray_trainer, budget=s.budget, log=log, seconds=s.seconds),
            {"cpu": s.cpus},
        )
        started = time.perf_counter()
        grid = tune.Tuner(
            trainable,
            param_space={"lr": tune.loguniform(LOW, HIGH)},
            tune_config=tune.TuneConfig(
                scheduler=scheduler,
                num_samples=s.population,
                max_concurrent_trials=s.population,
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                storage_path=os.path.join(d, "ray"),
                verbose=0,
                stop={"training_iteration": s.budget},
            ),
        ).fit()
        seconds = time.perf_counter() - started
        done = [
            r.metrics["loss"]
            for r in grid
            if r.error is None and r.metrics and r.metrics.get("step") == s.budget - 1
        ]
        errors = [str(r.error) for r in grid if r.error is not None]
        unrecovered = sum(RECOVER in e for e in errors)
        best = min(done) if done else float("nan")
        return Outcome(best, *_counts(log), len(grid), len(errors), unrecovered, seconds)


def run_way(way: str, s: Setting, seed: int) -> Outcome:
    if way == "tuner-pbt":
        return _tuner_way("pbt", s, seed)
    if way == "tuner-tpe+asha":
        return _tuner_way("tpe", s, seed)
    if way == "raytune-pbt":
        return _raytune_pbt(s, seed)
    raise ValueError(f"unknown way {way!r}; one of {', '.join(WAYS)}")


# -- the table ---------------------------------------------------------------------------


def table(s: Setting, seeds: range, ways: list[str]) -> list[str]:
    outcomes: dict[str, list[Outcome]] = {w: [] for w in ways}
    for seed in seeds:
        for way in ways if seed % 2 == 0 else list(reversed(ways)):
            outcomes[way].append(run_way(way, s, seed))
            o = outcomes[way][-1]
            print(
                f"seed {seed} {way}: best {o.best:.4f}, {o.steps} steps, {o.trials} trials, "
                f"{o.restores} restores, {o.failed} failed ({o.unrecovered} unrecovered), "
                f"{o.seconds:.0f} s",
                flush=True,
            )
    ref = "raytune-pbt" if "raytune-pbt" in ways else ways[0]
    mean_ref = statistics.mean(o.best for o in outcomes[ref])
    lines = [
        "| way | best final valid loss per seed | mean | vs raytune-pbt (mean) "
        "| seeds better than raytune-pbt | steps trained (mean) | trials (mean) | starts from a checkpoint (mean) "
        "| failed trials (could not recover) | s a run (mean) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for way in ways:
        got = outcomes[way]
        mean = statistics.mean(o.best for o in got)
        wins = sum(o.best < r.best for o, r in zip(got, outcomes[ref], strict=True))
        lines.append(
            f"| {way} | {', '.join(f'{o.best:.4f}' for o in got)} | {mean:.4f} | "
            f"{mean / mean_ref:.2f}x | {'-' if way == ref else f'{wins}/{len(got)}'} | "
            f"{statistics.mean(o.steps for o in got):.0f} | "
            f"{statistics.mean(o.trials for o in got):.1f} | "
            f"{statistics.mean(o.restores for o in got):.1f} | "
            f"{sum(o.failed for o in got)} ({sum(o.unrecovered for o in got)}) | "
            f"{statistics.mean(o.seconds for o in got):.0f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--budget", type=int, default=24, help="steps a line trains")
    parser.add_argument("--interval", type=int, default=4, help="perturbation interval")
    parser.add_argument("--quantile", type=float, default=0.25)
    parser.add_argument("--resample", type=float, default=0.25)
    parser.add_argument("--asha-trials", type=int, default=14)
    parser.add_argument(
        "--step-seconds", type=float, default=0.1, help="a step's sleep (a heavier model)"
    )
    parser.add_argument("--ways", default=",".join(WAYS))
    parser.add_argument("--quick", action="store_true", help="1 seed, population 4, budget 8")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.population, args.budget, args.interval, args.asha_trials = 1, 4, 8, 2, 8
    s = Setting(
        args.population,
        args.budget,
        args.interval,
        args.quantile,
        args.resample,
        args.asha_trials,
        args.step_seconds,
    )
    from tuner._ray import ensure_ray

    ensure_ray(None)  # one local Ray for every way; its start-up is not counted
    warnings.filterwarnings("ignore")
    started = time.perf_counter()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    lines = table(s, seeds, args.ways.split(","))
    load = os.getloadavg()[0]
    title = (
        f"PBT on a learning-rate schedule, population {s.population}, interval "
        f"{s.interval}, budget {s.budget} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, "
        f"seeds {seeds.start}-{seeds.stop - 1}, {time.perf_counter() - started:.0f} s, load average {load:.1f})"
    )
    publish(args.out, title, lines)


if __name__ == "__main__":
    # Run as bench.pbt, not __main__: Ray's workers import the trainers by module name.
    from bench.pbt import main as run

    run()
