"""Data-parallel xgboost: tuner's Ray Train worker groups against plain xgboost and a
bare Ray Train job per trial, in one run.

- plain xgboost: one process, 2 threads, QuantileDMatrix, the same rounds and the same
  per-round evaluation (train and valid) that a tuner trial reports;
- tuner, 2 workers: a study of 3 trials on a worker group of two Ray Train workers (one
  thread each); the first trial also pays for starting the group and binning the data;
- tuner, 1 worker: the same 3 trials in one process with 2 threads (no Ray Train);
- fixed cost per trial: a study of 1-round trials on small data, so a trial's duration
  is what tuner adds around the training;
- bare Ray Train: one XGBoostTrainer job per trial with Ray's default settings (what
  running Ray Train by hand inside each Ray Tune trial costs): an empty job, and a
  10-round job reporting every round.

    python -m bench.data_parallel [--rows 1000000] [--rounds 100] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench._results import append_section, timed_study

FEATURES = 40
PARAMS = {"objective": "binary:logistic", "eval_metric": "logloss", "max_depth": 6}


def dataset(rows: int) -> dict:
    return {"source": "synthetic", "n_rows": rows, "n_features": FEATURES, "seed": 0}


def plain(rows: int, rounds: int) -> tuple[float, float]:
    import xgboost as xgb

    from tuner.data import load_dataset
    from tuner.spec import DatasetSpec

    data = load_dataset(DatasetSpec(**dataset(rows)))
    started = time.perf_counter()
    dtrain = xgb.QuantileDMatrix(data.X_train, label=data.y_train, nthread=2)
    dvalid = xgb.QuantileDMatrix(data.X_valid, label=data.y_valid, ref=dtrain, nthread=2)
    built = time.perf_counter()
    xgb.train(
        {**PARAMS, "eta": 0.3, "nthread": 2, "verbosity": 0},
        dtrain,
        rounds,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        verbose_eval=False,
    )
    return built - started, time.perf_counter() - built


def study(name: str, rows: int, rounds: int, workers: int, cpus: int, trials: int) -> dict:

    spec = {
        "name": name,
        "metric": "valid_logloss",
        "trainer": {
            "kind": "xgboost",
            "num_workers": workers,
            "max_rounds": rounds,
            "dataset": dataset(rows),
            "params": {"max_depth": PARAMS["max_depth"]},
        },
        "search_space": {"eta": {"type": "float", "values": [0.3, 0.2, 0.1, 0.05, 0.02][:trials]}},
        "search": {"algorithm": "grid", "max_concurrent": 1},
        "resources": {"cpus_per_trial": cpus},
    }
    wall, trials_ = timed_study(spec)
    assert all(t.state == "completed" and t.steps == rounds for t in trials_), trials_
    assert all(t.metrics["workers"] == workers for t in trials_)
    durations = [t.duration_s for t in trials_]
    return {"wall": wall, "first": durations[0], "warm": durations[1:]}


def bare_ray_train(rows: int, rounds: int) -> float:
    """One Ray Train job, Ray's default settings, data as object-store refs."""
    import ray
    from ray.train import RunConfig, ScalingConfig
    from ray.train.xgboost import XGBoostTrainer

    from tuner.data import load_dataset
    from tuner.spec import DatasetSpec

    data = load_dataset(DatasetSpec(**dataset(rows)))
    half = len(data.X_train) // 2
    shards = [
        (ray.put(data.X_train[:half]), ray.put(data.y_train[:half])),
        (ray.put(data.X_train[half:]), ray.put(data.y_train[half:])),
    ]

    def per_worker(cfg: dict) -> None:
        import xgboost as xgb
        from ray import train

        if cfg["rounds"] == 0:
            return
        X, y = ray.get(list(cfg["shards"][train.get_context().get_world_rank()]))
        dtrain = xgb.QuantileDMatrix(X, label=y, nthread=1)

        class Report(xgb.callback.TrainingCallback):
            def after_iteration(self, model, epoch, evals_log):
                train.report({"round": epoch + 1})
                return False

        xgb.train({**PARAMS, "nthread": 1}, dtrain, cfg["rounds"], callbacks=[Report()])

    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        XGBoostTrainer(
            per_worker,
            train_loop_config={"shards": shards, "rounds": rounds},
            scaling_config=ScalingConfig(num_workers=2, resources_per_worker={"CPU": 1}),
            run_config=RunConfig(name=f"bare-{rounds}", storage_path=d),
        ).fit()
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rows, rounds = args.rows, args.rounds
    load = os.getloadavg()[0]

    from tuner._ray import ensure_ray

    ensure_ray(None)
    build, plain_train = plain(rows, rounds)
    print(f"plain xgboost: DMatrix {build:.1f} s, train {plain_train:.1f} s", flush=True)
    two = study("dp-two", rows, rounds, workers=2, cpus=1, trials=3)
    print("tuner 2 workers", two, flush=True)
    one = study("dp-one", rows, rounds, workers=1, cpus=2, trials=3)
    print("tuner 1 worker", one, flush=True)
    fixed = study("dp-fixed", 10_000, 1, workers=2, cpus=1, trials=5)
    print("fixed", fixed, flush=True)
    empty = bare_ray_train(10_000, 0)
    ten = bare_ray_train(10_000, 10)
    print(f"bare Ray Train: empty job {empty:.1f} s, 10 rounds {ten:.1f} s", flush=True)

    two_warm, one_warm = statistics.mean(two["warm"]), statistics.mean(one["warm"])
    fixed_warm = statistics.mean(fixed["warm"])
    table = "\n".join(
        [
            f"`python -m bench.data_parallel --rows {rows} --rounds {rounds}` "
            f"({rows:,} rows x {FEATURES} features, {rounds} rounds, max_depth 6, train and "
            f"valid evaluated every round; load average {load:.1f} at the start), "
            f"{time.strftime('%Y-%m-%d')}:",
            "",
            "| way | per trial s | vs plain xgboost |",
            "|---|---|---|",
            f"| plain xgboost, 2 threads (train only; binning {build:.1f} s more) "
            f"| {plain_train:.1f} | 1.00x |",
            f"| tuner, 2 Ray Train workers x 1 thread (trials 2-3) | {two_warm:.1f} "
            f"| {two_warm / plain_train:.2f}x |",
            f"| tuner, 2 workers, first trial (+ group start, binning) | {two['first']:.1f} "
            f"| {two['first'] / plain_train:.2f}x |",
            f"| tuner, 1 worker x 2 threads (trials 2-3) | {one_warm:.1f} "
            f"| {one_warm / plain_train:.2f}x |",
            f"| tuner, 1 worker, first trial (+ binning) | {one['first']:.1f} "
            f"| {one['first'] / plain_train:.2f}x |",
            "",
            "Fixed cost (10,000 rows, 1 round a trial, 2 workers): "
            f"**{fixed_warm:.2f} s a trial** once the worker group runs "
            f"(trials 2-5: {', '.join(f'{d:.2f}' for d in fixed['warm'])}); the first trial, "
            f"which starts the group, took {fixed['first']:.1f} s. "
            f"Bare Ray Train, one job per trial with Ray's defaults: an empty 2-worker job "
            f"{empty:.1f} s; a 10-round job reporting every round {ten:.1f} s "
            f"({(ten - empty) / 10:.1f} s a round, the controller's 2 s poll).",
        ]
    )
    print(table)
    append_section(args.out, "Data-parallel xgboost", table)


if __name__ == "__main__":
    main()
