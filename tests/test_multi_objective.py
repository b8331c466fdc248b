"""Several objectives, constraints, initial points and warm starts through Ray Tune,
recorded in SQLite, and what `tuner best` / `tuner export` say about them."""

from __future__ import annotations

import copy
import json

import pytest
from typer.testing import CliRunner

import tuner
from tuner.cli import app
from tuner.exceptions import SpecError, TunerError

pytestmark = pytest.mark.integration
runner = CliRunner()

SPACE = {
    "x": {"type": "float", "low": -0.5, "high": 1.5},
    "y": {"type": "float", "low": -1.0, "high": 1.0},
}


def mo_spec(name, algorithm="nsga2", **changes):
    data = {
        "name": name,
        "objectives": [{"metric": "f1", "mode": "min"}, {"metric": "f2", "mode": "min"}],
        "trainer": {"kind": "python", "function": "tests.objectives:two_parabolas", "max_steps": 6},
        "search_space": SPACE,
        "search": {"algorithm": algorithm, "num_trials": 12, "max_concurrent": 4, "seed": 0},
    }
    data.update(changes)
    return data


def so_spec(name, **changes):
    data = {
        **mo_spec(name, "random"),
        "objectives": None,
        "metric": "f1",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def run(data, storage):
    return tuner.create_study(copy.deepcopy(data), storage=storage).run(progress=False)


def dominated(v, others):
    return any(all(a <= b for a, b in zip(o, v, strict=True)) and o != v for o in others)


@pytest.mark.parametrize("algorithm", ["nsga2", "tpe"])
def test_a_two_objective_study_stores_its_pareto_set(ray_local, sqlite_url, algorithm):
    early = {"scheduler": "asha", "grace_period": 2, "reduction_factor": 2}
    study = run(mo_spec(f"mo-{algorithm}", algorithm, early_stopping=early), sqlite_url)
    trials = study.trials()
    assert len(trials) == 12 and {t.state for t in trials} <= {"completed", "pruned"}
    completed = [t for t in trials if t.state == "completed"]
    assert all(t.values == (t.metrics["f1"], t.metrics["f2"]) for t in completed)
    # The stored Pareto set is exactly a non-dominated sort of the stored values.
    values = [t.values for t in completed]
    expected = [t.number for t in completed if not dominated(t.values, values)]
    assert [t.number for t in study.best_trials] == expected
    with pytest.raises(TunerError, match=r"several objectives.*best_trials"):
        _ = study.best_trial

    result = runner.invoke(app, ["best", study.name, "--storage", sqlite_url, "--json"])
    assert result.exit_code == 0, result.output
    assert [t["number"] for t in json.loads(result.output)] == expected
    result = runner.invoke(app, ["export", study.name, "--format", "json", "--storage", sqlite_url])
    exported = json.loads(result.output)
    assert [e["number"] for e in exported if e["pareto"]] == expected
    assert all(e["feasible"] is True for e in exported)
    assert exported[0]["values"] == [exported[0]["metrics"]["f1"], exported[0]["metrics"]["f2"]]


def test_constraints_best_is_feasible_and_nothing_feasible_says_so(ray_local, sqlite_url):
    # latency_ms = 10 + 20 x: feasible for x <= 0.5, while f1 = x^2 + y^2 is best at 0
    search = {"algorithm": "random", "num_trials": 8, "max_concurrent": 4, "seed": 0}
    study = run(
        so_spec("so-constrained", search=search, constraints=[{"metric": "latency_ms", "max": 15}]),
        sqlite_url,
    )
    trials = study.trials(["completed"])
    feasible = [t for t in trials if t.metrics["latency_ms"] <= 15]
    assert feasible and len(feasible) < len(trials)  # the seed gives both kinds
    assert all(t.feasible == (t in feasible) for t in trials)
    best = study.best_trial
    assert best.feasible and best.value == min(t.value for t in feasible)

    nothing = run(
        so_spec(
            "so-infeasible",
            search={**search, "num_trials": 4},
            constraints=[{"metric": "latency_ms", "min": 100}],
        ),
        sqlite_url,
    )
    assert nothing.best_trial is None and nothing.best_trials == []
    note = nothing.feasibility_note()
    assert "none of the 4 completed trials" in note and "latency_ms >= 100" in note
    result = runner.invoke(app, ["best", "so-infeasible", "--storage", sqlite_url])
    assert result.exit_code == 1 and "is feasible" in result.output


def test_initial_points_run_first_and_in_order(ray_local, sqlite_url):
    points = [{"x": 1.25, "y": -0.75}, {"x": -0.25, "y": 0.5}, {"x": 0.5, "y": 0.0}]
    search = {"algorithm": "tpe", "num_trials": 5, "max_concurrent": 1, "initial_points": points}
    study = run(mo_spec("mo-initial", search=search), sqlite_url)
    trials = study.trials()
    assert [t.params for t in trials[:3]] == points
    assert all(t.params not in points for t in trials[3:])


def test_warm_start_informs_the_searcher_without_copying_or_rerunning(ray_local, sqlite_url):
    earlier = run(
        so_spec("earlier", search={"algorithm": "random", "num_trials": 6, "seed": 1}), sqlite_url
    )
    before = {(t.params["x"], t.params["y"]) for t in earlier.trials()}
    later = run(
        so_spec(
            "later",
            search={"algorithm": "tpe", "num_trials": 3, "max_concurrent": 2, "seed": 0},
            warm_start={"study": "earlier"},
        ),
        sqlite_url,
    )
    trials = later.trials()
    assert [t.number for t in trials] == [0, 1, 2]  # its own trials only
    assert not {(t.params["x"], t.params["y"]) for t in trials} & before  # none re-run
    assert len(earlier.trials()) == 6  # and the earlier study is untouched


@pytest.mark.parametrize(
    ("warm_start", "search_space", "expected"),
    [
        ({"study": "nowhere"}, SPACE, "warm_start.study: there is no study 'nowhere'"),
        ({"study": "warm-bad"}, SPACE, "warm_start.study: names this study itself"),
        (
            {"study": "other-space"},
            {"z": {"type": "float", "low": 0.0, "high": 1.0}},
            "warm_start.study: study 'other-space' shares no parameter with this search space",
        ),
    ],
)
def test_a_bad_warm_start_is_a_spec_error_before_any_trial(
    sqlite_url, warm_start, search_space, expected
):
    # the earlier study, written straight to storage (no Ray needed)
    from datetime import UTC, datetime

    from tuner.storage import Storage, TrialFinished, TrialStarted

    with Storage(sqlite_url) as storage:
        other = storage.create_study(
            "other-space", spec={}, metric="f1", mode="min", algorithm="tpe", scheduler="none",
            num_trials=1,
        )  # fmt: skip
        now = datetime.now(UTC)
        storage.write(
            [
                TrialStarted(other.id, 0, {"x": 0.1, "y": 0.2}, now),
                TrialFinished(other.id, 0, "completed", now, 1.0, {"f1": 0.05}, 0.05),
            ]
        )
    data = so_spec("warm-bad", warm_start=warm_start, search_space=search_space)
    study = tuner.create_study(data, storage=sqlite_url)
    with pytest.raises(SpecError, match=expected):
        study.run(progress=False)
    with pytest.raises(TunerError):  # nothing ran, so the new study is not left behind
        tuner.load_study("warm-bad", storage=sqlite_url)


def test_warm_start_fixed_fills_the_parameters_the_earlier_study_did_not_search(sqlite_url):
    from datetime import UTC, datetime

    from tuner.run import warm_start_history
    from tuner.spec import load_spec
    from tuner.storage import Storage, TrialFinished, TrialStarted

    with Storage(sqlite_url) as storage:
        other = storage.create_study(
            "no-y", spec={}, metric="f1", mode="min", algorithm="tpe", scheduler="none",
            num_trials=2,
        )  # fmt: skip
        now = datetime.now(UTC)
        storage.write(
            [
                TrialStarted(other.id, 0, {"x": 0.1}, now),
                TrialFinished(other.id, 0, "completed", now, 1.0, {"f1": 0.05}, 0.05),
                TrialStarted(other.id, 1, {"x": 0.2, "y": -0.5}, now),
                TrialFinished(other.id, 1, "completed", now, 1.0, {"f1": 0.07}, 0.07),
            ]
        )
        spec = load_spec(so_spec("later", warm_start={"study": "no-y", "fixed": {"y": 0.25}}))
        params = [t.params for t in warm_start_history(spec, storage)]
    # the value given fills the gap; a value the earlier trial had stands
    assert params == [{"y": 0.25, "x": 0.1}, {"x": 0.2, "y": -0.5}]


def test_an_objective_the_trainer_never_reports_is_a_spec_error(sqlite_url):
    data = mo_spec(
        "mo-sklearn",
        objectives=[{"metric": "valid_accuracy", "mode": "max"}, {"metric": "model_size_mb"}],
        trainer={
            "kind": "sklearn",
            "estimator": "sklearn.linear_model.SGDClassifier",
            "dataset": {"source": "sklearn", "name": "iris"},
            "max_epochs": 2,
        },
        search_space={"alpha": {"type": "float", "low": 1e-5, "high": 1e-2, "log": True}},
    )
    with pytest.raises(SpecError) as info:
        tuner.create_study(data, storage=sqlite_url).run(progress=False)
    assert str(info.value) == (
        "objectives.1.metric: the sklearn trainer never reports 'model_size_mb' (it reports "
        "valid_accuracy, train_accuracy); use one of those, or a python trainer that reports it"
    )


def test_a_python_trainer_reports_every_objective_at_every_step(monkeypatch):
    from tuner import _report
    from tuner.exceptions import ReportError

    sent = []
    monkeypatch.setattr(_report, "_send", sent.append)
    with _report.trial("f1", ("f2",)):
        _report.report(step=1, f1=1.0, f2=2.0)
        with pytest.raises(ReportError) as info:
            _report.report(step=2, f1=1.0, latency_ms=3.0)
    assert str(info.value) == (
        "tuner.report() got no value for the objective 'f2' (got f1, latency_ms); "
        "report it at every step"
    )
    assert [r["f2"] for r in sent if _report.ENDED_KEY not in r] == [2.0]


def test_show_lists_every_objective_and_feasibility(sqlite_url):
    from datetime import UTC, datetime

    from tuner.storage import TrialFinished, TrialStarted

    data = mo_spec("mo-show", constraints=[{"metric": "latency_ms", "max": 20}])
    study = tuner.create_study(data, storage=sqlite_url)
    sid, now = study.storage.get_study("mo-show").id, datetime.now(UTC)
    for n, (f1, f2, latency) in enumerate([(1.0, 1.0, 5.0), (0.5, 0.5, 50.0)]):
        metrics = {"f1": f1, "f2": f2, "latency_ms": latency}
        study.storage.write(
            [
                TrialStarted(sid, n, {"x": 0.1, "y": 0.2}, now),
                TrialFinished(sid, n, "completed", now, 1.0, metrics, f1),
            ]
        )
    result = runner.invoke(app, ["show", "mo-show", "--storage", sqlite_url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "min f1, min f2" in lines[0]
    assert "Pareto set: 1 trials (#0)" in result.output
    header = next(line for line in lines if line.strip().startswith("#"))
    assert header.split()[:5] == ["#", "state", "f1", "f2", "feasible"]
    assert [line.split()[4] for line in lines[-2:]] == ["yes", "no"]
    result = runner.invoke(app, ["best", "mo-show", "--storage", sqlite_url])
    assert result.exit_code == 0 and "trial #0: f1=1  f2=1" in result.output
