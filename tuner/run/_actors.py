"""Trial actors kept from trial to trial: a study starts about `max_concurrent` of them.

Ray Tune (``reuse_actors=True``) caches the actor of a trial that ends and hands it to
a pending trial. Its FIFO choice of that trial (step 1 of
``TuneController._maybe_add_actors``) is the oldest pending one, which while the study
ramps up is a trial whose own actor is still starting (a new worker process: seconds on
a busy machine, longer than a short trial). That trial takes the cached actor and Ray
Tune stops the actor it was starting; the resources it frees start yet another actor for
the next trial, which loses it the same way. Measured on 2 cores, 320 trials of 1 s, 16
in flight: 26 to 44 trial actors started where 16 would do (issue 20), and under heavy
load one actor ran every trial while the others were started and stopped
(bench/RESULTS.md).

:class:`ClaimCachedActor` wraps the study's scheduler and, when the scheduler would
start the oldest pending trial, starts one that arrived since the last choice instead:
the trial the searcher has just suggested in the place of the one that ended, which has
no actor of its own yet and so takes the cached actor without stopping anything. The
trials whose actors are starting keep them. Only which pending trial starts first
changes; every decision of the wrapped scheduler (results, stops, pauses) is its own,
and nothing is suggested earlier than before (no trial is staged ahead), so a
model-based searcher sees what it saw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController

__all__ = ["ClaimCachedActor", "claim_cached_actors"]


def claim_cached_actors(scheduler: TrialScheduler) -> TrialScheduler:
    """`scheduler`, wrapped in :class:`ClaimCachedActor` if it picks trials in FIFO
    order (FIFO, ASHA, median and tuner's own rules); any other (one that pauses and
    resumes trials in an order of its own) is returned as it is."""
    if type(scheduler).choose_trial_to_run is not FIFOScheduler.choose_trial_to_run:
        return scheduler
    return ClaimCachedActor(scheduler)


class ClaimCachedActor(TrialScheduler):
    """A scheduler that starts the trial the searcher has just suggested first, so that
    it, not a trial whose actor is starting, takes an ended trial's cached actor.

    Every other call goes to the wrapped scheduler. A pending trial that never gets an
    actor of its own (the cluster has no room for it) may start after newer ones.

    Args:
        scheduler: the study's scheduler; it decides everything else.
    """

    def __init__(self, scheduler: TrialScheduler) -> None:
        super().__init__()
        self.scheduler = scheduler
        # Trials added since the last choice. Ray Tune asks for a choice once a step,
        # after adding the searcher's new trials and before requesting actors for the
        # pending ones: any trial seen at an earlier choice has its actor requested.
        self._new: list[Trial] = []

    @property
    def metric(self) -> str | None:
        return self.scheduler.metric

    @property
    def supports_buffered_results(self) -> bool:
        return bool(self.scheduler.supports_buffered_results)

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return bool(self.scheduler.set_search_properties(metric, mode, **spec))

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        self._new.append(trial)
        self.scheduler.on_trial_add(tune_controller, trial)

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        self.scheduler.on_trial_error(tune_controller, trial)

    def on_trial_result(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> str:
        return str(self.scheduler.on_trial_result(tune_controller, trial, result))

    def on_trial_complete(
        self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
    ) -> None:
        self.scheduler.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: TuneController, trial: Trial) -> None:
        self.scheduler.on_trial_remove(tune_controller, trial)

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        new, self._new = self._new, []
        chosen = self.scheduler.choose_trial_to_run(tune_controller)
        if chosen is None or chosen.status != Trial.PENDING:
            return chosen
        for trial in new:
            if trial.status == Trial.PENDING:
                return trial
        return chosen

    def debug_string(self) -> str:
        return str(self.scheduler.debug_string())

    def save(self, checkpoint_path: str) -> None:
        self.scheduler.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.scheduler.restore(checkpoint_path)
