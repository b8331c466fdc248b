"""The trial ledger: the rules that decide how a study's trials end, without Ray.

The Ray callback in :mod:`tuner.run._callbacks` only translates Ray Tune's events into calls
on a :class:`TrialLedger` and the ledger's answers into storage events. Every decision
lives here, in plain Python, so it is unit-tested without a Ray run:

- a trial whose last result is ``done`` before it reaches its budget, while the study
  is not stopping, was cut by the scheduler: it is **pruned**;
- a trial that ends short of its budget without having ended on its own (its function
  returned, or the plateau rule stopped it: the trial marks its last result so) was
  stopped from outside (`tuner stop`, Ctrl+C, SIGTERM, a worker interrupted): it is
  **stopped**, whether or not the driver has yet noticed the study stopping (a signal
  reaches Ray's workers as well as the driver, in either order); so is every trial
  still open when the run ends;
- a trial that raised is **failed**; when its error is one every trial would repeat
  (:func:`fatal`: the study's metric never reported), the study stops at once;
  so is one that ends with its study metric NaN
  or infinite, and one that ran past ``limits.trial_timeout_s`` (its process says
  "timed out after N s");
- a trial whose worker process or node died runs again (Ray retries it up to
  ``limits.max_retries`` times): it keeps its number, and each dead attempt's error is
  kept (:meth:`TrialLedger.retry`);
- a trial that ends at its budget, or short of it having ended on its own, is
  **completed**: never one cut short from outside.

The ledger also keeps the counts per state and the best completed, feasible value (with
constraints, a trial whose final metrics break one is never best), both including the
trials of earlier runs (resume), and decides the study's final status: failed when
every trial failed, or when ``limits.max_failed_trials`` trials of this run failed.

With several objectives a trial completes only with every objective's value finite
(else it fails, naming the metric), and the ledger keeps the Pareto front of the
completed, feasible trials instead of one best value (:attr:`TrialLedger.front`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from tuner import _pareto
from tuner.storage import StudyState, TrialState

__all__ = ["FinishedTrial", "PastTrial", "TrialLedger", "fatal"]

# The states a trial can end in, in the order they are reported.
FINAL_STATES = (TrialState.COMPLETED, TrialState.PRUNED, TrialState.FAILED, TrialState.STOPPED)


class PastTrial(Protocol):
    """What the ledger needs to know of a trial finished in an earlier run."""

    @property
    def state(self) -> str: ...
    @property
    def value(self) -> float | None: ...


def fatal(error: str) -> bool:
    """Whether a trial's error is a mistake in the user's code that every trial would
    repeat, so the study stops at the first one instead of burning every trial: a
    :class:`~tuner.exceptions.ReportError` (the study's metric missing from a report, a
    value that is not a number, a function returning something else), except a NaN
    metric, which depends on the trial's parameters.

    `error` is the trial's error text, ``Type: message`` on its first line (as
    ``RecordingCallback`` records it; where the trial's exception reaches the driver
    by another road, the same text goes here).
    """
    first = error.splitlines()[0] if error else ""
    return first.startswith("ReportError: ") and " is NaN " not in first


def improves(value: float | None, best: float | None, mode: str | None) -> bool:
    """Whether a trial's `value` beats its `best` so far (None: no best yet) for `mode`
    ("min", else max); a missing or non-finite value never does. The one rule for
    ``early_stopping.trial_value: best``, here and in the searcher."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or (value < best if mode == "min" else value > best)


@dataclass(frozen=True)
class FinishedTrial:
    """How one trial ended: what the recorder writes as a ``TrialFinished`` event."""

    trial_id: str
    number: int
    state: TrialState
    duration_s: float
    metrics: dict[str, float]
    value: float | None
    error: str | None
    node: str | None


@dataclass
class _Open:
    number: int
    started: float
    metrics: dict[str, float] = field(default_factory=dict)
    node: str | None = None
    pruned: bool = False
    best: dict[str, float] | None = None  # the metrics of its best report (keep_best)
    iterations: int = 0  # reports of its current attempt
    attempts: int = 1


class TrialLedger:
    """The trials of one run of a study, and the rules that decide their final state.

    Not thread-safe: Ray Tune calls its callbacks from the driver's one loop.

    Args:
        metric: the study's metric (what "best" and a NaN failure are judged on).
        mode: ``min`` or ``max``.
        budget: the reports a trial makes when it runs to its end.
        history: trials finished in earlier runs; they count in :attr:`counts`,
            :attr:`done` and :attr:`best`.
        first_number: the number the first trial of this run gets.
        max_failed_trials: failed trials of this run that fail the study; None: no
            limit.
        clock: seconds, for durations (a test passes its own).
        objectives: ``(metric, mode)`` of each objective where there are several
            (the first is `metric`, `mode`); None: one objective.
        feasible: whether final metrics satisfy the study's constraints; None: no
            constraints.
        keep_best: a trial's value and metrics are those of its best report, not its
            last (``early_stopping.trial_value: best``; one objective).
    """

    def __init__(
        self,
        metric: str,
        mode: Literal["min", "max"],
        budget: int,
        *,
        history: Iterable[PastTrial] = (),
        first_number: int = 0,
        max_failed_trials: int | None = None,
        clock: Callable[[], float] = time.time,
        objectives: Sequence[tuple[str, str]] | None = None,
        feasible: Callable[[Mapping[str, float]], bool] | None = None,
        keep_best: bool = False,
    ) -> None:
        self._metric = metric
        self._keep_best = keep_best
        self._mode = mode
        self._objectives = list(objectives) if objectives and len(objectives) > 1 else None
        self._feasible = feasible
        self.front: list[tuple[float, ...]] = []
        self._budget = budget
        self._next = first_number
        self._clock = clock
        self._open: dict[str, _Open] = {}
        self._seen: set[str] = set()
        self.counts: dict[TrialState, int] = dict.fromkeys(FINAL_STATES, 0)
        self.first_error: str | None = None
        self.max_failed_trials = max_failed_trials
        self.failed_in_run = 0
        self.best: float | None = None
        # The first trial error that every trial would repeat: (number, first line).
        self.fatal_error: tuple[int, str] | None = None
        for past in history:
            if past.state in self.counts:
                self.counts[TrialState(past.state)] += 1
            if past.state == TrialState.COMPLETED and getattr(past, "feasible", True) is not False:
                self._consider(past.value, getattr(past, "values", None))

    # -- what the run asks ---------------------------------------------------------

    @property
    def done(self) -> int:
        """Trials that ended, in this run and earlier ones."""
        return sum(self.counts.values())

    @property
    def running(self) -> int:
        """Trials started and not yet ended."""
        return len(self._open)

    @property
    def best_text(self) -> str:
        """Best so far, for the progress bar: ``loss=0.12``, or the Pareto front's size."""
        if self._objectives is not None:
            return f"pareto {len(self.front)}" if self.front else "-"
        return "-" if self.best is None else f"{self._metric}={self.best:.6g}"

    def number(self, trial_id: str) -> int | None:
        """The study's number for a trial still open, or None."""
        open_ = self._open.get(trial_id)
        return None if open_ is None else open_.number

    @property
    def too_many_failures(self) -> bool:
        """Whether ``max_failed_trials`` trials of this run have failed."""
        return self.max_failed_trials is not None and self.failed_in_run >= self.max_failed_trials

    def study_state(self, *, stopped: bool) -> StudyState:
        """The study's status once the run is over: failed if too many trials of this
        run failed; stopped if asked to; failed if trials failed and none completed or
        was pruned; completed otherwise."""
        if self.too_many_failures:
            return StudyState.FAILED
        if stopped:
            return StudyState.STOPPED
        c = self.counts
        if c[TrialState.COMPLETED] + c[TrialState.PRUNED] == 0 and c[TrialState.FAILED] > 0:
            return StudyState.FAILED
        return StudyState.COMPLETED

    # -- what happens to trials ----------------------------------------------------

    def start(self, trial_id: str, *, number: int | None = None, attempts: int = 1) -> int | None:
        """A trial started; returns its number, or None if it started before (a
        scheduler paused and resumed it). An earlier run's trial that goes on from its
        checkpoint (``tuner resume``) keeps its `number`, at attempt `attempts`."""
        if trial_id in self._seen:
            return None
        self._seen.add(trial_id)
        if number is None:
            number = self._next
            self._next += 1
        self._open[trial_id] = _Open(number, self._clock())
        self._open[trial_id].attempts = attempts
        return number

    def retry(self, trial_id: str, error: str) -> tuple[int, int] | None:
        """A trial's worker died and Ray runs it again, with the same config.

        Returns:
            The trial's number and the attempt about to start (2 for the first retry),
            or None for a trial the ledger does not hold open. The dead attempt's
            metrics are dropped: the new attempt reports from its start.
        """
        open_ = self._open.get(trial_id)
        if open_ is None:
            return None
        open_.attempts += 1
        open_.metrics.clear()
        open_.iterations = 0
        open_.pruned = False
        return open_.number, open_.attempts

    def result(
        self,
        trial_id: str,
        metrics: Mapping[str, float],
        *,
        iteration: int,
        done: bool,
        stopping: bool,
        node: str | None = None,
    ) -> bool:
        """A trial reported `metrics` at its `iteration`-th report.

        Args:
            done: Ray marked the result as the trial's last. A scheduler's STOP marks
                the result done before callbacks see it; a trial that ends on its own
                reports done only through a duplicate they never see.
            stopping: the whole study is being stopped.

        Returns:
            True when this result makes the trial pruned (the searcher is told).
        """
        open_ = self._open.get(trial_id)
        if open_ is None:
            return False
        open_.metrics.update(metrics)
        open_.iterations = max(open_.iterations, iteration)
        best = None if open_.best is None else open_.best[self._metric]
        if self._keep_best and improves(metrics.get(self._metric), best, self._mode):
            open_.best = dict(open_.metrics)
        if node:  # a result that names no node keeps the one known
            open_.node = node
        if done and not stopping and iteration < self._budget and not open_.pruned:
            open_.pruned = True
            return True
        return False

    def complete(self, trial_id: str, *, finished: bool) -> FinishedTrial | None:
        """Ray ended a trial without an error: its function returned, or a scheduler,
        a stop or an interrupt ended it.

        Args:
            finished: the trial's function ended on its own (it returned, or the
                plateau rule ended it), as its last result marks
                (``tuner._report.ENDED_KEY``).

        Returns:
            How it ended (pruned if a scheduler cut it; completed if it reached its
            budget or `finished`; else stopped), or None for a trial the ledger does
            not hold open.
        """
        open_ = self._open.get(trial_id)
        if open_ is None:
            return None
        if open_.pruned:
            state = TrialState.PRUNED
        elif finished or open_.iterations >= self._budget:
            state = TrialState.COMPLETED
        else:
            state = TrialState.STOPPED
        return self._finish(trial_id, state, None)

    def fail(self, trial_id: str, error: str) -> FinishedTrial | None:
        """A trial raised `error` (its first line is the study's first error). A
        :func:`fatal` error is kept as :attr:`fatal_error`: the study stops."""
        ended = self._finish(trial_id, TrialState.FAILED, error)
        if ended is not None and self.fatal_error is None and fatal(error):
            self.fatal_error = (ended.number, error.splitlines()[0])
        return ended

    def stop_open(self) -> list[FinishedTrial]:
        """The run ended (stop, Ctrl+C): every trial still open is stopped."""
        ended = [self._finish(tid, TrialState.STOPPED, None) for tid in list(self._open)]
        return [e for e in ended if e is not None]

    # -- rules ---------------------------------------------------------------------

    def _finish(self, trial_id: str, state: TrialState, error: str | None) -> FinishedTrial | None:
        open_ = self._open.pop(trial_id, None)
        if open_ is None:
            return None
        if self._keep_best and open_.best is not None:
            open_.metrics = open_.best
        value = open_.metrics.get(self._metric)
        values: tuple[float, ...] | None = None
        if state == TrialState.COMPLETED and value is not None and not math.isfinite(value):
            state, error = TrialState.FAILED, f"metric {self._metric!r} is {value}"
        if state == TrialState.COMPLETED and self._objectives is not None:
            state, error, values = self._objective_values(open_.metrics)
        self.counts[state] += 1
        if state == TrialState.FAILED:
            self.failed_in_run += 1
        if error and self.first_error is None:
            self.first_error = error.splitlines()[0]
        if state == TrialState.COMPLETED and (
            self._feasible is None or self._feasible(open_.metrics)
        ):
            self._consider(value, values)
        return FinishedTrial(
            trial_id,
            open_.number,
            state,
            self._clock() - open_.started,
            open_.metrics,
            value,
            error,
            open_.node,
        )

    def _objective_values(
        self, metrics: Mapping[str, float]
    ) -> tuple[TrialState, str | None, tuple[float, ...] | None]:
        assert self._objectives is not None
        for name, _ in self._objectives:
            v = metrics.get(name)
            if v is None:
                return TrialState.FAILED, f"objective {name!r} was never reported", None
            if not math.isfinite(v):
                return TrialState.FAILED, f"metric {name!r} is {v}", None
        return TrialState.COMPLETED, None, tuple(metrics[n] for n, _ in self._objectives)

    def _consider(self, value: float | None, values: Sequence[float] | None = None) -> None:
        if self._objectives is not None:
            if values is not None and all(math.isfinite(v) for v in values):
                self._add_to_front(tuple(values))
            return
        if value is None or not math.isfinite(value):
            return
        better = min if self._mode == "min" else max
        self.best = value if self.best is None else better(self.best, value)

    def _add_to_front(self, values: tuple[float, ...]) -> None:
        assert self._objectives is not None
        # A trial dominated by (or equal to) one of the front leaves it as it is.
        modes = [mode for _, mode in self._objectives]
        self.front = _pareto.add_to_front(self.front, values, modes)
