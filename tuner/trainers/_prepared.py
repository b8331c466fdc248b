"""What a trainer's ``prepare`` hands the runner."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Prepared:
    """A trainable for Ray Tune and the objects to share with every trial.

    Frozen: the runner reads it; only ``shared`` is emptied once Ray holds the data.
    """

    trainable: Callable[..., None]
    shared: dict[str, Any] = field(default_factory=dict)
    data_bytes: int = 0
    # Steps a trial that runs to the end reports (early stopping's budget); None: the
    # spec's own (trainer.budget). A trainer that reports once sets 1.
    budget: int | None = None
    # Ray Tune resources of one trial; None: {"cpu": resources.cpus_per_trial}.
    resources: dict[str, float] | None = None
    # Called once after Ray is up and before the first trial (starts shared workers);
    # returns the most trials in flight (None: search.max_concurrent).
    start: Callable[[], int | None] | None = None
    # Called once when the run ends, however it ends (releases shared workers).
    cleanup: Callable[[], None] | None = None
