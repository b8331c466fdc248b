"""The plain, immutable values the storage reads and writes.

Records (:class:`StudyRecord`, :class:`StudySummary`, :class:`TrialRecord`) are what the
storage returns; events (:class:`TrialStarted`, :class:`TrialResult`,
:class:`TrialRetried`, :class:`TrialFinished`, :class:`TrialOutput`) are what the study's driver hands to :meth:`Storage.write`.
None of them knows about SQLAlchemy, so the runner, the CLI and the dashboard can use
them without touching the database layer.

Every ``datetime`` here is timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

__all__ = [
    "STUDY_STATES",
    "TERMINAL_STUDY_STATES",
    "TERMINAL_TRIAL_STATES",
    "TRIAL_STATES",
    "StudyRecord",
    "StudyState",
    "StudySummary",
    "TrialFinished",
    "TrialImport",
    "TrialOutput",
    "TrialOutputRecord",
    "TrialRecord",
    "TrialResult",
    "TrialRetried",
    "TrialStarted",
    "TrialState",
]


class TrialState(StrEnum):
    """The state of a trial. Stored as its string value; ``TrialState("pruned") ==
    "pruned"``, so records read back compare equal to plain strings too."""

    RUNNING = "running"
    COMPLETED = "completed"
    PRUNED = "pruned"  # an early-stopping scheduler cut it before its budget
    FAILED = "failed"  # the objective raised, reported NaN, or its worker died
    STOPPED = "stopped"  # the study was stopped (tuner stop, a signal) while it ran

    @property
    def is_finished(self) -> bool:
        return self is not TrialState.RUNNING


class StudyState(StrEnum):
    """The status of a study, stored as its string value."""

    CREATED = "created"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"

    @property
    def is_finished(self) -> bool:
        return self in (StudyState.COMPLETED, StudyState.FAILED, StudyState.STOPPED)


TRIAL_STATES: Final = tuple(TrialState)
"""Every state a trial can be in; all but ``running`` are final."""

TERMINAL_TRIAL_STATES: Final = tuple(s for s in TrialState if s.is_finished)

STUDY_STATES: Final = tuple(StudyState)
"""Every status a study can have."""

TERMINAL_STUDY_STATES: Final = tuple(s for s in StudyState if s.is_finished)


@dataclass(frozen=True)
class StudyRecord:
    """One study as stored.

    Attributes:
        id: the storage's key for the study.
        name: unique within the storage.
        status: the study's :class:`StudyState`.
        metric: the metric that search and early stopping use.
        mode: ``"min"`` or ``"max"``.
        algorithm: the search algorithm's name.
        scheduler: the early-stopping scheduler's name.
        num_trials: the trial budget, or None where the algorithm sets it (grid).
        spec: the validated study spec, as JSON-able data.
        created_at: when the study was created.
        finished_at: when the study reached a terminal status, else None.
        stop_requested: whether another process asked the driver to stop.
        heartbeat_at: the driver's last sign of life, else None.
    """

    id: int
    name: str
    status: StudyState
    metric: str
    mode: str
    algorithm: str
    scheduler: str
    num_trials: int | None
    spec: dict[str, Any]
    created_at: datetime
    finished_at: datetime | None
    stop_requested: bool
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class StudySummary:
    """A study with its trial counts and best value, as listed by ``tuner list``.

    Attributes:
        study: the study.
        trial_counts: :class:`TrialState` -> number of trials; every state is present
            (0 where there is none). Plain strings look up too (``counts["pruned"]``).
        best_value: the best ``value`` among completed trials per the study's mode,
            or None when no completed trial has a value.
    """

    study: StudyRecord
    trial_counts: dict[TrialState, int]
    best_value: float | None


@dataclass(frozen=True)
class TrialRecord:
    """One trial as stored.

    Attributes:
        study_id: the study's id.
        number: 0, 1, 2, ... within the study.
        state: the trial's :class:`TrialState`.
        params: the active parameters only, each with its original type.
        metrics: the last reported value of each metric.
        value: the study metric's final value (what "best" is judged on), or None.
        node: where the trial ran, if known.
        started_at: when the trial started.
        finished_at: when the trial ended, or None while it runs.
        duration_s: how long the trial ran, if known.
        error: the error text of a failed trial.
        steps: how many intermediate results were recorded (of its last attempt).
        attempts: how many times the trial ran: 1, plus one for each retry after its
            worker process or node died.
        attempt_errors: the error of each attempt that died, oldest first.
        values: every objective's final value, in the order of the spec's
            ``objectives`` (one-objective study: ``(value,)``), or None where one was
            not reported or the trial has not finished.
        feasible: whether every constraint held for its final metrics (True for a
            study without constraints); None while the trial runs.
        constraint_values: each constrained metric's final value (None: never reported).
    """

    study_id: int
    number: int
    state: TrialState
    params: dict[str, Any]
    metrics: dict[str, float]
    value: float | None
    node: str | None
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    error: str | None
    steps: int
    attempts: int = 1
    attempt_errors: tuple[str, ...] = ()
    values: tuple[float, ...] | None = None
    feasible: bool | None = None
    constraint_values: dict[str, float | None] = field(default_factory=dict)
    parent: int | None = None


@dataclass(frozen=True)
class TrialStarted:
    """A trial began with these (active) parameters; `parent`: the number of the trial
    whose checkpoint it started from (Population Based Training), else None."""

    study_id: int
    number: int
    params: dict[str, Any]
    started_at: datetime
    node: str | None = None
    parent: int | None = None


@dataclass(frozen=True)
class TrialResult:
    """A trial reported intermediate metric values at a step, from ``node`` (where it
    runs, if known: written while the trial runs, so a trial that never finishes in
    this driver still says where it ran)."""

    study_id: int
    number: int
    step: int
    metrics: dict[str, float]
    node: str | None = None


@dataclass(frozen=True)
class TrialRetried:
    """A running trial's worker died and the trial runs again: attempt ``attempt``
    (2 for the first retry) starts with the same number and params. The results of the
    attempt that died are dropped, so that none is counted twice."""

    study_id: int
    number: int
    attempt: int
    error: str
    # The step of the checkpoint the new attempt starts from: results up to it stay,
    # later ones are dropped (the new attempt reports them again). None: from step 0.
    keep_through: int | None = None


@dataclass(frozen=True)
class TrialFinished:
    """A trial ended in a final state: a :class:`TrialState` other than ``RUNNING``
    (or its string value)."""

    study_id: int
    number: int
    state: TrialState | str
    finished_at: datetime
    duration_s: float | None
    metrics: dict[str, float]
    value: float | None
    error: str | None = None
    node: str | None = None


@dataclass(frozen=True)
class TrialOutput:
    """A trial wrote `text` to its stdout or stderr during attempt `attempt` (1, or 2
    for the first retry): appended to what the attempt wrote before, of which the
    storage keeps the last :data:`tuner._output.OUTPUT_LIMIT` bytes. Output is not an
    outcome: it may arrive after the trial finished (what it wrote after its last
    report)."""

    study_id: int
    number: int
    attempt: int
    text: str


@dataclass(frozen=True)
class ArtifactSaved:
    """A trial stored a checkpoint or its model (`kind`) of `step` at `uri`, `bytes`
    long, in the study's artifacts store. Taken for a finished trial too (its model
    is decided as it ends)."""

    study_id: int
    number: int
    step: int
    kind: str  # "checkpoint" or "model"
    uri: str
    bytes: int


@dataclass(frozen=True)
class ArtifactDeleted:
    """The files at `uri` were deleted from the artifacts store (``artifacts.keep``)."""

    study_id: int
    number: int
    uri: str


@dataclass(frozen=True)
class ArtifactRecord:
    """A checkpoint or model of a trial, as stored.

    Attributes:
        number: the trial's number.
        step: the step it was saved at.
        kind: "checkpoint" or "model".
        uri: where it lies (a folder in the artifacts store).
        bytes: its size.
        created_at: when it was recorded.
    """

    number: int
    step: int
    kind: str
    uri: str
    bytes: int
    created_at: datetime


ARTIFACT_KINDS = ("checkpoint", "model")


@dataclass(frozen=True)
class TrialOutputRecord:
    """What one attempt of a trial wrote to stdout and stderr, as stored.

    Attributes:
        number: the trial's number.
        attempt: 1, plus one for each retry.
        text: its output, the last :data:`tuner._output.OUTPUT_LIMIT` bytes of it.
        truncated: whether earlier output was dropped to keep it within that limit.
    """

    number: int
    attempt: int
    text: str
    truncated: bool


@dataclass(frozen=True)
class TrialImport:
    """A finished trial with its whole history, for :meth:`Storage.import_trials`.

    Attributes:
        number: the trial's number in the study (unique within it).
        params: the active parameters.
        state: a final :class:`TrialState` (not ``RUNNING``), or its string value.
        started_at: when the trial started (timezone-aware).
        finished_at: when it ended (timezone-aware).
        duration_s: how long it ran, if known.
        metrics: final metric values; they win over the curves' last values.
        value: the study metric's final value, or None.
        curves: metric -> ``[(step, value), ...]`` in the order reported: the
            intermediate results. ``steps`` becomes the number of distinct steps.
        error: the error text of a failed trial.
        node: where the trial ran.
    """

    number: int
    params: Mapping[str, Any]
    state: TrialState | str
    started_at: datetime
    finished_at: datetime
    duration_s: float | None
    metrics: Mapping[str, float]
    value: float | None
    curves: Mapping[str, Sequence[tuple[int, float]]] = field(default_factory=dict)
    error: str | None = None
    node: str | None = None
