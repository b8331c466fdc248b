"""The write path: batches of trial events, bulk imports, closing running trials.

:class:`TrialWriter` folds a batch of events into one change per trial and writes it
with a few set-based statements (docs/storage.md, *Writes*). It caches the id and
metrics of each running trial, so a typical batch writes without reading first.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.orm import Session

from tuner._output import OUTPUT_LIMIT, tail_bytes
from tuner.exceptions import StorageRefused
from tuner.storage._checks import (
    as_float,
    checked_finish,
    checked_metrics,
    checked_start,
    dumps,
    encode_params,
    nan_to_none,
    now,
    require_optional_text,
)
from tuner.storage._engine import Database, reason
from tuner.storage._models import ARTIFACTS, OUTPUTS, PARAMS, STUDIES, TRIALS, VALUES, Study
from tuner.storage._objectives import StudyObjectives
from tuner.storage._reads import IN_CHUNK
from tuner.storage._records import (
    ARTIFACT_KINDS,
    TERMINAL_TRIAL_STATES,
    ArtifactDeleted,
    ArtifactSaved,
    TrialFinished,
    TrialImport,
    TrialOutput,
    TrialResult,
    TrialRetried,
    TrialStarted,
    TrialState,
)

__all__ = ["TrialEvent", "TrialWriter"]

TrialEvent: TypeAlias = (
    TrialStarted
    | TrialResult
    | TrialRetried
    | TrialFinished
    | TrialOutput
    | ArtifactSaved
    | ArtifactDeleted
)

_Key: TypeAlias = tuple[int, int]
_RUNNING = TrialState.RUNNING.value


class TrialWriter:
    """Writes trial events to one database; one per :class:`~tuner.storage.Storage`.

    Thread-safe: writes are serialised by :attr:`lock`, which deleting a study takes
    too, so the running-trial cache never outlives the rows it describes.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.lock = threading.Lock()
        # (study_id, number) -> what write() needs about a running trial, so that a
        # batch usually writes without reading first. Finished trials are dropped.
        self._running: dict[_Key, _RunningTrial] = {}
        # study_id -> its objectives and constraints (a study's spec never changes).
        self._objectives: dict[int, StudyObjectives] = {}

    def forget_study(self, study_id: int) -> None:
        """Drop the cached running trials of a study (deleted, or its trials closed)."""
        for key in [k for k in self._running if k[0] == study_id]:
            del self._running[key]
        self._objectives.pop(study_id, None)

    def _objectives_of(self, session: Session, study_ids: set[int]) -> dict[int, StudyObjectives]:
        """The objectives of each study in `study_ids` (read once per study)."""
        missing = sorted(study_ids - set(self._objectives))
        for i in range(0, len(missing), IN_CHUNK):
            rows = session.execute(
                select(STUDIES.c.id, STUDIES.c.spec_json, STUDIES.c.metric, STUDIES.c.mode).where(
                    STUDIES.c.id.in_(missing[i : i + IN_CHUNK])
                )
            )
            for study_id, spec_json, metric, mode in rows:
                self._objectives[study_id] = StudyObjectives.from_json(spec_json, metric, mode)
        return self._objectives

    def write(self, events: Sequence[TrialEvent]) -> None:
        """Record a batch of trial events in one transaction (see :meth:`Storage.write`)."""
        if not events:
            return
        outputs = [e for e in events if isinstance(e, TrialOutput)]
        files = [e for e in events if isinstance(e, ArtifactSaved | ArtifactDeleted)]
        trial_events = [
            e for e in events if not isinstance(e, TrialOutput | ArtifactSaved | ArtifactDeleted)
        ]

        def after(session: Session, batch: dict[_Key, _Pending]) -> None:
            self._write_outputs(session, batch, outputs)
            self._write_artifacts(session, batch, files)

        with self.lock:
            batch = self._commit(lambda session: self._stage(session, trial_events), after=after)
            self._remember(batch)

    def import_trials(
        self, study_id: int, trials: Iterable[TrialImport], *, batch_size: int = 1000
    ) -> int:
        """Write finished trials with their whole history, ``batch_size`` a transaction
        (see :meth:`Storage.import_trials`); returns how many were written."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise StorageRefused(f"batch_size must be an int >= 1 (got {batch_size!r})")
        written = 0
        remaining = iter(trials)  # a generator is consumed a batch at a time
        while chunk := list(itertools.islice(remaining, batch_size)):
            with self.lock:
                self._commit(functools.partial(self._stage_imports, study_id, chunk))
            written += len(chunk)
        return written

    def _commit(
        self,
        stage: Callable[[Session], dict[_Key, _Pending]],
        after: Callable[[Session, dict[_Key, _Pending]], None] | None = None,
    ) -> dict[_Key, _Pending]:
        """Stage a batch and apply it in one write transaction (then `after`, in the
        same transaction); explains a refused start."""
        try:
            with self._db.session("write trial events", write=True) as session:
                batch = stage(session)
                self._apply(session, batch)
                if after is not None:
                    after(session, batch)
        except _StartRefused as refused:
            raise self._explain_refused_start(refused) from None
        return batch

    def _remember(self, batch: dict[_Key, _Pending]) -> None:
        for key, pending in batch.items():
            if pending.finish is not None:
                self._running.pop(key, None)
            else:
                assert pending.trial_id is not None  # set by _apply
                self._running[key] = _RunningTrial(
                    pending.trial_id, pending.metrics, pending.attempt_errors
                )

    def _stage_imports(
        self, study_id: int, trials: list[TrialImport], _session: Session
    ) -> dict[_Key, _Pending]:
        """Check imported trials and fold each into one insert, as :meth:`_stage` does.

        Nothing is read first: the unique ``(study_id, number)`` refuses a number in use.
        """
        batch: dict[_Key, _Pending] = {}
        for trial in trials:
            if not isinstance(trial, TrialImport):
                raise StorageRefused(
                    f"cannot import trials: expected TrialImport, got {type(trial).__name__}"
                )
            key = (study_id, trial.number)
            where = f"trial {trial.number} of study {study_id}"
            if key in batch or key in self._running:
                raise StorageRefused(f"cannot write trial events: {where} was already started")
            pending = _Pending(
                trial_id=None,
                started=checked_start(
                    TrialStarted(
                        study_id, trial.number, dict(trial.params), trial.started_at, trial.node
                    ),
                    where,
                ),
                params=encode_params(trial.params, where),
                finish=checked_finish(
                    TrialFinished(
                        study_id, trial.number, trial.state, trial.finished_at,
                        trial.duration_s, dict(trial.metrics), trial.value, trial.error, trial.node,
                    ),
                    where,
                ),
            )  # fmt: skip
            steps: set[int] = set()
            for metric, curve in _checked_curves(trial.curves, where).items():
                for step, raw in curve:
                    if not isinstance(step, int) or isinstance(step, bool):
                        raise StorageRefused(
                            f"cannot write trial events: {where}: step must be an int "
                            f"(got {step!r})"
                        )
                    # A float is taken as it is: a million values must not each build
                    # an error message they will not need.
                    value = raw if type(raw) is float else as_float(raw, f"{where}: {metric!r}")
                    assert value is not None
                    pending.values[(metric, step)] = value
                    pending.metrics[metric] = value
                    steps.add(step)
            pending.steps = len(steps)
            pending.metrics.update(checked_metrics(trial.metrics, where))
            batch[key] = pending
        return batch

    def _stage(self, session: Session, events: Sequence[TrialEvent]) -> dict[_Key, _Pending]:
        """Validate the batch against what is stored and fold it into one change per trial."""
        for event_ in events:
            if not isinstance(event_, TrialStarted | TrialResult | TrialRetried | TrialFinished):
                raise StorageRefused(
                    "cannot write trial events: expected TrialStarted, TrialResult, "
                    f"TrialRetried or TrialFinished, got {type(event_).__name__}"
                )
        started = {(e.study_id, e.number) for e in events if isinstance(e, TrialStarted)}
        unknown = {
            (e.study_id, e.number)
            for e in events
            if not isinstance(e, TrialStarted)
            and (e.study_id, e.number) not in started
            and (e.study_id, e.number) not in self._running
        }
        stored = _lookup_trials(session, unknown)

        batch: dict[_Key, _Pending] = {}
        for event_ in events:
            key = (event_.study_id, event_.number)
            where = f"trial {event_.number} of study {event_.study_id}"
            if isinstance(event_, TrialStarted):
                if key in batch or key in self._running or key in stored:
                    raise StorageRefused(f"cannot write trial events: {where} was already started")
                batch[key] = _Pending(
                    trial_id=None,
                    started=checked_start(event_, where),
                    params=encode_params(event_.params, where),
                )
                continue
            pending = batch.get(key)
            if pending is None:
                pending = _pending_for(key, where, self._running.get(key), stored.get(key))
                batch[key] = pending
            if pending.finish is not None:
                raise StorageRefused(
                    f"cannot write trial events: {where} has finished; "
                    "finished trials are read-only"
                )
            if isinstance(event_, TrialResult):
                step = event_.step
                if not isinstance(step, int) or isinstance(step, bool):
                    raise StorageRefused(
                        f"cannot write trial events: {where}: step must be an int (got {step!r})"
                    )
                for metric, raw in checked_metrics(event_.metrics, where).items():
                    pending.metrics[metric] = raw
                    pending.values[(metric, step)] = raw
                pending.steps += 1
                require_optional_text(event_.node, f"{where}: node")
                if event_.node:
                    pending.node = event_.node
            elif isinstance(event_, TrialRetried):
                if not isinstance(event_.error, str):
                    raise StorageRefused(
                        f"cannot write trial events: {where}: a retry's error must be a str "
                        f"(got {type(event_.error).__name__})"
                    )
                # The attempt that died is dropped: its results would count twice. From
                # a checkpoint, the results up to its step stay (the new attempt goes on
                # from there); without one, all go.
                keep = event_.keep_through
                if keep is not None and (not isinstance(keep, int) or isinstance(keep, bool)):
                    raise StorageRefused(
                        f"cannot write trial events: {where}: keep_through must be an int "
                        f"or None (got {keep!r})"
                    )
                pending.reset = True
                pending.keep_through = (
                    keep
                    if pending.keep_through is None or keep is None
                    else min(keep, pending.keep_through)
                )
                pending.metrics.clear()
                for metric, step in [k for k in pending.values if keep is None or k[1] > keep]:
                    del pending.values[(metric, step)]
                pending.steps = 0
                pending.attempt_errors.append(event_.error)
            elif isinstance(event_, TrialFinished):
                pending.finish = checked_finish(event_, where)
                pending.metrics.update(checked_metrics(event_.metrics, where))
        return batch

    def _apply(self, session: Session, batch: dict[_Key, _Pending]) -> None:
        finishing = {key[0] for key, p in batch.items() if p.finish is not None}
        if finishing:
            objectives = self._objectives_of(session, finishing)
            for (study_id, _), p in batch.items():
                if p.finish is not None and study_id in objectives:
                    p.derived = _derived_row(objectives[study_id], p.metrics)
        new = [(key, p) for key, p in batch.items() if p.trial_id is None]
        if new:
            rows = [_new_trial_row(key, p) for key, p in new]
            try:
                returned = session.execute(
                    insert(TRIALS).returning(TRIALS.c.id, TRIALS.c.study_id, TRIALS.c.number),
                    rows,
                ).all()
            except sa_exc.IntegrityError as e:
                # The transaction is lost (PostgreSQL); write() says which start failed.
                raise _StartRefused(
                    [key for key, _ in new], f"cannot write trial events: {reason(e)}"
                ) from None
            ids = {(study_id, number): trial_id for trial_id, study_id, number in returned}
            for key, p in new:
                p.trial_id = ids[key]
            params = [{"trial_id": p.trial_id, **param} for _, p in new for param in p.params]
            if params:
                session.execute(insert(PARAMS), params)

        reset = [
            p.trial_id
            for p in batch.values()
            if p.reset and p.started is None and p.keep_through is None
        ]
        for i in range(0, len(reset), IN_CHUNK):
            session.execute(delete(VALUES).where(VALUES.c.trial_id.in_(reset[i : i + IN_CHUNK])))
        for p in batch.values():
            if p.reset and p.started is None and p.keep_through is not None:
                # From a checkpoint: the steps after it go (the new attempt sends them).
                session.execute(
                    delete(VALUES).where(
                        VALUES.c.trial_id == p.trial_id, VALUES.c.step > p.keep_through
                    )
                )
        values = [
            (p.trial_id, metric, step, nan_to_none(v))
            for p in batch.values()
            for (metric, step), v in p.values.items()
        ]
        if values and self._db.backend == "postgresql":
            _upsert_values_postgresql(session, values)
        elif values:
            _executemany(session, self._upsert_values(), _VALUE_COLUMNS, values)

        for p in batch.values():
            if p.reset and p.started is None and p.keep_through is not None:
                # The steps kept and those this batch brought: the trial's count now.
                p.steps = int(
                    session.scalar(
                        select(func.count(func.distinct(VALUES.c.step))).where(
                            VALUES.c.trial_id == p.trial_id
                        )
                    )
                    or 0
                )
        progress = [_progress_row(p) for p in batch.values() if p.is_update and p.finish is None]
        finishes = [
            {**_progress_row(p), **_finish_row(p)}
            for p in batch.values()
            if p.is_update and p.finish is not None
        ]
        still_running = TRIALS.c.state == _RUNNING
        by_id = TRIALS.c.id == bindparam("b_id")
        # What a batch changes on every trial it touched, finished or not.
        progress_values = {
            "steps": TRIALS.c.steps * bindparam("b_keep") + bindparam("b_steps"),
            "metrics_json": bindparam("b_metrics_json"),
            "attempts": bindparam("b_attempts"),
            "attempt_errors_json": bindparam("b_attempt_errors_json"),
            # the node as soon as a result names it; an unnamed one keeps what is stored
            "node": func.coalesce(bindparam("b_node", type_=TRIALS.c.node.type), TRIALS.c.node),
        }
        for statement, rows in (
            (update(TRIALS).where(by_id, still_running).values(**progress_values), progress),
            (
                update(TRIALS)
                .where(by_id, still_running)
                .values(
                    **progress_values,
                    state=bindparam("b_state", type_=TRIALS.c.state.type),
                    value=bindparam("b_value", type_=TRIALS.c.value.type),
                    finished_at=bindparam("b_finished_at", type_=TRIALS.c.finished_at.type),
                    duration_s=bindparam("b_duration_s", type_=TRIALS.c.duration_s.type),
                    error=bindparam("b_error", type_=TRIALS.c.error.type),
                    values_json=bindparam("b_values_json", type_=TRIALS.c.values_json.type),
                    feasible=bindparam("b_feasible", type_=TRIALS.c.feasible.type),
                    constraints_json=bindparam(
                        "b_constraints_json", type_=TRIALS.c.constraints_json.type
                    ),
                ),
                finishes,
            ),
        ):
            if not rows:
                continue
            if rows is progress and self._db.backend == "postgresql":
                updated = _update_progress_postgresql(session, rows)
            else:
                # Core executemany: the ORM's bulk UPDATE wants primary-key rows, not SQL.
                result = session.connection().execute(statement, rows)
                sane = session.get_bind().dialect.supports_sane_multi_rowcount
                updated = result.rowcount if sane or len(rows) == 1 else len(rows)
            if updated != len(rows):
                # Another process (a second driver, `tuner resume`) finished a trial
                # under us; refuse rather than overwrite its outcome.
                raise StorageRefused(
                    "cannot write trial events: a trial of this batch was finished by "
                    "another process meanwhile; finished trials are read-only"
                )

    def _explain_refused_start(self, refused: _StartRefused) -> StorageRefused:
        by_study: dict[int, list[int]] = defaultdict(list)
        for study_id, number in refused.keys:
            by_study[study_id].append(number)
        with self._db.session("write trial events") as session:
            for study_id, numbers in sorted(by_study.items()):
                if not Study.exists(session, study_id):
                    return StorageRefused(
                        f"cannot write trial events: there is no study with id {study_id} "
                        f"in {self._db.masked_url}"
                    )
                taken = session.scalar(
                    select(func.min(TRIALS.c.number)).where(
                        TRIALS.c.study_id == study_id,
                        TRIALS.c.number.in_(numbers[:IN_CHUNK]),
                    )
                )
                if taken is not None:
                    return StorageRefused(
                        f"cannot write trial events: trial {taken} of study {study_id} "
                        "was already started"
                    )
        return refused

    def _trial_id(
        self, key: _Key, where: str, batch: dict[_Key, _Pending], stored: dict[_Key, Any]
    ) -> int:
        """The row id of the trial `key` (started in this batch, running, or stored), for
        the events that any trial takes, finished or not (output, artifacts)."""
        for known in (batch.get(key), self._running.get(key), stored.get(key)):
            if known is not None and known.trial_id is not None:
                return int(known.trial_id)
        raise StorageRefused(
            f"cannot write trial events: {where} was never started (write its TrialStarted first)"
        )

    def _write_artifacts(
        self,
        session: Session,
        batch: dict[_Key, _Pending],
        events: Sequence[ArtifactSaved | ArtifactDeleted],
    ) -> None:
        """Add a row for each stored checkpoint or model, drop the rows of deleted ones.
        Like output, taken for a finished trial too: a trial's model is decided as it
        ends, and ``artifacts.keep`` deletes the files of finished trials."""
        if not events:
            return
        missing = {
            (e.study_id, e.number)
            for e in events
            if (e.study_id, e.number) not in batch and (e.study_id, e.number) not in self._running
        }
        stored = _lookup_trials(session, missing)
        now = datetime.now(UTC)
        for e in events:
            key = (e.study_id, e.number)
            where = f"trial {e.number} of study {e.study_id}"
            trial_id = self._trial_id(key, where, batch, stored)
            if not isinstance(e.uri, str) or not e.uri:
                raise StorageRefused(
                    f"cannot write trial events: {where}: an artifact's uri must be a "
                    f"non-empty str (got {e.uri!r})"
                )
            if isinstance(e, ArtifactDeleted):
                session.execute(
                    delete(ARTIFACTS).where(
                        ARTIFACTS.c.trial_id == trial_id, ARTIFACTS.c.uri == e.uri
                    )
                )
                continue
            if e.kind not in ARTIFACT_KINDS:
                raise StorageRefused(
                    f"cannot write trial events: {where}: an artifact's kind must be one of "
                    f"{', '.join(ARTIFACT_KINDS)} (got {e.kind!r})"
                )
            for name, value in (("step", e.step), ("bytes", e.bytes)):
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise StorageRefused(
                        f"cannot write trial events: {where}: an artifact's {name} must be "
                        f"an int >= 0 (got {value!r})"
                    )
            # The same folder saved again (a retried attempt writing the same step)
            # replaces its row.
            session.execute(delete(ARTIFACTS).where(ARTIFACTS.c.uri == e.uri))
            session.execute(
                insert(ARTIFACTS).values(
                    trial_id=trial_id,
                    step=e.step,
                    kind=e.kind,
                    uri=e.uri,
                    bytes=e.bytes,
                    created_at=now,
                )
            )

    def _write_outputs(
        self, session: Session, batch: dict[_Key, _Pending], outputs: Sequence[TrialOutput]
    ) -> None:
        """Append each output to its trial attempt's stored output, keeping the last
        :data:`OUTPUT_LIMIT` bytes. A finished trial takes output too (what it wrote
        after its last report arrives as it ends): output is not an outcome."""
        if not outputs:
            return
        appended: dict[tuple[int, int], str] = {}  # (trial id, attempt) -> new text
        order: list[tuple[int, int]] = []
        missing = {
            (e.study_id, e.number)
            for e in outputs
            if (e.study_id, e.number) not in batch and (e.study_id, e.number) not in self._running
        }
        stored = _lookup_trials(session, missing)
        for e in outputs:
            key = (e.study_id, e.number)
            where = f"trial {e.number} of study {e.study_id}"
            if not isinstance(e.text, str):
                raise StorageRefused(
                    f"cannot write trial events: {where}: output must be a str "
                    f"(got {type(e.text).__name__})"
                )
            if not isinstance(e.attempt, int) or isinstance(e.attempt, bool) or e.attempt < 1:
                raise StorageRefused(
                    f"cannot write trial events: {where}: attempt must be an int >= 1 "
                    f"(got {e.attempt!r})"
                )
            trial_id = self._trial_id(key, where, batch, stored)
            slot = (trial_id, e.attempt)
            if slot not in appended:
                appended[slot] = ""
                order.append(slot)
            appended[slot] += e.text
        for i in range(0, len(order), IN_CHUNK):
            chunk = order[i : i + IN_CHUNK]
            ids = sorted({trial_id for trial_id, _ in chunk})
            old = {
                (trial_id, attempt): (text, truncated)
                for trial_id, attempt, text, truncated in session.execute(
                    select(
                        OUTPUTS.c.trial_id, OUTPUTS.c.attempt, OUTPUTS.c.text, OUTPUTS.c.truncated
                    ).where(OUTPUTS.c.trial_id.in_(ids))
                )
            }
            inserts: list[dict[str, Any]] = []
            updates: list[dict[str, Any]] = []
            for slot in chunk:
                before, was_truncated = old.get(slot, ("", False))
                combined = before + appended[slot]
                text = tail_bytes(combined, OUTPUT_LIMIT)
                row = {
                    "b_trial_id": slot[0],
                    "b_attempt": slot[1],
                    "b_text": text,
                    "b_truncated": bool(was_truncated) or text != combined,
                }
                (updates if slot in old else inserts).append(row)
            if inserts:
                session.execute(
                    insert(OUTPUTS),
                    [
                        {
                            "trial_id": r["b_trial_id"],
                            "attempt": r["b_attempt"],
                            "text": r["b_text"],
                            "truncated": r["b_truncated"],
                        }
                        for r in inserts
                    ],
                )
            if updates:
                session.connection().execute(
                    update(OUTPUTS)
                    .where(
                        OUTPUTS.c.trial_id == bindparam("b_trial_id"),
                        OUTPUTS.c.attempt == bindparam("b_attempt"),
                    )
                    .values(text=bindparam("b_text"), truncated=bindparam("b_truncated")),
                    updates,
                )

    def _upsert_values(self) -> Any:
        dialect = pg_dialect if self._db.backend == "postgresql" else sqlite_dialect
        statement = dialect.insert(VALUES)
        return statement.on_conflict_do_update(
            index_elements=[VALUES.c.trial_id, VALUES.c.metric, VALUES.c.step],
            set_={"value": statement.excluded.value},
        )

    def mark_running_trials(
        self,
        study_id: int,
        state: TrialState | str,
        error: str,
        keep: Sequence[int] = (),
    ) -> int:
        """Close the study's running trials (see :meth:`Storage.mark_running_trials`)."""
        if state not in TERMINAL_TRIAL_STATES:
            raise StorageRefused(
                f"running trials can be marked {TERMINAL_TRIAL_STATES} only (got {state!r})"
            )
        with self.lock:
            doing = f"mark the running trials of study {study_id}"
            with self._db.session(doing, write=True) as session:
                result = session.execute(
                    update(TRIALS)
                    .where(
                        TRIALS.c.study_id == study_id,
                        TRIALS.c.state == _RUNNING,
                        TRIALS.c.number.not_in(list(keep)),
                    )
                    .values(state=TrialState(state).value, error=error, finished_at=now())
                )
                count = int(result.rowcount)  # type: ignore[attr-defined]
                if count == 0 and not Study.exists(session, study_id):
                    raise self._db.not_found_by_id(study_id)
            self.forget_study(study_id)
        return count


@dataclass
class _RunningTrial:
    trial_id: int
    metrics: dict[str, float]
    attempt_errors: list[str]


@dataclass
class _Pending:
    """Everything a batch does to one trial, folded into one insert or one update."""

    trial_id: int | None  # None: started in this batch, to be inserted
    started: TrialStarted | None = None
    params: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    values: dict[tuple[str, int], float] = field(default_factory=dict)
    steps: int = 0
    finish: TrialFinished | None = None
    reset: bool = False  # a retry dropped the stored results of the attempt that died
    keep_through: int | None = None  # ... except those up to this step (a checkpoint's)
    attempt_errors: list[str] = field(default_factory=list)
    node: str | None = None  # the latest node a result of this batch named
    # values_json, feasible, constraints_json of a finishing trial (from its metrics).
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def is_update(self) -> bool:
        return self.started is None and (self.steps > 0 or self.finish is not None or self.reset)


class _StartRefused(StorageRefused):
    """The database refused a batch's new trials; :meth:`Storage.write` says why."""

    def __init__(self, keys: list[_Key], message: str) -> None:
        super().__init__(message)
        self.keys = keys


@dataclass
class _StoredTrial:
    trial_id: int
    state: str
    metrics: dict[str, float]
    attempt_errors: list[str]


def _lookup_trials(session: Session, keys: set[_Key]) -> dict[_Key, _StoredTrial]:
    by_study: dict[int, list[int]] = defaultdict(list)
    for study_id, number in keys:
        by_study[study_id].append(number)
    found: dict[_Key, _StoredTrial] = {}
    for study_id, numbers in by_study.items():
        for i in range(0, len(numbers), IN_CHUNK):
            rows = session.execute(
                select(
                    TRIALS.c.id,
                    TRIALS.c.number,
                    TRIALS.c.state,
                    TRIALS.c.metrics_json,
                    TRIALS.c.attempt_errors_json,
                ).where(
                    TRIALS.c.study_id == study_id,
                    TRIALS.c.number.in_(numbers[i : i + IN_CHUNK]),
                )
            )
            for trial_id, number, state, metrics_json, errors_json in rows:
                found[(study_id, number)] = _StoredTrial(
                    trial_id, state, json.loads(metrics_json), json.loads(errors_json)
                )
    return found


def _pending_for(
    key: _Key, where: str, running: _RunningTrial | None, stored: _StoredTrial | None
) -> _Pending:
    if running is not None:
        return _Pending(
            trial_id=running.trial_id,
            metrics=dict(running.metrics),
            attempt_errors=list(running.attempt_errors),
        )
    if stored is None:
        raise StorageRefused(
            f"cannot write trial events: {where} was never started (write its TrialStarted first)"
        )
    if stored.state != _RUNNING:
        raise StorageRefused(
            f"cannot write trial events: {where} is {stored.state}; finished trials are read-only"
        )
    return _Pending(
        trial_id=stored.trial_id,
        metrics=dict(stored.metrics),
        attempt_errors=list(stored.attempt_errors),
    )


def _new_trial_row(key: _Key, p: _Pending) -> dict[str, Any]:
    assert p.started is not None  # only trials started in the batch are inserted
    finish = p.finish
    return {
        "study_id": key[0],
        "number": key[1],
        "state": finish.state if finish else _RUNNING,
        "value": nan_to_none(finish.value) if finish else None,
        "metrics_json": dumps(p.metrics),
        "node": (finish.node if finish else None) or p.node or p.started.node,
        "started_at": p.started.started_at,
        "finished_at": finish.finished_at if finish else None,
        "duration_s": nan_to_none(finish.duration_s) if finish else None,
        "error": finish.error if finish else None,
        "steps": p.steps,
        "attempts": 1 + len(p.attempt_errors),
        "attempt_errors_json": dumps(p.attempt_errors),
        "values_json": p.derived.get("values_json"),
        "feasible": p.derived.get("feasible"),
        "constraints_json": p.derived.get("constraints_json"),
        "parent": p.started.parent,
    }


def _derived_row(objectives: StudyObjectives, metrics: Mapping[str, Any]) -> dict[str, Any]:
    derived = objectives.derive(metrics)
    return {
        # JSON null (not SQL NULL) where an objective is missing: SQL NULL marks the
        # rows written before revision 0003.
        "values_json": dumps(derived.values),
        "feasible": derived.feasible,
        "constraints_json": dumps(derived.constraint_values) if objectives.constraints else None,
    }


def _progress_row(p: _Pending) -> dict[str, Any]:
    return {
        "b_id": p.trial_id,
        "b_keep": 0 if p.reset else 1,
        "b_steps": p.steps,
        "b_metrics_json": dumps(p.metrics),
        "b_attempts": 1 + len(p.attempt_errors),
        "b_attempt_errors_json": dumps(p.attempt_errors),
        "b_node": p.node,
    }


def _finish_row(p: _Pending) -> dict[str, Any]:
    finish = p.finish
    assert finish is not None
    return {
        "b_state": finish.state,
        "b_value": nan_to_none(finish.value),
        "b_finished_at": finish.finished_at,
        "b_duration_s": nan_to_none(finish.duration_s),
        "b_error": finish.error,
        "b_node": finish.node or p.node,
        "b_values_json": p.derived.get("values_json"),
        "b_feasible": p.derived.get("feasible"),
        "b_constraints_json": p.derived.get("constraints_json"),
    }


_VALUE_COLUMNS = ("trial_id", "metric", "step", "value")


def _executemany(
    session: Session, statement: Any, names: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """Run ``statement`` once per row of ``rows`` (values for ``names``), handing the
    rows straight to the driver's executemany.

    SQLAlchemy's per-row parameter processing costs more than the insert itself at a
    million intermediate values (an import); the columns written this way have no
    bind processor (integers, text, doubles), so nothing is lost by skipping it.
    """
    connection = session.connection()
    compiled = statement.compile(dialect=connection.dialect)
    if compiled.positional:
        order = [names.index(name) for name in compiled.positiontup or ()]
        if order != list(range(len(names))):
            rows = [tuple(row[i] for i in order) for row in rows]
        connection.exec_driver_sql(str(compiled), rows)
    else:
        connection.exec_driver_sql(
            str(compiled), [dict(zip(names, row, strict=True)) for row in rows]
        )


_PG_UPSERT_VALUES = (
    "INSERT INTO trial_values (trial_id, metric, step, value) "
    "SELECT * FROM unnest(%s::integer[], %s::text[], %s::integer[], %s::double precision[]) "
    "ON CONFLICT (trial_id, metric, step) DO UPDATE SET value = EXCLUDED.value"
)


def _upsert_values_postgresql(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Upsert intermediate values on PostgreSQL in one statement of four arrays.

    An executemany costs a round trip's worth of protocol work per row (most of a
    batch's time); the arrays are one. A batch holds each (trial, metric, step) once
    (:meth:`TrialWriter._stage` folds repeats), as ``ON CONFLICT`` requires.
    """
    columns = list(zip(*rows, strict=True))
    session.connection().exec_driver_sql(_PG_UPSERT_VALUES, tuple(list(c) for c in columns))


_PG_UPDATE_PROGRESS = (
    "UPDATE trials SET steps = trials.steps * u.keep + u.steps, metrics_json = u.metrics, "
    "attempts = u.attempts, attempt_errors_json = u.errors, "
    "node = coalesce(u.node, trials.node) "
    "FROM unnest(%s::integer[], %s::integer[], %s::integer[], %s::text[], %s::integer[], "
    "%s::text[], %s::text[]) AS u(id, keep, steps, metrics, attempts, errors, node) "
    "WHERE trials.id = u.id AND trials.state = 'running'"
)


def _update_progress_postgresql(session: Session, rows: list[dict[str, Any]]) -> int:
    """The running trials' progress on PostgreSQL in one statement; rows updated."""
    names = (
        "b_id", "b_keep", "b_steps", "b_metrics_json", "b_attempts", "b_attempt_errors_json",
        "b_node",
    )  # fmt: skip
    arrays = tuple([row[name] for row in rows] for name in names)
    result = session.connection().exec_driver_sql(_PG_UPDATE_PROGRESS, arrays)
    return int(result.rowcount)


def _checked_curves(curves: Any, where: str) -> Mapping[str, Sequence[tuple[int, Any]]]:
    if not isinstance(curves, Mapping):
        raise StorageRefused(
            f"cannot write trial events: {where}: curves must be a dict "
            f"(got {type(curves).__name__})"
        )
    for metric in curves:
        if not isinstance(metric, str) or not metric:
            raise StorageRefused(f"cannot write trial events: {where}: metric name {metric!r}")
    return curves
