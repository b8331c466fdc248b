"""Faults a run survives: dead workers (retried), hung trials (timed out), signals.

- Ray Tune retries a failed trial up to ``FailureConfig.max_failures`` times whatever
  failed. tuner retries only a trial whose worker process or node died (an objective
  that raised would only raise again): :func:`install_retry_rule` makes any other error
  final for its trial.
- :func:`kill_trial` ends a trial's actor at once (a hung objective never returns, so
  a graceful stop would wait on it); the trial is marked so that its death is not
  retried.
- :class:`SignalStop` turns SIGINT and SIGTERM into a clean stop of the run.

Imported by the runner after :func:`tuner._ray.ensure_ray`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["WorkerDied", "install_retry_rule", "kill_trial", "worker_died"]


class WorkerDied(RuntimeError):
    """Raised inside a trial whose own workers died (a data-parallel trial's worker
    group lost a node): the trial is retried like one whose worker process died."""


def worker_died(error: BaseException | None) -> bool:
    """Whether `error` says a trial's worker process or node died (not that its
    objective raised)."""
    from ray.exceptions import (
        NodeDiedError,
        RayActorError,
        RayTaskError,
        WorkerCrashedError,
    )

    died = (RayActorError, WorkerCrashedError, NodeDiedError, WorkerDied)
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, died):
            return True
        if isinstance(error, RayTaskError):
            cause = error.cause if getattr(error, "cause", None) is not None else None
            if isinstance(cause, died):
                return True
            error = cause
            continue
        error = error.__cause__ or error.__context__
    return False


def install_retry_rule() -> None:
    """Make Ray Tune retry a trial only when its worker died (idempotent)."""
    from ray.tune.experiment import Trial

    if getattr(Trial.handle_error, "_tuner_retry_rule", False):
        return
    original = Trial.handle_error

    def handle_error(self: Any, exc: Any = None) -> None:
        original(self, exc)
        if getattr(self, "_tuner_no_retry", False) or not worker_died(exc):
            # Past max_failures: Ray ends the trial as errored instead of retrying it.
            self.run_metadata.num_failures = max(
                self.run_metadata.num_failures, self.max_failures + 1
            )

    handle_error._tuner_retry_rule = True  # type: ignore[attr-defined]
    Trial.handle_error = handle_error  # type: ignore[method-assign]


def kill_trial(trial: Any) -> None:
    """Kill a running trial's actor now; its death is final, not retried."""
    import ray

    trial._tuner_no_retry = True
    actor = trial.temporary_state.ray_actor
    if actor is not None:
        ray.kill(actor, no_restart=True)
