"""`tuner.report`, and how a trial runs inside its Ray Tune trainable.

Every trainer runs its trial through :func:`run_trial`, in the trial's own process. It
decides what Ray Tune sees of the trial's end:

- the trial's function returns (or the plateau rule ends it): the trial ends;
- the function raises (the user's objective, a bad report, a diverging model): the
  error is caught here and sent as the trial's last result, under :data:`ERROR_KEY`;
  the trial then ends, and the driver records it as failed. Ray Tune never sees the
  exception, so its ``FailureConfig(max_failures)`` retries only what it alone sees: a
  trial whose worker process or node died (:class:`~tuner.run._retry.WorkerDied`, raised
  by a data-parallel trial whose worker group died, is let through for that reason);
- ``limits.trial_timeout_s`` passes: the trial is sent as failed, "timed out after N s",
  and ends. The function runs in a thread of its own for this, so a hung objective,
  which never returns, cannot keep the trial's process from the next trial: it is left
  behind, and its next ``tuner.report`` ends it.
"""

from __future__ import annotations

import contextvars
import math
import numbers
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tuner import _output
from tuner._checkpoint import CHECKPOINT_KEY, MODEL_KEY, Restore, fetch, read_restore, save
from tuner.exceptions import ReportError

# Keys tuner adds to each Ray Tune result beside the user's metrics.
STEP_KEY = "_tuner_step"
KEYS_KEY = "_tuner_keys"
NODE_KEY = "_tuner_node"
# The last result of a trial whose function ended on its own: "returned" or "plateau"
# (early_stopping.patience). Without it, a trial that did not reach its budget was
# stopped from outside (a scheduler, `tuner stop`, Ctrl+C) and never counts as completed.
ENDED_KEY = "_tuner_ended"
# The trial failed: its error text ("Type: message" and the traceback). Only in the
# trial's last result, which carries none of the user's metrics.
ERROR_KEY = "_tuner_error"


class Cancelled(BaseException):
    """Raised by :func:`report` in a trial that already ended (it ran past
    ``limits.trial_timeout_s``): unwinds the left-behind function. A BaseException, so
    that an objective's ``except Exception`` does not swallow it."""


class Plateau(BaseException):
    """Raised by :func:`report` when the trial's metric has stopped improving
    (``early_stopping.patience``): it unwinds the trial's function to :func:`trial`,
    which ends it, and the trial completes. A BaseException, so that an objective's
    ``except Exception`` does not swallow it."""


@dataclass(frozen=True)
class PlateauRule:
    """``early_stopping.patience``: stop after `patience` reports without an
    improvement of more than `min_delta`."""

    patience: int
    min_delta: float
    mode: str  # "min" or "max"


def plateau_rule(spec: Any) -> PlateauRule | None:
    """The spec's plateau rule (None: it has no ``early_stopping.patience``)."""
    es = spec.early_stopping
    if es.patience is None:
        return None
    return PlateauRule(es.patience, es.min_delta, spec.mode)


@dataclass(frozen=True)
class TrialRules:
    """What a trial's process needs to know of its study, made once in the driver by
    :func:`rules` and shipped with the trial function.

    Attributes:
        metric: the study's metric, required in every report.
        also: the other objectives' metrics (several objectives), required too.
        plateau: ``early_stopping.patience`` (None: none).
        timeout_s: ``limits.trial_timeout_s`` (None: none).
        store: the study's artifacts store (an ``ArtifactStore``), where checkpoints go.
    """

    metric: str
    also: tuple[str, ...] = ()
    plateau: PlateauRule | None = None
    timeout_s: float | None = None
    store: Any = None


def rules(spec: Any) -> TrialRules:
    """The :class:`TrialRules` of a study spec (its ``artifacts.store`` resolved by the
    driver: a spec without one saves no checkpoint)."""
    store = None
    if spec.artifacts.store is not None:
        from tuner.artifacts import ArtifactStore

        store = ArtifactStore(spec.artifacts.store)
    return TrialRules(
        spec.metric,
        tuple(spec.objective_metrics[1:]),
        plateau_rule(spec),
        spec.limits.trial_timeout_s,
        store,
    )


@dataclass
class TrialContext:
    """What `report` needs to know of the trial running in this process."""

    metric: str
    node: str = field(default_factory=lambda: node_label())
    # The other objectives' metrics (several objectives): required in every report too.
    also: tuple[str, ...] = ()
    reports: int = 0
    last_step: int | None = None
    plateau: PlateauRule | None = None
    best: float | None = None  # the metric's best value (plateau rule)
    since_best: int = 0  # reports since it improved
    cancelled: bool = False  # the trial ended without its function (timed out)
    store: Any = None  # the study's artifacts store (tuner.artifacts.ArtifactStore)
    restore: Restore | None = None  # the checkpoint this attempt starts from
    restored_dir: Path | None = None  # its local copy, once get_checkpoint() made it
    model: dict[str, Any] | None = None  # the stored model, sent with the end mark

    def stalled(self, value: float) -> bool:
        """Note `value`; whether the plateau rule now ends the trial."""
        rule = self.plateau
        if rule is None:
            return False
        signed = value if rule.mode == "min" else -value
        if self.best is None or signed < self.best - rule.min_delta:
            self.best, self.since_best = signed, 0
        else:
            self.since_best += 1
        return self.since_best >= rule.patience


_current: TrialContext | None = None  # the process's running trial
# The trial a thread runs: a function left behind by a timeout still sees its own.
_owner: contextvars.ContextVar[TrialContext | None] = contextvars.ContextVar(
    "tuner_trial", default=None
)


def node_label() -> str:
    """Where this process runs, as Ray sees it: ``HOST (IP, node ID8)``, so trials on
    two Ray nodes of one machine are told apart; the host name alone outside Ray."""
    host = socket.gethostname()
    try:
        import ray

        if not ray.is_initialized():
            return host
        node_id = ray.get_runtime_context().get_node_id()
        return f"{host} ({ray.util.get_node_ip_address()}, node {node_id[:8]})"
    except Exception:  # a label must never fail a trial
        return host


def activate(ctx: TrialContext | None) -> TrialContext | None:
    """Make `ctx` the running trial of this process; returns the previous one."""
    global _current
    previous, _current = _current, ctx
    return previous


@contextmanager
def trial(
    metric: str,
    also: tuple[str, ...] = (),
    plateau: PlateauRule | None = None,
    store: Any = None,
) -> Iterator[TrialContext]:
    """A running trial of this process, reporting `metric` (and the other objectives'
    metrics `also`), for the `with` block; a :class:`Plateau` (rule `plateau`) ends
    the block quietly, as if the trial's function had returned. A block that ends on
    its own (returned, or the plateau rule) sends a last result marking how
    (:data:`ENDED_KEY`), which is what lets the trial count as completed short of its
    budget. With an artifacts `store`, an attempt that starts from a checkpoint
    (:func:`tuner.get_checkpoint`) goes on counting from the checkpoint's step."""
    ctx = TrialContext(metric, also=also, plateau=plateau, store=store)
    if store is not None:
        ctx.restore = read_restore()
        if ctx.restore is not None:
            ctx.reports, ctx.last_step = ctx.restore.reports, ctx.restore.step
    previous = activate(ctx)
    token = _owner.set(ctx)
    try:
        with _output.capture():
            yield ctx
        ended = "returned"
    except Plateau:
        ended = "plateau"
    finally:
        _owner.reset(token)
        if _current is ctx:
            activate(previous)
    # Only a block that ended on its own gets here (an exception, an interrupt or Ray
    # stopping the trial never does): the driver completes the trial on this mark. A
    # function left behind by a timeout that ends later sends nothing: its trial is over.
    if not ctx.cancelled:
        model = {} if ctx.model is None else {MODEL_KEY: ctx.model}
        _send({ENDED_KEY: ended, NODE_KEY: ctx.node, **model})


def run_trial(rules: TrialRules, body: Callable[[TrialContext], object]) -> None:
    """Run one trial's `body` in this (Ray Tune trainable's) process: see the module.

    Raises:
        WorkerDied: the trial's own workers died (Ray Tune retries the trial).
    """
    from tuner.run._retry import worker_died

    error: list[BaseException] = []
    holder: list[TrialContext] = []  # the attempt's context, for a timeout to cancel

    def attempt() -> None:
        try:
            with trial(rules.metric, rules.also, rules.plateau, rules.store) as ctx:
                holder.append(ctx)
                body(ctx)
        except Cancelled:
            pass
        except Exception as e:
            error.append(e)

    if rules.timeout_s is None:
        attempt()
    else:
        thread = threading.Thread(target=attempt, name="tuner-trial", daemon=True)
        thread.start()
        thread.join(rules.timeout_s)
        if thread.is_alive():
            if holder:
                holder[0].cancelled = True
            _fail(f"timed out after {rules.timeout_s:g} s")
            return
    if error:
        if worker_died(error[0]):
            raise error[0]
        from tuner._errors import trial_error_text

        _fail(trial_error_text(error[0]))


def _fail(text: str) -> None:
    """Send the trial's error as its last result (see the module)."""
    _send({ERROR_KEY: text, **_output.pending_output()})


def report(step: int | None = None, checkpoint: Any = None, **metrics: float) -> None:
    """Report intermediate results of the running trial.

    Call it from the function a ``kind: python`` trainer names, once per step (epoch,
    round, ...). Early stopping decides after each call whether the trial goes on; if it
    does not, the trial ends and is recorded as pruned.

    Args:
        step: the step these values belong to (an int that grows); defaults to the
            number of earlier reports.
        checkpoint: a folder the trial wrote (a str or a Path): a copy goes to the
            study's artifacts store, and a trial that starts again (its worker died,
            ``tuner resume``, Population Based Training) gets it from
            :func:`tuner.get_checkpoint`. The trial's last checkpoint is its model
            (:meth:`tuner.Trial.load_model`, ``tuner model``).
        **metrics: numeric values; the study's metric (with several objectives, every
            objective's metric) must be among them.

    Raises:
        ReportError: outside a trial, without the study's metric, with a value that is
            not a number, with the study's metric NaN (the trial is then failed), or
            with a checkpoint that is not a folder.
    """
    ctx = _owner.get() or _current
    if ctx is not None and ctx.cancelled:
        raise Cancelled
    if ctx is None:
        raise ReportError(
            "tuner.report() was called outside a trial: call it from the function that a "
            "`kind: python` trainer names, while tuner runs it"
        )
    if step is None:
        step = ctx.reports
    elif isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise ReportError(f"tuner.report(step=...) must be an int (got {step!r})")
    values: dict[str, float] = {}
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ReportError(
                f"tuner.report({name}=...) must be a number (got {type(value).__name__} {value!r})"
            )
        values[name] = float(value)
    for wanted in (ctx.metric, *ctx.also):
        if wanted not in values:
            got = ", ".join(values) or "nothing"
            what = "objective" if ctx.also else "study's metric"
            raise ReportError(
                f"tuner.report() got no value for the {what} {wanted!r} (got {got}); "
                "report it at every step"
            )
    if math.isnan(values[ctx.metric]):
        raise ReportError(
            f"metric {ctx.metric!r} is NaN at step {step}: the trial is failed "
            "(check the objective for a division by zero or a diverging model)"
        )
    saved = {}
    if checkpoint is not None:  # stored before the report: a retry finds it with it
        stored = save(ctx.store, checkpoint, int(step))
        saved = {CHECKPOINT_KEY: {**stored, "reports": ctx.reports + 1}}
    ctx.reports += 1
    ctx.last_step = int(step)
    _send(
        {**values, STEP_KEY: int(step), KEYS_KEY: tuple(values), NODE_KEY: ctx.node}
        | saved
        | _output.pending_output()
    )
    if ctx.stalled(values[ctx.metric]):
        raise Plateau


def get_checkpoint() -> Path | None:
    """The local folder holding the checkpoint this trial starts from, or None on a
    fresh start.

    A trial starts from a checkpoint when its worker died and it runs again
    (``limits.max_retries``), when ``tuner resume`` continues it after its driver was
    killed, and under Population Based Training (a top trial's checkpoint). Load the
    model and optimizer from it and go on from the step after the checkpoint's: tuner
    counts the steps up to it already. The folder is a copy, the trial's own for this
    attempt; every call returns the same one.

    Returns:
        The folder, or None: a fresh start, or outside a trial.
    """
    ctx = _owner.get() or _current
    if ctx is None or ctx.restore is None or ctx.store is None:
        return None
    if ctx.restored_dir is None:
        ctx.restored_dir = fetch(ctx.store, ctx.restore)
    return ctx.restored_dir


def saves_artifacts() -> bool:
    """Whether the running trial has an artifacts store (a built-in trainer saves its
    checkpoints and model only then; without one it silently saves nothing)."""
    ctx = _owner.get() or _current
    return ctx is not None and ctx.store is not None and not ctx.cancelled


def restored_step() -> int | None:
    """The step of the checkpoint this attempt starts from (None: a fresh start)."""
    ctx = _owner.get() or _current
    if ctx is None or ctx.restore is None or ctx.store is None:
        return None
    return ctx.restore.step


def save_model(folder: Any, step: int) -> None:
    """Store `folder` as the running trial's model (a built-in trainer, as its function
    ends): it goes with the mark of a trial that ended on its own, so only a trial that
    completes has one. Nothing happens without an artifacts store.

    Raises:
        ReportError: `folder` is not a folder.
    """
    ctx = _owner.get() or _current
    if ctx is None or ctx.store is None or ctx.cancelled:
        return
    ctx.model = save(ctx.store, folder, int(step), kind="model")


def _send(result: dict[str, Any]) -> None:
    from ray import tune

    tune.report(result)
