"""The Python API: create, run, load, resume and read studies."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner._defaults import default_storage_url
from tuner.exceptions import (
    SpecError,
    StorageError,
    StudyExistsError,
    StudyInterrupted,
    TunerError,
)
from tuner.search._auto import describe
from tuner.spec import StudySpec, load_spec
from tuner.storage import ArtifactRecord, Storage, StudyRecord, TrialOutputRecord, TrialRecord

if TYPE_CHECKING:
    import pandas as pd

    from tuner.run import RunOutcome

log = logging.getLogger(__name__)
_BASE_DIR_KEY = "_base_dir"


@dataclass(frozen=True)
class _ModelSource:
    """What a :class:`Trial` knows of its study to find and load its model."""

    study: str  # the study's name
    kind: str  # its trainer's kind: xgboost, sklearn, python
    store: str | None  # the artifacts store's root (None: the study has none)
    keep: int  # artifacts.keep
    uri: str | None  # the trial's kept model (None: none)


@dataclass(frozen=True, eq=False)
class Trial(TrialRecord):
    """A trial of a study, as :meth:`Study.trials`, :attr:`Study.best_trial` and
    :attr:`Study.best_trials` return it: a :class:`~tuner.storage.TrialRecord` (same
    fields; it compares equal to the record it was read from) that also finds its model.
    """

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TrialRecord):
            return NotImplemented
        return _record_key(self) == _record_key(other)

    __hash__ = None  # type: ignore[assignment]  # as the record's: its fields are dicts

    @classmethod
    def _of(cls, record: TrialRecord, source: _ModelSource | None) -> Trial:
        trial = cls(**{f.name: getattr(record, f.name) for f in dataclasses.fields(TrialRecord)})
        object.__setattr__(trial, "_source", source)  # not a field: kept out of fields()
        return trial

    @property
    def model_uri(self) -> str | None:
        """Where the trial's kept model lies in the study's artifacts store, or None (it
        has none: see :meth:`load_model`)."""
        source: _ModelSource | None = getattr(self, "_source", None)
        return None if source is None else source.uri

    def load_model(self) -> Any:
        """The trial's model, read from the study's artifacts store.

        Returns:
            ``kind: xgboost``: an ``xgboost.Booster``; ``kind: sklearn``: the fitted
            scikit-learn pipeline (with ``dataset.folds``: the list of the folds'
            pipelines); ``kind: python``: a local copy of the model's folder (the
            trial's last checkpoint), a new temporary folder on every call.

        Raises:
            TunerError: the trial has no kept model (it did not complete, it is not
                among the best ``artifacts.keep``, or the study has no artifacts store),
                or a sklearn model holds types other than scikit-learn's, NumPy's,
                SciPy's and xgboost's.
        """
        source = self._model_source()
        folder = self._fetch_model(Path(tempfile.mkdtemp(prefix="tuner-model-")) / "model")
        if source.kind == "python":
            return folder
        from tuner.trainers._models import load_booster, load_sklearn

        try:
            return load_booster(folder) if source.kind == "xgboost" else load_sklearn(folder)
        finally:
            import shutil

            shutil.rmtree(folder.parent, ignore_errors=True)

    def _model_source(self) -> _ModelSource:
        """The trial's :class:`_ModelSource`, with a kept model.

        Raises:
            TunerError: it has no kept model (why, in one line).
        """
        source: _ModelSource | None = getattr(self, "_source", None)
        what = f"trial {self.number}"
        if source is None:
            raise TunerError(f"{what} was not read from a study: load it with study.trials()")
        what = f"trial {self.number} of study {source.study!r}"
        if source.uri is not None:
            return source
        if source.store is None:
            raise TunerError(
                f"{what} has no model: the study has no artifacts store "
                "(set artifacts.store, or use a SQLite database file)"
            )
        if self.state != "completed":
            raise TunerError(
                f"{what} has no model: it is {self.state} (only completed trials keep one)"
            )
        raise TunerError(
            f"{what} has no model: it is not among the best artifacts.keep={source.keep} "
            "trials, or its trainer saved no checkpoint"
        )

    def _fetch_model(self, dest: str | os.PathLike[str]) -> Path:
        """Copy the trial's model folder to `dest` (created if missing); returns it.

        Raises:
            TunerError: it has no kept model, or the store no longer holds it.
        """
        from tuner.artifacts import ArtifactStore

        source = self._model_source()
        assert source.uri is not None and source.store is not None  # _model_source's
        root = source.store
        marker = f"/{source.study}/trial-"
        if not source.uri.startswith(root.rstrip("/") + "/") and marker in source.uri:
            # A relative artifacts.store read from another folder: the row knows where.
            root = source.uri[: source.uri.rindex(marker)]
        try:
            return ArtifactStore(root).get_dir(source.uri, dest)
        except (FileNotFoundError, ValueError) as e:
            raise TunerError(
                f"the model of trial {self.number} of study {source.study!r} cannot be read "
                f"from the artifacts store: {e}"
            ) from None


def _record_key(t: TrialRecord) -> tuple[Any, ...]:
    return tuple(getattr(t, f.name) for f in dataclasses.fields(TrialRecord) if f.compare)


def resolve_storage_url(explicit: str | None, spec: StudySpec | None = None) -> str:
    """Which database to use: the explicit URL, then a `storage:` the spec sets, then
    $TUNER_STORAGE, then sqlite:///tuner.db."""
    if explicit:
        return explicit
    if spec is not None and "storage" in spec.model_fields_set:
        return spec.storage
    return default_storage_url()


class Study:
    """A study in a storage: run it, resume it, read its trials.

    Get one with :func:`create_study` or :func:`load_study`, not by calling this class.
    """

    def __init__(self, record: StudyRecord, storage: Storage, spec: StudySpec) -> None:
        self._record = record
        self._storage = storage
        self._spec = spec
        self.last_outcome: RunOutcome | None = None

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, status={self.status!r}, storage={self._storage.url!r})"

    @property
    def name(self) -> str:
        return self._record.name

    @property
    def spec(self) -> StudySpec:
        return self._spec

    @property
    def algorithm(self) -> str:
        """The search algorithm as stored: the spec's, or for auto what it picked
        (``auto→gp``)."""
        return self._record.algorithm

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def status(self) -> str:
        """created, running, completed, failed or stopped (read from the storage)."""
        return self._storage.get_study_by_id(self._record.id).status

    def run(
        self,
        *,
        progress: bool | None = None,
        verbose: bool = False,
        on_start: Callable[[], None] | None = None,
    ) -> Study:
        """Run the study's trials through Ray Tune; blocks until they are done.

        Args:
            progress: show a progress bar (default: when stderr is a terminal).
            verbose: let Ray's logs and the trials' own output through.
            on_start: called once Ray is up and the first trials are about to start.

        Returns:
            The study itself.

        Raises:
            SpecError: the trainer cannot be prepared.
            StudyFailedError: every trial failed.
            StorageError: the database became unusable.
        """
        return self._run(progress, verbose, resume=False, on_start=on_start)

    def resume(
        self,
        *,
        progress: bool | None = None,
        verbose: bool = False,
        num_trials: int | None = None,
    ) -> Study:
        """Finish a study that was interrupted (crash, Ctrl+C, `tuner stop`), or extend
        a finished one.

        Finished trials are kept and count towards num_trials; none is run again. Trials
        left running by a crash are marked stopped, and new trials take their place. A
        completed study has nothing left to run: it is returned as it is, without
        starting Ray, unless `num_trials` gives it more.

        Args:
            progress: show a progress bar (default: when stderr is a terminal).
            verbose: let Ray's logs and the trials' own output through.
            num_trials: the study's new number of trials, in total (finished ones
                included); stored with the study.

        Raises:
            TunerError: `num_trials` is not more than the trials already finished, or
                the study searches a grid (its size is the grid's).
            StudyFailedError, StudyInterrupted, SpecError, StorageError: as :meth:`run`.
        """
        if num_trials is not None:
            self._extend(num_trials)
        elif self.status == "completed":
            from tuner.run import RunOutcome

            counts: dict[str, int] = {}
            for t in self.trials():
                counts[t.state] = counts.get(t.state, 0) + 1
            self.last_outcome = RunOutcome("completed", counts, None)
            return self
        return self._run(progress, verbose, resume=True)

    def finished_trials(self) -> int:
        """The trials that count towards num_trials: completed, pruned or failed."""
        from tuner.run._history import COUNTED

        return len(self.trials(list(COUNTED)))

    def _extend(self, num_trials: int) -> None:
        """Store `num_trials` as the study's new budget (in its spec too)."""
        if self._spec.search.algorithm == "grid":
            raise TunerError(
                f"study {self.name!r} searches a grid, whose size sets its trials: "
                "--num-trials does not apply (widen the grid in a new study)"
            )
        finished = self.finished_trials()
        if num_trials <= finished:
            raise TunerError(
                f"study {self.name!r} already has {finished} finished trials: --num-trials "
                f"is the total, so give more than {finished} (got {num_trials})"
            )
        spec = load_spec(self._spec, {"search.num_trials": num_trials})
        self._storage.extend_study(self._record.id, num_trials, _stored_spec(spec))
        self._spec = spec

    def _run(
        self,
        progress: bool | None,
        verbose: bool,
        resume: bool,
        on_start: Callable[[], None] | None = None,
    ) -> Study:
        try:
            from tuner.run import run_study
        except KeyboardInterrupt:  # Ctrl+C before the run could catch it
            raise self.interrupted_before_start() from None
        if progress is None:
            progress = sys.stderr.isatty()
        history: list[TrialRecord] = []
        going_on = []
        if resume:
            from tuner.run._continue import continuations_of

            # Trials of a killed driver with a checkpoint go on from it; the rest stop.
            going_on = continuations_of(self._storage, self._record.id)
            self._storage.mark_running_trials(
                self._record.id,
                "stopped",
                "interrupted: the study's driver stopped",
                keep=[c.number for c in going_on],
            )
            history = self._storage.get_trials(self._record.id)
        try:
            self.last_outcome = run_study(
                self._record,
                self._spec,
                self._storage,
                history=history,
                progress=progress,
                verbose=verbose,
                on_start=on_start,
                continuing=going_on,
            )
        except (SpecError, TunerError) as e:
            # The trainer could not be prepared (bad data path, metric...) or Ray could
            # not be reached, so nothing ran. A study created for this run and never
            # started is removed, so that the same `tuner run` works once it is fixed.
            if not resume and not isinstance(e, StorageError | StudyInterrupted):
                with contextlib.suppress(TunerError):
                    if self._never_started():
                        self._storage.delete_study(self.name)
            raise
        return self

    def interrupted_before_start(self) -> StudyInterrupted:
        """Ctrl+C before any trial ran: the study is stopped (``tuner resume`` runs it);
        the error to raise says so in one line."""
        from tuner.run._driver import interrupted_at_start

        return interrupted_at_start(self._record, self._storage)

    def _never_started(self) -> bool:
        record = self._storage.get_study_by_id(self._record.id)
        return record.status == "created" and not self._storage.get_trials(self._record.id)

    def stop(self) -> None:
        """Ask the process running this study to stop it (running trials end as stopped)."""
        self._storage.request_stop(self.name)

    def delete(self) -> list[str]:
        """Delete the study: its rows (trials, parameters, results, artifact rows), then
        its files in the artifacts store (the folder ``{store}/{name}``).

        A store that cannot be reached does not stop the rows from going: each folder
        left behind is one line in the returned list.

        Returns:
            One line per store folder left behind, naming it and why; empty when every
            file went (or the study had no store).

        Raises:
            StudyNotFoundError: the study is no longer there.
            StorageError: the storage is read-only or the database fails.
        """
        from tuner.artifacts import ArtifactStore, study_roots

        record = self._storage.get_study(self.name)
        uris = [a.uri for a in self._storage.artifacts(record.id)]
        roots = study_roots(self.name, record.spec, self._storage.url, uris)
        self._storage.delete_study(self.name)
        left: list[str] = []
        for root in roots:
            store = ArtifactStore(root)
            try:
                store.delete_study(self.name)
            except Exception as e:  # anything the filesystem's package raises: one line
                text = " ".join(str(e).split())[:200]
                why = f"{type(e).__name__}: {text}" if text else type(e).__name__
                left.append(f"{root}/{self.name} was left behind: cannot delete it ({why})")
        return left

    def trials(self, states: Sequence[str] | None = None) -> list[Trial]:
        """The study's trials, by number, optionally only those in `states`."""
        return self._with_models(self._storage.get_trials(self._record.id, states))

    def _with_models(self, records: Sequence[TrialRecord]) -> list[Trial]:
        """`records` as :class:`Trial` objects that know their kept models."""
        if not records:
            return []
        from tuner.artifacts import default_store, resolve_store

        spec = self._spec
        store = None
        if spec.artifacts.store is not None:
            store = resolve_store(spec.artifacts.store, self._storage.url)
        else:
            store = default_store(self._storage.url)
        models: dict[int, str] = {}
        if store is not None:
            wanted = records[0].number if len(records) == 1 else None
            for a in self._storage.artifacts(self._record.id, wanted):
                if a.kind == "model":
                    models[a.number] = a.uri
        return [
            Trial._of(
                t,
                _ModelSource(
                    self.name, spec.trainer.kind, store, spec.artifacts.keep, models.get(t.number)
                ),
            )
            for t in records
        ]

    def artifacts(self, number: int | None = None) -> list[ArtifactRecord]:
        """The checkpoints and models stored for the study's trials (trial `number`'s
        only, if given): what ``artifacts.keep`` kept, by trial number, kind and step."""
        return self._storage.artifacts(self._record.id, number)

    def trial_output(self, number: int) -> list[TrialOutputRecord]:
        """What trial `number` wrote to stdout and stderr: one record per attempt that
        wrote anything (its last 64 KiB), oldest first.

        Raises:
            StorageError: the study has no trial `number`, or the database fails.
        """
        return self._storage.trial_output(self._record.id, number)

    @property
    def best_trial(self) -> Trial | None:
        """The completed, feasible trial with the best value of the study's metric, or
        None (when nothing completed, or no completed trial meets the constraints: a
        warning then says so, see :meth:`feasibility_note`).

        Raises:
            TunerError: the study has several objectives; use :attr:`best_trials`.
        """
        if self._spec.is_multi_objective:
            raise TunerError(
                f"study {self.name!r} has several objectives, so no single best trial; "
                "use study.best_trials (the Pareto set)"
            )
        best = self._storage.best_trial(self._record.id)
        if best is None:
            self._warn_infeasible()
            return None
        return self._with_models([best])[0]

    @property
    def best_trials(self) -> list[Trial]:
        """The Pareto set: the completed, feasible trials that no other such trial
        dominates (no worse on every objective and better on one), by number; with one
        objective, the trials with the best value. Empty when nothing completed or
        nothing is feasible (a warning then says so, see :meth:`feasibility_note`)."""
        trials = self._storage.best_trials(self._record.id)
        if not trials:
            self._warn_infeasible()
        return self._with_models(trials)

    def feasibility_note(self) -> str | None:
        """Why nothing is best although trials completed (every one broke a constraint),
        or None when that is not the case."""
        if not self._spec.constraints:
            return None
        completed = self._storage.get_trials(self._record.id, ["completed"])
        if not completed or any(t.feasible is not False for t in completed):
            return None
        bounds = "; ".join(_bound_text(c) for c in self._spec.constraints)
        return (
            f"none of the {len(completed)} completed trials of study {self.name!r} is "
            f"feasible (constraints: {bounds}), so no trial is best"
        )

    def _warn_infeasible(self) -> None:
        note = self.feasibility_note()
        if note is not None:
            log.warning("tuner: %s", note)

    def intermediate(
        self, numbers: Sequence[int] | None = None
    ) -> dict[int, dict[str, list[tuple[int, float]]]]:
        """Every reported value: trial number -> metric -> [(step, value)]."""
        return self._storage.get_intermediate(self._record.id, numbers)

    def trials_dataframe(self) -> pd.DataFrame:
        """One row a trial: number, state, value, params.*, metrics.*, node, started,
        duration_s, error. An inactive conditional parameter is missing (NaN)."""
        from tuner._export import trials_frame

        return trials_frame(self.trials(), self._spec)


def _bound_text(c: Any) -> str:
    parts = ([f"{c.metric} >= {c.min:g}"] if c.min is not None else []) + (
        [f"{c.metric} <= {c.max:g}"] if c.max is not None else []
    )
    return ", ".join(parts)


def _stored_spec(spec: StudySpec) -> dict[str, Any]:
    return {**spec.to_dict(), _BASE_DIR_KEY: spec.base_dir}


def _spec_of(record: StudyRecord) -> StudySpec:
    data = dict(record.spec)
    base_dir = data.pop(_BASE_DIR_KEY, None)
    spec = load_spec(data)
    if base_dir:
        spec._base_dir = base_dir  # a private attribute: settable on the frozen model
    return spec


def create_study(
    spec: str | os.PathLike[str] | Mapping[str, Any] | StudySpec,
    *,
    storage: str | None = None,
    name: str | None = None,
    num_trials: int | None = None,
    load_if_exists: bool = False,
) -> Study:
    """Validate a spec and store a new study (nothing runs until :meth:`Study.run`).

    Args:
        spec: a YAML file path, a dict with the spec's keys, or a StudySpec.
        storage: a SQLAlchemy URL; default: the spec's `storage:`, then
            $TUNER_STORAGE, then sqlite:///tuner.db.
        name: overrides the spec's name.
        num_trials: overrides search.num_trials.
        load_if_exists: return the stored study of that name instead of failing.

    Raises:
        SpecError: the spec is invalid.
        StudyExistsError: the name is taken (and load_if_exists is False).
        StorageError: the database cannot be opened.
    """
    validated = load_spec(spec, {"name": name, "search.num_trials": num_trials})
    store = Storage(resolve_storage_url(storage, validated))
    try:
        record = store.create_study(
            validated.name,
            spec=_stored_spec(validated),
            metric=validated.metric,
            mode=validated.mode,
            algorithm=describe(validated),  # auto shows what it picked: auto→gp
            scheduler=validated.early_stopping.scheduler,
            num_trials=_planned_trials(validated),
        )
    except StudyExistsError:
        if not load_if_exists:
            raise
        return Study(store.get_study(validated.name), store, validated)
    return Study(record, store, validated)


def _planned_trials(spec: StudySpec) -> int:
    if spec.search.algorithm == "grid":
        from tuner.search import grid_size

        return grid_size(spec)
    return spec.search.num_trials


def open_existing(url: str) -> Storage:
    """Open a database that must already exist: reading never creates one.

    A SQLite file that is not there would otherwise be created empty (``tuner list`` in
    the wrong folder would leave a stray ``tuner.db`` behind).

    Raises:
        StudyNotFoundError: the URL names a SQLite file that does not exist.
        StorageError: the URL is invalid or the database cannot be opened.
    """
    from pathlib import Path

    from tuner.exceptions import StudyNotFoundError
    from tuner.storage import parse_storage_url

    given, _ = parse_storage_url(url)
    database = given.database or ""
    in_memory = database in ("", ":memory:") or given.query.get("mode") == "memory"
    uri = str(given.query.get("uri", "")).lower() in ("true", "1")
    file_based = given.get_backend_name() == "sqlite" and not in_memory and not uri
    if file_based and not Path(database).exists():
        masked = given.render_as_string(hide_password=True)
        raise StudyNotFoundError(
            f"no tuner database at {masked}; run a study first or pass --storage"
        )
    return Storage(url)


def load_study(name: str, storage: str | None = None) -> Study:
    """A stored study, by name (the database is never created by loading).

    Raises:
        StudyNotFoundError: no study of that name in the storage, or no database there.
        StorageError: the database cannot be opened.
    """
    store = open_existing(resolve_storage_url(storage))
    record = store.get_study(name)
    try:
        spec = _spec_of(record)
    except SpecError as e:
        raise SpecError(f"the stored spec of study {name!r} no longer validates: {e}") from None
    return Study(record, store, spec)
