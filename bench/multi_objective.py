"""Several objectives with trials in flight: does the searcher still find the front?

ZDT1 (4 variables in [0, 1]; f1 = x0, f2 = g (1 - sqrt(f1 / g)), g = 1 + 3 sum(x1..x3);
Pareto front f2 = 1 - sqrt(f1) at x1 = x2 = x3 = 0). Hypervolume of the values found,
reference point (1.1, 1.1) (the true front's is 0.877), mean over seeds:

- optuna-sequential: the same Optuna sampler tuner builds (tuner.search), run one trial
  at a time in memory with ``study.optimize`` (the reference);
- tuner-4 (simulated): tuner's searcher (``OptunaSearcher``) driven as Ray Tune drives
  it with 4 trials always in flight (suggest, then the oldest trial completes with
  every objective's value in its result), without Ray;
- tuner-ray-4: a tuner study through Ray with ``max_concurrent: 4`` (few seeds: slow).

With one trial in flight the simulated searcher makes exactly the sequential run's
trials (tests/search/test_multi_objective_search.py), so the gap is what trials in
flight cost.

    python -m bench.multi_objective [--algorithms tpe,nsga2] [--seeds 20]
        [--trials tpe=100,nsga2=500] [--ray-seeds 0] [--out FILE]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._results import publish

N_VARS = 4
NAMES = [f"x{i}" for i in range(N_VARS)]
REFERENCE = (1.1, 1.1)


def zdt1(config: dict[str, float]) -> tuple[float, float]:
    xs = [config[n] for n in NAMES]
    f1 = xs[0]
    g = 1 + 9 * sum(xs[1:]) / (N_VARS - 1)
    return f1, g * (1 - math.sqrt(f1 / g))


def objective(config: dict[str, float]) -> None:
    """ZDT1 as a tuner python trainer."""
    import tuner

    f1, f2 = zdt1(config)
    tuner.report(step=1, f1=f1, f2=f2)


def hypervolume(points: list[tuple[float, float]]) -> float:
    import numpy as np

    from tuner._compat.optuna import compute_hypervolume

    ref = np.array(REFERENCE)
    inside = np.array([p for p in points if p[0] < ref[0] and p[1] < ref[1]])
    return 0.0 if len(inside) == 0 else compute_hypervolume(inside, ref, assume_pareto=False)


def spec(algorithm: str, seed: int, trials: int = 20, name: str = "zdt1") -> dict[str, Any]:
    return {
        "name": name,
        "objectives": [{"metric": "f1", "mode": "min"}, {"metric": "f2", "mode": "min"}],
        "trainer": {"kind": "python", "function": objective, "max_steps": 1},
        "search_space": {n: {"type": "float", "low": 0.0, "high": 1.0} for n in NAMES},
        "search": {"algorithm": algorithm, "seed": seed, "num_trials": trials, "max_concurrent": 4},
    }


def simulated(algorithm: str, seed: int, trials: int, in_flight: int = 4) -> float:
    """tuner's searcher with `in_flight` trials pending, the oldest completing first."""
    from tuner.search import build_searcher
    from tuner.spec import load_spec

    searcher = build_searcher(load_spec(spec(algorithm, seed)))
    pending: list[tuple[str, dict[str, Any]]] = []
    points: list[tuple[float, float]] = []
    started = 0
    while started < trials or pending:
        while started < trials and len(pending) < in_flight:
            tid = str(started)
            pending.append((tid, searcher.suggest(tid)))  # type: ignore[arg-type]
            started += 1
        tid, config = pending.pop(0)
        f1, f2 = zdt1(config)
        points.append((f1, f2))
        searcher.on_trial_complete(tid, {"f1": f1, "f2": f2, "training_iteration": 1})
    return hypervolume(points)


def sequential(algorithm: str, seed: int, trials: int) -> float:
    """The sampler tuner builds for `algorithm`, one trial at a time in Optuna."""
    import optuna

    from tuner.search import build_searcher
    from tuner.spec import load_spec

    sampler = build_searcher(load_spec(spec(algorithm, seed)))._sampler  # type: ignore[attr-defined]
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(
        lambda t: zdt1({n: t.suggest_float(n, 0.0, 1.0) for n in NAMES}), n_trials=trials
    )
    return hypervolume([tuple(t.values) for t in study.trials])  # type: ignore[misc]


def through_ray(algorithm: str, seed: int, trials: int) -> float:
    import tempfile

    import tuner

    with tempfile.TemporaryDirectory() as d:
        study = tuner.create_study(
            spec(algorithm, seed, trials, name=f"zdt1-{algorithm}-{seed}"),
            storage=f"sqlite:///{d}/bench.db",
        )
        study.run(progress=False)
        return hypervolume([t.values for t in study.trials(["completed"])])  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algorithms", default="tpe,nsga2")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--trials", default="tpe=100,nsga2=500")
    parser.add_argument("--ray-seeds", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    budget = dict(item.split("=") for item in args.trials.split(","))
    lines = [
        "| algorithm | trials | seeds | optuna-sequential HV | tuner-4 (simulated) HV | ratio "
        "| tuner-ray-4 HV (seeds) | ratio to sequential, same seeds | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for algorithm in args.algorithms.split(","):
        trials = int(budget[algorithm])
        t0 = time.perf_counter()
        seq = [sequential(algorithm, s, trials) for s in range(args.seeds)]
        sim = [simulated(algorithm, s, trials) for s in range(args.seeds)]
        ray_cell = ratio_cell = "not run"
        if args.ray_seeds:
            ray = [through_ray(algorithm, s, trials) for s in range(args.ray_seeds)]
            same = statistics.mean(seq[: args.ray_seeds])
            ray_cell = f"{statistics.mean(ray):.4f} ({args.ray_seeds})"
            ratio_cell = f"{statistics.mean(ray) / same:.3f}"
        lines.append(
            f"| {algorithm} | {trials} | {args.seeds} | {statistics.mean(seq):.4f} | "
            f"{statistics.mean(sim):.4f} | {statistics.mean(sim) / statistics.mean(seq):.3f} | "
            f"{ray_cell} | {ratio_cell} | {time.perf_counter() - t0:.0f} |"
        )
    load = os.getloadavg()[0]
    title = (
        f"Multi-objective search with 4 in flight, ZDT1 ({datetime.now(UTC):%Y-%m-%d %H:%M} "
        f"UTC, load average {load:.1f})"
    )
    publish(args.out, title, lines)


if __name__ == "__main__":
    main()
