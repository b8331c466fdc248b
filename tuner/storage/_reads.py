"""Trial reads: records of one trial, of a study's trials, the best one, the curves.

Functions of a :class:`~tuner.storage._engine.Database`; :class:`~tuner.storage.Storage`
documents each one's contract.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from tuner.exceptions import StorageError
from tuner.storage._engine import Database
from tuner.storage._models import ARTIFACTS, OUTPUTS, PARAMS, STUDIES, TRIALS, VALUES, Study
from tuner.storage._records import (
    TRIAL_STATES,
    ArtifactRecord,
    TrialOutputRecord,
    TrialRecord,
    TrialState,
)

__all__ = [
    "IN_CHUNK",
    "artifacts",
    "best_trial",
    "best_trials",
    "get_intermediate",
    "get_trial",
    "get_trials",
    "next_trial_number",
    "pareto_candidate",
    "trial_output",
]

# Bound parameters a single IN (...) may carry; SQLite allows 32766, keep well below.
IN_CHUNK = 500

TRIAL_COLUMNS = (
    TRIALS.c.id,
    TRIALS.c.study_id,
    TRIALS.c.number,
    TRIALS.c.state,
    TRIALS.c.value,
    TRIALS.c.metrics_json,
    TRIALS.c.node,
    TRIALS.c.started_at,
    TRIALS.c.finished_at,
    TRIALS.c.duration_s,
    TRIALS.c.error,
    TRIALS.c.steps,
    TRIALS.c.attempts,
    TRIALS.c.attempt_errors_json,
    TRIALS.c.values_json,
    TRIALS.c.feasible,
    TRIALS.c.constraints_json,
    TRIALS.c.parent,
)
# Where no constraint failed: NULL is a trial written before constraints existed.
NOT_INFEASIBLE = or_(TRIALS.c.feasible.is_(None), TRIALS.c.feasible.is_(True))


def next_trial_number(db: Database, study_id: int) -> int:
    """The number for the study's next trial: the largest so far + 1, 0 for none."""
    with db.session(f"read the trial numbers of study {study_id}") as session:
        largest = session.scalar(
            select(func.max(TRIALS.c.number)).where(TRIALS.c.study_id == study_id)
        )
        if largest is None:
            if not Study.exists(session, study_id):
                raise db.not_found_by_id(study_id)
            return 0
        return int(largest) + 1


def get_trials(
    db: Database, study_id: int, states: Sequence[TrialState | str] | None = None
) -> list[TrialRecord]:
    """The study's trials, by number; only those in ``states`` if given."""
    conditions = [TRIALS.c.study_id == study_id]
    if states is not None:
        if isinstance(states, str):
            states = [states]
        bad = [s for s in states if s not in TRIAL_STATES]
        if bad:
            raise StorageError(f"trial states must be among {TRIAL_STATES} (got {bad})")
        conditions.append(TRIALS.c.state.in_([TrialState(s).value for s in states]))
    with db.session(f"read the trials of study {study_id}") as session:
        rows = session.execute(
            select(*TRIAL_COLUMNS).where(*conditions).order_by(TRIALS.c.number)
        ).all()
        if not rows:
            if not Study.exists(session, study_id):
                raise db.not_found_by_id(study_id)
            return []
        params = read_params(
            session,
            select(PARAMS.c.trial_id, PARAMS.c.name, PARAMS.c.value_json)
            .join(TRIALS, TRIALS.c.id == PARAMS.c.trial_id)
            .where(*conditions),
        )
    return [trial_record(row, params.get(row.id, {})) for row in rows]


def get_trial(db: Database, study_id: int, number: int) -> TrialRecord:
    """Trial ``number`` of the study."""
    with db.session(f"read trial {number} of study {study_id}") as session:
        row = session.execute(
            select(*TRIAL_COLUMNS).where(TRIALS.c.study_id == study_id, TRIALS.c.number == number)
        ).one_or_none()
        if row is None:
            if not Study.exists(session, study_id):
                raise db.not_found_by_id(study_id)
            raise StorageError(f"study {study_id} in {db.masked_url} has no trial number {number}")
        return _with_params(session, row)


def trial_output(db: Database, study_id: int, number: int) -> list[TrialOutputRecord]:
    """What trial ``number`` of the study wrote, one record per attempt that wrote."""
    with db.session(f"read the output of trial {number} of study {study_id}") as session:
        trial_id = session.scalar(
            select(TRIALS.c.id).where(TRIALS.c.study_id == study_id, TRIALS.c.number == number)
        )
        if trial_id is None:
            if not Study.exists(session, study_id):
                raise db.not_found_by_id(study_id)
            raise StorageError(f"study {study_id} in {db.masked_url} has no trial number {number}")
        rows = session.execute(
            select(OUTPUTS.c.attempt, OUTPUTS.c.text, OUTPUTS.c.truncated)
            .where(OUTPUTS.c.trial_id == trial_id)
            .order_by(OUTPUTS.c.attempt)
        )
        return [
            TrialOutputRecord(number, attempt, text, bool(truncated))
            for attempt, text, truncated in rows
        ]


def artifacts(db: Database, study_id: int, number: int | None = None) -> list[ArtifactRecord]:
    """The checkpoints and models of the study's trials (of trial ``number`` only, if
    given), by trial number, kind and step."""
    query = (
        select(
            TRIALS.c.number,
            ARTIFACTS.c.step,
            ARTIFACTS.c.kind,
            ARTIFACTS.c.uri,
            ARTIFACTS.c.bytes,
            ARTIFACTS.c.created_at,
        )
        .join(TRIALS, TRIALS.c.id == ARTIFACTS.c.trial_id)
        .where(TRIALS.c.study_id == study_id)
        .order_by(TRIALS.c.number, ARTIFACTS.c.kind, ARTIFACTS.c.step, ARTIFACTS.c.id)
    )
    if number is not None:
        query = query.where(TRIALS.c.number == number)
    with db.session(f"read the artifacts of study {study_id}") as session:
        rows = session.execute(query).all()
        if not rows and not Study.exists(session, study_id):
            raise db.not_found_by_id(study_id)
    return [
        ArtifactRecord(n, step, kind, uri, int(size), at) for n, step, kind, uri, size, at in rows
    ]


def best_trial(db: Database, study_id: int) -> TrialRecord | None:
    """The completed, feasible trial with the lowest (mode min) or highest (max) ``value``."""
    with db.session(f"read the best trial of study {study_id}") as session:
        mode = session.scalar(select(STUDIES.c.mode).where(STUDIES.c.id == study_id))
        if mode is None:
            raise db.not_found_by_id(study_id)
        order = TRIALS.c.value.asc() if mode == "min" else TRIALS.c.value.desc()
        row = session.execute(
            select(*TRIAL_COLUMNS)
            .where(
                TRIALS.c.study_id == study_id,
                TRIALS.c.state == TrialState.COMPLETED.value,
                TRIALS.c.value.is_not(None),
                NOT_INFEASIBLE,
            )
            .order_by(order, TRIALS.c.number)
            .limit(1)
        ).one_or_none()
        if row is None:
            return None
        return _with_params(session, row)


def best_trials(db: Database, study_id: int) -> list[TrialRecord]:
    """The Pareto set: completed, feasible trials with every objective's value that no
    other such trial dominates, by number (one objective: those with the best value)."""
    from tuner.storage._objectives import StudyObjectives, pareto_flags

    with db.session(f"read the study {study_id}") as session:
        study = session.execute(
            select(STUDIES.c.spec_json, STUDIES.c.metric, STUDIES.c.mode).where(
                STUDIES.c.id == study_id
            )
        ).one_or_none()
    if study is None:
        raise db.not_found_by_id(study_id)
    objectives = StudyObjectives.from_json(*study)
    trials = get_trials(db, study_id, [TrialState.COMPLETED])
    flags = pareto_flags(objectives, [pareto_candidate(t) for t in trials])
    return [t for t, on in zip(trials, flags, strict=True) if on]


def pareto_candidate(trial: TrialRecord) -> tuple[float, ...] | None:
    """A trial's values if it can be on the Pareto set (completed, feasible), else None."""
    if trial.state != TrialState.COMPLETED or trial.feasible is False:
        return None
    return trial.values


def get_intermediate(
    db: Database, study_id: int, numbers: Sequence[int] | None = None
) -> dict[int, dict[str, list[tuple[int, float]]]]:
    """The study's intermediate values: number -> metric -> [(step, value)] by step."""
    base = (
        select(TRIALS.c.number, VALUES.c.metric, VALUES.c.step, VALUES.c.value)
        .join(TRIALS, TRIALS.c.id == VALUES.c.trial_id)
        .where(TRIALS.c.study_id == study_id)
        .order_by(TRIALS.c.number, VALUES.c.metric, VALUES.c.step)
    )
    if numbers is None:
        queries = [base]
    else:
        wanted = sorted(set(numbers))
        queries = [
            base.where(TRIALS.c.number.in_(wanted[i : i + IN_CHUNK]))
            for i in range(0, len(wanted), IN_CHUNK)
        ]
    out: dict[int, dict[str, list[tuple[int, float]]]] = {}
    with db.session(f"read the intermediate values of study {study_id}") as session:
        for query in queries:
            for number, metric, step, value in session.execute(query):
                curves = out.setdefault(number, {})
                curves.setdefault(metric, []).append((step, math.nan if value is None else value))
        if not out and not Study.exists(session, study_id):
            raise db.not_found_by_id(study_id)
    return out


def read_params(session: Session, query: Any) -> dict[int, dict[str, Any]]:
    """Trial id -> parameter name -> value, for the ``(trial_id, name, value_json)``
    rows of ``query``, names sorted."""
    params: dict[int, dict[str, Any]] = defaultdict(dict)
    for trial_id, name, value_json in session.execute(query.order_by(PARAMS.c.name)):
        params[trial_id][name] = json.loads(value_json)
    return params


def _with_params(session: Session, row: Any) -> TrialRecord:
    params = read_params(
        session,
        select(PARAMS.c.trial_id, PARAMS.c.name, PARAMS.c.value_json).where(
            PARAMS.c.trial_id == row.id
        ),
    )
    return trial_record(row, params.get(row.id, {}))


def trial_record(row: Any, params: dict[str, Any]) -> TrialRecord:
    """The immutable record of a row of :data:`TRIAL_COLUMNS` with its parameters."""
    return TrialRecord(
        study_id=row.study_id,
        number=row.number,
        state=TrialState(row.state),
        params=params,
        metrics=json.loads(row.metrics_json),
        value=row.value,
        node=row.node,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        error=row.error,
        steps=row.steps,
        attempts=row.attempts,
        attempt_errors=tuple(json.loads(row.attempt_errors_json)),
        values=_values(row),
        feasible=_feasible(row),
        constraint_values=json.loads(row.constraints_json) if row.constraints_json else {},
        parent=row.parent,
    )


def _values(row: Any) -> tuple[float, ...] | None:
    if row.values_json is not None:
        values = json.loads(row.values_json)
        return None if values is None else tuple(values)
    # Written before revision 0003, or not finished: a single objective's value.
    if row.state != TrialState.RUNNING.value and row.value is not None:
        return (row.value,)
    return None


def _feasible(row: Any) -> bool | None:
    if row.feasible is not None:
        return bool(row.feasible)
    # Written before revision 0003 (no constraints then), or still running.
    return None if row.state == TrialState.RUNNING.value else True
