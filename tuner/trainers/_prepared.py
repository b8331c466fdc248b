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


def check_study_metrics(spec: Any, reported: list[str], trainer: str) -> None:
    """Raise SpecError before any trial runs if an objective or a constraint names a
    metric that the trainer never reports (the study's own metric is checked by each
    trainer, with its own hint)."""
    from tuner.exceptions import SpecError

    keys: list[tuple[list[str | int], str]] = []
    for i, o in enumerate(spec.objectives or []):
        if i > 0:
            keys.append((["objectives", i, "metric"], o.metric))
    for i, c in enumerate(spec.constraints):
        keys.append((["constraints", i, "metric"], c.metric))
    for where, name in keys:
        if name not in reported:
            raise SpecError(
                f"the {trainer} trainer never reports {name!r} (it reports "
                f"{', '.join(reported)}); use one of those, or a python trainer that reports it",
                where,
            )
