"""`tuner.report`: how a trial hands its intermediate results to tuner."""

from __future__ import annotations

import math
import numbers
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tuner.exceptions import ReportError

# Keys tuner adds to each Ray Tune result beside the user's metrics.
STEP_KEY = "_tuner_step"
KEYS_KEY = "_tuner_keys"
NODE_KEY = "_tuner_node"
# The last result of a trial whose function ended on its own: "returned" or "plateau"
# (early_stopping.patience). Without it, a trial that did not reach its budget was
# stopped from outside (a scheduler, `tuner stop`, Ctrl+C) and never counts as completed.
ENDED_KEY = "_tuner_ended"


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


_current: TrialContext | None = None


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
    metric: str, also: tuple[str, ...] = (), plateau: PlateauRule | None = None
) -> Iterator[TrialContext]:
    """A running trial of this process, reporting `metric` (and the other objectives'
    metrics `also`), for the `with` block; a :class:`Plateau` (rule `plateau`) ends
    the block quietly, as if the trial's function had returned. A block that ends on
    its own (returned, or the plateau rule) sends a last result marking how
    (:data:`ENDED_KEY`), which is what lets the trial count as completed short of its
    budget."""
    ctx = TrialContext(metric, also=also, plateau=plateau)
    previous = activate(ctx)
    try:
        yield ctx
        ended = "returned"
    except Plateau:
        ended = "plateau"
    finally:
        activate(previous)
    # Only a block that ended on its own gets here (an exception, an interrupt or Ray
    # stopping the trial never does): the driver completes the trial on this mark.
    _send({ENDED_KEY: ended, NODE_KEY: ctx.node})


def report(step: int | None = None, **metrics: float) -> None:
    """Report intermediate results of the running trial.

    Call it from the function a ``kind: python`` trainer names, once per step (epoch,
    round, ...). Early stopping decides after each call whether the trial goes on; if it
    does not, the trial ends and is recorded as pruned.

    Args:
        step: the step these values belong to (an int that grows); defaults to the
            number of earlier reports.
        **metrics: numeric values; the study's metric (with several objectives, every
            objective's metric) must be among them.

    Raises:
        ReportError: outside a trial, without the study's metric, with a value that is
            not a number, or with the study's metric NaN (the trial is then failed).
    """
    ctx = _current
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
    ctx.reports += 1
    ctx.last_step = int(step)
    _send({**values, STEP_KEY: int(step), KEYS_KEY: tuple(values), NODE_KEY: ctx.node})
    if ctx.stalled(values[ctx.metric]):
        raise Plateau


def _send(result: dict[str, Any]) -> None:
    from ray import tune

    tune.report(result)
