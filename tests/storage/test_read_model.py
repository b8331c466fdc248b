"""DashboardReads, the dashboard's read model, on every backend."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tuner.storage import (
    DashboardReads,
    Storage,
    StudyRecord,
    StudyState,
    TrialImport,
    TrialStarted,
    TrialState,
)
from tuner.storage._read_model import TRIAL_FRAME_COLUMNS

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SPACE = {
    "lr": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "depth": {"type": "int", "low": 2, "high": 10},
    "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
}


@pytest.fixture
def storage(storage_url: str) -> Iterator[Storage]:
    with Storage(storage_url) as storage:
        yield storage


def seeded(storage: Storage, n: int = 6, steps: int = 10, space: bool = True) -> StudyRecord:
    """Trials 0..n-1: odd ones pruned at half the steps, even ones completed with
    value 10 - number (so the last even one is best); ``rate_drop`` on dart only."""
    spec = {"search_space": SPACE} if space else {}
    study = storage.create_study(
        "s", spec=spec, metric="loss", mode="min", algorithm="tpe", scheduler="asha",
        num_trials=n,
    )  # fmt: skip
    trials = []
    for number in range(n):
        pruned = number % 2 == 1
        length = steps // 2 if pruned else steps
        params = {"lr": 0.01 * (number + 1), "depth": 2 + number, "booster": "dart"}
        if number % 3 == 0:
            params["booster"] = "gbtree"
        else:
            params["rate_drop"] = 0.1
        trials.append(
            TrialImport(
                number=number,
                params=params,
                state=TrialState.PRUNED if pruned else TrialState.COMPLETED,
                started_at=T0 + timedelta(seconds=10 * number),
                finished_at=T0 + timedelta(seconds=10 * number + 5),
                duration_s=5.0,
                metrics={"loss": float(10 - number), "acc": 0.5},
                value=None if pruned else float(10 - number),
                curves={"loss": [(s, 100.0 - s) for s in range(1, length + 1)]},
            )
        )
    storage.import_trials(study.id, trials)
    return storage.get_study("s")


def test_fingerprint_changes_with_a_new_trial_and_a_new_status(storage: Storage) -> None:
    study = seeded(storage)
    reads = DashboardReads(storage)
    before = reads.fingerprint(study.id)
    assert (before.trials, before.steps, before.running) == (6, 45, 0)
    assert before.last_finished_at == T0 + timedelta(seconds=55)
    assert before.status is StudyState.CREATED
    storage.write([TrialStarted(study.id, 6, {"lr": 0.1}, T0)])
    storage.set_study_status(study.id, StudyState.RUNNING)
    after = reads.fingerprint(study.id)
    assert (after.trials, after.running, after.status) == (7, 1, StudyState.RUNNING)
    assert after.as_key() != before.as_key()
    assert after.as_key()[-1] == "running"


def test_fingerprint_of_a_missing_study_is_empty(storage: Storage) -> None:
    empty = DashboardReads(storage).fingerprint(99)
    assert (empty.trials, empty.steps, empty.status) == (0, None, None)


@pytest.mark.parametrize("space", [True, False], ids=["spec-space", "no-spec-space"])
def test_trials_frame_has_the_documented_columns_and_types(storage: Storage, space: bool) -> None:
    study = seeded(storage, space=space)
    frame = DashboardReads(storage).trials_frame(study)
    params = sorted(c for c in frame if c.startswith("params."))
    assert list(frame.columns[: len(TRIAL_FRAME_COLUMNS)]) == list(TRIAL_FRAME_COLUMNS)
    if space:
        assert params == ["params.booster", "params.depth", "params.lr"]  # the spec's
        assert str(frame["params.depth"].dtype) == "Int64"
    else:  # read from the stored parameters: rate_drop too
        assert params == ["params.booster", "params.depth", "params.lr", "params.rate_drop"]
        assert math.isnan(frame.loc[0, "params.rate_drop"])  # absent, not 0
        assert frame.loc[1, "params.rate_drop"] == 0.1
    assert frame["number"].tolist() == list(range(6))
    assert frame["state"].tolist() == ["completed", "pruned"] * 3
    assert frame["params.booster"].tolist()[:2] == ["gbtree", "dart"]
    assert frame["params.lr"].tolist()[0] == pytest.approx(0.01)
    assert frame["value"].dtype == "float64" and math.isnan(frame.loc[1, "value"])
    assert frame.loc[4, "value"] == 6.0 and frame["steps"].tolist()[:2] == [10, 5]
    assert frame.loc[2, "started"] == T0 + timedelta(seconds=20)
    assert str(frame["finished"].dt.tz) == "UTC"
    assert frame["metrics.loss"].tolist()[:2] == [10.0, 9.0]
    assert {"metrics.acc", "metrics.loss"} <= set(frame)


def test_learning_curves_read_only_the_asked_trials_and_thin_long_ones(
    storage: Storage,
) -> None:
    study = seeded(storage, steps=40)
    reads = DashboardReads(storage)
    curves = reads.learning_curves(study.id, "loss", [0, 1, 99], max_points_per_curve=5)
    assert sorted(set(curves["number"])) == [0, 1]
    zero = curves[curves["number"] == 0]
    assert len(zero) == 5
    assert zero["step"].iloc[0] == 1 and zero["step"].iloc[-1] == 40  # first and last kept
    assert zero["step"].is_monotonic_increasing
    assert curves[curves["number"] == 1]["step"].max() == 20  # pruned at half
    full = reads.learning_curves(study.id, "loss", [2])
    assert full["value"].tolist() == [100.0 - s for s in range(1, 41)]
    assert reads.learning_curves(study.id, "acc", [0]).empty  # never reported
    assert list(reads.learning_curves(study.id, "loss", []).columns) == [
        "number",
        "step",
        "value",
    ]


def test_completed_values_are_the_completed_trials_with_elapsed_time(
    storage: Storage,
) -> None:
    study = seeded(storage)
    storage.write([TrialStarted(study.id, 6, {"lr": 0.1}, T0 + timedelta(seconds=100))])
    values = DashboardReads(storage).completed_values(study)
    assert values["number"].tolist() == [0, 2, 4]
    assert values["value"].tolist() == [10.0, 8.0, 6.0]
    assert values["elapsed_s"].tolist() == [5.0, 25.0, 45.0]  # from the first start


def test_the_read_model_works_on_a_read_only_storage(storage_url: str) -> None:
    with Storage(storage_url) as writer:
        study = seeded(writer)
    with Storage(storage_url, read_only=True) as reader:
        reads = DashboardReads(reader)
        assert reads.fingerprint(study.id).trials == 6
        assert len(reads.trials_frame(study)) == 6
