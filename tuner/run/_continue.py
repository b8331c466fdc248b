"""``tuner resume`` after a killed driver: the trials that were running and have a
checkpoint go on from it, under their own numbers.

:func:`continuations` finds them in storage; :class:`ContinuingSearcher` hands their
parameters to Ray Tune before any new suggestion, and :class:`Continuations` tells the
:class:`~tuner.run._callbacks.RecordingCallback`, by Ray trial id, which stored trial
each one is.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tuner._checkpoint import Restore
from tuner.search._base import TunerSearcher
from tuner.storage import ArtifactRecord, Storage, TrialRecord, TrialState

__all__ = [
    "Continuation",
    "Continuations",
    "ContinuingSearcher",
    "continuations",
    "continuations_of",
]

REASON = "the study's driver stopped; continued from its checkpoint at step {step}"


@dataclass(frozen=True)
class Continuation:
    """A running trial of an earlier run that goes on from its latest checkpoint."""

    number: int
    params: dict[str, Any]
    restore: Restore
    bytes: int
    attempt: int  # the attempt about to start
    # Its older checkpoints a killed driver had not deleted yet: (uri, bytes), to go
    # as the trial's other files go.
    older: tuple[tuple[str, int], ...] = ()

    @property
    def reason(self) -> str:
        return REASON.format(step=self.restore.step)


def continuations(
    trials: Sequence[TrialRecord],
    stored: Sequence[ArtifactRecord],
    steps: dict[int, list[int]],
) -> list[Continuation]:
    """The running trials in `trials` that have a checkpoint in `stored`, each from its
    latest; `steps`: each trial's recorded steps (the reports up to the checkpoint)."""
    latest: dict[int, ArtifactRecord] = {}
    for a in stored:
        if a.kind == "checkpoint" and (a.number not in latest or a.step > latest[a.number].step):
            latest[a.number] = a
    out = []
    for t in trials:
        ck = latest.get(t.number)
        if t.state != TrialState.RUNNING or ck is None:
            continue
        reports = sum(1 for s in steps.get(t.number, []) if s <= ck.step)
        restore = Restore(ck.uri, ck.step, reports)
        older = tuple(
            (a.uri, a.bytes)
            for a in stored
            if a.number == t.number and a.kind == "checkpoint" and a.uri != ck.uri
        )
        out.append(Continuation(t.number, dict(t.params), restore, ck.bytes, t.attempts + 1, older))
    return out


def continuations_of(storage: Storage, study_id: int) -> list[Continuation]:
    """The study's running trials (its driver was killed) that have a checkpoint."""
    running = storage.get_trials(study_id, [TrialState.RUNNING])
    if not running:
        return []
    stored = storage.artifacts(study_id)
    if not any(a.kind == "checkpoint" for a in stored):
        return []
    curves = storage.get_intermediate(study_id, [t.number for t in running])
    steps = {n: sorted({s for curve in c.values() for s, _ in curve}) for n, c in curves.items()}
    return continuations(running, stored, steps)


class Continuations:
    """Which Ray trial is which continued trial (see the module)."""

    def __init__(self, pending: Sequence[Continuation]) -> None:
        self.pending: deque[Continuation] = deque(pending)
        self._by_trial: dict[str, Continuation] = {}

    def assign(self, trial_id: str) -> Continuation | None:
        """The searcher is asked for trial `trial_id`: the next continuation, if any."""
        if not self.pending:
            return None
        going_on = self.pending.popleft()
        self._by_trial[trial_id] = going_on
        return going_on

    def take(self, trial_id: str) -> Continuation | None:
        """Ray starts trial `trial_id`: the continuation it runs, once."""
        return self._by_trial.pop(trial_id, None)


class ContinuingSearcher(TunerSearcher):
    """The study's searcher, after the continued trials: their parameters go first, and
    what they report is not the searcher's (it suggested other trials)."""

    def __init__(self, inner: TunerSearcher, going_on: Continuations) -> None:
        super().__init__(metric=inner.metric, mode=inner.mode)
        self.inner = inner
        self._going_on = going_on
        self._mine: set[str] = set()

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        return self.inner.set_search_properties(metric, mode, config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        going_on = self._going_on.assign(trial_id)
        if going_on is not None:
            self._mine.add(trial_id)
            return dict(going_on.params)
        return self.inner.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self._mine:
            self.inner.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id in self._mine:
            self._mine.discard(trial_id)
            return
        self.inner.on_trial_complete(trial_id, result, error)

    def note_pruned(self, trial_id: str) -> None:
        if trial_id not in self._mine:
            self.inner.note_pruned(trial_id)

    @property
    def remaining(self) -> int | None:
        own = self.inner.remaining
        return None if own is None else own + len(self._going_on.pending)

    @property
    def metric(self) -> str | None:  # type: ignore[override]
        return self.inner.metric

    @property
    def mode(self) -> str | None:  # type: ignore[override]
        return self.inner.mode
