"""Trials as a table (pandas) and as files (json, csv, parquet)."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.spec import StudySpec
from tuner.storage import TrialRecord

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("csv", "json", "parquet")
# Each trial's kept model (its URI in the artifacts store, or empty) and the trial whose
# checkpoint it started from (Population Based Training), last in the tables.
_LINKS = ("model", "parent")


def _model_uri(t: TrialRecord) -> str | None:
    """A :class:`tuner.Trial`'s kept model (a bare record knows none)."""
    uri: str | None = getattr(t, "model_uri", None)
    return uri


def objective_facts(
    trials: Sequence[TrialRecord], spec: StudySpec | None
) -> list[dict[str, Any]] | None:
    """Per trial, ``values`` (objective order), ``feasible`` and ``pareto`` (on the
    computed Pareto set), for a study with several objectives or with constraints;
    None for any other study (its files keep their columns)."""
    if spec is None or not (spec.is_multi_objective or spec.constraints):
        return None
    from tuner.storage._objectives import StudyObjectives, pareto_flags
    from tuner.storage._reads import pareto_candidate

    objectives = StudyObjectives.of(spec.to_dict(), spec.metric, spec.mode)
    flags = pareto_flags(objectives, [pareto_candidate(t) for t in trials])
    return [
        {
            "values": None if t.values is None else list(t.values),
            "feasible": t.feasible,
            "pareto": on,
        }
        for t, on in zip(trials, flags, strict=True)
    ]


def trials_frame(trials: Sequence[TrialRecord], spec: StudySpec | None = None) -> pd.DataFrame:
    """One row a trial with `params.*` and `metrics.*` columns (several objectives or
    constraints: `values.<metric>` per objective, `feasible` and `pareto` too)."""
    import pandas as pd

    rows = []
    facts = objective_facts(trials, spec)
    for i, t in enumerate(trials):
        # str(): the state's plain value ("completed"), as the files document it.
        row: dict[str, Any] = {"number": t.number, "state": str(t.state), "value": t.value}
        row.update({f"params.{k}": v for k, v in t.params.items()})
        row.update({f"metrics.{k}": v for k, v in t.metrics.items()})
        row.update(
            {"node": t.node, "started": t.started_at, "duration_s": t.duration_s, "error": t.error}
        )
        row.update(model=_model_uri(t), parent=t.parent)
        if facts is not None and spec is not None:
            values = facts[i]["values"] or [None] * len(spec.objective_metrics)
            row.update(
                {f"values.{m}": v for m, v in zip(spec.objective_metrics, values, strict=True)}
            )
            row.update(feasible=facts[i]["feasible"], pareto=facts[i]["pareto"])
        rows.append(row)
    fixed = ["number", "state", "value"]
    param_cols = [f"params.{n}" for n in (spec.search_space if spec else ())]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(
            columns=[*fixed, *param_cols, "node", "started", "duration_s", "error", *_LINKS]
        )
    # Spec order for params, then any others, then metrics, then the trial's facts.
    params = param_cols + sorted(
        c for c in frame if c.startswith("params.") and c not in param_cols
    )
    metrics = sorted(c for c in frame if c.startswith("metrics."))
    objective_cols: list[str] = []
    if facts is not None and spec is not None:
        objective_cols = [*(f"values.{m}" for m in spec.objective_metrics), "feasible", "pareto"]
    cols = [
        *fixed,
        *objective_cols,
        *[c for c in params if c in frame],
        *metrics,
        "node",
        "started",
        "duration_s",
        "error",
        *_LINKS,
    ]
    frame = frame.reindex(columns=cols)
    # Nullable integers: a column of parents with gaps stays 3, not 3.0.
    frame["parent"] = frame["parent"].astype("Int64")
    return frame


def _json_number(v: float | None) -> float | str | None:
    if v is None or math.isfinite(v):
        return v
    return str(v)  # "nan", "inf": JSON has no literal for them


def trials_json(
    trials: Sequence[TrialRecord],
    intermediate: dict[int, dict[str, list[tuple[int, float]]]],
    spec: StudySpec | None = None,
) -> list[dict[str, Any]]:
    """The documented JSON export: one object a trial (several objectives or
    constraints: with ``values``, ``feasible`` and ``pareto``)."""
    out = []
    facts = objective_facts(trials, spec)
    for i, t in enumerate(trials):
        curves = intermediate.get(t.number, {})
        out.append(
            {
                "number": t.number,
                "state": str(t.state),
                "params": t.params,
                "metrics": {k: _json_number(v) for k, v in t.metrics.items()},
                "intermediate": {
                    m: [[s, _json_number(v)] for s, v in pairs] for m, pairs in curves.items()
                },
                "node": t.node,
                "started": t.started_at.isoformat() if t.started_at else None,
                "duration_s": t.duration_s,
                "error": t.error,
                "attempts": t.attempts,
                "attempt_errors": list(t.attempt_errors),
                "model": _model_uri(t),
                "parent": t.parent,
            }
        )
        if facts is not None:
            out[-1].update(facts[i])
    return out


def export(study: Any, fmt: str, path: str | Path | None) -> str | None:
    """Write a study's trials as csv, json or parquet to `path` (json and csv may go to
    the returned string when `path` is None)."""
    trials = study.trials()
    if fmt == "json":
        text = json.dumps(trials_json(trials, study.intermediate(), study.spec), indent=2)
        if path is None:
            return text
        Path(path).write_text(text + "\n", encoding="utf-8")
        return None
    frame = trials_frame(trials, study.spec)
    if fmt == "csv":
        if path is None:
            return str(frame.to_csv(index=False))
        frame.to_csv(path, index=False)
        return None
    if fmt == "parquet":
        if path is None:
            raise ValueError("parquet needs an output file (-o FILE)")
        frame["started"] = frame["started"].astype("datetime64[us, UTC]")
        frame.to_parquet(path, index=False)
        return None
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
