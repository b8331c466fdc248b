"""Study rows: create, read, list, update one study's columns, delete.

Functions of a :class:`~tuner.storage._engine.Database`; :class:`~tuner.storage.Storage`
documents each one's contract.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy import exc as sa_exc

from tuner.exceptions import StorageError, StudyExistsError
from tuner.storage._checks import dumps, now, require_text
from tuner.storage._engine import Database
from tuner.storage._models import OUTPUTS, PARAMS, STUDIES, TRIALS, VALUES, Study
from tuner.storage._records import (
    STUDY_STATES,
    TRIAL_STATES,
    StudyRecord,
    StudyState,
    StudySummary,
    TrialState,
)

__all__ = [
    "create_study",
    "delete_study",
    "get_study",
    "get_study_by_id",
    "is_stop_requested",
    "list_studies",
    "set_study_status",
    "study_record",
    "update_study",
]

_UPDATABLE = frozenset(
    {"status", "finished_at", "stop_requested", "heartbeat_at", "num_trials", "spec_json"}
)
"""The columns of a study that change after it is created."""


def create_study(db: Database, name: str, spec: dict[str, Any], **columns: Any) -> StudyRecord:
    """Insert a study with status ``created`` (see :meth:`Storage.create_study`).

    ``columns`` are the study's ``metric``, ``mode``, ``algorithm``, ``scheduler`` and
    ``num_trials``.
    """
    require_text("name", name)
    for what in ("metric", "algorithm", "scheduler"):
        require_text(what, columns[what])
    mode, num_trials = columns["mode"], columns["num_trials"]
    if mode not in ("min", "max"):
        raise StorageError(f"mode must be 'min' or 'max' (got {mode!r})")
    if num_trials is not None and (
        not isinstance(num_trials, int) or isinstance(num_trials, bool) or num_trials < 0
    ):
        raise StorageError(f"num_trials must be an int >= 0 or None (got {num_trials!r})")
    if not isinstance(spec, Mapping):
        raise StorageError(f"spec must be a dict (got {type(spec).__name__})")
    try:
        spec_json = dumps(spec)
    except (TypeError, ValueError) as e:
        raise StorageError(f"the spec of study {name!r} is not JSON-able: {e}") from None

    with db.session(f"create study {name!r}", write=True) as session:
        study = Study(
            name=name,
            status=StudyState.CREATED.value,
            metric=columns["metric"],
            mode=mode,
            algorithm=columns["algorithm"],
            scheduler=columns["scheduler"],
            num_trials=num_trials,
            spec_json=spec_json,
            created_at=now(),
            finished_at=None,
            stop_requested=False,
            heartbeat_at=None,
        )
        session.add(study)
        try:
            session.flush()
        except sa_exc.IntegrityError:
            raise StudyExistsError(
                f"a study named {name!r} already exists in {db.masked_url}: "
                f"choose another name, delete it with `tuner delete {name}`, "
                f"or continue it with tuner.load_study({name!r})"
            ) from None
        return study_record(study)


def get_study(db: Database, name: str) -> StudyRecord:
    """The study named ``name``; StudyNotFoundError if there is none."""
    with db.session(f"read study {name!r}") as session:
        study = session.scalar(select(Study).where(Study.name == name))
        if study is None:
            raise db.not_found_by_name(name)
        return study_record(study)


def get_study_by_id(db: Database, study_id: int) -> StudyRecord:
    """The study with id ``study_id``; StudyNotFoundError if there is none."""
    with db.session(f"read study {study_id}") as session:
        study = session.get(Study, study_id)
        if study is None:
            raise db.not_found_by_id(study_id)
        return study_record(study)


_feasible_value = case((TRIALS.c.feasible.is_(False), None), else_=TRIALS.c.value)


def list_studies(db: Database) -> list[StudySummary]:
    """Every study, oldest first, with counts per state and the best value (in SQL)."""
    with db.session("list studies") as session:
        studies = session.scalars(select(Study).order_by(Study.created_at, Study.id)).all()
        aggregates = session.execute(
            select(
                TRIALS.c.study_id,
                TRIALS.c.state,
                func.count(),
                # An infeasible trial (constraints) is never best.
                func.min(_feasible_value),
                func.max(_feasible_value),
            ).group_by(TRIALS.c.study_id, TRIALS.c.state)
        ).all()
        records = [study_record(s) for s in studies]
    counts: dict[int, dict[TrialState, int]] = defaultdict(lambda: dict.fromkeys(TRIAL_STATES, 0))
    best: dict[int, tuple[float | None, float | None]] = {}
    for study_id, state, count, low, high in aggregates:
        counts[study_id][TrialState(state)] = count
        if state == TrialState.COMPLETED:
            best[study_id] = (low, high)
    summaries = []
    for record in records:
        low, high = best.get(record.id, (None, None))
        summaries.append(
            StudySummary(
                study=record,
                trial_counts=dict(counts[record.id]),
                best_value=low if record.mode == "min" else high,
            )
        )
    return summaries


def update_study(db: Database, study: int | str, doing: str, **values: Any) -> None:
    """Set columns of one study's row in one transaction.

    The one way the storage changes a study after creating it: its status, its stop
    request, its heartbeat, its trial budget and stored spec (a study extended by
    `tuner resume NAME --num-trials N`).

    Args:
        db: the database.
        study: the study's id (int) or name (str).
        doing: what this does, for the error message ("record the heartbeat of ...").
        **values: column -> new value; the columns must be among ``status``,
            ``finished_at``, ``stop_requested``, ``heartbeat_at``, ``num_trials`` and
            ``spec_json``.

    Raises:
        StudyNotFoundError: there is no such study.
        StorageError: no column or a column that cannot change was given, the
            database is read-only, or it fails.
    """
    unknown = sorted(set(values) - _UPDATABLE)
    if not values or unknown:
        raise StorageError(
            f"cannot {doing}: a study's updatable columns are {sorted(_UPDATABLE)} "
            f"(got {sorted(values)})"
        )
    by = STUDIES.c.name == study if isinstance(study, str) else STUDIES.c.id == study
    with db.session(doing, write=True) as session:
        result = session.execute(update(STUDIES).where(by).values(**values))
        if result.rowcount == 0:  # type: ignore[attr-defined]
            if isinstance(study, str):
                raise db.not_found_by_name(study)
            raise db.not_found_by_id(study)


def set_study_status(db: Database, study_id: int, status: StudyState | str) -> None:
    """Set the status; a terminal one also sets ``finished_at``, any other clears it."""
    if status not in STUDY_STATES:
        raise StorageError(f"study status must be one of {STUDY_STATES} (got {status!r})")
    state = StudyState(status)
    update_study(
        db,
        study_id,
        f"set the status of study {study_id}",
        status=state.value,
        finished_at=now() if state.is_finished else None,
    )


def is_stop_requested(db: Database, study_id: int) -> bool:
    """Whether someone asked the study's driver to stop."""
    with db.session(f"read the stop request of study {study_id}") as session:
        flag = session.scalar(select(STUDIES.c.stop_requested).where(STUDIES.c.id == study_id))
        if flag is None:
            raise db.not_found_by_id(study_id)
        return bool(flag)


def delete_study(db: Database, name: str) -> int:
    """Delete study ``name`` and everything of it, set-wise; returns its id."""
    with db.session(f"delete study {name!r}", write=True) as session:
        study_id = Study.id_by_name(session, name)
        if study_id is None:
            raise db.not_found_by_name(name)
        # Set-based deletes, children first: one pass over each table instead of
        # the row-by-row cascade (the foreign keys cascade too, as a backstop).
        trial_ids = select(TRIALS.c.id).where(TRIALS.c.study_id == study_id)
        session.execute(delete(VALUES).where(VALUES.c.trial_id.in_(trial_ids)))
        session.execute(delete(OUTPUTS).where(OUTPUTS.c.trial_id.in_(trial_ids)))
        session.execute(delete(PARAMS).where(PARAMS.c.trial_id.in_(trial_ids)))
        session.execute(delete(TRIALS).where(TRIALS.c.study_id == study_id))
        session.execute(delete(STUDIES).where(STUDIES.c.id == study_id))
    return study_id


def study_record(study: Study) -> StudyRecord:
    """The immutable record of a study row."""
    return StudyRecord(
        id=study.id,
        name=study.name,
        status=StudyState(study.status),
        metric=study.metric,
        mode=study.mode,
        algorithm=study.algorithm,
        scheduler=study.scheduler,
        num_trials=study.num_trials,
        spec=json.loads(study.spec_json),
        created_at=study.created_at,
        finished_at=study.finished_at,
        stop_requested=bool(study.stop_requested),
        heartbeat_at=study.heartbeat_at,
    )
