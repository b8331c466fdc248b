"""The early-stopping schedulers a spec can name, one line each.

Adding a scheduler: write its module (a function ``(spec) -> TrialScheduler``) and add
one :class:`Scheduler` line below; the spec's ``early_stopping.scheduler`` takes its
names from here, and so do its rules (which schedulers take several objectives, which
have the rungs ``search.algorithm: bohb`` fits at). This module imports nothing heavy:
the spec reads it. The factories' modules (which import Ray) are imported on first use.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

__all__ = ["SCHEDULERS", "SCHEDULER_NAMES", "Scheduler"]


@dataclass(frozen=True)
class Scheduler:
    """One early-stopping rule.

    Attributes:
        name: what a spec writes in ``early_stopping.scheduler``.
        factory: ``"module:function"``, a function ``(spec) -> TrialScheduler``.
        multi_objective: whether it takes a spec with several ``objectives``.
        rungs: whether it judges trials at Hyperband's rungs (``grace_period`` x
            ``reduction_factor``^k reports), which ``bohb`` fits its model at.
    """

    name: str
    factory: str
    multi_objective: bool = False
    rungs: bool = False

    def load(self) -> Any:
        """The factory function (imports its module, and with it Ray)."""
        module, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module), attr)


_RAY = "tuner.schedulers._builtin"
SCHEDULERS: dict[str, Scheduler] = {
    s.name: s
    for s in (
        Scheduler("none", f"{_RAY}:fifo", multi_objective=True),
        Scheduler("fifo", f"{_RAY}:fifo", multi_objective=True),
        # With several objectives asha is MO-ASHA (tuner.schedulers._mo_asha).
        Scheduler("asha", f"{_RAY}:asha", multi_objective=True, rungs=True),
        Scheduler("hyperband", f"{_RAY}:hyperband", rungs=True),
        Scheduler("median", f"{_RAY}:median"),
        Scheduler("percentile", "tuner.schedulers._percentile:percentile"),
        Scheduler("extrapolate", "tuner.schedulers._extrapolate:extrapolate"),
    )
}
SCHEDULER_NAMES: tuple[str, ...] = tuple(SCHEDULERS)
