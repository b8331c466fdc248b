"""Ray Tune callbacks in the study's driver, one job each (the Syne Tune habit).

- :class:`RecordingCallback` translates Ray's trial events into calls on the
  :class:`~tuner.run._ledger.TrialLedger`, which decides how trials end, and turns its
  answers into storage events for the :class:`~tuner.run.Recorder`;
- :class:`ProgressCallback` shows the ledger's counts on a progress bar;
- :class:`StopOnRequest` ends the run when `tuner stop NAME`, a signal or
  ``limits.study_timeout_s`` asks for it;
- :class:`TrialTimeout` fails and kills trials past ``limits.trial_timeout_s``.

Imported by the runner only after :func:`tuner._ray.ensure_ray` (it imports Ray Tune).
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ray import tune

from tuner._report import ENDED_KEY, KEYS_KEY, NODE_KEY, STEP_KEY
from tuner.run._ledger import FinishedTrial, TrialLedger
from tuner.storage import TrialFinished, TrialResult, TrialRetried, TrialStarted

if TYPE_CHECKING:
    from tuner.run import Recorder
    from tuner.search._base import TunerSearcher

__all__ = [
    "ProgressBar",
    "ProgressCallback",
    "RecordingCallback",
    "TrialTimeout",
]

_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours its tracebacks


class _DriverOnly:
    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config for Tuner.restore, which tuner never uses (resume
        # goes through the database); the recorder's thread cannot be pickled.
        return {}


class RecordingCallback(_DriverOnly, tune.Callback):
    """Ray Tune trial events -> ledger calls -> storage events.

    Args:
        recorder: where storage events go.
        ledger: decides each trial's number and final state.
        study_id: the study being run.
        searcher: told when the ledger decides a trial was pruned.
        stopping: set while the whole study is being stopped.
    """

    def __init__(
        self,
        recorder: Recorder,
        ledger: TrialLedger,
        study_id: int,
        searcher: TunerSearcher,
        stopping: threading.Event,
    ) -> None:
        self._rec = recorder
        self._ledger = ledger
        self._study_id = study_id
        self._searcher = searcher
        self._stopping = stopping

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        number = self._ledger.start(trial.trial_id)
        if number is not None:
            self._rec.put(TrialStarted(self._study_id, number, dict(trial.config), _now()))

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        tid = trial.trial_id
        number = self._ledger.number(tid)
        if number is None or ENDED_KEY in result:
            return  # the mark of a trial that ended on its own carries no metrics
        metrics = {k: result[k] for k in result.get(KEYS_KEY, ()) if k in result}
        step = int(result.get(STEP_KEY, result.get("training_iteration", 0)))
        self._rec.put(TrialResult(self._study_id, number, step, metrics))
        pruned = self._ledger.result(
            tid,
            metrics,
            iteration=int(result.get("training_iteration", 0)),
            done=bool(result.get("done")),
            stopping=self._stopping.is_set(),
            node=result.get(NODE_KEY) or result.get("hostname", ""),
        )
        if pruned:
            self._searcher.note_pruned(tid)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # Not Ray's `done`: Ray marks done a trial whose function returned for any reason
        # and one a scheduler stopped; only tuner's mark says it ended on its own.
        finished = ENDED_KEY in (trial.last_result or {})
        self._write(self._ledger.complete(trial.trial_id, finished=finished))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._write(self._ledger.fail(trial.trial_id, _error_text(trial)))
        if self._ledger.too_many_failures:
            self._stopping.set()  # limits.max_failed_trials: the study fails
        if self._ledger.fatal_error is not None:
            self._stopping.set()  # the user's code: every trial would fail the same way

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial's worker died and Ray runs it again (limits.max_retries)."""
        retried = self._ledger.retry(trial.trial_id, _error_text(trial))
        if retried is not None:
            number, attempt = retried
            error = _error_text(trial).splitlines()[0]
            self._rec.put(TrialRetried(self._study_id, number, attempt, error))

    def time_out(self, trial: Any, timeout_s: float) -> None:
        """Record `trial` as failed for running past `timeout_s`."""
        self._write(self._ledger.time_out(trial.trial_id, timeout_s))
        if self._ledger.too_many_failures:
            self._stopping.set()

    def finish_open_trials(self) -> None:
        """Trials still open when the run ended (stop, Ctrl+C) are stopped."""
        for ended in self._ledger.stop_open():
            self._write(ended)

    def _write(self, ended: FinishedTrial | None) -> None:
        if ended is None:
            return
        self._rec.put(
            TrialFinished(
                self._study_id,
                ended.number,
                ended.state,
                _now(),
                ended.duration_s,
                ended.metrics,
                ended.value,
                ended.error,
                ended.node,
            )
        )


class ProgressBar:
    """A rich progress bar on stderr: trials done / total, running, best so far."""

    def __init__(self, name: str, total: int, metric: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._metric = metric
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

    def update(self, done: int, running: int, best: str) -> None:
        """`best`: what the ledger says is best so far (``loss=0.12``, ``pareto 5``)."""
        self._progress.update(self._task, completed=done, running=running, best=best)

    def close(self) -> None:
        self._progress.stop()


class ProgressCallback(_DriverOnly, tune.Callback):
    """Shows the ledger's counts after every trial start and end.

    Listed after the :class:`RecordingCallback`, so the ledger has the event already.
    """

    def __init__(self, ledger: TrialLedger, bar: ProgressBar) -> None:
        self._ledger = ledger
        self._bar = bar

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.show()

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.show()

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.show()

    def show(self) -> None:
        self._bar.update(self._ledger.done, self._ledger.running, self._ledger.best_text)

    def close(self) -> None:
        self.show()
        self._bar.close()


class TrialTimeout(_DriverOnly, tune.Callback):
    """Fails and kills every trial whose attempt runs past `timeout_s`.

    Checked at each step of Ray Tune's loop (several times a second), so a hung
    objective, which never reports, is caught too.
    """

    def __init__(self, recording: RecordingCallback, ledger: TrialLedger, timeout_s: float):
        self._recording = recording
        self._ledger = ledger
        self._timeout = timeout_s
        self._next_check = 0.0

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + 0.2
        overdue = set(self._ledger.overdue(self._timeout))
        if not overdue:
            return
        from tuner.run._retry import kill_trial

        for trial in trials:
            # A trial waiting for its retry's actor is timed when it runs again.
            if trial.trial_id in overdue and trial.status == trial.RUNNING:
                self._recording.time_out(trial, self._timeout)
                kill_trial(trial)


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
