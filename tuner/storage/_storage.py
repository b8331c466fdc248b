"""The :class:`Storage`: tuner's one way into its database (SQLite or PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeAlias

from sqlalchemy import (
    URL,
    Engine,
    Table,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from tuner.exceptions import StorageError, StudyExistsError, StudyNotFoundError
from tuner.storage._models import Base, Study
from tuner.storage._records import (
    STUDY_STATES,
    TERMINAL_STUDY_STATES,
    TERMINAL_TRIAL_STATES,
    TRIAL_STATES,
    StudyRecord,
    StudySummary,
    TrialFinished,
    TrialRecord,
    TrialResult,
    TrialStarted,
)

__all__ = ["Storage", "TrialEvent"]

TrialEvent: TypeAlias = TrialStarted | TrialResult | TrialFinished

_log = logging.getLogger("tuner.storage")

_MIGRATIONS = Path(__file__).parent / "migrations"
_URL_EXAMPLES = "sqlite:///tuner.db or postgresql://user@host:5432/db"
_SQLITE_BUSY_TIMEOUT_S = 30.0
_PG_CONNECT_TIMEOUT_S = 10
# Serialises concurrent first opens of one PostgreSQL database ("tuner" in ASCII).
_PG_MIGRATION_LOCK = 0x74756E6572
# Bound parameters a single IN (...) may carry; SQLite allows 32766, keep well below.
_IN_CHUNK = 500

_STUDIES: Table = Base.metadata.tables["studies"]
_TRIALS: Table = Base.metadata.tables["trials"]
_PARAMS: Table = Base.metadata.tables["trial_params"]
_VALUES: Table = Base.metadata.tables["trial_values"]

_TRIAL_COLUMNS = (
    _TRIALS.c.id,
    _TRIALS.c.study_id,
    _TRIALS.c.number,
    _TRIALS.c.state,
    _TRIALS.c.value,
    _TRIALS.c.metrics_json,
    _TRIALS.c.node,
    _TRIALS.c.started_at,
    _TRIALS.c.finished_at,
    _TRIALS.c.duration_s,
    _TRIALS.c.error,
    _TRIALS.c.steps,
)


class Storage:
    """Studies, trials and their results in a SQL database (SQLite or PostgreSQL).

    Opening a storage creates or upgrades tuner's tables (Alembic migrations), unless it
    is opened ``read_only``. Only a study's driver writes; the CLI and the dashboard
    read, and may ask the driver to stop (:meth:`request_stop`).

    Contract:

    * **Thread safety.** One instance may be used from several threads at once (the
      driver's writer thread calls :meth:`write` while its main thread reads). Every
      call runs in its own short transaction on a pooled connection; a call sees a
      consistent snapshot and a write is all or nothing.
    * **Finished trials are read-only.** Once a trial is completed, pruned, failed or
      stopped, a later event for it is refused (:class:`StorageError`) and the whole
      batch is left unwritten.
    * **Values.** Parameters keep their type (int, float, str, bool); metric values
      may be ``inf``, ``-inf`` or ``NaN`` and read back as written. A trial's ``value``
      that is NaN is stored as no value (None): NaN cannot be ranked.
    * **Times** are timezone-aware UTC, in and out; a naive ``datetime`` is refused.
    * **Errors.** Every failure is a :class:`~tuner.exceptions.StorageError` (or its
      subclasses :class:`~tuner.exceptions.StudyExistsError` and
      :class:`~tuner.exceptions.StudyNotFoundError`) whose message is one line naming
      the database (password hidden) and the reason. No SQLAlchemy or driver
      exception escapes.

    Args:
        url: ``sqlite:///path/to/file.db`` or ``postgresql://user@host:5432/db``
            (the plain PostgreSQL form is opened with psycopg 3).
        read_only: open for reading only: SQLite in ``mode=ro``, PostgreSQL in
            read-only transactions; the schema is never migrated, and every write
            raises :class:`StorageError`.

    Raises:
        StorageError: the URL is malformed or not SQLite/PostgreSQL, the database
            cannot be reached, or (``read_only``) it has no tuner tables or an older
            schema; or its schema is newer than this version of tuner.
    """

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        given, target = _parse_url(url)
        self._given_url = given
        self._masked_url = given.render_as_string(hide_password=True)
        self._read_only = read_only
        self._closed = False
        self._backend = target.get_backend_name()
        # Only the in-memory SQLite database shares one connection between threads.
        self._serial: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._write_lock = threading.Lock()
        # (study_id, number) -> what write() needs about a running trial, so that a
        # batch usually writes without reading first. Finished trials are dropped.
        self._running: dict[tuple[int, int], _RunningTrial] = {}

        try:
            self._engine = self._create_engine(target)
        except (sa_exc.SQLAlchemyError, ImportError, ValueError, TypeError) as e:
            raise StorageError(
                f"cannot open database {self._masked_url}: {_reason(e)}; "
                f"valid URLs look like {_URL_EXAMPLES}"
            ) from None
        # Connections of this engine begin with BEGIN IMMEDIATE on SQLite (see _on_begin).
        self._write_engine = self._engine.execution_options(tuner_write=True)
        try:
            self._prepare_schema()
        except BaseException:
            self._engine.dispose()
            raise

    # ------------------------------------------------------------------ plumbing

    @property
    def url(self) -> str:
        """The database URL as given, with any password masked."""
        return self._masked_url

    @property
    def read_only(self) -> bool:
        """Whether this storage was opened read-only."""
        return self._read_only

    def close(self) -> None:
        """Close every pooled connection; the storage cannot be used afterwards."""
        self._closed = True
        self._engine.dispose()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self._read_only else ""
        return f"Storage({self._masked_url!r}{mode})"

    def _create_engine(self, url: URL) -> Engine:
        if self._backend == "sqlite":
            return self._create_sqlite_engine(url)
        options = " ".join(
            o
            for o in (
                str(url.query.get("options", "")),
                "-c default_transaction_read_only=on" if self._read_only else "",
            )
            if o
        )
        connect_args: dict[str, Any] = {"connect_timeout": _PG_CONNECT_TIMEOUT_S}
        if options:
            connect_args["options"] = options
        return create_engine(
            url.difference_update_query(["options"]),
            connect_args=connect_args,
            pool_pre_ping=True,  # a restarted server costs one retry, not an error
        )

    def _create_sqlite_engine(self, url: URL) -> Engine:
        database = url.database or ""
        in_memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
        kwargs: dict[str, Any] = {}
        connect_args: dict[str, Any] = {"timeout": _SQLITE_BUSY_TIMEOUT_S}
        if in_memory:
            # One database per connection: every thread must share the one connection,
            # one call at a time.
            kwargs["poolclass"] = StaticPool
            connect_args["check_same_thread"] = False
            self._serial = threading.RLock()
        elif self._read_only:
            if str(url.query.get("uri", "")).lower() not in ("true", "1"):
                database = Path(database).absolute().as_uri()
            url = url.set(database=database).update_query_dict({"mode": "ro", "uri": "true"})
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        busy_ms = int(_SQLITE_BUSY_TIMEOUT_S * 1000)
        set_wal = not self._read_only and not in_memory

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # sqlite3's own transaction handling begins late and never for SELECT;
            # take it over so that every call is one real transaction (_on_begin).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            if set_wal:
                # Readers (the dashboard) never block the writer and vice versa.
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            # A writer takes the write lock up front: a deferred transaction that reads
            # and then writes can fail at once with "database is locked" when another
            # process wrote in between, whatever the busy timeout.
            write = connection.get_execution_options().get("tuner_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _prepare_schema(self) -> None:
        from alembic.runtime.migration import MigrationContext

        head, known = _revisions()
        try:
            with self._serial, self._engine.connect() as connection:
                current = MigrationContext.configure(connection).get_current_revision()
        except sa_exc.SQLAlchemyError as e:
            self._log_error("open", e)
            raise StorageError(f"cannot open database {self._masked_url}: {_reason(e)}") from None
        if current == head:
            return
        if current is not None and current not in known:
            raise StorageError(
                f"database {self._masked_url} has schema revision {current!r}, which this "
                f"version of tuner does not know (it needs {head!r}): upgrade tuner"
            )
        if self._read_only:
            if current is None:
                raise StorageError(
                    f"database {self._masked_url} has no tuner tables (empty, or another "
                    "application's database): open it once without read_only, e.g. by "
                    "running a study with this storage, to create them"
                )
            raise StorageError(
                f"database {self._masked_url} has schema revision {current!r} and this "
                f"tuner needs {head!r}: open it once without read_only to upgrade it"
            )
        self._migrate(head)

    def _migrate(self, head: str) -> None:
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext

        try:
            with self._serial, self._write_engine.begin() as connection:
                if self._backend == "postgresql":
                    # Two processes opening a new database at once: one migrates, the
                    # other waits and then finds the schema current.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                    )
                if MigrationContext.configure(connection).get_current_revision() == head:
                    return
                config = Config()
                config.set_main_option("script_location", str(_MIGRATIONS))
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except sa_exc.SQLAlchemyError as e:
            self._log_error("migrate", e)
            raise StorageError(
                f"cannot create or upgrade tuner's tables in {self._masked_url}: {_reason(e)}"
            ) from None

    @contextlib.contextmanager
    def _session(self, doing: str, *, write: bool = False) -> Iterator[Session]:
        """One transaction: commits on success, rolls back on any error.

        SQLAlchemy and driver errors become a one-line :class:`StorageError` that says
        what was being done (``doing``), where, and why.
        """
        if self._closed:
            raise StorageError(f"cannot {doing}: storage {self._masked_url} is closed")
        if write and self._read_only:
            raise StorageError(f"cannot {doing}: storage {self._masked_url} is open read-only")
        engine = self._write_engine if write else self._engine
        with self._serial:
            session = Session(bind=engine, autoflush=False, expire_on_commit=False)
            try:
                yield session
                session.commit()
            except sa_exc.SQLAlchemyError as e:
                _quiet_rollback(session)
                self._log_error(doing, e)
                raise StorageError(f"cannot {doing} in {self._masked_url}: {_reason(e)}") from None
            except BaseException:
                _quiet_rollback(session)
                raise
            finally:
                session.close()

    @contextlib.contextmanager
    def reading(self, doing: str) -> Iterator[Connection]:
        """A connection inside one read transaction, for aggregate queries of its own.

        The dashboard's queries (counts, downsampled curves) are SQL that the records
        API does not offer; they run here so that they get the same error handling
        and, on a ``read_only`` storage, the same read-only connection. Anything the
        block writes is refused on a read-only storage (SQLite ``mode=ro``,
        PostgreSQL ``default_transaction_read_only``).

        Args:
            doing: what the block does, for the error message ("read the trials of ...").

        Raises:
            StorageError: the storage is closed or the database fails.
        """
        with self._session(doing) as session:
            yield session.connection()

    def _log_error(self, doing: str, error: BaseException) -> None:
        # The one-line StorageError is for users; the driver's full error is here.
        _log.debug("cannot %s in %s", doing, self._masked_url, exc_info=error)

    def _study_missing(self, session: Session, study_id: int) -> bool:
        return session.scalar(select(_STUDIES.c.id).where(_STUDIES.c.id == study_id)) is None

    def _not_found_by_id(self, study_id: int) -> StudyNotFoundError:
        return StudyNotFoundError(
            f"no study with id {study_id} in {self._masked_url}: "
            "run `tuner list` to see the studies there"
        )

    def _not_found_by_name(self, name: str) -> StudyNotFoundError:
        return StudyNotFoundError(
            f"no study named {name!r} in {self._masked_url}: "
            "run `tuner list` to see the study names there"
        )

    # ------------------------------------------------------------------ studies

    def create_study(
        self,
        name: str,
        *,
        spec: dict[str, Any],
        metric: str,
        mode: str,
        algorithm: str,
        scheduler: str,
        num_trials: int | None,
    ) -> StudyRecord:
        """Create a study with status ``created``.

        Args:
            name: unique within this storage.
            spec: the validated spec, JSON-able; stored with the study.
            metric: the metric that "best" is judged on.
            mode: ``"min"`` or ``"max"``.
            algorithm: the search algorithm's name.
            scheduler: the early-stopping scheduler's name.
            num_trials: the trial budget, or None.

        Raises:
            StudyExistsError: a study of that name exists; the message says to choose
                another name, delete it (``tuner delete NAME``) or load it.
            StorageError: an argument is invalid, the spec is not JSON-able, the
                storage is read-only, or the database fails.
        """
        _require_text("name", name)
        _require_text("metric", metric)
        _require_text("algorithm", algorithm)
        _require_text("scheduler", scheduler)
        if mode not in ("min", "max"):
            raise StorageError(f"mode must be 'min' or 'max' (got {mode!r})")
        if num_trials is not None and (
            not isinstance(num_trials, int) or isinstance(num_trials, bool) or num_trials < 0
        ):
            raise StorageError(f"num_trials must be an int >= 0 or None (got {num_trials!r})")
        if not isinstance(spec, Mapping):
            raise StorageError(f"spec must be a dict (got {type(spec).__name__})")
        try:
            spec_json = _dumps(spec)
        except (TypeError, ValueError) as e:
            raise StorageError(f"the spec of study {name!r} is not JSON-able: {e}") from None

        with self._session(f"create study {name!r}", write=True) as session:
            study = Study(
                name=name,
                status="created",
                metric=metric,
                mode=mode,
                algorithm=algorithm,
                scheduler=scheduler,
                num_trials=num_trials,
                spec_json=spec_json,
                created_at=_now(),
                finished_at=None,
                stop_requested=False,
                heartbeat_at=None,
            )
            session.add(study)
            try:
                session.flush()
            except sa_exc.IntegrityError:
                raise StudyExistsError(
                    f"a study named {name!r} already exists in {self._masked_url}: "
                    f"choose another name, delete it with `tuner delete {name}`, "
                    f"or continue it with tuner.load_study({name!r})"
                ) from None
            return _study_record(study)

    def get_study(self, name: str) -> StudyRecord:
        """The study named ``name``.

        Raises:
            StudyNotFoundError: there is none (the message says how to list the names).
            StorageError: the database fails.
        """
        with self._session(f"read study {name!r}") as session:
            study = session.scalar(select(Study).where(Study.name == name))
            if study is None:
                raise self._not_found_by_name(name)
            return _study_record(study)

    def get_study_by_id(self, study_id: int) -> StudyRecord:
        """The study with id ``study_id``.

        Raises:
            StudyNotFoundError: there is none.
            StorageError: the database fails.
        """
        with self._session(f"read study {study_id}") as session:
            study = session.get(Study, study_id)
            if study is None:
                raise self._not_found_by_id(study_id)
            return _study_record(study)

    def list_studies(self) -> list[StudySummary]:
        """Every study, oldest first, with its trial counts per state and best value.

        Raises:
            StorageError: the database fails.
        """
        with self._session("list studies") as session:
            studies = session.scalars(select(Study).order_by(Study.created_at, Study.id)).all()
            aggregates = session.execute(
                select(
                    _TRIALS.c.study_id,
                    _TRIALS.c.state,
                    func.count(),
                    func.min(_TRIALS.c.value),
                    func.max(_TRIALS.c.value),
                ).group_by(_TRIALS.c.study_id, _TRIALS.c.state)
            ).all()
            records = [_study_record(s) for s in studies]
        counts: dict[int, dict[str, int]] = defaultdict(lambda: dict.fromkeys(TRIAL_STATES, 0))
        best: dict[int, tuple[float | None, float | None]] = {}
        for study_id, state, count, low, high in aggregates:
            counts[study_id][state] = count
            if state == "completed":
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

    def set_study_status(self, study_id: int, status: str) -> None:
        """Set a study's status; a terminal one (completed, failed, stopped) also sets
        ``finished_at``, any other clears it.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: ``status`` is not one of STUDY_STATES, the storage is
                read-only, or the database fails.
        """
        if status not in STUDY_STATES:
            raise StorageError(f"study status must be one of {STUDY_STATES} (got {status!r})")
        finished_at = _now() if status in TERMINAL_STUDY_STATES else None
        with self._session(f"set the status of study {study_id}", write=True) as session:
            result = session.execute(
                update(_STUDIES)
                .where(_STUDIES.c.id == study_id)
                .values(status=status, finished_at=finished_at)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise self._not_found_by_id(study_id)

    def heartbeat(self, study_id: int) -> None:
        """Record that the study's driver is alive (``heartbeat_at`` = now).

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        with self._session(f"record the heartbeat of study {study_id}", write=True) as session:
            result = session.execute(
                update(_STUDIES).where(_STUDIES.c.id == study_id).values(heartbeat_at=_now())
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise self._not_found_by_id(study_id)

    def request_stop(self, name: str) -> None:
        """Ask the driver of study ``name`` (maybe in another process) to stop.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        with self._session(f"request study {name!r} to stop", write=True) as session:
            result = session.execute(
                update(_STUDIES).where(_STUDIES.c.name == name).values(stop_requested=True)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise self._not_found_by_name(name)

    def is_stop_requested(self, study_id: int) -> bool:
        """Whether someone asked the study's driver to stop.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        with self._session(f"read the stop request of study {study_id}") as session:
            flag = session.scalar(
                select(_STUDIES.c.stop_requested).where(_STUDIES.c.id == study_id)
            )
            if flag is None:
                raise self._not_found_by_id(study_id)
            return bool(flag)

    def clear_stop_request(self, study_id: int) -> None:
        """Forget a stop request (the driver does this when it resumes a study).

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        with self._session(f"clear the stop request of study {study_id}", write=True) as session:
            result = session.execute(
                update(_STUDIES).where(_STUDIES.c.id == study_id).values(stop_requested=False)
            )
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise self._not_found_by_id(study_id)

    def delete_study(self, name: str) -> None:
        """Delete study ``name`` with its trials, parameters and intermediate values.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        with self._write_lock:
            with self._session(f"delete study {name!r}", write=True) as session:
                study_id = session.scalar(select(_STUDIES.c.id).where(_STUDIES.c.name == name))
                if study_id is None:
                    raise self._not_found_by_name(name)
                # Set-based deletes, children first: one pass over each table instead of
                # the row-by-row cascade (the foreign keys cascade too, as a backstop).
                trial_ids = select(_TRIALS.c.id).where(_TRIALS.c.study_id == study_id)
                session.execute(delete(_VALUES).where(_VALUES.c.trial_id.in_(trial_ids)))
                session.execute(delete(_PARAMS).where(_PARAMS.c.trial_id.in_(trial_ids)))
                session.execute(delete(_TRIALS).where(_TRIALS.c.study_id == study_id))
                session.execute(delete(_STUDIES).where(_STUDIES.c.id == study_id))
            self._forget_study(study_id)

    def _forget_study(self, study_id: int) -> None:
        for key in [k for k in self._running if k[0] == study_id]:
            del self._running[key]

    # ------------------------------------------------------------------ trials: writes

    def write(self, events: Sequence[TrialStarted | TrialResult | TrialFinished]) -> None:
        """Record a batch of trial events in one transaction, in order.

        A trial is written by its :class:`TrialStarted`, extended by each
        :class:`TrialResult` (intermediate values; a repeated step replaces the
        earlier values of that step) and closed by :class:`TrialFinished`. The trial's
        ``metrics`` hold the last value reported for each metric, from results and
        from the finish event.

        Raises:
            StorageError: an event is invalid (unknown type, naive datetime, value that
                is not a number, parameter that cannot be stored), a trial is started
                twice, an event names a trial that was never started or has finished
                (finished trials are read-only), the study does not exist, the storage
                is read-only, or the database fails. Nothing of the batch is written then.
        """
        if not events:
            return
        with self._write_lock:
            try:
                with self._session("write trial events", write=True) as session:
                    batch = self._stage(session, events)
                    self._apply(session, batch)
            except _StartRefused as refused:
                raise self._explain_refused_start(refused) from None
            for key, pending in batch.items():
                if pending.finish is not None:
                    self._running.pop(key, None)
                else:
                    assert pending.trial_id is not None  # set by _apply
                    self._running[key] = _RunningTrial(pending.trial_id, pending.metrics)

    def _stage(self, session: Session, events: Sequence[TrialEvent]) -> dict[_Key, _Pending]:
        """Validate the batch against what is stored and fold it into one change per trial."""
        for event_ in events:
            if not isinstance(event_, TrialStarted | TrialResult | TrialFinished):
                raise StorageError(
                    "cannot write trial events: expected TrialStarted, TrialResult or "
                    f"TrialFinished, got {type(event_).__name__}"
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
                    raise StorageError(f"cannot write trial events: {where} was already started")
                batch[key] = _Pending(
                    trial_id=None,
                    started=_checked_start(event_, where),
                    params=_encode_params(event_.params, where),
                )
                continue
            pending = batch.get(key)
            if pending is None:
                pending = _pending_for(key, where, self._running.get(key), stored.get(key))
                batch[key] = pending
            if pending.finish is not None:
                raise StorageError(
                    f"cannot write trial events: {where} has finished; "
                    "finished trials are read-only"
                )
            if isinstance(event_, TrialResult):
                step = event_.step
                if not isinstance(step, int) or isinstance(step, bool):
                    raise StorageError(
                        f"cannot write trial events: {where}: step must be an int (got {step!r})"
                    )
                for metric, raw in _checked_metrics(event_.metrics, where).items():
                    pending.metrics[metric] = raw
                    pending.values[(metric, step)] = raw
                pending.steps += 1
            else:
                pending.finish = _checked_finish(event_, where)
                pending.metrics.update(_checked_metrics(event_.metrics, where))
        return batch

    def _apply(self, session: Session, batch: dict[_Key, _Pending]) -> None:
        new = [(key, p) for key, p in batch.items() if p.trial_id is None]
        if new:
            rows = [_new_trial_row(key, p) for key, p in new]
            try:
                returned = session.execute(
                    insert(_TRIALS).returning(_TRIALS.c.id, _TRIALS.c.study_id, _TRIALS.c.number),
                    rows,
                ).all()
            except sa_exc.IntegrityError as e:
                # The transaction is lost (PostgreSQL); write() says which start failed.
                raise _StartRefused(
                    [key for key, _ in new], f"cannot write trial events: {_reason(e)}"
                ) from None
            ids = {(study_id, number): trial_id for trial_id, study_id, number in returned}
            for key, p in new:
                p.trial_id = ids[key]
            params = [{"trial_id": p.trial_id, **param} for _, p in new for param in p.params]
            if params:
                session.execute(insert(_PARAMS), params)

        values = [
            {"trial_id": p.trial_id, "metric": metric, "step": step, "value": _nan_to_none(v)}
            for p in batch.values()
            for (metric, step), v in p.values.items()
        ]
        if values:
            session.execute(self._upsert_values(), values)

        progress = [_progress_row(p) for p in batch.values() if p.is_update and p.finish is None]
        finishes = [
            {**_progress_row(p), **_finish_row(p)}
            for p in batch.values()
            if p.is_update and p.finish is not None
        ]
        still_running = _TRIALS.c.state == "running"
        by_id = _TRIALS.c.id == bindparam("b_id")
        for statement, rows in (
            (
                update(_TRIALS)
                .where(by_id, still_running)
                .values(
                    steps=_TRIALS.c.steps + bindparam("b_steps"),
                    metrics_json=bindparam("b_metrics_json"),
                ),
                progress,
            ),
            (
                update(_TRIALS)
                .where(by_id, still_running)
                .values(
                    steps=_TRIALS.c.steps + bindparam("b_steps"),
                    metrics_json=bindparam("b_metrics_json"),
                    state=bindparam("b_state", type_=_TRIALS.c.state.type),
                    value=bindparam("b_value", type_=_TRIALS.c.value.type),
                    finished_at=bindparam("b_finished_at", type_=_TRIALS.c.finished_at.type),
                    duration_s=bindparam("b_duration_s", type_=_TRIALS.c.duration_s.type),
                    error=bindparam("b_error", type_=_TRIALS.c.error.type),
                    node=func.coalesce(
                        bindparam("b_node", type_=_TRIALS.c.node.type), _TRIALS.c.node
                    ),
                ),
                finishes,
            ),
        ):
            if not rows:
                continue
            # Core executemany: the ORM's bulk UPDATE wants primary-key rows, not SQL.
            result = session.connection().execute(statement, rows)
            sane = session.get_bind().dialect.supports_sane_multi_rowcount
            if (sane or len(rows) == 1) and result.rowcount != len(rows):
                # Another process (a second driver, `tuner resume`) finished a trial
                # under us; refuse rather than overwrite its outcome.
                raise StorageError(
                    "cannot write trial events: a trial of this batch was finished by "
                    "another process meanwhile; finished trials are read-only"
                )

    def _explain_refused_start(self, refused: _StartRefused) -> StorageError:
        by_study: dict[int, list[int]] = defaultdict(list)
        for study_id, number in refused.keys:
            by_study[study_id].append(number)
        with self._session("write trial events") as session:
            for study_id, numbers in sorted(by_study.items()):
                if self._study_missing(session, study_id):
                    return StorageError(
                        f"cannot write trial events: there is no study with id {study_id} "
                        f"in {self._masked_url}"
                    )
                taken = session.scalar(
                    select(func.min(_TRIALS.c.number)).where(
                        _TRIALS.c.study_id == study_id,
                        _TRIALS.c.number.in_(numbers[:_IN_CHUNK]),
                    )
                )
                if taken is not None:
                    return StorageError(
                        f"cannot write trial events: trial {taken} of study {study_id} "
                        "was already started"
                    )
        return refused

    def _upsert_values(self) -> Any:
        dialect = pg_dialect if self._backend == "postgresql" else sqlite_dialect
        statement = dialect.insert(_VALUES)
        return statement.on_conflict_do_update(
            index_elements=[_VALUES.c.trial_id, _VALUES.c.metric, _VALUES.c.step],
            set_={"value": statement.excluded.value},
        )

    def mark_running_trials(self, study_id: int, state: str, error: str) -> int:
        """Close every trial of the study that is still ``running`` (resume after a crash).

        Sets ``state``, ``error`` and ``finished_at`` (now); ``duration_s`` stays unknown.

        Returns:
            How many trials were marked.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: ``state`` is not a final state, the storage is read-only, or
                the database fails.
        """
        if state not in TERMINAL_TRIAL_STATES:
            raise StorageError(
                f"running trials can be marked {TERMINAL_TRIAL_STATES} only (got {state!r})"
            )
        with self._write_lock:
            doing = f"mark the running trials of study {study_id}"
            with self._session(doing, write=True) as session:
                result = session.execute(
                    update(_TRIALS)
                    .where(_TRIALS.c.study_id == study_id, _TRIALS.c.state == "running")
                    .values(state=state, error=error, finished_at=_now())
                )
                count = int(result.rowcount)  # type: ignore[attr-defined]
                if count == 0 and self._study_missing(session, study_id):
                    raise self._not_found_by_id(study_id)
            self._forget_study(study_id)
        return count

    # ------------------------------------------------------------------ trials: reads

    def next_trial_number(self, study_id: int) -> int:
        """The number for the study's next trial: the largest so far + 1, 0 for none.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        with self._session(f"read the trial numbers of study {study_id}") as session:
            largest = session.scalar(
                select(func.max(_TRIALS.c.number)).where(_TRIALS.c.study_id == study_id)
            )
            if largest is None:
                if self._study_missing(session, study_id):
                    raise self._not_found_by_id(study_id)
                return 0
            return int(largest) + 1

    def get_trials(self, study_id: int, states: Sequence[str] | None = None) -> list[TrialRecord]:
        """The study's trials, by number; only those in ``states`` if given.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: a state is not one of TRIAL_STATES, or the database fails.
        """
        conditions = [_TRIALS.c.study_id == study_id]
        if states is not None:
            if isinstance(states, str):
                states = [states]
            bad = [s for s in states if s not in TRIAL_STATES]
            if bad:
                raise StorageError(f"trial states must be among {TRIAL_STATES} (got {bad})")
            conditions.append(_TRIALS.c.state.in_(list(states)))
        with self._session(f"read the trials of study {study_id}") as session:
            rows = session.execute(
                select(*_TRIAL_COLUMNS).where(*conditions).order_by(_TRIALS.c.number)
            ).all()
            if not rows:
                if self._study_missing(session, study_id):
                    raise self._not_found_by_id(study_id)
                return []
            params = _read_params(
                session,
                select(_PARAMS.c.trial_id, _PARAMS.c.name, _PARAMS.c.value_json)
                .join(_TRIALS, _TRIALS.c.id == _PARAMS.c.trial_id)
                .where(*conditions),
            )
        return [_trial_record(row, params.get(row.id, {})) for row in rows]

    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        """Trial ``number`` of the study.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the study has no such trial, or the database fails.
        """
        with self._session(f"read trial {number} of study {study_id}") as session:
            row = session.execute(
                select(*_TRIAL_COLUMNS).where(
                    _TRIALS.c.study_id == study_id, _TRIALS.c.number == number
                )
            ).one_or_none()
            if row is None:
                if self._study_missing(session, study_id):
                    raise self._not_found_by_id(study_id)
                raise StorageError(
                    f"study {study_id} in {self._masked_url} has no trial number {number}"
                )
            params = _read_params(
                session,
                select(_PARAMS.c.trial_id, _PARAMS.c.name, _PARAMS.c.value_json).where(
                    _PARAMS.c.trial_id == row.id
                ),
            )
        return _trial_record(row, params.get(row.id, {}))

    def best_trial(self, study_id: int) -> TrialRecord | None:
        """The completed trial with the lowest (mode min) or highest (max) ``value``.

        Trials of other states, and completed trials without a value, do not count;
        ties go to the lowest number.

        Returns:
            The best trial, or None when no completed trial has a value.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        with self._session(f"read the best trial of study {study_id}") as session:
            mode = session.scalar(select(_STUDIES.c.mode).where(_STUDIES.c.id == study_id))
            if mode is None:
                raise self._not_found_by_id(study_id)
            order = _TRIALS.c.value.asc() if mode == "min" else _TRIALS.c.value.desc()
            row = session.execute(
                select(*_TRIAL_COLUMNS)
                .where(
                    _TRIALS.c.study_id == study_id,
                    _TRIALS.c.state == "completed",
                    _TRIALS.c.value.is_not(None),
                )
                .order_by(order, _TRIALS.c.number)
                .limit(1)
            ).one_or_none()
            if row is None:
                return None
            params = _read_params(
                session,
                select(_PARAMS.c.trial_id, _PARAMS.c.name, _PARAMS.c.value_json).where(
                    _PARAMS.c.trial_id == row.id
                ),
            )
        return _trial_record(row, params.get(row.id, {}))

    def get_intermediate(
        self, study_id: int, numbers: Sequence[int] | None = None
    ) -> dict[int, dict[str, list[tuple[int, float]]]]:
        """The study's intermediate values: number -> metric -> [(step, value)] by step.

        Only trials with at least one intermediate value appear; ``numbers`` limits
        the answer to those trials.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        base = (
            select(_TRIALS.c.number, _VALUES.c.metric, _VALUES.c.step, _VALUES.c.value)
            .join(_TRIALS, _TRIALS.c.id == _VALUES.c.trial_id)
            .where(_TRIALS.c.study_id == study_id)
            .order_by(_TRIALS.c.number, _VALUES.c.metric, _VALUES.c.step)
        )
        if numbers is None:
            queries = [base]
        else:
            wanted = sorted(set(numbers))
            queries = [
                base.where(_TRIALS.c.number.in_(wanted[i : i + _IN_CHUNK]))
                for i in range(0, len(wanted), _IN_CHUNK)
            ]
        out: dict[int, dict[str, list[tuple[int, float]]]] = {}
        with self._session(f"read the intermediate values of study {study_id}") as session:
            for query in queries:
                for number, metric, step, value in session.execute(query):
                    curves = out.setdefault(number, {})
                    curves.setdefault(metric, []).append(
                        (step, math.nan if value is None else value)
                    )
            if not out and self._study_missing(session, study_id):
                raise self._not_found_by_id(study_id)
        return out


# ---------------------------------------------------------------------- write helpers

_Key: TypeAlias = tuple[int, int]


@dataclass
class _RunningTrial:
    trial_id: int
    metrics: dict[str, float]


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

    @property
    def is_update(self) -> bool:
        return self.started is None and (self.steps > 0 or self.finish is not None)


class _StartRefused(StorageError):
    """The database refused a batch's new trials; :meth:`Storage.write` says why."""

    def __init__(self, keys: list[_Key], message: str) -> None:
        super().__init__(message)
        self.keys = keys


@dataclass
class _StoredTrial:
    trial_id: int
    state: str
    metrics: dict[str, float]


def _lookup_trials(session: Session, keys: set[_Key]) -> dict[_Key, _StoredTrial]:
    by_study: dict[int, list[int]] = defaultdict(list)
    for study_id, number in keys:
        by_study[study_id].append(number)
    found: dict[_Key, _StoredTrial] = {}
    for study_id, numbers in by_study.items():
        for i in range(0, len(numbers), _IN_CHUNK):
            rows = session.execute(
                select(
                    _TRIALS.c.id, _TRIALS.c.number, _TRIALS.c.state, _TRIALS.c.metrics_json
                ).where(
                    _TRIALS.c.study_id == study_id,
                    _TRIALS.c.number.in_(numbers[i : i + _IN_CHUNK]),
                )
            )
            for trial_id, number, state, metrics_json in rows:
                found[(study_id, number)] = _StoredTrial(trial_id, state, json.loads(metrics_json))
    return found


def _pending_for(
    key: _Key, where: str, running: _RunningTrial | None, stored: _StoredTrial | None
) -> _Pending:
    if running is not None:
        return _Pending(trial_id=running.trial_id, metrics=dict(running.metrics))
    if stored is None:
        raise StorageError(
            f"cannot write trial events: {where} was never started (write its TrialStarted first)"
        )
    if stored.state != "running":
        raise StorageError(
            f"cannot write trial events: {where} is {stored.state}; finished trials are read-only"
        )
    return _Pending(trial_id=stored.trial_id, metrics=dict(stored.metrics))


def _new_trial_row(key: _Key, p: _Pending) -> dict[str, Any]:
    assert p.started is not None  # only trials started in the batch are inserted
    finish = p.finish
    return {
        "study_id": key[0],
        "number": key[1],
        "state": finish.state if finish else "running",
        "value": _nan_to_none(finish.value) if finish else None,
        "metrics_json": _dumps(p.metrics),
        "node": (finish.node if finish and finish.node is not None else p.started.node),
        "started_at": p.started.started_at,
        "finished_at": finish.finished_at if finish else None,
        "duration_s": _nan_to_none(finish.duration_s) if finish else None,
        "error": finish.error if finish else None,
        "steps": p.steps,
    }


def _progress_row(p: _Pending) -> dict[str, Any]:
    return {"b_id": p.trial_id, "b_steps": p.steps, "b_metrics_json": _dumps(p.metrics)}


def _finish_row(p: _Pending) -> dict[str, Any]:
    finish = p.finish
    assert finish is not None
    return {
        "b_state": finish.state,
        "b_value": _nan_to_none(finish.value),
        "b_finished_at": finish.finished_at,
        "b_duration_s": _nan_to_none(finish.duration_s),
        "b_error": finish.error,
        "b_node": finish.node,
    }


def _checked_start(event_: TrialStarted, where: str) -> TrialStarted:
    _require_aware(event_.started_at, f"{where}: started_at")
    _require_optional_text(event_.node, f"{where}: node")
    if not isinstance(event_.number, int) or isinstance(event_.number, bool) or event_.number < 0:
        raise StorageError(f"cannot write trial events: {where}: number must be an int >= 0")
    return event_


def _checked_finish(event_: TrialFinished, where: str) -> TrialFinished:
    if event_.state not in TERMINAL_TRIAL_STATES:
        raise StorageError(
            f"cannot write trial events: {where}: a finished trial's state must be one of "
            f"{TERMINAL_TRIAL_STATES} (got {event_.state!r})"
        )
    _require_aware(event_.finished_at, f"{where}: finished_at")
    _require_optional_text(event_.node, f"{where}: node")
    _require_optional_text(event_.error, f"{where}: error")
    return TrialFinished(
        study_id=event_.study_id,
        number=event_.number,
        state=event_.state,
        finished_at=event_.finished_at,
        duration_s=_as_float(event_.duration_s, f"{where}: duration_s", optional=True),
        metrics=event_.metrics,
        value=_as_float(event_.value, f"{where}: value", optional=True),
        error=event_.error,
        node=event_.node,
    )


def _checked_metrics(metrics: Mapping[str, Any], where: str) -> dict[str, float]:
    if not isinstance(metrics, Mapping):
        raise StorageError(
            f"cannot write trial events: {where}: metrics must be a dict "
            f"(got {type(metrics).__name__})"
        )
    checked: dict[str, float] = {}
    for name, raw in metrics.items():
        if not isinstance(name, str) or not name:
            raise StorageError(f"cannot write trial events: {where}: metric name {name!r}")
        value = _as_float(raw, f"{where}: metric {name!r}")
        assert value is not None
        checked[name] = value
    return checked


def _encode_params(params: Mapping[str, Any], where: str) -> list[dict[str, Any]]:
    if not isinstance(params, Mapping):
        raise StorageError(
            f"cannot write trial events: {where}: params must be a dict "
            f"(got {type(params).__name__})"
        )
    rows = []
    for name, raw in params.items():
        if not isinstance(name, str) or not name:
            raise StorageError(f"cannot write trial events: {where}: parameter name {name!r}")
        value = _plain(raw)
        try:
            value_json = _dumps(value)
        except (TypeError, ValueError):
            raise StorageError(
                f"cannot write trial events: {where}: parameter {name!r} is a "
                f"{type(raw).__name__} ({raw!r}); store int, float, str or bool"
            ) from None
        number: float | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                number = _nan_to_none(float(value))
            except OverflowError:  # an int too large for a double: no range filter
                number = None
        rows.append({"name": name, "value_json": value_json, "value_float": number})
    return rows


# ---------------------------------------------------------------------- read helpers


def _read_params(session: Session, query: Any) -> dict[int, dict[str, Any]]:
    params: dict[int, dict[str, Any]] = defaultdict(dict)
    for trial_id, name, value_json in session.execute(query.order_by(_PARAMS.c.name)):
        params[trial_id][name] = json.loads(value_json)
    return params


def _trial_record(row: Any, params: dict[str, Any]) -> TrialRecord:
    return TrialRecord(
        study_id=row.study_id,
        number=row.number,
        state=row.state,
        params=params,
        metrics=json.loads(row.metrics_json),
        value=row.value,
        node=row.node,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        error=row.error,
        steps=row.steps,
    )


def _study_record(study: Study) -> StudyRecord:
    return StudyRecord(
        id=study.id,
        name=study.name,
        status=study.status,
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


# ---------------------------------------------------------------------- small helpers


def _parse_url(url: str) -> tuple[URL, URL]:
    """The URL as given, and the URL to connect with (driver chosen)."""
    if not isinstance(url, str) or not url.strip():
        raise StorageError(f"no database URL given (got {url!r}); use e.g. {_URL_EXAMPLES}")
    try:
        given = make_url(url.strip())
    except (sa_exc.ArgumentError, ValueError):
        raise StorageError(
            f"malformed database URL {_mask_raw_url(url)!r}: use e.g. {_URL_EXAMPLES}"
        ) from None
    backend, _, driver = given.drivername.partition("+")
    masked = given.render_as_string(hide_password=True)
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise StorageError(
                f"unsupported SQLite driver {driver!r} in {masked!r}: use e.g. {_URL_EXAMPLES}"
            )
        if given.host or given.username or given.password or given.port:
            raise StorageError(
                f"malformed SQLite URL {masked!r}: a file is sqlite:///relative/path.db "
                f"or sqlite:////absolute/path.db; valid URLs look like {_URL_EXAMPLES}"
            )
        return given, given.set(drivername="sqlite+pysqlite")
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg", "psycopg2"):
            raise StorageError(
                f"unsupported PostgreSQL driver {driver!r} in {masked!r}: tuner uses psycopg 3; "
                f"write the URL as postgresql://user@host:5432/db"
            )
        return given, given.set(drivername="postgresql+psycopg")
    raise StorageError(
        f"unsupported database URL {masked!r}: tuner stores studies in SQLite or "
        f"PostgreSQL, e.g. {_URL_EXAMPLES}"
    )


def _mask_raw_url(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _reason(error: BaseException) -> str:
    """The driver's own message, on one line."""
    origin = getattr(error, "orig", None) or error
    message = str(origin) or type(origin).__name__
    if isinstance(origin, sa_exc.SQLAlchemyError) and origin is error:
        # SQLAlchemy appends the SQL and a link; the first line is the reason.
        message = message.split("\n", 1)[0]
        message = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", message)
    return " ".join(message.split())


def _quiet_rollback(session: Session) -> None:
    with contextlib.suppress(sa_exc.SQLAlchemyError):  # the connection is gone
        session.rollback()


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """The head revision of tuner's migrations and every revision they know."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(_MIGRATIONS))
    head = script.get_current_head()
    if head is None:  # pragma: no cover - the package ships its migrations
        raise StorageError(f"tuner's migrations are missing from {_MIGRATIONS}")
    known = frozenset(rev.revision for rev in script.walk_revisions())
    return head, known


def _now() -> datetime:
    return datetime.now(UTC)


def _dumps(value: Any) -> str:
    # NaN and +-Infinity are written as JSON's common extension tokens, which
    # Python's json reads back; the column is text, so no backend rejects them.
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        plain = item()
        if isinstance(plain, bool | int | float | str):
            return plain
    raise TypeError(f"{type(value).__name__} is not JSON-able")


def _plain(value: Any) -> Any:
    """A numpy scalar or a subclass (IntEnum, numpy.float64) as the plain Python value."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    item = getattr(value, "item", None)
    if callable(item):
        plain = item()
        if type(plain) in (bool, int, float, str):
            return plain
    return value


def _as_float(value: Any, what: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, str | bytes) or value is None:
        raise StorageError(f"cannot write trial events: {what} must be a number (got {value!r})")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise StorageError(
            f"cannot write trial events: {what} must be a number (got {value!r})"
        ) from None


def _nan_to_none(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _require_text(what: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise StorageError(f"{what} must be a non-empty string (got {value!r})")


def _require_optional_text(value: Any, what: str) -> None:
    if value is not None and not isinstance(value, str):
        raise StorageError(f"cannot write trial events: {what} must be a string or None")


def _require_aware(value: Any, what: str) -> None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise StorageError(
            f"cannot write trial events: {what} must be a timezone-aware datetime "
            f"(got {value!r}); use datetime.now(UTC)"
        )
