"""Warm start: how many trials a study saves by learning from an earlier study's trials.

For each problem, search algorithm and seed, through tuner's public API into one SQLite
file:

- a **source** study of K trials (sampler seed 1000 + seed);
- a **cold** study of N trials over the target space (seed `seed`);
- a **warm** study of N trials over the same target space and seed, with
  ``warm_start: {study: source}`` (the source's trials are told to the sampler, not
  run again; they count nowhere in the warm study's own trials).

Overlaps between the source's space and the target's (:func:`overlaps`):

- ``same``: the same space;
- ``added``: the source did not search the last parameter (it ran at a fixed value,
  e.g. xgboost's default ``lambda`` 1.0, BBOB's last coordinate 0); the target searches
  it. ``added+fixed`` is the same with ``warm_start.fixed`` telling tuner the value
  the source ran with;
- ``range``: one parameter's range narrowed in the target (source trials outside it
  are dropped) and another's widened (the source searched a part of it).

The measure is in trials, not seconds: the trials the warm study needs to reach the
cold study's final best (its best after N trials), against the trials the cold study
itself needed to find it.
"""

from __future__ import annotations

import math
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.quality._problems import Problem, steps

__all__ = ["WarmRun", "overlaps", "plots", "run_warm", "table_warm"]


@dataclass(frozen=True)
class Overlap:
    """A source space and a target space over the same problem."""

    name: str
    source: Problem  # what the source study searches (and holds fixed)
    target: Problem  # what the cold and warm studies search
    fixed: dict[str, Any] = field(default_factory=dict)  # warm_start.fixed


@dataclass
class WarmRun:
    """One seed of one problem, algorithm and overlap: the curves of best so far."""

    problem: str
    alg: str
    overlap: str
    seed: int
    source_best: float
    cold: list[float]  # best so far after each trial (regret for BBOB)
    warm: list[float]
    warm_used: int = 0  # source trials the warm study was told


def _narrow(space: dict[str, dict[str, Any]], name: str, low: float, high: float) -> Any:
    out = {k: dict(v) for k, v in space.items()}
    out[name].update(low=low, high=high)
    return out


def overlaps(problem: Problem, with_fixed: bool = True) -> list[Overlap]:
    """The overlaps measured for `problem` (see the module docstring)."""
    space = problem.space
    names = list(space)
    last = names[-1]
    if problem.family == "bbob":
        held: Any = 0.0
        widened = (names[1], -2.5, 2.5)  # the source searched half of it
        narrowed = (names[0], -2.5, 5.0)  # the target searches 3/4 of it
    else:  # xgboost: lambda last; the source searched shallow trees; eta from 0.02
        held = 1.0
        widened = ("max_depth", 2, 6)
        narrowed = ("eta", 0.02, 0.5)
    fewer = replace(
        problem, space={k: v for k, v in space.items() if k != last}, fixed=((last, held),)
    )
    out = [
        Overlap("same", problem, problem),
        Overlap("added", fewer, problem),
    ]
    if with_fixed:
        out.append(Overlap("added+fixed", fewer, problem, {last: held}))
    out.append(
        Overlap(
            "range",
            replace(problem, space=_narrow(space, *widened)),
            replace(problem, space=_narrow(space, *narrowed)),
        )
    )
    return out


def _objective(problem: Problem):
    def objective(config: dict[str, Any]) -> None:
        import tuner

        for step, loss in steps(problem, config):
            tuner.report(step=step, loss=loss)

    return objective


def _study(
    storage: str,
    name: str,
    problem: Problem,
    alg: str,
    seed: int,
    trials: int,
    warm: dict[str, Any] | None = None,
) -> list[float]:
    """Run one study; each completed trial's loss in trial order."""
    import tuner

    spec: dict[str, Any] = {
        "name": name,
        "metric": "loss",
        "mode": "min",
        "trainer": {
            "kind": "python",
            "function": _objective(problem),
            "max_steps": problem.max_steps,
        },
        "search_space": problem.space,
        "search": {"algorithm": alg, "num_trials": trials, "max_concurrent": 1, "seed": seed},
        "resources": {"cpus_per_trial": 1.0},
    }
    if warm is not None:
        spec["warm_start"] = warm
    study = tuner.create_study(spec, storage=storage)
    study.run(progress=False)
    done = sorted(
        (t for t in study.trials() if t.value is not None and t.state == "completed"),
        key=lambda t: t.number,
    )
    return [float(t.value) for t in done]


def _curve(losses: Sequence[float], optimum: float | None) -> list[float]:
    out, best = [], math.inf
    for v in losses:
        best = min(best, v)
        out.append(best - (optimum or 0.0))
    return out


def run_warm(
    problem: Problem,
    alg: str,
    seed: int,
    trials: int,
    source_trials: int,
    with_fixed: bool | None = None,
    only: Sequence[str] = (),
) -> list[WarmRun]:
    """Every overlap of `problem` (or those named in `only`) for one algorithm and seed
    (cold runs shared); ``added+fixed`` only where tuner's spec has
    ``warm_start.fixed`` (None: look)."""
    if with_fixed is None:
        from tuner.spec._model import WarmStartSpec

        with_fixed = "fixed" in WarmStartSpec.model_fields
    out: list[WarmRun] = []
    with tempfile.TemporaryDirectory() as d:
        storage = f"sqlite:///{Path(d) / 'warm.db'}"
        colds: dict[str, list[float]] = {}
        sources: dict[str, tuple[str, float]] = {}
        for i, ov in enumerate(overlaps(problem, with_fixed)):
            if only and ov.name not in only:
                continue
            key = repr(sorted(ov.source.space.items())) + repr(ov.source.fixed)
            if key not in sources:
                name = f"source-{len(sources)}"
                losses = _study(storage, name, ov.source, alg, 1000 + seed, source_trials)
                sources[key] = (name, min(losses) - (problem.optimum or 0.0))
            target = repr(sorted(ov.target.space.items()))
            if target not in colds:
                losses = _study(storage, f"cold-{len(colds)}", ov.target, alg, seed, trials)
                colds[target] = _curve(losses, problem.optimum)
            source, source_best = sources[key]
            warm: dict[str, Any] = {"study": source}
            if ov.fixed:
                warm["fixed"] = ov.fixed
            losses = _study(storage, f"warm-{i}", ov.target, alg, seed, trials, warm)
            out.append(
                WarmRun(
                    problem.name.rsplit("-i", 1)[0] if problem.family == "bbob" else problem.name,
                    alg,
                    ov.name,
                    seed,
                    source_best,
                    colds[target],
                    _curve(losses, problem.optimum),
                )
            )
    return out


def _reach(curve: Sequence[float], target: float) -> int:
    """Trials until `curve` is at or below `target` (len + 1: never)."""
    for i, v in enumerate(curve):
        if v <= target * (1 + 1e-9) + 1e-12:
            return i + 1
    return len(curve) + 1


def _q(values: Sequence[float]) -> str:
    vs = sorted(values)
    if len(vs) == 1:
        return f"{vs[0]:.3g}"
    q1, _, q3 = statistics.quantiles(vs, n=4, method="inclusive")
    return f"{statistics.median(vs):.3g} [{q1:.3g}, {q3:.3g}]"


def table_warm(runs: Sequence[WarmRun], trials: int) -> list[str]:
    """One row per problem, algorithm and overlap; cells median [q1, q3] over seeds."""
    lines = [
        "| problem | algorithm | overlap | source best | cold best after "
        f"{trials} | warm best after {trials} | warm best after 5 | cold: trials to its best "
        "| warm: trials to cold's best | trials saved | warm reached it |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str, str], list[WarmRun]] = {}
    for r in runs:
        groups.setdefault((r.problem, r.alg, r.overlap), []).append(r)
    for (problem, alg, overlap), rs in groups.items():
        cold_n = [_reach(r.cold, r.cold[-1]) for r in rs]
        warm_n = [_reach(r.warm, r.cold[-1]) for r in rs]
        saved = [c - w for c, w in zip(cold_n, warm_n, strict=True)]
        reached = sum(w <= len(r.warm) for w, r in zip(warm_n, rs, strict=True))
        early = min(5, trials) - 1
        lines.append(
            f"| {problem} | {alg} | {overlap} | {_q([r.source_best for r in rs])} | "
            f"{_q([r.cold[-1] for r in rs])} | {_q([r.warm[-1] for r in rs])} | "
            f"{_q([r.warm[early] for r in rs])} | {_q(cold_n)} | {_q(warm_n)} | "
            f"{_q(saved)} | {reached}/{len(rs)} |"
        )
    lines += [
        "",
        f"Trials to cold's best: the first trial at which the study's best so far is at or "
        f"below the cold study's best after {trials} trials; {trials + 1} means not within "
        f"{trials}. Trials saved: cold's count minus warm's, per seed (negative: warm "
        "needed more).",
    ]
    return lines


def plots(runs: Sequence[WarmRun], out_dir: Path, prefix: str) -> list[Path]:
    """Best so far against trials, cold and each overlap's warm study, one PNG a problem
    and algorithm (median line, quartile band)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    paths: list[Path] = []
    keys = sorted({(r.problem, r.alg) for r in runs})
    for problem, alg in keys:
        rs = [r for r in runs if (r.problem, r.alg) == (problem, alg)]
        fig, ax = plt.subplots(figsize=(6, 4))
        curves: dict[str, list[list[float]]] = {"cold (same space)": []}
        for r in rs:
            if r.overlap == "same":
                curves["cold (same space)"].append(r.cold)
            curves.setdefault(f"warm, {r.overlap}", []).append(r.warm)
        for label, cs in curves.items():
            a = np.array(cs, dtype=float)
            x = np.arange(1, a.shape[1] + 1)
            med = np.median(a, axis=0)
            line = ax.plot(x, med, label=label)[0]
            if len(cs) > 1:
                lo, hi = np.percentile(a, [25, 75], axis=0)
                ax.fill_between(x, lo, hi, alpha=0.15, color=line.get_color())
        ax.set_xlabel("trial")
        ax.set_ylabel("best regret" if problem.startswith("bbob") else "best loss")
        if problem.startswith("bbob"):
            ax.set_yscale("log")
        ax.set_title(f"warm start: {problem}, {alg}")
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{prefix}-{problem}-{alg}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
