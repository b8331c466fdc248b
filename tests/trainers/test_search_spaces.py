"""Every file in search_spaces/ parses and runs a short sweep with the model it is for."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import tuner
from tuner.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(p.stem for p in (ROOT / "search_spaces").glob("*.yaml"))
DATA = {"source": "sklearn", "name": "breast_cancer", "seed": 0}
SCALED = ["standard_scaler"]
# The trainer each file is meant for, with fixed params that keep a 2-core CI fast.
TRAINERS: dict[str, dict] = {
    "xgboost": {"kind": "xgboost", "num_workers": 1, "max_rounds": 5},
    "random_forest": {"estimator": "sklearn.ensemble.RandomForestClassifier"},
    "extra_trees": {"estimator": "sklearn.ensemble.ExtraTreesClassifier"},
    "gradient_boosting": {"estimator": "sklearn.ensemble.HistGradientBoostingClassifier"},
    "logistic_regression": {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "pipeline": SCALED,
        "params": {"max_iter": 50},
    },
    "sgd": {"estimator": "sklearn.linear_model.SGDClassifier", "pipeline": SCALED},
    "svm": {"estimator": "sklearn.svm.SVC", "pipeline": SCALED},
    "knn": {"estimator": "sklearn.neighbors.KNeighborsClassifier", "pipeline": SCALED},
    "mlp": {"estimator": "sklearn.neural_network.MLPClassifier", "pipeline": SCALED},
    "pca_pipeline": {
        "estimator": "sklearn.linear_model.SGDClassifier",
        "pipeline": ["standard_scaler", "pca"],
    },
}
# Ranges narrowed for the smoke sweep only (the files' own ranges are checked as parsed).
SMALL = {
    "n_estimators": {"type": "int", "low": 5, "high": 10},
    "max_iter": {"type": "int", "low": 5, "high": 10},
    "hidden_layer_sizes": {"type": "int", "low": 4, "high": 16},
}


def test_every_file_has_a_smoke_sweep():
    assert set(FILES) == set(TRAINERS)
    assert "lightgbm" not in FILES  # lightgbm is no dependency of tuner


def study(name: str) -> dict:
    trainer = TRAINERS[name]
    if trainer.get("kind") == "xgboost":
        trainer = {**trainer, "dataset": DATA}
        metric, mode = "valid_logloss", "min"
    else:
        trainer = {"kind": "sklearn", "max_epochs": 2, **trainer, "dataset": DATA}
        metric, mode = "valid_accuracy", "max"
    space = yaml.safe_load((ROOT / "search_spaces" / f"{name}.yaml").read_text())
    space = {k: SMALL.get(k, v) for k, v in space.items()}
    return {
        "name": f"space-{name}",
        "metric": metric,
        "mode": mode,
        "trainer": trainer,
        "search_space": space,
        "search": {"algorithm": "random", "num_trials": 2, "max_concurrent": 2, "seed": 0},
    }


@pytest.mark.parametrize("name", FILES)
def test_file_parses_by_name(name):
    data = study(name)
    spec = load_spec({**data, "search_space": name})
    documented = (ROOT / "search_spaces" / f"{name}.yaml").read_text().splitlines()
    assert set(spec.search_space) == set(yaml.safe_load("\n".join(documented)))
    # every range carries a comment saying why
    params = [line for line in documented if line and not line.startswith("#")]
    assert params and all("#" in line for line in params), name


@pytest.mark.integration
@pytest.mark.parametrize("name", FILES)
def test_file_runs_a_short_sweep(ray_local, sqlite_url, name):
    trials = tuner.create_study(study(name), storage=sqlite_url).run(progress=False).trials()
    assert len(trials) == 2
    assert all(t.state == "completed" for t in trials), [(t.params, t.error) for t in trials]
