"""What the dashboard shows, as pandas frames: SQL aggregates plus downsampling.

Every function here is pure (a storage and arguments in, a frame out) and imports no
Streamlit, so unit tests and Streamlit's AppTest exercise the same code the pages run.
What comes from the database comes through the storage's read model,
:class:`tuner.storage.DashboardReads`; no SQL is written here.

Speed rules, for studies of 100,000 trials with 100 intermediate results each:

* The ``trial_values`` table (10 million rows at that size) is never scanned whole:
  learning curves are read for a sample of trials (the best ones plus a seeded random
  sample per state) through its primary key ``(trial_id, metric, step)``.
* A trial-level frame (one row a trial, parameters pivoted in SQL) is read once per
  change of the study, which :func:`fingerprint` detects with one aggregate query.
* Every chart gets at most a few hundred points: :func:`downsample` keeps each bin's
  minimum and maximum, so outliers survive, and the best-so-far line keeps every point
  where the best changed.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tuner.exceptions import StorageError
from tuner.storage import (
    ArtifactRecord,
    DashboardReads,
    Storage,
    StudyRecord,
    StudyState,
    TrialState,
)

__all__ = [
    "TRIAL_STATES",
    "DashboardError",
    "artifacts_frame",
    "best_curve",
    "best_so_far",
    "compare_params",
    "contour_grid",
    "curve_sample",
    "downsample",
    "filter_trials",
    "fingerprint",
    "history",
    "human_bytes",
    "importance",
    "is_numeric",
    "learning_curves",
    "lineage",
    "lineage_sample",
    "log_params",
    "metric_columns",
    "objectives",
    "open_storage",
    "parallel_frame",
    "param_columns",
    "parents",
    "pareto_frame",
    "pareto_hypervolume",
    "sample_rows",
    "steps_reached",
    "studies_frame",
    "trials_frame",
]

TRIAL_STATES = tuple(state.value for state in TrialState)
"""The trial states, as the plain strings the frames' ``state`` column holds."""
MAX_POINTS = 500
"""The most points a scatter chart gets. Each marker is an SVG element for the
browser to lay out: the study page's charts together hold about 3,000 of them."""
MAX_LINES = 200
"""The most trials a parallel-coordinates or slice chart draws. Parallel coordinates
are WebGL; without a GPU (headless Chromium's software rendering) each line costs."""
MAX_CONTOUR_POINTS = 150
"""The most trials drawn on top of a contour (the grid is interpolated from more)."""
LINEAGE_ALGORITHMS = ("pbt", "pb2")
"""The search algorithms whose trials start from another trial's checkpoint (a
``parent``): the study page reads parents only for their studies."""
MAX_POPULATION = 300
"""The most trials the population chart draws (the best trials' lines of descent
first)."""


class DashboardError(Exception):
    """A problem the page shows as one clear message (no traceback)."""


# ---------------------------------------------------------------------- opening


def open_storage(url: str) -> Storage:
    """Open ``url`` read-only for the dashboard.

    Raises:
        DashboardError: the URL is malformed, the SQLite file does not exist, the
            server is unreachable, or the database has no tuner tables; the message
            says what to do.
    """
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        parsed = None
    if parsed is not None and parsed.drivername.startswith("sqlite"):
        database = parsed.database or ""
        on_disk = database not in ("", ":memory:") and not database.startswith("file:")
        if on_disk and not Path(database).exists():
            raise DashboardError(
                f"There is no database file at {Path(database).absolute()}. Run a study "
                "first (tuner run SPEC.yaml), or start the dashboard with "
                "--storage pointing at an existing database."
            )
    try:
        return Storage(url, read_only=True)
    except StorageError as e:
        raise DashboardError(str(e)) from None


# ---------------------------------------------------------------------- studies


def studies_frame(storage: Storage, now: datetime | None = None) -> pd.DataFrame:
    """One row a study: status, algorithm, scheduler, trials by state, best, started,
    duration (to ``finished_at``, or to now while it has not finished)."""
    now = now or datetime.now(UTC)
    rows = []
    for s in storage.list_studies():
        st = s.study
        end = (
            st.finished_at or (st.heartbeat_at if st.status != StudyState.RUNNING else None) or now
        )
        row: dict[str, Any] = {
            "name": st.name,
            "status": st.status.value,
            "algorithm": st.algorithm,
            "scheduler": st.scheduler,
            "metric": st.metric,
            "mode": st.mode,
            "trials": sum(s.trial_counts.values()),
        }
        row.update({state.value: s.trial_counts.get(state, 0) for state in TrialState})
        row.update(
            {
                "best": s.best_value,
                "started": st.created_at,
                "duration_s": max((end - st.created_at).total_seconds(), 0.0),
                "id": st.id,
            }
        )
        rows.append(row)
    columns = [
        "name", "status", "algorithm", "scheduler", "metric", "mode", "trials",
        *TRIAL_STATES, "best", "started", "duration_s", "id",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def fingerprint(storage: Storage, study_id: int) -> tuple[Any, ...]:
    """A value that changes whenever the study's trials change (new trial, new
    intermediate result, a trial finishing): the cache key of the heavy queries.
    Its last item is the study's status."""
    return DashboardReads(storage).fingerprint(study_id).as_key()


# ---------------------------------------------------------------------- trials


def trials_frame(storage: Storage, study: StudyRecord) -> pd.DataFrame:
    """One row a trial, by number: ``number, state, value, duration_s, started,
    finished, node, steps, error``, then ``params.NAME`` (absent for an inactive
    conditional parameter: missing, never 0), then ``metrics.NAME`` (last reported).

    See :meth:`tuner.storage.DashboardReads.trials_frame`: parameters are pivoted in
    SQL, so a study of 100,000 trials is one query returning 100,000 rows.
    """
    return DashboardReads(storage).trials_frame(study)


def log_params(study: StudyRecord) -> set[str]:
    """The ``params.*`` columns the spec searches on a log scale (charts use log axes)."""
    space = study.spec.get("search_space") if isinstance(study.spec, dict) else None
    if not isinstance(space, dict):
        return set()
    return {f"params.{n}" for n, p in space.items() if isinstance(p, dict) and p.get("log")}


def param_columns(frame: pd.DataFrame) -> list[str]:
    """The ``params.*`` columns of a trials frame."""
    return [c for c in frame.columns if c.startswith("params.")]


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The ``metrics.*`` columns of a trials frame."""
    return [c for c in frame.columns if c.startswith("metrics.")]


def is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series)) and not pd.api.types.is_bool_dtype(series)


def filter_trials(
    frame: pd.DataFrame,
    states: Iterable[str] | None = None,
    ranges: dict[str, tuple[float, float]] | None = None,
    sort_by: str | None = None,
    ascending: bool = True,
) -> pd.DataFrame:
    """The trials in ``states`` whose columns lie in ``ranges`` (inclusive), sorted.

    A trial without a value in a ranged column (an inactive conditional parameter, a
    metric never reported) is left out by that range.
    """
    mask = pd.Series(True, index=frame.index)
    if states is not None:
        mask &= frame["state"].isin(list(states))
    for col, (low, high) in (ranges or {}).items():
        values = pd.to_numeric(frame[col], errors="coerce")
        mask &= values.between(low, high)
    out = frame[mask]
    if sort_by:
        out = out.sort_values(sort_by, ascending=ascending, na_position="last", kind="stable")
    return out


def sample_rows(
    frame: pd.DataFrame, n: int, keep: Sequence[int] = (), seed: int = 0
) -> pd.DataFrame:
    """At most ``n`` rows: those at the index labels ``keep`` plus a seeded random
    sample of the rest, in the original order."""
    if len(frame) <= n:
        return frame
    kept = frame.loc[[k for k in keep if k in frame.index]]
    rest = frame.drop(index=kept.index)
    fill = rest.sample(n=max(n - len(kept), 0), random_state=seed)
    return pd.concat([kept, fill]).sort_index()


def downsample(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indices of at most ``max_points`` points that keep the shape of y over x.

    ``x`` is sorted; the range is cut into ``max_points // 2`` bins and each bin keeps
    its lowest and highest ``y`` (the envelope, so outliers and the best stay).
    """
    n = len(x)
    if n <= max_points:
        return np.arange(n)
    bins = max(max_points // 2, 1)
    edges = np.linspace(0, n, bins + 1).astype(int)
    keep: list[int] = []
    yy = np.where(np.isfinite(y), y, np.nan)
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        chunk = yy[lo:hi]
        if np.all(np.isnan(chunk)):
            keep.append(lo)
            continue
        keep.append(lo + int(np.nanargmin(chunk)))
        keep.append(lo + int(np.nanargmax(chunk)))
    return np.unique(np.array(keep, dtype=int))


def best_so_far(values: pd.Series, mode: str) -> pd.Series:
    """The running best of ``values`` (NaN until the first value)."""
    return values.cummin() if mode == "min" else values.cummax()


def history(
    frame: pd.DataFrame,
    mode: str,
    max_points: int = MAX_POINTS,
    *,
    metric: str | None = None,
    pruned: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Optimization history: the completed trials with a value and, with ``pruned``,
    the pruned trials at their last value (their ``value``, else the last reported
    ``metrics.<metric>``), so a study whose early stopping cut most trials still shows
    every trial it ran.

    The best-so-far line follows the completed trials only: a pruned trial's last value
    was reached at fewer steps, and is not a result the study reports as its best.

    Returns:
        ``points``: number, value, state, finished, elapsed_s (seconds since the first
        trial started), downsampled to ``max_points``; and ``best``: number, finished,
        elapsed_s, best at every trial where the best so far changed, plus the last one.
    """
    states = frame["state"].astype(str)
    values = frame["value"].astype(float)
    kept = (states == TrialState.COMPLETED) & values.notna()
    if pruned:
        column = f"metrics.{metric}" if metric else None
        last = values
        if column is not None and column in frame:
            last = values.fillna(pd.to_numeric(frame[column], errors="coerce"))
        values = values.where(states != TrialState.PRUNED, last)
        kept |= (states == TrialState.PRUNED) & values.notna()
    trials = frame.assign(value=values, state=states)[kept]
    trials = trials[["number", "value", "state", "finished"]].reset_index(drop=True)
    start = frame["started"].min() if len(frame) else None
    trials["elapsed_s"] = (
        (trials["finished"] - start).dt.total_seconds() if start is not None else np.nan
    )
    done = trials[trials["state"] == TrialState.COMPLETED]
    best = best_so_far(done["value"], mode)
    changed = best.ne(best.shift())
    if len(done):
        changed.iloc[-1] = True
    best_frame = done.loc[changed, ["number", "finished", "elapsed_s"]].assign(best=best[changed])
    idx = downsample(trials["number"].to_numpy(), trials["value"].to_numpy(dtype=float), max_points)
    return trials.iloc[idx].reset_index(drop=True), best_frame.reset_index(drop=True)


def parallel_frame(
    frame: pd.DataFrame, mode: str, max_lines: int = MAX_LINES, n_best: int = 25
) -> pd.DataFrame:
    """Completed trials with a value for parallel coordinates: the ``n_best`` best and
    a seeded sample of the rest, at most ``max_lines``."""
    done = frame[(frame["state"] == TrialState.COMPLETED) & frame["value"].notna()]
    best = done["value"].nsmallest(n_best) if mode == "min" else done["value"].nlargest(n_best)
    return sample_rows(done, max_lines, keep=list(best.index))


def contour_grid(
    frame: pd.DataFrame, x: str, y: str, z: str = "value", size: int = 40,
    log: Iterable[str] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, pd.DataFrame]:  # fmt: skip
    """``z`` over a ``size`` x ``size`` grid of parameters ``x`` and ``y``, linearly
    interpolated from the trials that have all three (categorical values as codes;
    columns in ``log`` interpolated in log10 space, the grid given in their units).

    Returns:
        grid xs, grid ys, z (NaN outside the trials' hull), and a sample of at most
        ``MAX_CONTOUR_POINTS`` of the trials used, to draw on top.
    """
    from scipy.interpolate import griddata

    points = frame[[x, y, z]].dropna()
    points = points[np.isfinite(points[z].astype(float))]
    if len(points) > 5000:
        points = points.sample(n=5000, random_state=0)
    log = set(log)
    px = _as_codes(points[x])
    py = _as_codes(points[y])
    logx = x in log and len(px) > 0 and bool((px > 0).all())
    logy = y in log and len(py) > 0 and bool((py > 0).all())
    px = np.log10(px) if logx else px
    py = np.log10(py) if logy else py
    if len(points) < 3 or px.nunique() < 2 or py.nunique() < 2:
        return np.array([]), np.array([]), np.empty((0, 0)), points
    xs = np.linspace(px.min(), px.max(), size)
    ys = np.linspace(py.min(), py.max(), size)
    gx, gy = np.meshgrid(xs, ys)
    try:
        grid = griddata(
            (px.to_numpy(float), py.to_numpy(float)),
            points[z].to_numpy(float),
            (gx, gy),
            method="linear",
        )
    except Exception:  # a degenerate hull (all points on a line): nearest neighbour
        grid = griddata(
            (px.to_numpy(float), py.to_numpy(float)),
            points[z].to_numpy(float),
            (gx, gy),
            method="nearest",
        )
    if len(points) > MAX_CONTOUR_POINTS:
        points = points.sample(n=MAX_CONTOUR_POINTS, random_state=0)
    return (10**xs if logx else xs), (10**ys if logy else ys), grid, points


def _as_codes(series: pd.Series) -> pd.Series:
    if is_numeric(series):
        return series.astype(float)
    cats = sorted({str(v) for v in series})
    return series.map(lambda v: cats.index(str(v))).astype(float)


def importance(
    frame: pd.DataFrame, study: StudyRecord, max_trials: int = 1000, evaluator: Any = None
) -> pd.DataFrame:
    """Parameter importance on up to ``max_trials`` completed trials; columns
    ``param, importance`` (most important first, summing to 1).

    The evaluator is Optuna's ``MeanDecreaseImpurityImportanceEvaluator`` (a random
    forest, scikit-learn underneath): on 1,000 trials it takes 0.3 s where Optuna's
    default fANOVA takes 8 s in pure Python, and it ranks the parameters the same.

    A conditional parameter (absent from some trials) is left out, as Optuna does.
    Empty when fewer than two completed trials or no parameter varies.
    """
    import optuna
    from optuna.distributions import (
        BaseDistribution,
        CategoricalDistribution,
        FloatDistribution,
    )
    from optuna.importance import MeanDecreaseImpurityImportanceEvaluator, get_param_importances

    done = frame[(frame["state"] == TrialState.COMPLETED) & frame["value"].notna()]
    done = done[np.isfinite(done["value"].astype(float))]
    done = sample_rows(done, max_trials)
    space = study.spec.get("search_space") if isinstance(study.spec, dict) else None
    dists: dict[str, BaseDistribution] = {}
    for col in param_columns(done):
        name = col[len("params.") :]
        series = done[col]
        if series.isna().any():
            continue  # conditional: absent from some trials
        if is_numeric(series):
            low, high = float(series.min()), float(series.max())
            if low == high:
                continue
            log = bool(isinstance(space, dict) and (space.get(name) or {}).get("log")) and low > 0
            dists[name] = FloatDistribution(low, high, log=log)
        else:
            choices = tuple(sorted({json.dumps(v) for v in series}))
            if len(choices) < 2:
                continue
            dists[name] = CategoricalDistribution(choices)
    if len(done) < 2 or not dists:
        return pd.DataFrame(columns=["param", "importance"])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_ = optuna.create_study(direction="minimize" if study.mode == "min" else "maximize")
    trials = []
    for _, row in done.iterrows():
        params: dict[str, Any] = {}
        for name, dist in dists.items():
            v = row[f"params.{name}"]
            params[name] = json.dumps(v) if isinstance(dist, CategoricalDistribution) else float(v)
        trials.append(
            optuna.trial.create_trial(params=params, distributions=dists, value=float(row["value"]))
        )
    study_.add_trials(trials)
    scores = get_param_importances(
        study_, evaluator=evaluator or MeanDecreaseImpurityImportanceEvaluator(seed=0)
    )
    return pd.DataFrame({"param": list(scores), "importance": [float(v) for v in scores.values()]})


# ---------------------------------------------------------------------- curves


def curve_sample(
    frame: pd.DataFrame, mode: str, n_best: int = 10, n_other: int = 90, seed: int = 0
) -> list[int]:
    """Trial numbers whose learning curves to draw: the ``n_best`` best completed
    trials, every running trial (up to ``n_other``), and a seeded sample of the others
    with each state given its share, so pruned trials are always among them."""
    with_steps = frame[frame["steps"] > 0]
    done = with_steps[(with_steps["state"] == TrialState.COMPLETED) & with_steps["value"].notna()]
    best = done["value"].nsmallest(n_best) if mode == "min" else done["value"].nlargest(n_best)
    chosen = set(done.loc[best.index, "number"].tolist())
    rest = with_steps[~with_steps["number"].isin(chosen)]
    if len(rest) <= n_other:
        chosen.update(rest["number"].tolist())
        return sorted(int(n) for n in chosen)
    groups = dict(tuple(rest.groupby("state")))
    shares = {s: max(1, round(n_other * len(g) / len(rest))) for s, g in groups.items()}
    for state, g in groups.items():
        k = min(len(g), shares[state])
        chosen.update(g["number"].sample(n=k, random_state=seed).tolist())
    return sorted(int(n) for n in chosen)


def learning_curves(
    storage: Storage,
    study_id: int,
    metric: str,
    numbers: Sequence[int],
    max_points_per_curve: int = 200,
) -> pd.DataFrame:
    """The intermediate values of ``metric`` for trials ``numbers``: columns
    ``number, step, value`` by number and step, each curve at most
    ``max_points_per_curve`` points (evenly spaced steps, always the last one)."""
    return DashboardReads(storage).learning_curves(study_id, metric, numbers, max_points_per_curve)


def steps_reached(frame: pd.DataFrame) -> pd.DataFrame:
    """How many trials reached each step, by final state: columns ``step, state,
    trials`` (trials whose ``steps`` ≥ step). It shows what early stopping did to all
    trials, not only the sampled curves."""
    with_steps = frame[frame["steps"] > 0]
    if with_steps.empty:
        return pd.DataFrame(columns=["step", "state", "trials"])
    parts = []
    top = int(with_steps["steps"].max())
    grid = np.unique(np.linspace(1, top, min(top, 200)).round().astype(int))
    for state, g in with_steps.groupby("state"):
        counts = np.sort(g["steps"].to_numpy())
        reached = len(counts) - np.searchsorted(counts, grid, side="left")
        parts.append(pd.DataFrame({"step": grid, "state": state, "trials": reached}))
    return pd.concat(parts, ignore_index=True)


# ---------------------------------------------------------------------- lineage


def parents(storage: Storage, study: StudyRecord) -> dict[int, int]:
    """Trial number -> the number of the trial whose checkpoint it started from, for
    the study's trials that have a parent (Population Based Training's children)."""
    return {
        int(t.number): int(t.parent) for t in storage.get_trials(study.id) if t.parent is not None
    }


def lineage_sample(
    frame: pd.DataFrame,
    parents: dict[int, int],
    mode: str,
    most: int = MAX_POPULATION,
    n_best: int = 10,
) -> list[int]:
    """Trial numbers whose curves the population chart draws: every trial with
    intermediate results, or, past ``most``, the ``n_best`` best completed trials with
    all their ancestors, then the latest trials."""
    with_steps = frame[frame["steps"] > 0]
    numbers = [int(n) for n in with_steps["number"]]
    if len(numbers) <= most:
        return sorted(numbers)
    done = with_steps[(with_steps["state"] == TrialState.COMPLETED) & with_steps["value"].notna()]
    best = done["value"].nsmallest(n_best) if mode == "min" else done["value"].nlargest(n_best)
    present = set(numbers)
    chosen: dict[int, None] = {}
    for number in done.loc[best.index, "number"]:
        n: int | None = int(number)
        while n is not None and n in present and n not in chosen and len(chosen) < most:
            chosen[n] = None
            n = parents.get(n)
    for number in sorted(numbers, reverse=True):
        if len(chosen) >= most:
            break
        chosen.setdefault(number, None)
    return sorted(chosen)


def lineage(curves: pd.DataFrame, parents: dict[int, int]) -> pd.DataFrame:
    """The connectors of the population chart: one row a child trial whose curve and
    whose parent's curve are both in ``curves`` (``number, step, value``), from the
    parent's last point before the child's first step (the step before it, where the
    parent's curve has it) to the child's first point, so a line of descent reads as
    one curve.

    Returns:
        Columns ``number, parent, from_step, from_value, step, value``, by number. A
        trial without a parent has no row; nor has a child whose parent has no point
        before its first step, or is not in ``curves``.
    """
    columns = ["number", "parent", "from_step", "from_value", "step", "value"]
    if curves.empty or not parents:
        return pd.DataFrame(columns=columns)
    ordered = curves.sort_values(["number", "step"], kind="stable")
    by_number = {int(n): c for n, c in ordered.groupby("number", sort=True)}
    rows = []
    for number, curve in by_number.items():
        parent = parents.get(number)
        if parent is None or parent not in by_number:
            continue
        first = curve.iloc[0]
        source = by_number[parent]
        before = source[source["step"] < first["step"]]
        if before.empty:
            continue
        last = before.iloc[-1]
        rows.append(
            (number, parent, last["step"], float(last["value"]), first["step"],
             float(first["value"]))
        )  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


# ---------------------------------------------------------------------- compare


def compare_params(frame: pd.DataFrame, numbers: Sequence[int]) -> pd.DataFrame:
    """Parameters and final metrics of trials ``numbers`` side by side: one row per
    parameter or metric, one column per trial (``#N``), and ``differs``.

    An inactive parameter shows as absent (None), never as 0; a parameter active in
    one trial and absent in another differs.
    """
    chosen = frame[frame["number"].isin(list(numbers))].set_index("number")
    chosen = chosen.reindex([n for n in numbers if n in chosen.index])
    rows = []
    for col in [*param_columns(frame), "value", *metric_columns(frame), "state", "steps"]:
        values = [_plain(chosen.at[n, col]) for n in chosen.index]
        if col.startswith(("params.", "metrics.")) and all(v is None for v in values):
            continue
        kind = col.split(".", 1)[0] if "." in col else "trial"
        name = col.split(".", 1)[1] if "." in col else col
        row: dict[str, Any] = {"kind": kind, "name": name}
        row.update({f"#{n}": v for n, v in zip(chosen.index, values, strict=True)})
        row["differs"] = len({json.dumps(v, default=str) for v in values}) > 1
        rows.append(row)
    return pd.DataFrame(rows, columns=["kind", "name", *(f"#{n}" for n in chosen.index), "differs"])


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def best_curve(storage: Storage, study: StudyRecord) -> pd.DataFrame:
    """The study's best-so-far value over trial number and over the time since its
    first trial started, only where it changed (plus the last completed trial):
    columns ``study, number, elapsed_s, best``.

    Reads only the completed trials' values
    (:meth:`tuner.storage.DashboardReads.completed_values`).
    """
    values = DashboardReads(storage).completed_values(study)
    best = best_so_far(values["value"], study.mode)
    changed = best.ne(best.shift())
    if len(values):
        changed.iloc[-1] = True
    out = values.loc[changed, ["number", "elapsed_s"]].assign(best=best[changed])
    out.insert(0, "study", study.name)
    return out.reset_index(drop=True)


# ---------------------------------------------------------------- several objectives


def objectives(study: StudyRecord) -> list[tuple[str, str]]:
    """The study's objectives as ``(metric, mode)`` in spec order when it has two or
    more (``objectives:`` in its spec), else ``[]``: a single-objective study."""
    from tuner.storage._objectives import StudyObjectives

    objectives = StudyObjectives.of(study.spec, study.metric, study.mode)
    return list(zip(objectives.metrics, objectives.modes, strict=True)) if objectives.multi else []


def pareto_frame(storage: Storage, study: StudyRecord) -> pd.DataFrame:
    """The completed trials of a study with several objectives that reported every one,
    in trial order, as stored (:meth:`DashboardReads.objective_frame`).

    Columns: ``number``, one ``metrics.NAME`` column per objective (in objective order),
    ``feasible`` (every constraint holds), ``pareto`` (on the study's Pareto set: feasible
    and dominated by no other feasible trial) and ``hypervolume`` (of the Pareto set
    after this trial).
    """
    metrics = [m for m, _ in objectives(study)]
    frame = DashboardReads(storage).objective_frame(study)
    done = frame[frame["state"] == TrialState.COMPLETED].dropna(subset=metrics)
    done = done.rename(columns={m: f"metrics.{m}" for m in metrics})
    columns = ["number", *(f"metrics.{m}" for m in metrics), "feasible", "pareto", "hypervolume"]
    out = done.reindex(columns=columns).reset_index(drop=True)
    out["feasible"] = out["feasible"].astype(bool)
    out["pareto"] = out["pareto"].astype(bool)
    return out


def pareto_hypervolume(
    points: pd.DataFrame, objectives_: Sequence[tuple[str, str]], max_points: int = 200
) -> tuple[pd.DataFrame, list[float]]:
    """The hypervolume of the Pareto set after each feasible trial (at most
    ``max_points`` of them, the last always kept), and its reference point in the
    objectives' own units: each objective's worst feasible value, a tenth of its range
    beyond it (:func:`tuner.storage._objectives.reference_point`)."""
    from tuner.storage._objectives import StudyObjectives, reference_point

    cols = [f"metrics.{m}" for m, _ in objectives_]
    feasible = points[points["feasible"]]
    if feasible.empty:
        return pd.DataFrame(columns=["number", "hypervolume"]), []
    study_objectives = StudyObjectives(
        tuple(m for m, _ in objectives_), tuple(mode for _, mode in objectives_)
    )
    ref = reference_point(study_objectives, feasible[cols].to_numpy(dtype=float).tolist())
    signs = [-1.0 if mode == "max" else 1.0 for _, mode in objectives_]
    at = np.unique(np.linspace(0, len(feasible) - 1, num=min(max_points, len(feasible))).round())
    hv = feasible.iloc[at.astype(int)][["number", "hypervolume"]].reset_index(drop=True)
    return hv, [r * s for r, s in zip(ref, signs, strict=True)]


# ---------------------------------------------------------------------- files


def human_bytes(n: int) -> str:
    """A size in bytes as people read it: ``512 B``, ``1.5 KiB``, ``12.0 MiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def artifacts_frame(records: Sequence[ArtifactRecord]) -> pd.DataFrame:
    """A trial's stored folders as the trial page lists them: its model first, then
    its checkpoints by step. Columns ``kind, step, size, saved`` (size in human units,
    saved as UTC text)."""
    ordered = sorted(records, key=lambda a: (a.kind != "model", a.step))
    return pd.DataFrame(
        {
            "kind": [a.kind for a in ordered],
            "step": [int(a.step) for a in ordered],
            "size": [human_bytes(a.bytes) for a in ordered],
            "saved": [_utc_text(a.created_at) for a in ordered],
        }
    )


def _utc_text(at: datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
