"""The ways a problem is tuned, each returning a :class:`Trace` of its trials.

- ``tuner-ALG[-K][+SCHED[+OPT...]]``: tuner's public API (create_study, Study.run) with
  a python trainer, ALG in random tpe gp cmaes qmc grid auto bohb, K trials in flight
  (default 1), SCHED an early_stopping scheduler (none asha hyperband median percentile
  extrapolate; bohb implies hyperband), each OPT one more early_stopping setting: ``pN``
  patience N, ``best`` trial_value best, ``gN`` grace period N (default budget // 27),
  ``qN`` percentile N, ``rN`` reduction factor N (default 3);
- any way with ``@N`` at its end (``tuner-tpe@1000``): the same way with seed + N, read
  against the way without it: how far two seeds of one way differ, the noise floor of a
  comparison (its trace keeps the seed it is compared at);
- ``optuna-ALG``: the same Optuna sampler with its defaults, sequential, in memory (the
  quality reference);
- ``raytune-random[-K]``: bare Ray Tune with its default search (BasicVariantGenerator),
  actors reused as in bench/overhead.py;
- ``raytune-optuna[-K]``: bare Ray Tune with OptunaSearch (its default TPE);
- ``hyperopt-tpe``: hyperopt's fmin with tpe.suggest, sequential.

A trace lists every trial in the order it ended, with its final loss, the steps
(rounds, epochs) it used and the wall time at its end since the way started; a pruned
trial's loss is kept apart (``full``) because only a trial that completed (trained on
the whole budget, or stopped itself on a plateau of its metric) counts as a result.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from bench.quality._problems import Problem, steps

__all__ = ["Trace", "run_way"]


@dataclass
class Trace:
    """What one run of a way did, trial by trial, in the order trials ended."""

    way: str
    problem: str
    seed: int
    losses: list[float] = field(default_factory=list)
    used: list[int] = field(default_factory=list)  # steps each trial ran
    ended_s: list[float] = field(default_factory=list)  # wall time at its end
    full: list[bool] = field(default_factory=list)  # ran the whole budget
    wall_s: float = 0.0
    note: str = ""

    def add(self, loss: float, used: int, ended_s: float, full: bool) -> None:
        self.losses.append(loss)
        self.used.append(used)
        self.ended_s.append(ended_s)
        self.full.append(full)


def _objective_for_tuner(problem: Problem):
    def objective(config: dict[str, Any]) -> None:
        import tuner

        for step, loss in steps(problem, config):
            tuner.report(step=step, loss=loss)

    return objective


def seed_offset(way: str) -> tuple[str, int]:
    """``tuner-tpe@1000`` -> ("tuner-tpe", 1000); a way without ``@N`` -> (way, 0)."""
    name, _, offset = way.partition("@")
    if offset and not offset.isdigit():
        raise SystemExit(f"{way!r}: the seed offset after @ must be a whole number, e.g. @1000")
    return name, int(offset) if offset else 0


def parse(way: str) -> tuple[str, str, int, str]:
    """``tuner-tpe-4+asha`` -> ("tuner", "tpe", 4, "asha"); a ``*N`` suffix (N times the
    section's trials, see :func:`trial_factor`) and an ``@N`` one are ignored here."""
    way = seed_offset(way)[0].split("*")[0]
    way, _, scheduler = way.partition("+")
    parts = way.split("-")
    k = 1
    if len(parts) >= 2 and parts[-1].isdigit():
        k = int(parts.pop())
    kind, alg = parts[0], "-".join(parts[1:])
    if alg == "bohb" and not scheduler:
        scheduler = "hyperband"
    return kind, alg, k, scheduler or "none"


def trial_factor(way: str) -> int:
    """``tuner-bohb*3``: 3 times the section's trials (early stopping ways may spend
    the rounds they save on more trials)."""
    _, _, factor = seed_offset(way)[0].partition("*")
    return int(factor) if factor else 1


def run_way(way: str, problem: Problem, seed: int, trials: int, cpus: float = 2.0) -> Trace:
    """Run `way` on `problem` for `trials` trials (times its ``*N``) with `seed` (plus its
    ``@N``)."""
    kind, alg, k, scheduler = parse(way)
    trials *= trial_factor(way)
    trace = Trace(way, problem.name, seed)
    seed += seed_offset(way)[1]
    started = time.perf_counter()
    if kind == "tuner":
        _tuner(trace, problem, alg, k, scheduler, seed, trials, cpus)
    elif kind == "optuna":
        _optuna(trace, problem, alg, seed, trials, started)
    elif kind == "raytune":
        _raytune(trace, problem, alg, k, seed, trials, cpus)
    elif kind == "hyperopt":
        _hyperopt(trace, problem, seed, trials, started)
    else:
        raise SystemExit(f"unknown way {way!r}")
    trace.wall_s = time.perf_counter() - started
    return trace


def _grace(problem: Problem) -> int:
    return max(1, problem.max_steps // 27)


def tuner_spec(
    problem: Problem, alg: str, k: int, scheduler: str, seed: int, trials: int, cpus: float = 2.0
) -> dict[str, Any]:
    """The spec a ``tuner-ALG-K+SCHED`` way runs (bench/quality/_sim.py replays it)."""
    spec: dict[str, Any] = {
        "name": f"q-{seed}",
        "metric": "loss",
        "mode": "min",
        "trainer": {
            "kind": "python",
            "function": _objective_for_tuner(problem),
            "max_steps": problem.max_steps,
        },
        "search_space": problem.space,
        "search": {"algorithm": alg, "num_trials": trials, "max_concurrent": k, "seed": seed},
        "resources": {"cpus_per_trial": min(1.0, cpus / k)},
    }
    name, *options = scheduler.split("+")
    stopping: dict[str, Any] = {"scheduler": name}
    if name != "none":
        stopping.update(grace_period=_grace(problem), reduction_factor=3)
    for opt in options:
        key = {"p": "patience", "g": "grace_period", "q": "percentile", "r": "reduction_factor"}
        if opt == "best":
            stopping["trial_value"] = "best"
        elif opt[:1] in key and opt[1:].isdigit():
            stopping[key[opt[0]]] = int(opt[1:])
        else:
            raise SystemExit(f"unknown early stopping option {opt!r} in {scheduler!r}")
    if len(stopping) > 1 or name != "none":
        spec["early_stopping"] = stopping
    return spec


def _tuner(
    trace: Trace,
    problem: Problem,
    alg: str,
    k: int,
    scheduler: str,
    seed: int,
    trials: int,
    cpus: float,
) -> None:
    import tuner

    spec = tuner_spec(problem, alg, k, scheduler, seed, trials, cpus)
    with tempfile.TemporaryDirectory() as d:
        study = tuner.create_study(spec, storage=f"sqlite:///{d}/q.db")
        t0 = time.time()
        study.run(progress=False)
        trace.note = study.algorithm
        records = [t for t in study.trials() if t.value is not None and t.finished_at]
        records.sort(key=lambda t: t.finished_at)
        for t in records:
            ended = t.finished_at.timestamp() - t0  # stored timezone-aware (UTC)
            trace.add(float(t.value), int(t.steps), max(0.0, ended), t.state == "completed")


def _last(results: Iterator[tuple[int, float]]) -> tuple[int, float]:
    """A run's last (step, loss): what a way without early stopping is told."""
    last = (0, float("inf"))
    for last in results:  # noqa: B007 (only the last one matters)
        pass
    return last


def _optuna_sampler(alg: str, seed: int) -> Any:
    import warnings

    import optuna

    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    return {
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
        "gp": lambda: optuna.samplers.GPSampler(seed=seed),
        "cmaes": lambda: optuna.samplers.CmaEsSampler(seed=seed),
        "qmc": lambda: optuna.samplers.QMCSampler(seed=seed),
    }[alg]()


def _suggest(trial: Any, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for name, p in space.items():
        if p["type"] == "float":
            config[name] = trial.suggest_float(name, p["low"], p["high"], log=p.get("log", False))
        elif p["type"] == "int":
            config[name] = trial.suggest_int(name, p["low"], p["high"], log=p.get("log", False))
        else:
            config[name] = trial.suggest_categorical(name, p["choices"])
    return config


def _optuna(trace: Trace, problem: Problem, alg: str, seed: int, trials: int, t0: float) -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=_optuna_sampler(alg, seed))
    for _ in range(trials):
        trial = study.ask()
        used, loss = _last(steps(problem, _suggest(trial, problem.space)))
        study.tell(trial, loss)
        trace.add(loss, used, time.perf_counter() - t0, True)


def _ray_space(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from ray import tune

    out: dict[str, Any] = {}
    for name, p in space.items():
        if p["type"] == "float":
            out[name] = (tune.loguniform if p.get("log") else tune.uniform)(p["low"], p["high"])
        elif p["type"] == "int":
            # tune.randint's upper bound is exclusive
            out[name] = (tune.lograndint if p.get("log") else tune.randint)(p["low"], p["high"] + 1)
        else:
            out[name] = tune.choice(p["choices"])
    return out


def _raytune(
    trace: Trace, problem: Problem, alg: str, k: int, seed: int, trials: int, cpus: float
) -> None:
    from ray import tune

    def trainable(config: dict[str, Any]) -> None:
        for step, loss in steps(problem, config):
            tune.report({"loss": loss, "step": step})

    if alg == "optuna":
        import optuna
        from ray.tune.search.optuna import OptunaSearch

        search_alg: Any = OptunaSearch(
            sampler=optuna.samplers.TPESampler(seed=seed), metric="loss", mode="min"
        )
    else:
        from ray.tune.search import BasicVariantGenerator

        search_alg = BasicVariantGenerator(random_state=seed)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        result = tune.Tuner(
            tune.with_resources(trainable, {"cpu": min(1.0, cpus / k)}),
            param_space=_ray_space(problem.space),
            tune_config=tune.TuneConfig(
                search_alg=search_alg,
                num_samples=trials,
                max_concurrent_trials=k,
                metric="loss",
                mode="min",
                reuse_actors=True,  # as bench/overhead.py
            ),
            run_config=tune.RunConfig(storage_path=d, verbose=0),
        ).fit()
        rows = []
        for r in result:
            if r.metrics and "loss" in r.metrics:
                ended = float(r.metrics.get("timestamp", time.time())) - t0
                rows.append((ended, float(r.metrics["loss"]), int(r.metrics["step"])))
        for ended, loss, used in sorted(rows):
            trace.add(loss, used, max(0.0, ended), used >= problem.max_steps)


def _hyperopt(trace: Trace, problem: Problem, seed: int, trials: int, t0: float) -> None:
    import logging

    import numpy as np
    from hyperopt import STATUS_OK, Trials, fmin, hp, tpe

    logging.getLogger("hyperopt").setLevel(logging.WARNING)
    space: dict[str, Any] = {}
    for name, p in problem.space.items():
        if p["type"] == "float":
            space[name] = (
                hp.loguniform(name, np.log(p["low"]), np.log(p["high"]))
                if p.get("log")
                else hp.uniform(name, p["low"], p["high"])
            )
        elif p["type"] == "int":
            space[name] = (
                hp.qloguniform(name, np.log(p["low"]), np.log(p["high"]), 1)
                if p.get("log")
                else hp.quniform(name, p["low"], p["high"], 1)
            )
        else:
            space[name] = hp.choice(name, p["choices"])

    def objective(config: dict[str, Any]) -> dict[str, Any]:
        config = {n: int(v) if problem.space[n]["type"] == "int" else v for n, v in config.items()}
        used, loss = _last(steps(problem, config))
        trace.add(loss, used, time.perf_counter() - t0, True)
        return {"loss": loss, "status": STATUS_OK}

    fmin(
        objective,
        space,
        algo=tpe.suggest,
        max_evals=trials,
        trials=Trials(),
        rstate=np.random.default_rng(seed),
        show_progressbar=False,
    )
