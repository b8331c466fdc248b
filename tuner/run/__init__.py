"""A study spec as a Ray Tune run, recording every trial live.

The parts, one module each (the Syne Tune split of loop, decisions and execution):

- :mod:`~tuner.run._driver`: :func:`run_study`, which prepares the trainer, starts Ray,
  builds the run's collaborators and drives Ray Tune;
- :mod:`~tuner.run._ledger`: the rules that decide how each trial ends (no Ray);
- :mod:`~tuner.run._callbacks`: Ray Tune's trial events -> ledger -> storage events;
- :mod:`~tuner.run._recorder`: writes those events from a background thread;
- :mod:`~tuner.run._control`: what ends a run early (`tuner stop`, signals, timeouts);
- :mod:`~tuner.run._retry`: which failures are retried (a dead worker or node);
- :mod:`~tuner.run._history`: a warm start's trials for the searcher;
- :mod:`~tuner.run._actors`: which pending trial takes an ended trial's actor;
- :mod:`~tuner.run._trial_output`: what trials print, as storage events, and who each
  trial is (:func:`tuner.current_trial`).

Modules that import Ray Tune at their top (callbacks, control) are imported only after
:func:`tuner._ray.ensure_ray`.
"""

from __future__ import annotations

from tuner.run._driver import RunOutcome, run_study
from tuner.run._history import warm_start_history
from tuner.run._recorder import Recorder

__all__ = ["Recorder", "RunOutcome", "run_study", "warm_start_history"]
