"""Does tuner keep up at 16 and 64 trials in flight? Its bookkeeping against bare Ray Tune.

N trials that sleep 1 s and report once, random search, fractional CPUs so that 16 or
64 run at once on a local Ray, in one run:

- tuner: `tuner.create_study(...).run()`, every trial and result recorded in SQLite;
- bare Ray Tune: the same function, same resources, same concurrency, actors reused;
- ideal: N x 1 s / in flight.

Then the write rate of the storage alone: results per second through `Storage.write`
in the recorder's batch shape, into SQLite and PostgreSQL.

    python -m bench.bookkeeping [--trials 320] [--postgres URL] [--out bench/RESULTS.md]
    python -m bench.bookkeeping --cluster [...]   # on a 3-node cluster on 127.0.0.1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench._results import publish, timed_study


def objective(config: dict) -> None:
    import tuner

    time.sleep(1.0)
    tuner.report(step=1, loss=config["x"] ** 2)


def run_tuner(
    trials: int, in_flight: int, cpus: float, storage: str | None = None, address: str | None = None
) -> float:
    """tuner's wall time; into a throwaway SQLite file, or `storage` (on `address`)."""
    import tuner

    spec = {
        "name": f"bookkeeping-{in_flight}-{time.time_ns()}",
        "metric": "loss",
        "trainer": {"kind": "python", "function": objective, "max_steps": 1},
        "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "search": {"algorithm": "random", "num_trials": trials, "max_concurrent": in_flight},
        "resources": {"cpus_per_trial": cpus, "address": address},
    }
    if storage is None:
        seconds, done = timed_study(spec)
    else:
        study = tuner.create_study(spec, storage=storage)
        started = time.perf_counter()
        study.run(progress=False)
        seconds, done = time.perf_counter() - started, study.trials()
    assert sum(t.state == "completed" for t in done) == trials
    return seconds


def run_raytune(trials: int, in_flight: int, cpus: float) -> float:
    from ray import tune

    def trainable(config: dict) -> None:
        time.sleep(1.0)
        tune.report({"loss": config["x"] ** 2})

    with tempfile.TemporaryDirectory() as d:
        started = time.perf_counter()
        result = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus}),
            param_space={"x": tune.uniform(-1.0, 1.0)},
            tune_config=tune.TuneConfig(
                num_samples=trials, max_concurrent_trials=in_flight, reuse_actors=True
            ),
            run_config=tune.RunConfig(storage_path=d, verbose=0),
        ).fit()
        seconds = time.perf_counter() - started
    assert len(result) == trials
    return seconds


def write_rate(url: str, trials: int = 200, results: int = 250, batch: int = 500) -> float:
    """Results per second through Storage.write, batches as the recorder makes them."""
    from tuner.storage import Storage, TrialFinished, TrialResult, TrialStarted

    t0 = datetime.now(UTC)
    with Storage(url) as storage:
        name = f"rate-{time.time_ns()}"
        sid = storage.create_study(
            name, spec={"name": name, "search_space": {}}, metric="loss", mode="min",
            algorithm="random", scheduler="none", num_trials=trials,
        ).id  # fmt: skip
        storage.write([TrialStarted(sid, n, {"x": n / trials}, t0) for n in range(trials)])
        events = [
            TrialResult(sid, n, step, {"loss": 1.0 / (step + 1), "acc": 0.5})
            for step in range(results)
            for n in range(trials)
        ]
        started = time.perf_counter()
        for i in range(0, len(events), batch):
            storage.write(events[i : i + batch])
        seconds = time.perf_counter() - started
        storage.write([TrialFinished(sid, n, "completed", t0, 1.0, {}, 0.0) for n in range(trials)])
        storage.delete_study(name)
    return len(events) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=320)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--out", type=Path, default=None, help="append a section to this file")
    parser.add_argument(
        "--cluster", action="store_true",
        help="run on a three-node Ray cluster on 127.0.0.1 (tests/cluster), tuner into "
        "PostgreSQL (a fresh schema of --postgres)",
    )  # fmt: skip
    parser.add_argument(
        "--pairs", type=int, default=2,
        help="--cluster: runs of each way (tuner and bare Ray Tune alternate which goes first)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.cluster:
        run_on_cluster(args)
        return

    import ray

    from tuner._ray import ensure_ray

    ensure_ray(None)  # one Ray for every run; its start-up is not counted
    cpus = float(ray.cluster_resources().get("CPU", 2))
    rows = []
    for k in args.in_flight:
        per_trial = cpus / k
        run_raytune(k, k, per_trial)  # warm-up: start the k worker processes
        tuner_s = run_tuner(args.trials, k, per_trial)
        print(f"{k} in flight: tuner {tuner_s:.1f} s", flush=True)
        raytune_s = run_raytune(args.trials, k, per_trial)
        print(f"{k} in flight: bare Ray Tune {raytune_s:.1f} s", flush=True)
        ideal = args.trials * 1.0 / k
        rows.append(
            f"| {k} | {per_trial:g} | {tuner_s:.1f} | {raytune_s:.1f} | {ideal:.1f} | "
            f"{tuner_s / raytune_s:.2f}x |"
        )
    rates = []
    with tempfile.TemporaryDirectory() as d:
        rates.append(("SQLite (file, WAL)", write_rate(f"sqlite:///{d}/rate.db")))
    try:
        rates.append(("PostgreSQL (127.0.0.1)", write_rate(args.postgres)))
    except Exception as e:  # no server: say so in the table
        print(f"PostgreSQL skipped: {e}")
    for name, rate in rates:
        print(f"{name}: {rate:,.0f} results/s", flush=True)

    lines = [
        f"{args.trials} trials that sleep 1 s and report once, random search, local Ray with "
        f"{cpus:g} CPUs, fractional CPUs per trial; tuner records every trial in SQLite.",
        "",
        "| in flight | CPUs a trial | tuner s | bare Ray Tune s | ideal s | tuner / Ray Tune |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Results written per second by `Storage.write` (200 trials x 250 results, batches "
        "of 500 as the recorder makes them):",
        "",
        "| database | results/s |",
        "|---|---|",
        *[f"| {name} | {rate:,.0f} |" for name, rate in rates],
    ]
    publish(args.out, "Bookkeeping at 16 and 64 trials in flight", lines)


def _runs(seconds: list[float]) -> str:
    return f"{min(seconds):.1f} ({', '.join(f'{s:.1f}' for s in seconds)})"


def run_on_cluster(args: argparse.Namespace) -> None:
    """The same comparison on a head (1 CPU) and two workers (1 and 2 CPUs), all on
    127.0.0.1 with token auth; tuner records into PostgreSQL, as a cluster's study does."""
    import os

    from tests.cluster._cluster import LocalCluster, NodeSpec

    cluster = LocalCluster(NodeSpec(cpus=1), [NodeSpec(cpus=1), NodeSpec(cpus=2)], dashboard=False)
    # The driver's token, before Ray is imported (it reads it once).
    os.environ.update({k: v for k, v in cluster.env.items() if k.startswith("RAY_AUTH")})

    import ray

    from tests.conftest import postgres_schema
    from tuner._ray import ensure_ray

    with cluster, postgres_schema(args.postgres, prefix="bench") as storage:
        ensure_ray(cluster.address)
        cpus = float(ray.cluster_resources().get("CPU", 4))
        rows = []
        for k in args.in_flight:
            per_trial = cpus / k
            run_raytune(k, k, per_trial)  # warm-up
            # Pairs, order alternated (tuner first, then Ray Tune first): the second run
            # of a pair finds the worker processes the first one started.
            tuner_runs: list[float] = []
            raytune_runs: list[float] = []
            for pair in range(args.pairs):
                for way in ("tuner", "raytune") if pair % 2 == 0 else ("raytune", "tuner"):
                    if way == "tuner":
                        tuner_runs.append(
                            run_tuner(args.trials, k, per_trial, storage, cluster.address)
                        )
                    else:
                        raytune_runs.append(run_raytune(args.trials, k, per_trial))
                print(
                    f"cluster, {k} in flight, pair {pair + 1}: tuner {tuner_runs[-1]:.1f} s, "
                    f"bare Ray Tune {raytune_runs[-1]:.1f} s",
                    flush=True,
                )
            t_best, r_best = min(tuner_runs), min(raytune_runs)
            t_med, r_med = statistics.median(tuner_runs), statistics.median(raytune_runs)
            rows.append(
                f"| {k} | {per_trial:g} | {_runs(tuner_runs)} | {_runs(raytune_runs)} | "
                f"{args.trials / k:.1f} | {t_best / r_best:.2f}x | {t_med / r_med:.2f}x |"
            )
        ray.shutdown()
    lines = [
        f"{args.trials} trials that sleep 1 s and report once, random search, {args.pairs} "
        "pairs of runs (order alternated within each pair), on a "
        f"three-node Ray cluster on 127.0.0.1 ({cpus:g} CPUs: 1 + 1 + 2, on this machine's "
        "cores), fractional CPUs per trial; tuner records every trial in PostgreSQL.",
        "",
        "| in flight | CPUs a trial | tuner s, best (runs) | bare Ray Tune s, best (runs) | "
        "ideal s | tuner / Ray Tune, best | tuner / Ray Tune, median |",
        "|---|---|---|---|---|---|---|",
        *rows,
    ]
    publish(args.out, "Bookkeeping on a three-node cluster into PostgreSQL", lines)


if __name__ == "__main__":
    main()
