"""Tuning quality per unit of compute: tuner against bare Optuna, bare Ray Tune, hyperopt.

    python -m bench.quality --quick [--out FILE]        # under 5 minutes on 2 cores
    python -m bench.quality --preset medium [--out FILE]
    python -m bench.quality --preset full [--out FILE]  # about 45 minutes, not in CI
    python -m bench.quality --quick --tiny --out FILE   # what the test runs (~1 minute)

Four sections, each its peers side by side in one run (see bench/quality/__init__.py):
equal (equal trial budgets and equal wall time), parallel (1, 4, 8 trials in flight),
stopping (none, asha, hyperband, median, bohb) and warm (a study warm-started from an
earlier one against a cold one, bench/quality/_warm.py; its ways are algorithms). Seed s of a BBOB problem is its
instance s+1. Tables go to stdout and, with --out, are appended to FILE; PNG plots are
written to plots/ beside FILE (or into --plots).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from dataclasses import dataclass
from pathlib import Path

from bench._results import publish
from bench.quality import _report
from bench.quality._problems import Problem, make
from bench.quality._ways import Trace, run_way


@dataclass
class Section:
    name: str
    problems: list[str]
    ways: list[str]
    trials: int
    cost_s: float = 0.0
    source_trials: int = 0  # warm: the source study's trials (0: as many as trials)
    overlaps: tuple[str, ...] = ()  # warm: which overlaps (default: all)


def _bbob(functions: list[int], dims: list[int]) -> list[str]:
    return [f"bbob-f{f}-d{d}" for d in dims for f in functions]


SEQ = [
    "tuner-random",
    "tuner-tpe",
    "tuner-gp",
    "tuner-cmaes",
    "tuner-qmc",
    "tuner-auto",
    "optuna-random",
    "optuna-tpe",
    "optuna-gp",
    "optuna-cmaes",
    "optuna-qmc",
    "raytune-random",
    "raytune-optuna",
    "hyperopt-tpe",
]
# The full preset's equal section: tuner's random, cmaes and qmc gave bare Optuna's
# numbers on all 40 runs of the first full run (2026-11-28, bench/RESULTS.md), as tpe and
# gp did; their Ray runs (4 s each) are left out to keep the preset near an hour.
FULL_SEQ = [w for w in SEQ if w not in ("tuner-random", "tuner-cmaes", "tuner-qmc")]
# auto under hyperband is bohb; extrapolate and percentile as measured in bench/RESULTS.md
STOP = [
    "tuner-tpe",
    "tuner-tpe+asha",
    "tuner-tpe+hyperband",
    "tuner-tpe+median",
    "tuner-bohb",
    "tuner-tpe+extrapolate+g5",
    "tuner-tpe+percentile+g10+p10+best",
    # no stopping at another seed: how far two seeds of one way differ (the noise floor)
    "tuner-tpe@1000",
]

PRESETS: dict[str, tuple[int, list[Section]]] = {
    "quick": (
        2,
        [
            Section(
                "equal",
                ["bbob-f8-d2", "bbob-f15-d5"],
                ["tuner-tpe", "tuner-auto", "optuna-tpe", "raytune-optuna", "hyperopt-tpe"],
                20,
            ),
            Section(
                "parallel",
                ["bbob-f8-d2"],
                ["optuna-tpe", "tuner-tpe-1", "tuner-tpe-4"],
                16,
                cost_s=0.2,
            ),
            Section(
                "stopping",
                ["xgb-breast_cancer"],
                ["tuner-tpe", "tuner-tpe+hyperband", "tuner-bohb"],
                16,
            ),
            Section("warm", ["bbob-f8-d2"], ["tpe"], 10),
        ],
    ),
    # what the test runs: every section, one problem each, a few trials
    "tiny": (
        1,
        [
            Section(
                "equal",
                ["bbob-f1-d2"],
                ["tuner-auto", "optuna-tpe", "raytune-random", "hyperopt-tpe"],
                4,
            ),
            Section("parallel", ["bbob-f1-d2"], ["optuna-tpe", "tuner-tpe-1", "tuner-tpe-2"], 4),
            Section("stopping", ["xgb-breast_cancer"], ["tuner-tpe", "tuner-bohb"], 4),
            Section("warm", ["bbob-f1-d2"], ["tpe"], 3, overlaps=("same", "added+fixed")),
        ],
    ),
    # what bench/RESULTS.md records (about 25 minutes on 2 busy cores)
    "medium": (
        3,
        [
            Section("equal", ["bbob-f1-d5", "bbob-f8-d2", "bbob-f15-d5", "bbob-f21-d10"], SEQ, 40),
            Section(
                "parallel",
                ["bbob-f8-d5"],
                [
                    "optuna-tpe",
                    "optuna-gp",
                    "tuner-tpe-1",
                    "tuner-tpe-4",
                    "tuner-tpe-8",
                    "tuner-gp-1",
                    "tuner-gp-4",
                    "tuner-gp-8",
                    "tuner-qmc-8",
                ],
                30,
                cost_s=0.5,
            ),
            Section(
                "stopping", ["xgb-breast_cancer", "xgb-digits", "sgd-stream-100k"], STOP[:5], 30
            ),
            Section("warm", ["bbob-f8-d5", "bbob-f21-d5", "xgb-breast_cancer"], ["tpe", "gp"], 20),
        ],
    ),
    # 10 seeds (BBOB instances 1-10): 41 min 44 s on 2 cores as one run (bench/RESULTS.md),
    # before tuner-tpe@1000 joined the stopping section (about 1.5 minutes more). The
    # slower problems (xgb-digits, sgd-stream-100k, pipeline-digits: 0.1-5 s a trial;
    # xgb-synthetic-200k: 7.5 s) and the warm section (three studies a seed) are left to
    # --sections/--problems runs of their own.
    "full": (
        10,
        [
            Section(
                "equal", ["bbob-f8-d2", "bbob-f15-d5", "bbob-f21-d5", "bbob-f1-d10"], FULL_SEQ, 40
            ),
            Section(
                "parallel",
                ["bbob-f8-d5"],
                [
                    "optuna-tpe",
                    "optuna-gp",
                    "tuner-tpe-1",
                    "tuner-tpe-4",
                    "tuner-tpe-8",
                    "tuner-gp-1",
                    "tuner-gp-4",
                    "tuner-gp-8",
                    "tuner-auto-8",
                ],
                30,
                cost_s=0.5,
            ),
            Section("stopping", ["xgb-breast_cancer"], STOP, 30),
        ],
    ),
}


def _problem(name: str, seed: int, cost_s: float) -> Problem:
    if name.startswith("bbob-"):
        name = f"{name}-i{seed + 1}"  # instances are the seeds
    return make(name).with_cost(cost_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the quick preset")
    parser.add_argument("--tiny", action="store_true", help="with --quick: the test's budget")
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--trials", type=int, default=None, help="override every section's")
    parser.add_argument(
        "--sections", default=None, help="comma-separated: equal,parallel,stopping,warm"
    )
    parser.add_argument("--problems", default=None, help="comma-separated, overrides sections'")
    parser.add_argument(
        "--cost-s", type=float, default=None,
        help="parallel: seconds slept a trial (overrides the preset's), so that trials in "
        "flight overlap for longer than Ray takes to start their workers",
    )  # fmt: skip
    parser.add_argument("--ways", default=None, help="comma-separated, overrides sections'")
    parser.add_argument("--out", type=Path, default=None, help="append the tables to this file")
    parser.add_argument(
        "--plots", type=Path, default=None, help="PNG folder (default: beside --out)"
    )
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)

    preset = "tiny" if args.tiny else "quick" if args.quick else (args.preset or "quick")
    default_seeds, sections = PRESETS[preset]
    seeds = args.seeds or default_seeds
    if args.sections:
        sections = [s for s in sections if s.name in args.sections.split(",")]
    for s in sections:
        if args.trials:
            s.trials = args.trials
        if args.problems:
            s.problems = args.problems.split(",")
        if args.ways:
            s.ways = args.ways.split(",")
        if args.cost_s is not None and s.name == "parallel":
            s.cost_s = args.cost_s

    import warnings

    warnings.filterwarnings("ignore")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from tuner._ray import ensure_ray

    ensure_ray(None)
    load = lambda: " ".join(f"{x:.2f}" for x in os.getloadavg())  # noqa: E731
    started, load_before = time.monotonic(), load()
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python -m bench.quality " + " ".join(
        argv if argv is not None else __import__("sys").argv[1:]
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    plot_dir = args.plots or (args.out.parent / "plots" if args.out else None)
    for section in sections:
        if section.name == "warm":
            _warm_section(section, seeds, args.out, plot_dir, args.no_plots, preset, command)
            continue
        traces: list[Trace] = []
        optima: dict[str, float | None] = {}
        t0 = time.monotonic()
        for name in section.problems:
            for seed in range(seeds):
                problem = _problem(name, seed, section.cost_s)
                optima[problem.name] = problem.optimum
                for way in section.ways:
                    trace = run_way(way, problem, seed, section.trials)
                    traces.append(trace)
                    best = _report.best_curve(trace, problem.optimum)
                    print(
                        f"{section.name} {problem.name} {way} seed {seed}: "
                        f"{best[-1] if best else float('nan'):.4g} in {trace.wall_s:.1f} s"
                        f"{' (' + trace.note + ')' if trace.note and trace.note != way else ''}",
                        flush=True,
                    )
        header = [
            f"Command: `{command}`, {when}, {seeds} seeds, {section.trials} trials; "
            f"load average before: {load_before}, now: {load()}; section took "
            f"{time.monotonic() - t0:.0f} s.",
            "",
        ]
        if section.name == "equal":
            publish(
                args.out,
                f"Quality, equal trial budgets ({section.trials} trials)",
                header + _report.table_equal_trials(traces, optima, section.trials),
            )
            publish(args.out, "Quality, equal wall time", _report.table_equal_time(traces, optima))
            auto = sorted(
                {
                    f"{t.problem.rsplit('-i', 1)[0]}: {t.note}"
                    for t in traces
                    if t.way.startswith("tuner-auto") and t.note
                }
            )
            if auto:
                publish(args.out, "auto picked", [", ".join(auto)])
        elif section.name == "parallel":
            publish(
                args.out,
                f"Quality with trials in flight ({section.cost_s:g} s a trial)",
                header + _report.table_parallel(traces, optima, section.trials),
            )
        else:
            publish(
                args.out,
                "Early stopping: final best and compute",
                header + _report.table_stopping(traces, section.ways[0]),
            )
        if plot_dir is not None:  # the traces, for analysis the tables do not do
            import dataclasses
            import json

            plot_dir.mkdir(parents=True, exist_ok=True)
            dump = plot_dir / f"quality-{preset}-{section.name}.json"
            dump.write_text(json.dumps([dataclasses.asdict(t) for t in traces]))
        if plot_dir is not None and not args.no_plots:
            for path in _report.plots(traces, optima, plot_dir, f"quality-{preset}-{section.name}"):
                print(f"plot: {path}")
    print(f"done in {time.monotonic() - started:.0f} s; load average {load()}")


def _warm_section(
    section: Section,
    seeds: int,
    out: Path | None,
    plot_dir: Path | None,
    no_plots: bool,
    preset: str,
    command: str,
) -> None:
    from bench.quality import _warm

    load = lambda: " ".join(f"{x:.2f}" for x in os.getloadavg())  # noqa: E731
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before, t0 = load(), time.monotonic()
    source_trials = section.source_trials or section.trials
    runs: list[_warm.WarmRun] = []
    for name in section.problems:
        for alg in section.ways:
            for seed in range(seeds):
                problem = _problem(name, seed, section.cost_s)
                for run in _warm.run_warm(
                    problem, alg, seed, section.trials, source_trials, only=section.overlaps
                ):
                    runs.append(run)
                    print(
                        f"warm {problem.name} {alg} {run.overlap} seed {seed}: cold "
                        f"{run.cold[-1]:.4g}, warm {run.warm[-1]:.4g}",
                        flush=True,
                    )
    header = [
        f"Command: `{command}`, {when}, {seeds} seeds, source {source_trials} trials, "
        f"cold and warm {section.trials} trials; load average before: {load_before}, now: "
        f"{load()}; section took {time.monotonic() - t0:.0f} s.",
        "",
    ]
    publish(out, "Warm start: trials saved", header + _warm.table_warm(runs, section.trials))
    if plot_dir is not None:
        import dataclasses
        import json

        plot_dir.mkdir(parents=True, exist_ok=True)
        dump = plot_dir / f"quality-{preset}-warm.json"
        dump.write_text(json.dumps([dataclasses.asdict(r) for r in runs]))
        if not no_plots:
            for path in _warm.plots(runs, plot_dir, f"quality-{preset}-warm"):
                print(f"plot: {path}")


if __name__ == "__main__":
    main()
