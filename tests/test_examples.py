"""Every file in examples/ runs, as a user would run it."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tuner
from tuner.cli import app

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
pytestmark = pytest.mark.integration


def test_every_example_is_covered():
    covered = {
        "quickstart.yaml",
        "python_objective.yaml",
        "sklearn_pipeline.yaml",
        "xgboost_data_parallel.yaml",
        "multi_objective.yaml",
        "objective.py",
        "api_quickstart.py",
    }
    assert {p.name for p in EXAMPLES.iterdir() if p.suffix in (".yaml", ".py")} == covered


@pytest.mark.parametrize(
    "name",
    [
        "quickstart.yaml",
        "python_objective.yaml",
        "sklearn_pipeline.yaml",
        "xgboost_data_parallel.yaml",
        "multi_objective.yaml",
    ],
)
def test_example_spec_runs_from_the_cli(ray_local, sqlite_url, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)  # the spec's module must be found beside the spec, not in cwd
    result = CliRunner().invoke(app, ["run", str(EXAMPLES / name), "--storage", sqlite_url])
    assert result.exit_code == 0, result.output
    spec = tuner.load_spec(EXAMPLES / name)
    study = tuner.load_study(spec.name, storage=sqlite_url)
    trials = study.trials()
    assert len(trials) == spec.search.num_trials
    assert {t.state for t in trials} <= {"completed", "pruned"}
    if spec.is_multi_objective:
        front = study.best_trials
        assert front and all(t.feasible and t.metrics["latency_ms"] <= 12 for t in front)
        # the initial point starts first (with 2 in flight: one of the first two to start)
        assert {"width": 128, "lr": 0.01} in [t.params for t in trials[:2]]
        return
    assert study.best_trial is not None
    if name == "quickstart.yaml":
        # xgboost reports every round; ASHA cut some trials short
        assert any(t.state == "pruned" for t in trials)
        assert study.best_trial.value < 0.2  # logloss on breast cancer
        assert all(t.steps == 60 for t in trials if t.state == "completed")
    if name == "xgboost_data_parallel.yaml":
        assert all(t.metrics["workers"] == 2 for t in trials)
        assert all(t.steps == 40 for t in trials if t.state == "completed")
        assert any(t.state == "pruned" for t in trials)
    if name == "sklearn_pipeline.yaml":
        assert all(t.steps == 12 for t in trials if t.state == "completed")
        assert study.best_trial.value > 0.85  # accuracy on digits


def test_api_example_runs(ray_local, sqlite_url, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["api_quickstart.py", sqlite_url])
    runpy.run_path(str(EXAMPLES / "api_quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "best trial #" in out
    study = tuner.load_study("api-quickstart", storage=sqlite_url)
    assert len(study.trials()) == 10
