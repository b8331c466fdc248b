"""The built-in trainers' checkpoints and models, in this process (no Ray): what a
trial sends, and an attempt that starts from a checkpoint going on from it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tuner import _output, _report
from tuner._checkpoint import CHECKPOINT_KEY, MODEL_KEY, Restore
from tuner.artifacts import ArtifactStore
from tuner.data import load_dataset
from tuner.exceptions import TunerError
from tuner.spec import load_spec
from tuner.trainers import _models
from tuner.trainers._sklearn_train import run as run_sklearn
from tuner.trainers._xgboost import run as run_xgboost

DATASET = {"source": "sklearn", "name": "breast_cancer", "valid_fraction": 0.2, "seed": 0}


@pytest.fixture
def trial_env(monkeypatch, tmp_path):
    """A trial's process without Ray: results go to a list, the store to tmp_path."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(_report, "_send", sent.append)
    info = SimpleNamespace(study="s", number=3)
    monkeypatch.setattr(_output, "current_trial", lambda: info)
    return sent, ArtifactStore(tmp_path / "store")


def in_trial(store, body, restore=None, metric="valid_logloss"):
    """Run `body` as one trial's attempt (from `restore` where given)."""
    with _report.trial(metric, store=store) as ctx:
        if restore is not None:
            ctx.restore = restore
            ctx.reports, ctx.last_step = restore.reports, restore.step
        body()


def xgb_spec(**trainer):
    return load_spec(
        {
            "name": "x",
            "metric": "valid_logloss",
            "trainer": {"kind": "xgboost", "dataset": DATASET, **trainer},
            "search_space": {"eta": {"type": "float", "low": 0.1, "high": 0.3}},
        }
    )


def test_xgboost_checkpoints_every_n_rounds_and_goes_on_from_one(trial_env):
    sent, store = trial_env
    trainer = xgb_spec(max_rounds=25, checkpoint_every=10).trainer
    data = load_dataset(trainer.dataset)
    config = {"eta": 0.2, "max_depth": 3}
    in_trial(store, lambda: run_xgboost(trainer, config, data, 1))
    steps = [r[_report.STEP_KEY] for r in sent if _report.STEP_KEY in r]
    assert steps == list(range(1, 26))
    checkpoints = [r[CHECKPOINT_KEY] for r in sent if CHECKPOINT_KEY in r]
    # The last round's too: a scheduler stopping the trial at its budget ends it before
    # it returns, and then that checkpoint is its model. So no model of its own here.
    assert [c["step"] for c in checkpoints] == [10, 20, 25]
    end = sent[-1]
    assert end[_report.ENDED_KEY] == "returned" and MODEL_KEY not in end
    whole = sent[-2]["valid_logloss"]

    # An attempt from round 20's checkpoint boosts the 5 rounds left, reporting 21..25,
    # and ends where the uninterrupted trial did.
    sent.clear()
    restore = Restore(checkpoints[1]["uri"], 20, 20)
    in_trial(store, lambda: run_xgboost(trainer, config, data, 1), restore)
    assert [r[_report.STEP_KEY] for r in sent if _report.STEP_KEY in r] == [21, 22, 23, 24, 25]
    assert sent[-2]["valid_logloss"] == pytest.approx(whole, abs=1e-9)
    last = sent[-2][CHECKPOINT_KEY]
    model = _models.load_booster(store.get_dir(last["uri"], store.root + "-m"))
    assert last["step"] == 25 and model.num_boosted_rounds() == 25


def test_xgboost_cut_by_its_plateau_saves_the_booster_it_has(trial_env):
    sent, store = trial_env
    trainer = xgb_spec(max_rounds=40, checkpoint_every=100).trainer
    data = load_dataset(trainer.dataset)
    rule = _report.PlateauRule(patience=1, min_delta=10.0, mode="min")  # stops at round 2

    def body() -> None:
        with _report.trial("valid_logloss", plateau=rule, store=store):
            run_xgboost(trainer, {"eta": 0.1}, data, 1)

    body()
    assert sent[-1][_report.ENDED_KEY] == "plateau" and sent[-1][MODEL_KEY]["step"] == 2


def test_without_a_store_nothing_is_saved(trial_env):
    sent, _ = trial_env
    trainer = xgb_spec(max_rounds=12, checkpoint_every=5).trainer
    in_trial(None, lambda: run_xgboost(trainer, {}, load_dataset(trainer.dataset), 1))
    assert not any(CHECKPOINT_KEY in r or MODEL_KEY in r for r in sent)


def sklearn_trainer(estimator, **extra):
    return load_spec(
        {
            "name": "s",
            "metric": "valid_accuracy",
            "mode": "max",
            "trainer": {
                "kind": "sklearn",
                "estimator": estimator,
                "dataset": DATASET,
                "pipeline": ["standard_scaler"],
                **extra,
            },
            "search_space": {"alpha": {"type": "float", "low": 1e-4, "high": 1e-2}},
        }
    ).trainer


def test_sklearn_partial_fit_checkpoints_each_epoch_and_goes_on_from_one(trial_env):
    sent, store = trial_env
    trainer = sklearn_trainer("sklearn.linear_model.SGDClassifier", max_epochs=4)
    data = load_dataset(trainer.dataset, task="classification")

    def attempt() -> None:
        run_sklearn(trainer, {"alpha": 1e-3}, data, _report.report, 1)

    in_trial(store, attempt, metric="valid_accuracy")
    checkpoints = [r[CHECKPOINT_KEY] for r in sent if CHECKPOINT_KEY in r]
    assert [c["step"] for c in checkpoints] == [1, 2, 3]
    assert sent[-1][MODEL_KEY]["step"] == 4
    model = _models.load_sklearn(store.get_dir(sent[-1][MODEL_KEY]["uri"], store.root + "-m"))
    accuracy = float(np.mean(model.predict(data.X_valid) == data.y_valid))
    assert accuracy == pytest.approx(sent[-2]["valid_accuracy"], abs=1e-12)

    sent.clear()
    in_trial(store, attempt, Restore(checkpoints[2]["uri"], 3, 3), metric="valid_accuracy")
    assert [r[_report.STEP_KEY] for r in sent if _report.STEP_KEY in r] == [4]


def test_sklearn_fit_once_sends_its_model(trial_env):
    sent, store = trial_env
    trainer = sklearn_trainer("sklearn.linear_model.LogisticRegression")
    data = load_dataset(trainer.dataset, task="classification")
    in_trial(
        store,
        lambda: run_sklearn(trainer, {}, data, _report.report, 1),
        metric="valid_accuracy",
    )
    assert not any(CHECKPOINT_KEY in r for r in sent)
    assert sent[-1][MODEL_KEY]["step"] == 1


def test_load_sklearn_trusts_only_known_packages(tmp_path):
    import skops.io

    skops.io.dump({"f": np.float64(1.0), "c": _Custom()}, tmp_path / _models.SKLEARN_FILE)
    with pytest.raises(TunerError, match="holds types outside sklearn, numpy, scipy, xgboost"):
        _models.load_sklearn(tmp_path)
    with pytest.raises(TunerError, match="no scikit-learn model"):
        _models.load_sklearn(tmp_path / "nothing")


class _Custom:
    pass


def test_a_trial_without_a_model_says_why_in_one_line():
    from datetime import UTC, datetime

    from tuner.storage import TrialRecord
    from tuner.study import Trial, _ModelSource

    record = TrialRecord(1, 4, "pruned", {}, {}, None, None, datetime.now(UTC), None, None, None, 3)
    reasons = [
        (_ModelSource("s", "xgboost", None, 3, None), "the study has no artifacts store"),
        (_ModelSource("s", "xgboost", "/x", 3, None), "it is pruned"),
    ]
    for source, why in reasons:
        trial = Trial._of(record, source)
        assert trial == record and trial.model_uri is None
        with pytest.raises(TunerError, match=why) as e:
            trial.load_model()
        assert "\n" not in str(e.value) and "trial 4 of study 's'" in str(e.value)
