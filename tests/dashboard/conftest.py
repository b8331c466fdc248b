"""Seeded databases for the dashboard's tests, written through Storage's own API."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tuner.storage import Storage, TrialFinished, TrialResult, TrialStarted

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"

HOSTILE_STUDY = "<script>alert('study')</script>"
HOSTILE_PARAM = "'; drop table trials; --"
HOSTILE_ERROR = "<img src=x onerror=alert('error')> **not bold** `nor code`"

SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "depth": {"type": "int", "low": 2, "high": 10},
    "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
    "rate_drop": {"type": "float", "low": 0.0, "high": 0.3, "when": {"booster": "dart"}},
}


def seed_study(
    storage: Storage,
    name: str,
    n_trials: int = 24,
    *,
    algorithm: str = "tpe",
    mode: str = "min",
    steps: int = 12,
    status: str = "completed",
    seed: int = 0,
    extra_param: str | None = None,
    error: str = "ValueError: the loss diverged",
) -> int:
    """A study of ``n_trials`` finished trials: every 4th pruned (cut at half the
    steps), every 7th failed (with ``error``), the rest completed; ``rate_drop`` only
    for dart (conditional). Returns the study id."""
    space = dict(SPACE)
    if extra_param:
        space[extra_param] = {"type": "float", "low": 0.0, "high": 1.0}
    study = storage.create_study(
        name, spec={"name": name, "metric": "loss", "mode": mode, "search_space": space},
        metric="loss", mode=mode, algorithm=algorithm, scheduler="asha", num_trials=n_trials,
    )  # fmt: skip
    rng = random.Random(seed)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    events: list[Any] = []
    for number in range(n_trials):
        params: dict[str, Any] = {
            "lr": 10 ** rng.uniform(-4, 0),
            "depth": rng.randint(2, 10),
            "booster": "dart" if number % 2 else "gbtree",
        }
        if params["booster"] == "dart":
            params["rate_drop"] = rng.uniform(0, 0.3)
        if extra_param:
            params[extra_param] = rng.random()
        final = (math.log10(params["lr"]) + 2) ** 2 / 10 + abs(params["depth"] - 6) / 50
        state = "failed" if number % 7 == 6 else "pruned" if number % 4 == 3 else "completed"
        n_steps = steps if state == "completed" else steps // 2
        started = t0 + timedelta(seconds=10 * number)
        events.append(
            TrialStarted(study.id, number, params, started_at=started, node=f"node-{number % 2}")
        )
        loss = final
        for step in range(1, n_steps + 1):
            loss = final + 1.0 / step
            events.append(TrialResult(study.id, number, step, {"loss": loss, "acc": 1 - loss / 3}))
        events.append(
            TrialFinished(
                study.id, number, state, finished_at=started + timedelta(seconds=5),
                duration_s=5.0, metrics={"loss": loss}, value=loss if state == "completed" else None,
                error=error if state == "failed" else None,
            )
        )  # fmt: skip
    storage.write(events)
    storage.set_study_status(study.id, "running" if status == "running" else "created")
    if status != "running":
        storage.set_study_status(study.id, status)
    return study.id


PBT_LINEAGE = {
    # number: (parent, first step, last step, final state)
    0: (None, 0, 7, "pruned"),
    1: (None, 0, 7, "completed"),
    2: (0, 4, 11, "pruned"),  # from 0's checkpoint at step 3
    3: (1, 8, 15, "completed"),
    4: (2, 8, 15, "completed"),
}
"""A small Population Based Training study: two founders, cut trials replaced by
children of a top trial's checkpoint (``parent``), each going on from the step after it."""


def seed_pbt_study(storage: Storage, name: str, *, algorithm: str = "pbt") -> int:
    """A study whose trials follow :data:`PBT_LINEAGE` (loss falls by step, each child a
    little below its parent). Returns the study id."""
    study = storage.create_study(
        name, spec={"name": name, "metric": "loss", "mode": "min", "search_space": SPACE},
        metric="loss", mode="min", algorithm=algorithm, scheduler="pbt", num_trials=5,
    )  # fmt: skip
    t0 = datetime.now(UTC) - timedelta(hours=1)
    events: list[Any] = []
    for number, (parent, first, last, state) in PBT_LINEAGE.items():
        started = t0 + timedelta(seconds=10 * number)
        params = {"lr": 10.0 ** -(number + 1), "depth": 4, "booster": "gbtree"}
        events.append(TrialStarted(study.id, number, params, started_at=started, parent=parent))
        loss = 1.0
        for step in range(first, last + 1):
            loss = 1.0 / (step + 1) - number / 100
            events.append(TrialResult(study.id, number, step, {"loss": loss}))
        events.append(
            TrialFinished(
                study.id, number, state, finished_at=started + timedelta(seconds=5),
                duration_s=5.0, metrics={"loss": loss},
                value=loss if state == "completed" else None,
            )
        )  # fmt: skip
    storage.write(events)
    storage.set_study_status(study.id, "completed")
    return study.id


MO_OBJECTIVES = [{"metric": "error", "mode": "min"}, {"metric": "size_mb", "mode": "min"}]
MO_CONSTRAINTS = [{"metric": "latency_ms", "max": 20.0}]


def seed_mo_study(
    storage: Storage,
    name: str,
    n_trials: int = 30,
    *,
    seed: int = 0,
    objectives: Any = None,
    constraints: Any = None,
) -> int:
    """A two-objective study (``error`` and ``size_mb``, both min) with a constraint
    ``latency_ms <= 20``: every 5th trial breaks it, every 9th failed. Trial metrics
    follow a known trade-off: error = 1 / (1 + size) + noise. Returns the study id."""
    objectives = objectives or MO_OBJECTIVES
    spec = {
        "name": name, "objectives": objectives,
        "constraints": MO_CONSTRAINTS if constraints is None else constraints,
        "search_space": {"width": {"type": "float", "low": 0.0, "high": 10.0}},
    }  # fmt: skip
    study = storage.create_study(
        name, spec=spec, metric=objectives[0]["metric"], mode=objectives[0]["mode"],
        algorithm="nsga2", scheduler="none", num_trials=n_trials,
    )  # fmt: skip
    rng = random.Random(seed)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    events: list[Any] = []
    for number in range(n_trials):
        width = rng.uniform(0, 10)
        metrics = {
            "error": 1 / (1 + width) + rng.uniform(0, 0.2),
            "size_mb": width,
            "latency_ms": 30.0 if number % 5 == 4 else 10.0,
            "energy_j": rng.uniform(1, 2),
        }
        state = "failed" if number % 9 == 8 else "completed"
        started = t0 + timedelta(seconds=10 * number)
        events.append(TrialStarted(study.id, number, {"width": width}, started_at=started))
        events.append(
            TrialFinished(
                study.id, number, state, finished_at=started + timedelta(seconds=5),
                duration_s=5.0, metrics=metrics if state == "completed" else {},
                value=metrics["error"] if state == "completed" else None,
                error="ValueError: boom" if state == "failed" else None,
            )
        )  # fmt: skip
    storage.write(events)
    storage.set_study_status(study.id, "completed")
    return study.id


@pytest.fixture
def seeded_url(tmp_path: Path) -> Iterator[str]:
    """A SQLite database with three studies on one problem (tpe, gp, random) and one
    with hostile names and error text."""
    url = f"sqlite:///{tmp_path / 'dash.db'}"
    with Storage(url) as storage:
        seed_study(storage, "tpe-study", algorithm="tpe", seed=1)
        seed_study(storage, "gp-study", algorithm="gp", seed=2)
        seed_study(storage, "random-study", algorithm="random", seed=3)
        seed_study(
            storage, HOSTILE_STUDY, n_trials=8, seed=4, extra_param=HOSTILE_PARAM,
            error=HOSTILE_ERROR,
        )  # fmt: skip
    yield url


@pytest.fixture
def empty_url(tmp_path: Path) -> str:
    """A database with tuner's tables and no study."""
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    Storage(url).close()
    return url
