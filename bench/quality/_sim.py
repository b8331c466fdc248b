"""Early stopping replayed in one process: tuner's own searcher and scheduler, no Ray.

    python -m bench.quality._sim --problems xgb-breast_cancer,xgb-digits \
        --ways tuner-tpe,tuner-tpe+extrapolate+g5 --seeds 10 [--trials 30]

With one trial in flight a study is a sequence: the searcher suggests a config, the
trial reports one value a step, the scheduler (and `early_stopping.patience`) may end
it, the searcher is told. This replays exactly that with the objects a study builds
(:func:`tuner.search.build_searcher`, :func:`tuner.schedulers.build_scheduler`, the
spec of bench/quality/_ways.py's ``tuner-...`` way), calling them in the order Ray
Tune's controller does, so a seed gives the numbers the Ray benchmark gives, in a
minute instead of ten. Each config's curve is computed once and cached (`--cache`), so
ways that propose the same configs share the training. With `--lazy` a config is trained
only as far as some way ran it (a trial stopped at round 3 costs 3 rounds, not the
budget), which makes 10 seeds of the slow problems (xgb-synthetic-200k, sgd-stream-100k:
about 7 s a whole trial) affordable; the "would have won" column, which needs each
stopped trial's whole curve, is then left out.

A way ``tuner-tpe@1000`` is ``tuner-tpe`` with the searcher's seed + 1000: its ratio to
``tuner-tpe`` is how far two seeds of one way differ, the noise floor a rule's ratio is
read against. The table gives the median ratio's 90% bootstrap interval over the seeds,
and in how many seeds a trial that was stopped would have beaten the best that
completed, run to the end (a stop the rule got wrong, not the search's path).

It is a research tool for choosing a rule, not a claim: bench/RESULTS.md's claims come
from `python -m bench.quality`, where Ray Tune runs every trial.
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.quality._problems import Problem, make, steps
from bench.quality._report import median_ci
from bench.quality._ways import parse, seed_offset, trial_factor, tuner_spec

_Key = tuple[str, tuple[tuple[str, Any], ...]]
_CACHE: dict[_Key, list[float]] = {}  # the losses computed so far of each config, from step 1
_RUNNING: dict[_Key, Iterator[tuple[int, float]]] = {}  # runs that can give more steps


class _Trial:
    def __init__(self, trial_id: str) -> None:
        self.trial_id = trial_id


def curve(problem: Problem, config: dict[str, Any], upto: int | None = None) -> list[float]:
    """The loss after each step of `config`'s run: all of them, or at least the first
    `upto` (trained only as far as that, and continued from there when asked for more)."""
    key = (problem.name, tuple(sorted(config.items())))
    done = _CACHE.setdefault(key, [])
    want = problem.max_steps if upto is None else min(upto, problem.max_steps)
    if len(done) < want:
        run = _RUNNING.get(key)
        if run is None:
            run = _RUNNING[key] = steps(problem, config)
            for _ in done:  # a prefix from --cache or an ended replay: train up to it again
                next(run)
        for _, loss in run:
            done.append(loss)
            if len(done) >= want:
                break
        if len(done) >= problem.max_steps:
            del _RUNNING[key]
    return done


def replay(
    way: str, problem: Problem, seed: int, trials: int, lazy: bool = False
) -> dict[str, Any]:
    """One study of `way` on `problem`; what bench.quality's stopping table counts.

    `lazy`: train each config only as far as the trial runs (see :func:`curve`); the
    result's ``best_stopped`` is then not known (infinite)."""
    from ray.tune.schedulers import TrialScheduler

    from tuner._report import TrialContext, plateau_rule
    from tuner.schedulers import build_scheduler
    from tuner.search import build_searcher
    from tuner.spec import load_spec

    _, alg, k, scheduler_name = parse(way)
    offset = seed_offset(way)[1]
    spec = load_spec(
        tuner_spec(problem, alg, k, scheduler_name, seed + offset, trials * trial_factor(way))
    )
    searcher = build_searcher(spec)
    searcher.set_search_properties(spec.metric, spec.mode, {})
    scheduler = build_scheduler(spec)
    scheduler.set_search_properties(spec.metric, spec.mode)
    keep_best = spec.early_stopping.trial_value == "best"
    finals: list[float] = []  # values of the trials that completed, in order
    used: list[int] = []
    configs: list[dict[str, Any]] = []  # what the searcher suggested, in order
    stops: list[int] = []
    missed: list[tuple[float, int, int]] = []  # (what a stopped trial would have ended at
    # run fully, the step it was stopped at, its number)
    for i in range(spec.search.num_trials):
        tid = f"t{i}"
        trial = _Trial(tid)
        config = searcher.suggest(tid)
        assert isinstance(config, dict)
        configs.append(config)
        budget = problem.max_steps
        losses = curve(problem, config, 1 if lazy else None)
        scheduler.on_trial_add(None, trial)
        context = TrialContext(metric="loss", plateau=plateau_rule(spec))
        stopped = False
        for t in range(1, budget + 1):
            if len(losses) < t:
                losses = curve(problem, config, t)
            loss = losses[t - 1]
            result = {"loss": loss, "training_iteration": t}
            decision = scheduler.on_trial_result(None, trial, result)
            if decision == TrialScheduler.STOP and t < budget:  # at the end: done
                # Ray's controller: the callbacks (tuner's notes the prune), then
                # stop_trial: the scheduler's and the searcher's on_trial_complete
                # (the searcher gets this result there, not in on_trial_result).
                searcher.note_pruned(tid)
                scheduler.on_trial_complete(None, trial, {**result, "done": True})
                searcher.on_trial_complete(tid, {**result, "done": True})
                stopped = True
                stops.append(t)
                if not lazy:
                    missed.append((min(losses) if keep_best else losses[-1], t, i))
                break
            searcher.on_trial_result(tid, result)
            if context.stalled(loss) or t == budget:
                result = {**result, "done": True}
                scheduler.on_trial_complete(None, trial, result)
                searcher.on_trial_complete(tid, result)
                break
        used.append(t)
        if not stopped:
            finals.append(min(losses[:t]) if keep_best else losses[t - 1])
    _RUNNING.clear()  # a stopped trial's booster and data; rarely asked for again
    return {
        "way": way,
        "seed": seed,
        "best": min(finals) if finals else float("inf"),
        "steps": sum(used),
        "completed": len(finals),
        "configs": configs,
        "stops": stops,
        # the best a stopped trial would have reached: below "best", the rule stopped a
        # trial that would have won; above, any gap to no stopping is the search's path
        "best_stopped": min(missed) if missed else (float("inf"), 0, 0),
    }


def main(argv: list[str] | None = None) -> None:
    import logging
    import warnings

    import optuna

    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("tuner").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="xgb-breast_cancer,xgb-digits")
    parser.add_argument("--ways", required=True)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-quality-sim.pkl"))
    parser.add_argument(
        "--lazy",
        action="store_true",
        help="train a config only as far as a trial runs it (no 'would have won' column)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every run here")
    args = parser.parse_args(argv)
    if args.cache.exists():
        _CACHE.update(pickle.loads(args.cache.read_bytes()))
    ways = args.ways.split(",")
    runs: list[dict[str, Any]] = []
    try:
        for name in args.problems.split(","):
            problem = make(name)
            base: dict[int, dict[str, Any]] = {}
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                for way in ways:
                    run = replay(way, problem, seed, args.trials, lazy=args.lazy)
                    run["problem"] = name
                    runs.append(run)
                    if way == ways[0]:
                        base[seed] = run
            print(f"\n{name} ({args.seeds} seeds, {args.trials} trials; vs {ways[0]})")
            print(
                "| way | best (median) | ratio per seed | median ratio [90% interval] | "
                "share of steps | a stopped trial would have won |"
            )
            print("|---|---|---|---|---|---|")
            for way in ways:
                mine = [r for r in runs if r["problem"] == name and r["way"] == way]
                ratios = [r["best"] / base[r["seed"]]["best"] for r in mine]
                shares = [r["steps"] / base[r["seed"]]["steps"] for r in mine]
                lo, hi = median_ci(ratios)
                missed = sum(r["best_stopped"][0] < r["best"] for r in mine)
                won = "-" if args.lazy else f"{missed} of {len(mine)} seeds"
                print(
                    f"| {way} | {statistics.median(r['best'] for r in mine):.4g} | "
                    f"{' '.join(f'{x:.3f}' for x in ratios)} | "
                    f"**{statistics.median(ratios):.3f}** [{lo:.3f}, {hi:.3f}] | "
                    f"**{statistics.median(shares):.2f}** | {won} |",
                    flush=True,
                )
    finally:
        args.cache.write_bytes(pickle.dumps(_CACHE))
    if args.json:
        args.json.write_text(json.dumps(runs))


if __name__ == "__main__":
    main()
