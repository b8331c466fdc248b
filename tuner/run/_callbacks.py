"""Ray Tune callbacks in the study's driver, one job each (the Syne Tune habit).

- :class:`RecordingCallback` translates Ray's trial events into calls on the
  :class:`~tuner.run._ledger.TrialLedger`, which decides how trials end, and turns its
  answers into storage events for the :class:`~tuner.run.Recorder`;
- :class:`ProgressCallback` shows the ledger's counts on a progress bar.

They are typed against two small protocols, not the classes behind them: an
:class:`EventSink` (the recorder) and a :class:`StopFlag` (the run's control).

Imported by the runner only after :func:`tuner._ray.ensure_ray` (it imports Ray Tune).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from ray import tune

from tuner._checkpoint import CHECKPOINT_KEY, MODEL_KEY
from tuner._errors import reorder_traceback_text
from tuner._report import ENDED_KEY, ERROR_KEY, KEYS_KEY, NODE_KEY, STEP_KEY
from tuner.run._ledger import FinishedTrial, TrialLedger
from tuner.run._trial_output import TrialOutputs
from tuner.storage import TrialFinished, TrialResult, TrialRetried, TrialStarted

if TYPE_CHECKING:
    from tuner.run._checkpoints import Checkpoints
    from tuner.run._continue import Continuations
    from tuner.run._recorder import Event
    from tuner.search._base import TunerSearcher
    from tuner.search._pbt import Population

__all__ = [
    "EventSink",
    "ProgressBar",
    "ProgressCallback",
    "RecordingCallback",
    "StopFlag",
]


class EventSink(Protocol):
    """Where storage events go (the recorder)."""

    def put(self, event: Event) -> None: ...


class StopFlag(Protocol):
    """The run's one stop flag (its control)."""

    @property
    def stopping(self) -> bool: ...

    def request(self, reason: str) -> None: ...


class _DriverOnly:
    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config for Tuner.restore, which tuner never uses (resume
        # goes through the database); the recorder's thread cannot be pickled.
        return {}


class RecordingCallback(_DriverOnly, tune.Callback):
    """Ray Tune trial events -> ledger calls -> storage events.

    A trial that failed in its own process sends its error as its last result
    (:data:`~tuner._report.ERROR_KEY`); Ray Tune sees an error only when the trial's
    worker process or node died (:meth:`on_trial_error`, after the retries).

    Args:
        sink: where storage events go.
        ledger: decides each trial's number and final state.
        study_id: the study being run.
        searcher: told when the ledger decides a trial was pruned.
        control: the run's stop flag (read; raised at ``limits.max_failed_trials``).
        study_name: the study's name, which a trial reads (:func:`tuner.current_trial`).
        checkpoints: the study's checkpoints and models (None: it has no artifacts store).
        continuations: trials of an earlier run that go on from their checkpoints
            (``tuner resume``), by Ray trial id, under their own numbers.
        population: Population Based Training's (pbt, pb2): which new trials start
            from a donor's checkpoint, and the donor's number (their ``parent``).
    """

    def __init__(
        self,
        sink: EventSink,
        ledger: TrialLedger,
        study_id: int,
        searcher: TunerSearcher,
        control: StopFlag,
        study_name: str = "",
        checkpoints: Checkpoints | None = None,
        continuations: Continuations | None = None,
        population: Population | None = None,
    ) -> None:
        self._rec = sink
        self._ledger = ledger
        self._study_id = study_id
        self._searcher = searcher
        self._control = control
        self.outputs = TrialOutputs(sink.put, study_id, study_name)
        self.checkpoints = checkpoints
        self._continuations = continuations
        self._population = population

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        tid = trial.trial_id
        going_on = self._continuations.take(tid) if self._continuations is not None else None
        if going_on is not None:  # an earlier run's trial, from its checkpoint
            number = self._ledger.start(tid, number=going_on.number, attempts=going_on.attempt)
            if number is None:
                return
            if self.checkpoints is not None:
                self.checkpoints.started(
                    tid,
                    number,
                    going_on.restore,
                    own=True,
                    size=going_on.bytes,
                    older=going_on.older,
                )
            self.outputs.retried(tid, number, going_on.attempt)
            self._rec.put(
                TrialRetried(
                    self._study_id,
                    number,
                    going_on.attempt,
                    going_on.reason,
                    keep_through=going_on.restore.step,
                )
            )
            return
        child = self._population.take(tid) if self._population is not None else None
        number = self._ledger.start(tid)
        if number is None:
            return
        if self.checkpoints is not None:
            self.checkpoints.started(tid, number, child.restore if child else None)
            if child is not None:
                self.checkpoints.unpin(child.restore.uri)  # the scheduler's, now the trial's
        self.outputs.started(tid, number)
        parent = child.parent if child is not None else None
        self._rec.put(
            TrialStarted(self._study_id, number, dict(trial.config), _now(), parent=parent)
        )

    def on_trial_result(
        self, iteration: int, trials: list, trial: Any, result: dict, **info: Any
    ) -> None:
        tid = trial.trial_id
        number = self._ledger.number(tid)
        if number is None:
            return
        self.outputs.result(tid, result)
        if self.checkpoints is not None:
            if CHECKPOINT_KEY in result:
                self.checkpoints.saved(tid, result[CHECKPOINT_KEY])
            if MODEL_KEY in result:
                self.checkpoints.saved(tid, result[MODEL_KEY], kind="model")
        if ERROR_KEY in result:
            self._failed(self._ledger.fail(tid, str(result[ERROR_KEY])))
            return
        if ENDED_KEY in result:
            return  # the mark of a trial that ended on its own carries no metrics
        metrics = {k: result[k] for k in result.get(KEYS_KEY, ()) if k in result}
        step = int(result.get(STEP_KEY, result.get("training_iteration", 0)))
        node = result.get(NODE_KEY) or result.get("hostname") or None
        self._rec.put(TrialResult(self._study_id, number, step, metrics, node))
        pruned = self._ledger.result(
            tid,
            metrics,
            iteration=int(result.get("training_iteration", 0)),
            done=bool(result.get("done")),
            stopping=self._control.stopping,
            node=node,
        )
        if pruned:
            self._searcher.note_pruned(tid)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.outputs.ended(trial.trial_id)
        # Not Ray's `done`: Ray marks done a trial whose function returned for any reason
        # and one a scheduler stopped; only tuner's mark says it ended on its own.
        finished = ENDED_KEY in (trial.last_result or {})
        self._write(self._ledger.complete(trial.trial_id, finished=finished))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial's worker died, and its retries (limits.max_retries) are spent."""
        self.outputs.ended(trial.trial_id)
        self._failed(self._ledger.fail(trial.trial_id, _error_text(trial)))

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        """The trial's worker died and Ray runs it again (limits.max_retries)."""
        error = _error_text(trial)  # read from Ray's error file once
        retried = self._ledger.retry(trial.trial_id, error)
        if retried is not None:
            number, attempt = retried
            # From its latest checkpoint, which its next attempt reads (tuner.get_checkpoint).
            point = (
                None if self.checkpoints is None else self.checkpoints.retry_point(trial.trial_id)
            )
            self.outputs.retried(trial.trial_id, number, attempt)
            self._rec.put(
                TrialRetried(
                    self._study_id, number, attempt, error.splitlines()[0], keep_through=point
                )
            )

    def _failed(self, ended: FinishedTrial | None) -> None:
        self._write(ended)
        if self._ledger.too_many_failures:
            self._control.request("limits.max_failed_trials")  # the study fails
        if self._ledger.fatal_error is not None:
            # The user's code: every trial would fail the same way (tuner.run._ledger.fatal).
            self._control.request("a mistake every trial would repeat")

    def finish_open_trials(self) -> None:
        """Trials still open when the run ended (stop, Ctrl+C) are stopped."""
        self.outputs.close()
        for ended in self._ledger.stop_open():
            self._write(ended)

    def _write(self, ended: FinishedTrial | None) -> None:
        if ended is None:
            return
        if self.checkpoints is not None:
            self.checkpoints.ended(ended.trial_id, ended.state, ended.metrics)
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
    # The user's frames first, Ray's and tuner's after them.
    return reorder_traceback_text(str(err), summary=summary)


def _now() -> datetime:
    return datetime.now(UTC)
