"""Turns a study spec into a Ray Tune run, recording every trial live.

Three parts, kept apart (the Syne Tune split):

- decisions: the searcher (what to try, :mod:`tuner.search`), the scheduler (when to
  stop a trial, :mod:`tuner.schedulers`) and the trial ledger (how each trial ended,
  :mod:`tuner.run._ledger`);
- execution: Ray Tune, with worker actors reused between trials; a trial's own errors
  and ``limits.trial_timeout_s`` end it inside its process (:mod:`tuner._report`), so
  Ray Tune retries (``limits.max_retries``) only trials whose worker or node died;
- recording: Ray Tune callbacks in the driver (:mod:`tuner.run._callbacks`) turn trial
  events into storage events, which the recorder (:mod:`tuner.run._recorder`) writes
  in batches from its own thread, so the database never slows the run, and keeps
  while the database is away;
- control (:mod:`tuner.run._control`): the run's one stop flag, raised by `tuner stop`,
  SIGINT/SIGTERM, the study timeout, ``limits.max_failed_trials`` or lost storage.

:func:`run_study` prepares the trainer, starts Ray, has :func:`_build` make the run's
collaborators and hands them to :func:`_run`, which only drives Ray Tune.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuner import _ray
from tuner.exceptions import ReportError, SpecError, StudyFailedError, StudyInterrupted
from tuner.run._history import COUNTED, warm_start_history
from tuner.run._ledger import TrialLedger
from tuner.run._recorder import Recorder
from tuner.spec import StudySpec
from tuner.storage import Storage, StudyRecord, StudyState, TrialRecord, TrialState
from tuner.trainers import Prepared

if TYPE_CHECKING:
    from ray.tune import Callback
    from ray.tune.schedulers import TrialScheduler

    from tuner.run._callbacks import ProgressCallback, RecordingCallback
    from tuner.run._checkpoints import Ranking
    from tuner.run._continue import Continuation
    from tuner.run._control import Control
    from tuner.search._base import TunerSearcher
    from tuner.search._pbt import Population

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunOutcome:
    """How a run of a study ended."""

    status: str  # a StudyState: completed | failed | stopped
    counts: dict[str, int]
    first_error: str | None


@contextmanager
def _quiet_ray_logs() -> Iterator[None]:
    """Ray logs each trial error with a traceback; tuner records them instead."""
    loggers = [logging.getLogger(n) for n in ("ray.tune", "ray.train", "ray.air")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def run_study(
    study: StudyRecord,
    spec: StudySpec,
    storage: Storage,
    *,
    history: Sequence[TrialRecord] = (),
    progress: bool = False,
    verbose: bool = False,
    on_start: Callable[[], None] | None = None,
    continuing: Sequence[Continuation] = (),
) -> RunOutcome:
    """Run (or resume) a study's trials through Ray Tune; blocks until done.

    Args:
        study: the stored study.
        spec: its validated spec.
        storage: where every trial is recorded.
        history: trials finished in earlier runs (resume): they count towards
            num_trials, are given to the searcher, and are not run again.
        progress: show a progress bar on stderr.
        verbose: let Ray's own logs and the trials' output through.
        on_start: called once Ray is up and the trials' resources fit, before any runs.
        continuing: running trials of a killed driver that go on from their checkpoints
            (``tuner resume``), before any new trial.

    Raises:
        SpecError: the search algorithm needs an extra that is not installed, or the
            trainer cannot be prepared (function not importable, metric never
            reported).
        StudyFailedError: no trial completed and at least one failed, or
            ``limits.max_failed_trials`` trials failed.
        StudyInterrupted: SIGINT or SIGTERM stopped the run (the study is stopped and
            resumable; a local Ray is shut down).
    """
    prepared: Prepared | None = None
    # The study is stored already: Ctrl+C from here until the first trial stops it.
    try:
        from tuner.search import check_available
        from tuner.trainers import prepare

        check_available(spec.search.algorithm)  # e.g. gp without torch: one line, now
        warm = warm_start_history(spec, storage)  # a missing study: one line, now
        spec = with_store(spec, storage.url)  # the trials save to the resolved store
        prepared = prepare(spec)  # fails fast on a bad function or metric
        _ray.ensure_ray(spec.resources.address, verbose=verbose, working_dir=spec.base_dir)
        if prepared.resources is None:  # a data-parallel trainer checks its own workers
            _ray.check_fits(spec.resources.per_trial())
        if spec.artifacts.store is not None:  # written, read back, seen by every node
            from tuner.artifacts import check_store

            check_store(
                spec.artifacts.store, on_cluster=not _ray._starts_local(spec.resources.address)
            )
    except KeyboardInterrupt:
        if prepared is not None and prepared.cleanup is not None:
            prepared.cleanup()
        if _ray._starts_local(spec.resources.address):
            import ray

            ray.shutdown()  # what had started of a local Ray goes with the driver
        raise interrupted_at_start(study, storage) from None
    if on_start is not None:
        on_start()
    try:
        # Shared workers may allow fewer trials in flight than the spec asks for.
        in_flight = prepared.start() if prepared.start is not None else None
        parts = _build(
            study,
            spec,
            storage,
            history,
            prepared,
            progress,
            in_flight or spec.search.max_concurrent,
            warm,
            continuing,
        )
        return _run(study, spec, storage, prepared, parts)
    except StudyInterrupted:
        if _ray._starts_local(spec.resources.address):
            import ray

            ray.shutdown()  # the trials' workers go with the driver, at once
        raise
    finally:
        if prepared.cleanup is not None:
            prepared.cleanup()


def interrupted_at_start(study: StudyRecord, storage: Storage) -> StudyInterrupted:
    """Ctrl+C while Ray starts: nothing ran; the study is stopped (resumable), and the
    user gets one line instead of a silent exit 130."""
    import signal

    storage.set_study_status(study.id, StudyState.STOPPED)
    return StudyInterrupted(
        f"study {study.name!r} stopped by SIGINT while Ray was starting, before any "
        f"trial ran; `tuner resume {study.name}` runs it",
        signal.SIGINT,
    )


@dataclass
class _Parts:
    """What :func:`_run` drives Ray Tune with, made by :func:`_build`."""

    ledger: TrialLedger
    searcher: TunerSearcher
    scheduler: TrialScheduler
    remaining: int  # trials this run starts at most
    max_concurrent: int  # trials in flight at most
    control: Control | None = None
    population: Population | None = None  # pbt, pb2
    recorder: Recorder | None = None
    recording: RecordingCallback | None = None
    progress: ProgressCallback | None = None

    @property
    def callbacks(self) -> list[Callback]:
        """Recording first: the progress bar shows what the ledger has just decided."""
        return [cb for cb in (self.recording, self.progress) if cb is not None]


def _build(
    study: StudyRecord,
    spec: StudySpec,
    storage: Storage,
    history: Sequence[TrialRecord],
    prepared: Prepared,
    progress: bool,
    max_concurrent: int,
    warm: Sequence[TrialRecord] = (),
    continuing: Sequence[Continuation] = (),
) -> _Parts:
    """The searcher, scheduler, ledger and callbacks of one run (Ray is up).

    `warm`: a warm-start study's finished trials; the searcher learns from them after
    this study's own history, but they count nowhere else.
    With nothing left to run, no recorder or callbacks are made.
    """
    from tuner.run._callbacks import ProgressBar, ProgressCallback, RecordingCallback
    from tuner.run._control import Control
    from tuner.schedulers import build_scheduler
    from tuner.search import build_searcher

    searcher = build_searcher(spec, history, warm)
    population = getattr(searcher, "population", None)  # pbt, pb2: their own scheduler
    scheduler = getattr(searcher, "scheduler", None) or build_scheduler(spec)
    going_on = None
    if continuing:
        from tuner.run._continue import Continuations, ContinuingSearcher

        going_on = Continuations(continuing)
        searcher = ContinuingSearcher(searcher, going_on)
    finished = [t for t in history if t.state in COUNTED]
    own = searcher.remaining  # grid search decides how many trials are left
    remaining = own if own is not None else max(0, spec.search.num_trials - len(finished))
    total = len(finished) + own if own is not None else spec.search.num_trials
    ledger = TrialLedger(
        spec.metric,
        spec.mode,
        prepared.budget if prepared.budget is not None else spec.trainer.budget,
        history=history,
        first_number=storage.next_trial_number(study.id),
        max_failed_trials=spec.limits.max_failed_trials,
        objectives=list(zip(spec.objective_metrics, spec.objective_modes, strict=True)),
        feasible=_feasibility(spec),
        keep_best=spec.early_stopping.trial_value == "best",
    )
    if population is not None and spec.artifacts.store is None:
        raise SpecError(
            f"{spec.search.algorithm} starts new trials from others' checkpoints, and "
            "this study has nowhere to keep them: set artifacts.store to a folder every "
            "node sees or a URL such as s3://bucket/prefix",
            ["artifacts", "store"],
        )
    parts = _Parts(ledger, searcher, scheduler, remaining, max_concurrent)
    parts.population = population
    if remaining == 0:
        return parts
    control = parts.control = Control(storage, study.id)
    parts.recorder = Recorder(storage, on_give_up=lambda e: control.request("storage"))
    checkpoints = None
    if spec.artifacts.store is not None:
        from tuner.artifacts import ArtifactStore
        from tuner.run._checkpoints import Checkpoints

        checkpoints = Checkpoints(
            parts.recorder.put,
            study.id,
            ArtifactStore(spec.artifacts.store),
            spec.artifacts.keep,
            _ranking(spec),
        )
        checkpoints.load(history, storage.artifacts(study.id))
        if population is not None:
            population.latest = checkpoints.latest
            population.pin = checkpoints.pin
            population.number = ledger.number
            population.fail = lambda message: control.request("pbt: no checkpoint")
    parts.recording = RecordingCallback(
        parts.recorder,
        ledger,
        study.id,
        searcher,
        control,
        study_name=study.name,
        checkpoints=checkpoints,
        continuations=going_on,
        population=population,
    )
    if progress:
        bar = ProgressBar(study.name, total, spec.metric)
        parts.progress = ProgressCallback(ledger, bar)
        parts.progress.show()
    return parts


def with_store(spec: StudySpec, storage_url: str) -> StudySpec:
    """`spec` with its ``artifacts.store`` resolved: the spec's own (made absolute), or
    the folder beside a SQLite database; unchanged (no store: trials save no
    checkpoint) where neither exists."""
    from tuner.artifacts import default_store, resolve_store

    if spec.artifacts.store is None and default_store(storage_url) is None:
        return spec
    root = resolve_store(spec.artifacts.store, storage_url)
    artifacts = spec.artifacts.model_copy(update={"store": root})
    return spec.model_copy(update={"artifacts": artifacts})


def _ranking(spec: StudySpec) -> Ranking:
    """``artifacts.keep``'s order of finished trials: completed and feasible ones, by
    the first objective, then the next (each as a loss: smaller is better)."""
    from tuner._pareto import losses

    feasible = _feasibility(spec)
    names, modes = list(spec.objective_metrics), list(spec.objective_modes)

    def rank(state: TrialState | str, metrics: Mapping[str, float]) -> tuple[float, ...] | None:
        if state != TrialState.COMPLETED or (feasible is not None and not feasible(metrics)):
            return None
        values = [metrics.get(name) for name in names]
        if any(v is None or not math.isfinite(v) for v in values):
            return None
        return tuple(losses([float(v) for v in values if v is not None], modes))

    return rank


def _feasibility(spec: StudySpec) -> Callable[[Any], bool] | None:
    """Whether final metrics satisfy the spec's constraints (None: it has none)."""
    from tuner._pareto import feasible

    if not spec.constraints:
        return None
    bounds = [(c.metric, c.min, c.max) for c in spec.constraints]
    return lambda metrics: feasible(metrics, bounds)


def _run(
    study: StudyRecord,
    spec: StudySpec,
    storage: Storage,
    prepared: Prepared,
    parts: _Parts,
) -> RunOutcome:
    """Drive Ray Tune with the collaborators in `parts` until the run ends.

    Raises:
        StorageError: the storage failed during the run (the study is marked failed).
        StudyFailedError: see :func:`_end`.
    """
    from ray import tune

    from tuner.run._actors import claim_cached_actors
    from tuner.run._control import SignalStop, StopOnRequest

    storage.set_study_status(study.id, StudyState.RUNNING)
    if parts.remaining == 0:
        return _end(storage, study, parts.ledger, stopped=False)
    # made by _build whenever trials remain
    assert parts.control is not None and parts.recorder is not None
    assert parts.recording is not None
    control = parts.control
    trainable: Any = prepared.trainable
    if prepared.shared:
        # Put in Ray's object store once (Ray is up, so this happens now); every trial
        # on a node reads the same copy, zero-copy. The driver then drops its own copy.
        trainable = tune.with_parameters(trainable, **prepared.shared)
        # The object store holds the shared data now; the driver's own copy would only
        # double the study's memory (a 2 GB dataset would cost 4 GB).
        prepared.shared.clear()
    trainable = tune.with_resources(trainable, prepared.resources or spec.resources.per_trial())
    workdir = tempfile.mkdtemp(prefix="tuner-ray-")
    limits = spec.limits
    deadline = None if limits.study_timeout_s is None else time.monotonic() + limits.study_timeout_s
    stopper = StopOnRequest(control, deadline)
    tuner_ = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=parts.searcher,
            # A new trial, not one whose actor is starting, takes an ended trial's actor.
            scheduler=claim_cached_actors(parts.scheduler),
            num_samples=parts.remaining,
            max_concurrent_trials=parts.max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"tuner-{study.name}",
            storage_path=workdir,
            verbose=0,
            callbacks=parts.callbacks,
            stop=stopper,
            # Ray sees a trial fail only when its worker process or node died: the
            # objective's own errors end the trial in its process (tuner._report).
            failure_config=tune.FailureConfig(max_failures=limits.max_retries, fail_fast=False),
        ),
    )
    interrupted = False
    signals = SignalStop(lambda: control.request("signal"), _give_up)
    try:
        with _quiet_ray_logs(), signals:
            tuner_.fit()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        parts.recording.finish_open_trials()
        if parts.progress is not None:
            parts.progress.close()
        parts.recorder.close()
        control.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if parts.recorder.error is not None:
        storage.set_study_status(study.id, StudyState.FAILED)
        raise parts.recorder.error
    if parts.population is not None and parts.population.error is not None:
        storage.set_study_status(study.id, StudyState.FAILED)
        raise SpecError(parts.population.error, ["trainer"])
    stopped = interrupted or control.stopping
    outcome = _end(storage, study, parts.ledger, stopped=stopped)
    if signals.signum is not None:
        import signal

        name = signal.Signals(signals.signum).name
        raise StudyInterrupted(
            f"study {study.name!r} stopped by {name}: {outcome.counts['stopped']} running "
            f"trials recorded as stopped; `tuner resume {study.name}` continues it",
            signals.signum,
        )
    if stopper.timed_out:
        log.warning(
            "tuner: study %r stopped after limits.study_timeout_s=%g s; "
            "`tuner resume %s` continues it",
            study.name,
            limits.study_timeout_s,
            study.name,
        )
    return outcome


def _give_up(signum: int) -> None:
    """A second SIGINT/SIGTERM: stop waiting for the trials; leave at once."""
    import ray

    ray.shutdown()
    os._exit(128 + signum)


def _end(storage: Storage, study: StudyRecord, ledger: TrialLedger, *, stopped: bool) -> RunOutcome:
    """Record the study's final status, as the ledger decides it.

    Raises:
        ReportError: a trial failed with an error every trial would repeat (its
            function does not report the study's metric): the study is stopped.
        StudyFailedError: every trial failed (none completed or was pruned), or
            limits.max_failed_trials of them did.
    """
    status = ledger.study_state(stopped=stopped)
    if status == StudyState.STOPPED:
        storage.clear_stop_request(study.id)
    storage.set_study_status(study.id, status)
    counts = {state.value: n for state, n in ledger.counts.items()}
    if ledger.fatal_error is not None:
        number, error = ledger.fatal_error
        raise ReportError(
            f"study {study.name!r} stopped: trial #{number} failed with a mistake every "
            f"trial would repeat: {error}. Fix it, then `tuner resume {study.name}`"
        )
    if ledger.too_many_failures:
        raise StudyFailedError(
            f"study {study.name!r} failed: {ledger.failed_in_run} trials failed "
            f"(limits.max_failed_trials={ledger.max_failed_trials}); first error: "
            f"{ledger.first_error or 'unknown'} (see `tuner show {study.name}`)"
        )
    if status == StudyState.FAILED:
        raise StudyFailedError(
            f"study {study.name!r} failed: all {counts[TrialState.FAILED]} trials failed; "
            f"first error: {ledger.first_error or 'unknown'} (see `tuner show {study.name}`)"
        )
    return RunOutcome(status.value, counts, ledger.first_error)
