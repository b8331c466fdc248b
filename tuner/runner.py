"""Turns a study spec into a Ray Tune run, recording every trial live.

Three parts, kept apart (the Syne Tune split):

- decisions: the searcher (what to try, :mod:`tuner.search`) and the scheduler (when to
  stop a trial, :mod:`tuner.schedulers`);
- execution: Ray Tune, with worker actors reused between trials;
- recording: a Ray Tune callback in the driver turns trial events into storage events,
  and a writer thread writes them in batches, so the database never slows the run.
  The same thread keeps the study's heartbeat and notices `tuner stop NAME`.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tuner import _ray
from tuner._report import KEYS_KEY, NODE_KEY, STEP_KEY
from tuner.exceptions import StorageError, StudyFailedError
from tuner.spec import StudySpec
from tuner.storage import (
    Storage,
    StudyRecord,
    TrialFinished,
    TrialRecord,
    TrialResult,
    TrialStarted,
)
from tuner.trainers import Prepared

_ray.configure_env()  # before Ray Tune is imported

from ray import tune  # noqa: E402  (this module is imported only to run a study)

log = logging.getLogger(__name__)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours its tracebacks
Event = TrialStarted | TrialResult | TrialFinished


@dataclass(frozen=True)
class RunOutcome:
    """How a run of a study ended."""

    status: str  # completed | failed | stopped
    counts: dict[str, int]
    first_error: str | None


class Recorder:
    """Writes storage events from a background thread, in batches.

    Args:
        storage: where to write.
        study_id: the study being run.
        interval_s: how often queued events are written (and the stop flag polled).
    """

    def __init__(self, storage: Storage, study_id: int, interval_s: float = 0.25) -> None:
        self._storage = storage
        self._study_id = study_id
        self._interval = interval_s
        self._queue: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._closing = threading.Event()
        self.stop_requested = threading.Event()
        self.error: StorageError | None = None
        self._thread = threading.Thread(target=self._loop, name="tuner-recorder", daemon=True)
        self._thread.start()

    def put(self, event: Event) -> None:
        self._queue.put(event)

    def close(self) -> None:
        """Write everything still queued, then stop the thread."""
        self._closing.set()
        self._thread.join()

    def _drain(self) -> list[Event]:
        batch: list[Event] = []
        while True:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                return batch

    def _loop(self) -> None:
        last_poll = 0.0
        while True:
            closing = self._closing.wait(self._interval)
            batch = self._drain()
            try:
                if batch:
                    self._storage.write(batch)
                if time.monotonic() - last_poll > 2.0:
                    last_poll = time.monotonic()
                    self._storage.heartbeat(self._study_id)
                    if self._storage.is_stop_requested(self._study_id):
                        self.stop_requested.set()
            except StorageError as e:
                # Storage gone: stop the study rather than run trials nobody records.
                log.error("tuner: %s; stopping the study", e)
                self.error = e
                self.stop_requested.set()
            if closing and self._queue.empty():
                return


class _Progress:
    """A rich progress bar: trials done / total, running, best so far."""

    def __init__(self, name: str, total: int, mode: str, metric: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._mode, self._metric = mode, metric
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("running {task.fields[running]}"),
            TextColumn("best {task.fields[best]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(name, total=total, running=0, best="-")
        self._progress.start()

    def update(self, done: int, running: int, best: float | None) -> None:
        shown = "-" if best is None else f"{self._metric}={best:.6g}"
        self._progress.update(self._task, completed=done, running=running, best=shown)

    def close(self) -> None:
        self._progress.stop()


class RecordingCallback(tune.Callback):
    """Ray Tune callback in the driver: trial events -> storage events."""

    def __init__(
        self,
        recorder: Recorder,
        spec: StudySpec,
        study_id: int,
        first_number: int,
        searcher: Any,
        progress: _Progress | None,
        stopping: threading.Event,
        done_before: int,
        best_before: float | None,
        budget: int | None = None,
    ) -> None:
        self._rec = recorder
        self._spec = spec
        self._study_id = study_id
        self._next = first_number
        self._searcher = searcher
        self._progress = progress
        self._stopping = stopping
        self._budget = budget if budget is not None else spec.trainer.budget
        self._numbers: dict[str, int] = {}
        self._started: dict[str, float] = {}
        self._metrics: dict[str, dict[str, float]] = {}
        self._nodes: dict[str, str] = {}
        self._pruned: set[str] = set()
        self.counts = {"completed": 0, "pruned": 0, "failed": 0, "stopped": 0}
        self.first_error: str | None = None
        self._done_before = done_before
        self._best = best_before

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config for Tuner.restore, which tuner never uses
        # (resume goes through the database); the recorder's thread cannot be pickled.
        return {}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if trial.trial_id in self._numbers:
            return  # the same trial started again (a scheduler paused it)
        number = self._next
        self._next += 1
        self._numbers[trial.trial_id] = number
        self._started[trial.trial_id] = time.time()
        self._metrics[trial.trial_id] = {}
        self._rec.put(TrialStarted(self._study_id, number, dict(trial.config), _now()))
        self._show()

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        tid = trial.trial_id
        if tid not in self._numbers:
            return
        metrics = {k: result[k] for k in result.get(KEYS_KEY, ()) if k in result}
        self._metrics[tid].update(metrics)
        self._nodes[tid] = result.get(NODE_KEY) or result.get("hostname", "")
        step = int(result.get(STEP_KEY, result.get("training_iteration", 0)))
        self._rec.put(TrialResult(self._study_id, self._numbers[tid], step, metrics))
        # A scheduler's STOP marks the result done before callbacks see it; a trial
        # that ends on its own reports done only through a duplicate they never see.
        if (
            result.get("done")
            and not self._stopping.is_set()
            and int(result.get("training_iteration", 0)) < self._budget
        ):
            self._pruned.add(tid)
            self._searcher.note_pruned(tid)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tid = trial.trial_id
        if tid in self._pruned:
            state = "pruned"
        elif self._stopping.is_set() and trial.last_result.get("done") is not True:
            state = "stopped"
        else:
            state = "completed"
        self._finish(tid, state, None)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._finish(trial.trial_id, "failed", _error_text(trial))

    def finish_open_trials(self) -> None:
        """Trials still open when the run ended (stop, Ctrl+C) are stopped."""
        for tid in list(self._started):
            self._finish(tid, "stopped", None)

    def _finish(self, tid: str, state: str, error: str | None) -> None:
        if tid not in self._started:
            return
        started = self._started.pop(tid)
        metrics = self._metrics.pop(tid, {})
        value = metrics.get(self._spec.metric)
        if value is not None and not math.isfinite(value) and state == "completed":
            state, error = "failed", f"metric {self._spec.metric!r} is {value}"
        self.counts[state] += 1
        if error and self.first_error is None:
            self.first_error = error.splitlines()[0]
        if state == "completed" and value is not None and math.isfinite(value):
            better = min if self._spec.mode == "min" else max
            self._best = value if self._best is None else better(self._best, value)
        self._rec.put(
            TrialFinished(
                self._study_id,
                self._numbers[tid],
                state,
                _now(),
                time.time() - started,
                metrics,
                value,
                error,
                self._nodes.pop(tid, None),
            )
        )
        self._show()

    def _show(self) -> None:
        if self._progress is not None:
            done = self._done_before + sum(self.counts.values())
            self._progress.update(done, len(self._started), self._best)


class StopOnRequest(tune.Stopper):
    """Ends the whole run when `tuner stop NAME` (or the recorder) asks for it."""

    def __init__(self, recorder: Recorder, stopping: threading.Event) -> None:
        self._recorder = recorder
        self._stopping = stopping

    def __getstate__(self) -> dict[str, Any]:
        return {}  # see RecordingCallback.__getstate__

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        if self._recorder.stop_requested.is_set():
            self._stopping.set()
        return self._stopping.is_set()


def _error_text(trial: Any) -> str:
    """The trial's exception as 'Type: message' followed by its traceback."""
    import ray.cloudpickle as pickle

    err: Any = None
    try:
        # Ray writes the error beside the trial first and syncs it to storage later.
        path = trial.pickled_error_file
        if path:
            with open(path, "rb") as f:
                err = pickle.load(f)
    except Exception:  # an unreadable error file must not stop the recording
        err = None
    if err is None:
        return "the trial failed without an error message (run with --verbose to see Ray's logs)"
    cause = getattr(err, "cause", None) or err
    summary = f"{type(cause).__name__}: {cause}".splitlines()[0]
    return _ANSI.sub("", f"{summary}\n\n{err}")


def _now() -> datetime:
    return datetime.now(UTC)


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

    Raises:
        SpecError: the trainer cannot be prepared (function not importable, metric
            never reported).
        StudyFailedError: no trial completed and at least one failed.
    """
    from tuner.trainers import prepare

    prepared = prepare(spec)  # fails fast on a bad function or metric
    _ray.ensure_ray(spec.resources.address, verbose=verbose)
    if prepared.start is not None:
        prepared.start()  # may set prepared.max_concurrent from the cluster's size
    try:
        return _run(study, spec, storage, history, prepared, progress)
    finally:
        if prepared.cleanup is not None:
            prepared.cleanup()


def _run(
    study: StudyRecord,
    spec: StudySpec,
    storage: Storage,
    history: Sequence[TrialRecord],
    prepared: Prepared,
    progress: bool,
) -> RunOutcome:
    from tuner.search import build_searcher
    from tuner.search._searchers import GridSearcher

    searcher = build_searcher(spec, history)
    finished = [t for t in history if t.state in ("completed", "pruned", "failed")]
    if isinstance(searcher, GridSearcher):
        remaining = searcher.remaining
        total = len(finished) + remaining
    else:
        remaining = max(0, spec.search.num_trials - len(finished))
        total = spec.search.num_trials
    storage.set_study_status(study.id, "running")
    if remaining == 0:
        return _end(storage, study, [], history, None, stopped=False)

    from tuner.schedulers import build_scheduler

    stopping = threading.Event()
    recorder = Recorder(storage, study.id)
    best_before = _best_value(history, spec.mode)
    bar = _Progress(study.name, total, spec.mode, spec.metric) if progress else None
    callback = RecordingCallback(
        recorder,
        spec,
        study.id,
        storage.next_trial_number(study.id),
        searcher,
        bar,
        stopping,
        len(finished),
        best_before,
        prepared.budget,
    )

    trainable: Any = prepared.trainable
    if prepared.shared:
        # Put in Ray's object store once (Ray is up, so this happens now); every trial
        # on a node reads the same copy, zero-copy. The driver then drops its own copy.
        trainable = tune.with_parameters(trainable, **prepared.shared)
        # The object store holds the shared data now; the driver's own copy would only
        # double the study's memory (a 2 GB dataset would cost 4 GB).
        prepared.shared.clear()
    trainable = tune.with_resources(
        trainable, prepared.resources or {"cpu": spec.resources.cpus_per_trial}
    )
    workdir = tempfile.mkdtemp(prefix="tuner-ray-")
    tuner_ = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=searcher,
            scheduler=build_scheduler(spec),
            num_samples=remaining,
            max_concurrent_trials=prepared.max_concurrent or spec.search.max_concurrent,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=f"tuner-{study.name}",
            storage_path=workdir,
            verbose=0,
            callbacks=[callback],
            stop=StopOnRequest(recorder, stopping),
            failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        ),
    )
    interrupted = False
    try:
        with _quiet_ray_logs():
            tuner_.fit()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        callback.finish_open_trials()
        if bar is not None:
            bar.close()
        recorder.close()
        shutil.rmtree(workdir, ignore_errors=True)
    if recorder.error is not None:
        storage.set_study_status(study.id, "failed")
        raise recorder.error
    stopped = interrupted or stopping.is_set()
    return _end(storage, study, [callback], history, callback.first_error, stopped=stopped)


def _end(
    storage: Storage,
    study: StudyRecord,
    callbacks: list[Any],
    history: Sequence[TrialRecord],
    first_error: str | None,
    *,
    stopped: bool,
) -> RunOutcome:
    counts = {"completed": 0, "pruned": 0, "failed": 0, "stopped": 0}
    for t in history:
        if t.state in counts:
            counts[t.state] += 1
    for cb in callbacks:
        for k, v in cb.counts.items():
            counts[k] += v
    if stopped:
        status = "stopped"
        storage.clear_stop_request(study.id)
    elif counts["completed"] + counts["pruned"] == 0 and counts["failed"] > 0:
        status = "failed"
    else:
        status = "completed"
    storage.set_study_status(study.id, status)
    if status == "failed":
        raise StudyFailedError(
            f"study {study.name!r} failed: all {counts['failed']} trials failed; "
            f"first error: {first_error or 'unknown'} (see `tuner show {study.name}`)"
        )
    return RunOutcome(status, counts, first_error)


def _best_value(history: Sequence[TrialRecord], mode: str) -> float | None:
    values = [
        t.value
        for t in history
        if t.state == "completed" and t.value is not None and math.isfinite(t.value)
    ]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)
