"""Does tuner keep up at 16 and 64 trials in flight? Its bookkeeping against bare Ray Tune.

N trials that sleep 1 s and report once, random search, fractional CPUs so that 16 or
64 run at once on a local Ray, in pairs of runs (which way goes first alternates):

- tuner: `tuner.create_study(...).run()`, every trial and result recorded in SQLite;
- bare Ray Tune: the same function, same resources, same concurrency, actors reused;
- ideal: N x 1 s / in flight.

Each run also counts the trial actors Ray started for it (Ray's actor table: every
trainable actor created during the run, alive or dead): a study should keep its actors
from trial to trial, starting at most in-flight + 2 of them. Goal (issue 20): tuner at
most in-flight + 2 actors and at most 0.8x bare Ray Tune's median time.

Then the write rate of the storage alone: results per second through `Storage.write`
in the recorder's batch shape, into SQLite and PostgreSQL.

    python -m bench.bookkeeping [--trials 320] [--in-flight 16 64] [--pairs 3]
        [--postgres URL] [--out bench/RESULTS.md]
    python -m bench.bookkeeping --cluster [...]   # on a 3-node cluster on 127.0.0.1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bench._results import publish, timed_study

if TYPE_CHECKING:
    from collections.abc import Callable


def objective(config: dict) -> None:
    import tuner

    time.sleep(1.0)
    tuner.report(step=1, loss=config["x"] ** 2)


def trial_actors() -> set[str]:
    """The ids of every trial actor (a function trainable's) Ray has created in this
    session, alive or dead.

    Reads Ray's actor table through ``ray._private.state`` (a private name, and the only
    one here: the public state API needs the dashboard, which tuner does not start).
    """
    from ray._private import state

    return {
        actor_id
        for actor_id, actor in state.actors().items()
        if str(actor.get("ActorClassName", "")).endswith("ImplicitFunc")
    }


def run_tuner(
    trials: int, in_flight: int, cpus: float, storage: str | None = None, address: str | None = None
) -> tuple[float, int]:
    """tuner's wall time and the trial actors it started; into a throwaway SQLite file,
    or `storage` (on `address`)."""
    import tuner

    spec = {
        "name": f"bookkeeping-{in_flight}-{time.time_ns()}",
        "metric": "loss",
        "trainer": {"kind": "python", "function": objective, "max_steps": 1},
        "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "search": {"algorithm": "random", "num_trials": trials, "max_concurrent": in_flight},
        "resources": {"cpus_per_trial": cpus, "address": address},
    }
    before = trial_actors()
    if storage is None:
        seconds, done = timed_study(spec)
    else:
        study = tuner.create_study(spec, storage=storage)
        started = time.perf_counter()
        study.run(progress=False)
        seconds, done = time.perf_counter() - started, study.trials()
    assert sum(t.state == "completed" for t in done) == trials
    return seconds, len(trial_actors() - before)


def run_raytune(trials: int, in_flight: int, cpus: float) -> tuple[float, int]:
    """Bare Ray Tune's wall time and the trial actors it started."""
    from ray import tune

    def trainable(config: dict) -> None:
        time.sleep(1.0)
        tune.report({"loss": config["x"] ** 2})

    before = trial_actors()
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
    return seconds, len(trial_actors() - before)


def pairs(
    n: int, tuner_run: Callable[[], tuple[float, int]], raytune_run: Callable[[], tuple[float, int]]
) -> tuple[list[tuple[float, int]], list[tuple[float, int]]]:
    """`n` pairs of runs, tuner first in even pairs and bare Ray Tune first in odd ones
    (the second run of a pair finds the worker processes the first one left)."""
    tuner_runs: list[tuple[float, int]] = []
    raytune_runs: list[tuple[float, int]] = []
    for pair in range(n):
        for way in ("tuner", "raytune") if pair % 2 == 0 else ("raytune", "tuner"):
            if way == "tuner":
                tuner_runs.append(tuner_run())
            else:
                raytune_runs.append(raytune_run())
        (t_s, t_a), (r_s, r_a) = tuner_runs[-1], raytune_runs[-1]
        print(
            f"pair {pair + 1}: tuner {t_s:.1f} s, {t_a} actors; "
            f"bare Ray Tune {r_s:.1f} s, {r_a} actors (load {_load()})",
            flush=True,
        )
    return tuner_runs, raytune_runs


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def _row(
    k: int, per_trial: float, trials: int, tuner_runs: list[tuple[float, int]],
    raytune_runs: list[tuple[float, int]],
) -> tuple[str, bool]:  # fmt: skip
    """A table row and whether it meets the goal (at most k + 2 actors in every tuner
    run, tuner's median time at most 0.8x bare Ray Tune's)."""
    t_med = statistics.median(s for s, _ in tuner_runs)
    r_med = statistics.median(s for s, _ in raytune_runs)
    most = max(a for _, a in tuner_runs)
    met = most <= k + 2 and t_med <= 0.8 * r_med
    row = (
        f"| {k} | {per_trial:g} | {_runs([s for s, _ in tuner_runs])} | "
        f"{_runs([s for s, _ in raytune_runs])} | {trials / k:.1f} | "
        f"**{t_med / r_med:.2f}x** | {', '.join(str(a) for _, a in tuner_runs)} | "
        f"{', '.join(str(a) for _, a in raytune_runs)} | {'yes' if met else 'no'} |"
    )
    return row, met


HEADER = [
    "| in flight | CPUs a trial | tuner s, median (runs) | bare Ray Tune s, median (runs) | "
    "ideal s | tuner / Ray Tune, medians | tuner actors started | bare Ray Tune actors "
    "started | goal met |",
    "|---|---|---|---|---|---|---|---|---|",
]


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
        "--pairs", type=int, default=3,
        help="pairs of runs, tuner and bare Ray Tune (which goes first alternates)",
    )  # fmt: skip
    parser.add_argument(
        "--no-write-rate", action="store_true", help="leave out the storage write rates"
    )
    args = parser.parse_args()
    if args.cluster:
        run_on_cluster(args)
        return

    import ray

    from tuner._ray import ensure_ray

    command = "python -m bench.bookkeeping " + " ".join(sys.argv[1:])
    began, load_before = datetime.now(UTC), _load()
    ensure_ray(None)  # one Ray for every run; its start-up is not counted
    cpus = float(ray.cluster_resources().get("CPU", 2))
    rows, met = [], []
    for k in args.in_flight:
        per_trial = cpus / k
        run_raytune(k, k, per_trial)  # warm-up: start the k worker processes
        tuner_runs, raytune_runs = pairs(
            args.pairs,
            lambda k=k, c=per_trial: run_tuner(args.trials, k, c),
            lambda k=k, c=per_trial: run_raytune(args.trials, k, c),
        )
        row, ok = _row(k, per_trial, args.trials, tuner_runs, raytune_runs)
        rows.append(row)
        met.append(ok)
    ended, load_after = datetime.now(UTC), _load()
    rates = []
    if not args.no_write_rate:
        with tempfile.TemporaryDirectory() as d:
            rates.append(("SQLite (file, WAL)", write_rate(f"sqlite:///{d}/rate.db")))
        try:
            rates.append(("PostgreSQL (127.0.0.1)", write_rate(args.postgres)))
        except Exception as e:  # no server: say so in the table
            print(f"PostgreSQL skipped: {e}")
        for name, rate in rates:
            print(f"{name}: {rate:,.0f} results/s", flush=True)

    lines = [
        f"`{command}`, {began:%Y-%m-%d %H:%M}-{ended:%H:%M} UTC, load average (1/5/15 min) "
        f"{load_before} at the start and {load_after} at the end. {args.trials} trials that "
        f"sleep 1 s and report once, random search, local Ray with {cpus:g} CPUs, fractional "
        f"CPUs per trial; tuner records every trial in SQLite. {args.pairs} pairs of runs, "
        "which way goes first alternating, after one bare Ray Tune warm-up; actors started: "
        "trainable actors Ray created during the run (its actor table), one number a run.",
        "",
        *HEADER,
        *rows,
        "",
        f"Goal (at most in-flight + 2 actors, at most 0.8x bare Ray Tune): "
        f"{'met' if all(met) else 'not met'}.",
    ]
    if rates:
        lines += [
            "",
            "Results written per second by `Storage.write` (200 trials x 250 results, "
            "batches of 500 as the recorder makes them):",
            "",
            "| database | results/s |",
            "|---|---|",
            *[f"| {name} | {rate:,.0f} |" for name, rate in rates],
        ]
    publish(args.out, "Bookkeeping: trial actors and wall time against bare Ray Tune", lines)


def _runs(seconds: list[float]) -> str:
    return f"{statistics.median(seconds):.1f} ({', '.join(f'{s:.1f}' for s in seconds)})"


def run_on_cluster(args: argparse.Namespace) -> None:
    """The same comparison on a head (1 CPU) and two workers (1 and 2 CPUs), all on
    127.0.0.1 with token auth; tuner records into PostgreSQL, as a cluster's study does."""
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
            tuner_runs, raytune_runs = pairs(
                args.pairs,
                lambda k=k, c=per_trial: run_tuner(args.trials, k, c, storage, cluster.address),
                lambda k=k, c=per_trial: run_raytune(args.trials, k, c),
            )
            rows.append(_row(k, per_trial, args.trials, tuner_runs, raytune_runs)[0])
        ray.shutdown()
    lines = [
        f"{args.trials} trials that sleep 1 s and report once, random search, {args.pairs} "
        "pairs of runs (order alternated within each pair), on a "
        f"three-node Ray cluster on 127.0.0.1 ({cpus:g} CPUs: 1 + 1 + 2, on this machine's "
        "cores), fractional CPUs per trial; tuner records every trial in PostgreSQL.",
        "",
        *HEADER,
        *rows,
    ]
    publish(args.out, "Bookkeeping on a three-node cluster into PostgreSQL", lines)


if __name__ == "__main__":
    main()
