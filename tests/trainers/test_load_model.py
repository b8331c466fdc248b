"""Trials' models end to end on the session's local Ray: what each built-in trainer
keeps, ``Trial.load_model()``, ``tuner model`` and the export's ``model`` and
``parent``. One study per trainer, shared by the module's tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import tuner
from tuner.cli import app
from tuner.data import load_dataset

pytestmark = pytest.mark.integration
runner = CliRunner()
DATASET = {"source": "sklearn", "name": "breast_cancer", "valid_fraction": 0.2, "seed": 0}


def _run(tmp: Path, data: dict) -> tuple[tuner.Study, str]:
    url = f"sqlite:///{tmp / 'models.db'}"
    return tuner.create_study(data, storage=url).run(progress=False), url


@pytest.fixture(scope="module")
def xgb_study(ray_local, tmp_path_factory):
    data = {
        "name": "xgb-models",
        "metric": "valid_logloss",
        "trainer": {
            "kind": "xgboost",
            "dataset": DATASET,
            "max_rounds": 12,
            "checkpoint_every": 5,
        },
        "search_space": {"max_depth": {"type": "int", "values": [2, 3, 4]}},
        "search": {"algorithm": "grid", "max_concurrent": 2},
        "artifacts": {"keep": 2},
    }
    return _run(tmp_path_factory.mktemp("xgb"), data)


@pytest.fixture(scope="module")
def sklearn_study(ray_local, tmp_path_factory):
    data = {
        "name": "sk-models",
        "metric": "valid_accuracy",
        "mode": "max",
        "trainer": {
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.LogisticRegression",
            "pipeline": ["standard_scaler"],
            "dataset": DATASET,
        },
        "search_space": {"C": {"type": "float", "values": [0.1, 1.0]}},
        "search": {"algorithm": "grid", "max_concurrent": 2},
    }
    return _run(tmp_path_factory.mktemp("sk"), data)


def test_an_xgboost_trial_keeps_its_booster_which_reproduces_its_metric(xgb_study):
    import xgboost as xgb

    study, _ = xgb_study
    trials = study.trials()
    assert {t.state for t in trials} == {"completed"}
    models = {a.number: a for a in study.artifacts() if a.kind == "model"}
    best = study.best_trial
    assert best is not None and best.number in models and len(models) == 2
    assert models[best.number].step == 12 and best.model_uri == models[best.number].uri
    assert Path(best.model_uri, "model.ubj").is_file()
    assert [t.model_uri is not None for t in trials] == [t.number in models for t in trials]

    booster = best.load_model()
    assert isinstance(booster, xgb.Booster) and booster.num_boosted_rounds() == 12
    data = load_dataset(study.spec.trainer.dataset, study.spec.base_dir)
    p = booster.predict(xgb.DMatrix(data.X_valid))
    y = data.y_valid
    logloss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert logloss == pytest.approx(best.metrics["valid_logloss"], abs=1e-6)


def test_a_trial_without_a_kept_model_says_why(xgb_study):
    study, _ = xgb_study
    [dropped] = [t for t in study.trials() if t.model_uri is None]
    with pytest.raises(tuner.TunerError, match=r"not among the best artifacts.keep=2"):
        dropped.load_model()


def test_trials_still_compare_as_their_records(xgb_study):
    study, _ = xgb_study
    records = study.storage.get_trials(study._record.id)
    assert study.trials() == records and records == study.trials()
    assert type(study.trials()[0]) is tuner.Trial


def test_tuner_model_writes_the_best_trials_folder(xgb_study, tmp_path):
    study, url = xgb_study
    out = tmp_path / "best"
    result = runner.invoke(app, ["model", study.name, "-o", str(out), "--storage", url])
    assert result.exit_code == 0, result.output
    assert (out / "model.ubj").is_file() and not (out / "_COMPLETE").exists()
    [dropped] = [t for t in study.trials() if t.model_uri is None]
    url_ = ["--storage", url]
    result = runner.invoke(
        app,
        ["model", study.name, "--trial", str(dropped.number), "-o", str(tmp_path / "x"), *url_],
    )
    assert result.exit_code == 2 and "not among the best" in result.output
    assert len(result.output.strip().splitlines()) == 1
    result = runner.invoke(app, ["model", study.name, "-o", str(out), "--storage", url])
    assert result.exit_code == 2 and "not an empty folder" in result.output


def test_export_json_names_each_trials_model_and_parent(xgb_study, tmp_path):
    study, url = xgb_study
    result = runner.invoke(app, ["export", study.name, "--format", "json", "--storage", url])
    rows = json.loads(result.output)
    assert {r["number"]: r["model"] for r in rows} == {
        t.number: t.model_uri for t in study.trials()
    }
    assert all(r["parent"] is None for r in rows)
    csv_path = tmp_path / "t.csv"
    runner.invoke(app, ["export", study.name, "-f", "csv", "-o", str(csv_path), "--storage", url])
    import pandas as pd

    frame = pd.read_csv(csv_path)
    assert list(frame.columns[-2:]) == ["model", "parent"]
    assert frame["model"].notna().sum() == 2


def test_a_sklearn_trial_keeps_its_fitted_pipeline(sklearn_study):
    study, _ = sklearn_study
    best = study.best_trial
    assert best is not None
    pipe = best.load_model()
    assert [name for name, _ in pipe.steps] == ["standard_scaler", "estimator"]
    data = load_dataset(study.spec.trainer.dataset, study.spec.base_dir, "classification")
    accuracy = float(np.mean(pipe.predict(data.X_valid) == data.y_valid))
    assert accuracy == pytest.approx(best.metrics["valid_accuracy"], abs=1e-12)


def test_a_python_trials_model_is_its_last_checkpoints_folder(ray_local, tmp_path):
    data = {
        "name": "py-models",
        "metric": "loss",
        "trainer": {"kind": "python", "function": "tests.objectives:checkpointed", "max_steps": 3},
        "search_space": {
            "x": {"type": "float", "values": [0.2]},
            "steps": {"type": "int", "values": [3]},
        },
        "search": {"algorithm": "grid"},
    }
    study, _ = _run(tmp_path, data)
    folder = study.best_trial.load_model()
    assert isinstance(folder, Path)
    assert json.loads((folder / "state.json").read_text())["step"] == 2


def test_tuner_model_of_several_objectives_asks_for_a_trial(tmp_path):
    url = f"sqlite:///{tmp_path / 'mo.db'}"
    data = {
        "name": "mo-models",
        "objectives": [{"metric": "a", "mode": "min"}, {"metric": "b", "mode": "max"}],
        "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
        "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
    }
    tuner.create_study(data, storage=url)
    result = runner.invoke(app, ["model", "mo-models", "-o", str(tmp_path / "m"), "--storage", url])
    assert result.exit_code == 2
    assert "several objectives" in result.output and "--trial" in result.output
