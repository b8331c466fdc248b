"""Which failures of a trial are retried: only a dead worker process or node.

Ray Tune retries a failed trial up to ``FailureConfig(max_failures=limits.max_retries)``
times, whatever failed. tuner keeps every other failure away from it: a trial's own
exception, and ``limits.trial_timeout_s``, end the trial inside its process
(:func:`tuner._report.run_trial`) with an error result, which the driver records as
failed. So the only failures Ray sees, and retries, are a worker process or node that
died, and :class:`WorkerDied`, which a data-parallel trial raises when its own worker
group lost a node (:func:`worker_died` says which is which, for the trial's process).
"""

from __future__ import annotations

__all__ = ["WorkerDied", "worker_died"]


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
