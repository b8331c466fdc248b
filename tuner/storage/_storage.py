"""The :class:`Storage` facade: tuner's one way into its database (SQLite or PostgreSQL).

The work is done by the modules beside it, one job each:

* ``_engine``: URL parsing, engines (SQLite WAL and busy timeout, the psycopg URL,
  read-only mode) and the one session context manager that maps driver errors to
  :class:`~tuner.exceptions.StorageError`;
* ``_migrations``: Alembic, applied on open;
* ``_studies``: study rows (create, read, list, update one study's columns, delete);
* ``_writes``: the batched write path and the bulk import;
* ``_reads``: trial records and intermediate values;
* ``_checks``: validation and encoding of what callers hand in;
* ``_read_model``: the dashboard's aggregate queries (:class:`DashboardReads`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tuner.storage import _reads, _studies
from tuner.storage._checks import dumps, now
from tuner.storage._engine import Database
from tuner.storage._migrations import prepare_schema
from tuner.storage._records import (
    ArtifactRecord,
    StudyRecord,
    StudyState,
    StudySummary,
    TrialImport,
    TrialOutputRecord,
    TrialRecord,
    TrialState,
)
from tuner.storage._writes import TrialEvent, TrialWriter

__all__ = ["Storage", "TrialEvent"]


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
        self._db = Database(url, read_only=read_only)
        try:
            prepare_schema(self._db)
        except BaseException:
            self._db.close()
            raise
        self._writer = TrialWriter(self._db)

    # ------------------------------------------------------------------ plumbing

    @property
    def url(self) -> str:
        """The database URL as given, with any password masked."""
        return self._db.masked_url

    @property
    def read_only(self) -> bool:
        """Whether this storage was opened read-only."""
        return self._db.read_only

    @property
    def _engine(self) -> Any:
        # For tests that look past the API (row counts, the schema); not for callers.
        return self._db.engine

    def close(self) -> None:
        """Close every pooled connection; the storage cannot be used afterwards."""
        self._db.close()

    def __enter__(self) -> Storage:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only=True" if self._db.read_only else ""
        return f"Storage({self._db.masked_url!r}{mode})"

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
        return _studies.create_study(
            self._db, name, spec, metric=metric, mode=mode, algorithm=algorithm,
            scheduler=scheduler, num_trials=num_trials,
        )  # fmt: skip

    def get_study(self, name: str) -> StudyRecord:
        """The study named ``name``.

        Raises:
            StudyNotFoundError: there is none (the message says how to list the names).
            StorageError: the database fails.
        """
        return _studies.get_study(self._db, name)

    def get_study_by_id(self, study_id: int) -> StudyRecord:
        """The study with id ``study_id``.

        Raises:
            StudyNotFoundError: there is none.
            StorageError: the database fails.
        """
        return _studies.get_study_by_id(self._db, study_id)

    def list_studies(self) -> list[StudySummary]:
        """Every study, oldest first, with its trial counts per state and best value.

        Raises:
            StorageError: the database fails.
        """
        return _studies.list_studies(self._db)

    def set_study_status(self, study_id: int, status: StudyState | str) -> None:
        """Set a study's status; a terminal one (completed, failed, stopped) also sets
        ``finished_at``, any other clears it.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: ``status`` is not one of STUDY_STATES, the storage is
                read-only, or the database fails.
        """
        _studies.set_study_status(self._db, study_id, status)

    def heartbeat(self, study_id: int) -> None:
        """Record that the study's driver is alive (``heartbeat_at`` = now).

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        doing = f"record the heartbeat of study {study_id}"
        _studies.update_study(self._db, study_id, doing, heartbeat_at=now())

    def extend_study(self, study_id: int, num_trials: int, spec: Mapping[str, Any]) -> None:
        """Give a study a new trial budget, with the spec that says so (``tuner resume
        NAME --num-trials N``).

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        doing = f"extend study {study_id} to {num_trials} trials"
        spec_json = dumps(dict(spec))
        _studies.update_study(self._db, study_id, doing, num_trials=num_trials, spec_json=spec_json)

    def request_stop(self, name: str) -> None:
        """Ask the driver of study ``name`` (maybe in another process) to stop.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        doing = f"request study {name!r} to stop"
        _studies.update_study(self._db, name, doing, stop_requested=True)

    def is_stop_requested(self, study_id: int) -> bool:
        """Whether someone asked the study's driver to stop.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        return _studies.is_stop_requested(self._db, study_id)

    def clear_stop_request(self, study_id: int) -> None:
        """Forget a stop request (the driver does this when it resumes a study).

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        doing = f"clear the stop request of study {study_id}"
        _studies.update_study(self._db, study_id, doing, stop_requested=False)

    def delete_study(self, name: str) -> None:
        """Delete study ``name`` with its trials, parameters and intermediate values.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the storage is read-only or the database fails.
        """
        with self._writer.lock:
            study_id = _studies.delete_study(self._db, name)
            self._writer.forget_study(study_id)

    # ------------------------------------------------------------------ trials: writes

    def write(self, events: Sequence[TrialEvent]) -> None:
        """Record a batch of trial events in one transaction, in order.

        A trial is written by its :class:`TrialStarted`, extended by each
        :class:`TrialResult` (intermediate values; a repeated step replaces the
        earlier values of that step) and closed by :class:`TrialFinished`. A
        :class:`TrialRetried` (its worker died; it runs again) drops the results of the
        attempt that died, counts the attempt and keeps its error. A
        :class:`TrialOutput` appends to what the attempt wrote (the last 64 KiB are
        kept); unlike the others it is taken for a finished trial too. The trial's
        ``metrics`` hold the last value reported for each metric, from results and
        from the finish event.

        Raises:
            StorageError: an event is invalid (unknown type, naive datetime, value that
                is not a number, parameter that cannot be stored), a trial is started
                twice, an event names a trial that was never started or has finished
                (finished trials are read-only), the study does not exist, the storage
                is read-only, or the database fails. Nothing of the batch is written then.
        """
        self._writer.write(events)

    def import_trials(
        self, study_id: int, trials: Iterable[TrialImport], *, batch_size: int = 1000
    ) -> int:
        """Write many finished trials, with their intermediate values, in bulk.

        The path for seeding and migrating databases (100,000 trials of 100 results
        each): every trial is checked as :meth:`write` checks its events, and each
        :class:`TrialImport` becomes one row insert instead of a stream of events.
        Unlike :meth:`write`, the import is not all or nothing: each ``batch_size``
        trials are one transaction, and the batches written before a failure stay.

        Args:
            study_id: the study the trials belong to.
            trials: the trials, each with a number not yet used in the study.
            batch_size: trials a transaction.

        Returns:
            How many trials were written.

        Raises:
            StorageError: a trial is invalid (as for :meth:`write`; its state must be a
                final one), a number is already used, the study does not exist, the
                storage is read-only, or the database fails. The failing batch is not
                written.
        """
        return self._writer.import_trials(study_id, trials, batch_size=batch_size)

    def mark_running_trials(
        self, study_id: int, state: TrialState | str, error: str, keep: Sequence[int] = ()
    ) -> int:
        """Close every trial of the study that is still ``running`` (resume after a crash),
        but those numbered in `keep` (they go on from their checkpoints).

        Sets ``state``, ``error`` and ``finished_at`` (now); ``duration_s`` stays unknown.

        Returns:
            How many trials were marked.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: ``state`` is not a final state, the storage is read-only, or
                the database fails.
        """
        return self._writer.mark_running_trials(study_id, state, error, keep)

    # ------------------------------------------------------------------ trials: reads

    def next_trial_number(self, study_id: int) -> int:
        """The number for the study's next trial: the largest so far + 1, 0 for none.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        return _reads.next_trial_number(self._db, study_id)

    def get_trials(
        self, study_id: int, states: Sequence[TrialState | str] | None = None
    ) -> list[TrialRecord]:
        """The study's trials, by number; only those in ``states`` if given.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: a state is not one of TRIAL_STATES, or the database fails.
        """
        return _reads.get_trials(self._db, study_id, states)

    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        """Trial ``number`` of the study.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the study has no such trial, or the database fails.
        """
        return _reads.get_trial(self._db, study_id, number)

    def artifacts(self, study_id: int, number: int | None = None) -> list[ArtifactRecord]:
        """The checkpoints and models stored for the study's trials (of trial `number`
        only, if given), by trial number, kind and step.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        return _reads.artifacts(self._db, study_id, number)

    def trial_output(self, study_id: int, number: int) -> list[TrialOutputRecord]:
        """What trial ``number`` of the study wrote to stdout and stderr: one record per
        attempt that wrote anything, oldest first (empty: it wrote nothing, or ran
        before tuner kept output). Each holds the attempt's last 64 KiB.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the study has no such trial, or the database fails.
        """
        return _reads.trial_output(self._db, study_id, number)

    def best_trial(self, study_id: int) -> TrialRecord | None:
        """The completed, feasible trial with the lowest (mode min) or highest (max)
        ``value`` (with several objectives: of the first objective).

        Trials of other states, completed trials without a value, and infeasible ones
        (a constraint failed) do not count; ties go to the lowest number.

        Returns:
            The best trial, or None when no completed, feasible trial has a value.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        return _reads.best_trial(self._db, study_id)

    def best_trials(self, study_id: int) -> list[TrialRecord]:
        """The Pareto set: the completed, feasible trials with every objective's value
        that no other such trial dominates (better or equal on every objective and
        better on one), by number. One objective: the trials with the best value.

        Returns:
            The trials, or an empty list when no completed trial is feasible.

        Raises:
            StudyNotFoundError: there is no such study.
            StorageError: the database fails.
        """
        return _reads.best_trials(self._db, study_id)

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
        return _reads.get_intermediate(self._db, study_id, numbers)
