"""Tables (markdown) and PNG plots from the traces of a run."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.quality._ways import Trace, parse, seed_offset

__all__ = [
    "best_curve",
    "plots",
    "table_equal_time",
    "table_equal_trials",
    "table_parallel",
    "table_stopping",
]


def best_curve(trace: Trace, optimum: float | None) -> list[float]:
    """Best result after each trial (regret when the optimum is known); a trial that
    did not run the whole budget does not count as a result."""
    out, best = [], math.inf
    for loss, full in zip(trace.losses, trace.full, strict=True):
        if full:
            best = min(best, loss)
        out.append(best - (optimum or 0.0) if optimum is not None else best)
    return out


def _final(trace: Trace, optimum: float | None, trials: int | None = None) -> float:
    curve = best_curve(trace, optimum)
    if not curve:
        return math.inf
    return curve[min(len(curve), trials or len(curve)) - 1]


def _at_time(trace: Trace, optimum: float | None, t: float) -> float:
    curve = best_curve(trace, optimum)
    got = [v for v, e in zip(curve, trace.ended_s, strict=True) if e <= t]
    return got[-1] if got else math.inf


def _q(values: Sequence[float]) -> tuple[float, float, float]:
    """Quartiles and median; inf (no result) when more than half have none."""
    arr = np.array([v if math.isfinite(v) else np.nan for v in values], dtype=float)
    if not len(arr) or np.isnan(arr).sum() * 2 > len(arr):
        return math.inf, math.inf, math.inf
    arr = np.where(np.isnan(arr), np.nanmax(arr) if np.isfinite(arr).any() else np.inf, arr)
    q1, med, q3 = np.percentile(arr, [25, 50, 75])
    return float(q1), float(med), float(q3)


def median_ci(
    values: Sequence[float], level: float = 0.9, draws: int = 2000
) -> tuple[float, float]:
    """A bootstrap interval of the median of `values` (the seeds resampled with
    replacement, a fixed seed, so a table repeats): how far another set of seeds could
    put the median."""
    import random

    if len(values) < 2:
        return (math.nan, math.nan)
    rng = random.Random(0)
    meds = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(draws))
    tail = int(draws * (1 - level) / 2)
    return meds[tail], meds[draws - 1 - tail]


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "-"
    if v == 0:
        return "0"
    return f"{v:.3g}" if abs(v) >= 1e-3 else f"{v:.1e}"


def _cell(values: Sequence[float]) -> str:
    q1, med, q3 = _q(values)
    return f"{_fmt(med)} [{_fmt(q1)}, {_fmt(q3)}]"


def group(traces: Sequence[Trace]) -> dict[str, dict[str, list[Trace]]]:
    """problem family (instance stripped) -> way -> traces."""
    out: dict[str, dict[str, list[Trace]]] = defaultdict(lambda: defaultdict(list))
    for t in traces:
        out[_family(t.problem)][t.way].append(t)
    return out


def _family(problem: str) -> str:
    # bbob-f8-d5-i3 -> bbob-f8-d5: instances are the seeds
    parts = problem.split("-")
    return "-".join(p for p in parts if not (p.startswith("i") and p[1:].isdigit()))


def table_equal_trials(
    traces: Sequence[Trace], optima: dict[str, float | None], trials: int
) -> list[str]:
    """Median [quartiles] of regret (or best loss) after `trials` trials; mean rank."""
    grouped = group(traces)
    ways = sorted({t.way for t in traces}, key=lambda w: [t.way for t in traces].index(w))
    lines = ["| problem | " + " | ".join(ways) + " |", "|---|" + "---|" * len(ways)]
    ranks: dict[str, list[float]] = defaultdict(list)
    for fam, by_way in grouped.items():
        meds = {}
        cells = []
        for w in ways:
            vals = [_final(t, optima[t.problem], trials) for t in by_way.get(w, [])]
            meds[w] = _q(vals)[1] if vals else math.inf
            cells.append(_cell(vals) if vals else "")
        order = sorted(ways, key=lambda w: meds[w])
        for w in ways:
            ranks[w].append(1 + sum(meds[o] < meds[w] for o in order))
        lines.append(f"| {fam} | " + " | ".join(cells) + " |")
    lines.append(
        "| **mean rank** | "
        + " | ".join(f"**{statistics.mean(ranks[w]):.2f}**" for w in ways)
        + " |"
    )
    return lines


def table_equal_time(traces: Sequence[Trace], optima: dict[str, float | None]) -> list[str]:
    """Best by the wall time tuner's first way took for the whole budget (median over
    seeds). A way that ends sooner keeps its final best (it stops at its trial budget)."""
    grouped = group(traces)
    ways = list(dict.fromkeys(t.way for t in traces))
    reference = next((w for w in ways if w.startswith("tuner-")), ways[0])
    lines = [
        f"| problem | time budget s ({reference}'s) | " + " | ".join(ways) + " |",
        "|---|---|" + "---|" * len(ways),
    ]
    for fam, by_way in grouped.items():
        budget = statistics.median(
            t.wall_s for t in by_way.get(reference, []) or [t for ts in by_way.values() for t in ts]
        )
        cells = []
        for w in ways:
            vals = [_at_time(t, optima[t.problem], budget) for t in by_way.get(w, [])]
            cells.append(_cell(vals) if vals else "")
        lines.append(f"| {fam} | {budget:.1f} | " + " | ".join(cells) + " |")
    return lines


def table_parallel(
    traces: Sequence[Trace], optima: dict[str, float | None], trials: int
) -> list[str]:
    """Trials in flight: regret at equal trials against the same sampler's sequential
    band (optuna-ALG, else optuna-tpe), wall time, time to that reference's median final
    regret (the target) and the speed-up over 1 in flight."""
    grouped = group(traces)
    lines = [
        "| problem | way | in flight | regret after all trials | median inside the sequential "
        "band (<= reference q3) | wall s | time to target s | speed-up vs 1 in flight |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for fam, by_way in grouped.items():
        one: dict[str, float] = {}
        refs: dict[str, tuple[float, float, float]] = {}
        for w, ts in by_way.items():
            if w.startswith("optuna-"):
                refs[w] = _q([_final(t, optima[t.problem], trials) for t in ts])
                lines.append(
                    f"| {fam} | {w} (sequential reference) | 1 | {_cell([_final(t, optima[t.problem], trials) for t in ts])} "
                    f"| - | {statistics.median(t.wall_s for t in ts):.1f} | | |"
                )
        for w, ts in by_way.items():
            kind, alg, k, _ = parse(w)
            if kind != "tuner":
                continue
            ref = refs.get(f"optuna-{alg}") or refs.get("optuna-tpe")
            if ref is None:
                continue
            _, target, ref_q3 = ref
            vals = [_final(t, optima[t.problem], trials) for t in ts]
            hits = []
            for t in ts:
                curve = best_curve(t, optima[t.problem])
                hits.append(
                    next(
                        (e for v, e in zip(curve, t.ended_s, strict=True) if v <= target), math.inf
                    )
                )
            hit_med = _q(hits)[1]
            if k == 1:
                one[alg] = hit_med
            speed = one.get(alg, math.nan) / hit_med if math.isfinite(hit_med) else math.nan
            inside = _q(vals)[1] <= ref_q3
            lines.append(
                f"| {fam} | {w} | {k} | {_cell(vals)} | {'yes' if inside else 'no'} | "
                f"{statistics.median(t.wall_s for t in ts):.1f} | {_fmt(hit_med)} | "
                f"{'' if math.isnan(speed) else f'{speed:.2f}x'} |"
            )
    return lines


def table_stopping(traces: Sequence[Trace], baseline: str) -> list[str]:
    """Early stopping: best full-budget loss and steps used, against no stopping."""
    grouped = group(traces)
    lines = [
        "| problem | way | trials | best loss, median [q1, q3] | vs no stopping (median of "
        "per-seed ratios) | its 90% interval over seeds | steps used (median) | share of no "
        "stopping's steps | goal (<=1.01, <=1/3) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for fam, by_way in grouped.items():
        base = {t.seed: t for t in by_way.get(baseline, [])}
        for w, ts in by_way.items():
            finals = [_final(t, None) for t in ts]
            ratios = [_final(t, None) / _final(base[t.seed], None) for t in ts if t.seed in base]
            shares = [sum(t.used) / sum(base[t.seed].used) for t in ts if t.seed in base]
            ratio = statistics.median(ratios) if ratios else math.nan
            share = statistics.median(shares) if shares else math.nan
            goal = "yes" if ratio <= 1.01 and share <= 1 / 3 else "no"
            lo, hi = median_ci(ratios) if w != baseline else (math.nan, math.nan)
            interval = "-" if math.isnan(lo) else f"[{lo:.3f}, {hi:.3f}]"
            lines.append(
                f"| {fam} | {w} | {statistics.median(len(t.losses) for t in ts):.0f} | "
                f"{_cell(finals)} | {ratio:.3f} | {interval} | "
                f"{statistics.median(sum(t.used) for t in ts):.0f} | {share:.2f} | "
                f"{'-' if w == baseline or seed_offset(w)[1] else goal} |"  # @N: no rule
            )
    return lines


def plots(
    traces: Sequence[Trace], optima: dict[str, float | None], folder: Path, prefix: str
) -> list[Path]:
    """One PNG a problem: best so far against trials, wall time and compute (steps),
    median line and quartile band per way."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for fam, by_way in group(traces).items():
        fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
        for ax in axes:  # up to 20 ways, each its own colour
            ax.set_prop_cycle(color=plt.get_cmap("tab20").colors)
        for w, ts in by_way.items():
            curves = [best_curve(t, optima[t.problem]) for t in ts]
            for ax, xs_of in zip(
                axes,
                (
                    lambda t: np.arange(1, len(t.losses) + 1),
                    lambda t: np.array(t.ended_s),
                    lambda t: np.cumsum(t.used),
                ),
                strict=True,
            ):
                grid_max = max(float(xs_of(t)[-1]) for t in ts if t.losses)
                grid = np.linspace(0, grid_max, 100)
                ys = []
                for t, c in zip(ts, curves, strict=True):
                    xs = xs_of(t)
                    idx = np.searchsorted(xs, grid, side="right") - 1
                    arr = np.array(c, dtype=float)
                    ys.append(np.where(idx >= 0, arr[np.clip(idx, 0, len(arr) - 1)], np.nan))
                y = np.array(ys)
                with np.errstate(all="ignore"):
                    import warnings

                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        med = np.nanmedian(y, axis=0)
                        lo, hi = np.nanpercentile(y, 25, axis=0), np.nanpercentile(y, 75, axis=0)
                (line,) = ax.plot(grid, med, label=w)
                ax.fill_between(grid, lo, hi, alpha=0.15, color=line.get_color())
        regret = any(optima[t.problem] is not None for ts in by_way.values() for t in ts)
        for ax, xl in zip(
            axes, ("trials", "wall s", "compute (steps: rounds, epochs)"), strict=True
        ):
            ax.set_xlabel(xl)
            ax.set_ylabel("regret" if regret else "best valid loss")
            if regret:
                ax.set_yscale("symlog", linthresh=1e-3)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        fig.suptitle(f"{fam}: best so far (median, quartile band)")
        fig.tight_layout()
        path = folder / f"{prefix}-{fam}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written
