"""Real sweeps through Ray Tune on the session's local Ray, recorded in SQLite."""

from __future__ import annotations

import copy
import threading
import time

import pytest

import tuner
from tuner.exceptions import StudyFailedError

pytestmark = pytest.mark.integration


def spec(name, function="quadratic", **changes):
    data = {
        "name": name,
        "metric": "loss",
        "mode": "min",
        "trainer": {"kind": "python", "function": f"tests.objectives:{function}", "max_steps": 12},
        "search_space": {"x": {"type": "float", "low": -1.0, "high": 1.0}},
        "search": {"algorithm": "random", "num_trials": 6, "max_concurrent": 2, "seed": 0},
    }
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) and key in data else value
    return data


def run(data, storage):
    return tuner.create_study(copy.deepcopy(data), storage=storage).run(progress=False)


@pytest.mark.parametrize("algorithm", ["grid", "random", "tpe", "gp", "cmaes", "qmc"])
def test_each_algorithm_runs_all_trials_through_ray_and_records_them(
    ray_local, sqlite_url, algorithm
):
    space = {"x": {"type": "float", "low": -1.0, "high": 1.0}}
    if algorithm == "grid":
        space = {"x": {"type": "float", "values": [-0.5, 0.0, 0.3, 0.9]}}
    study = run(
        spec(f"alg-{algorithm}", search_space=space, search={"algorithm": algorithm}), sqlite_url
    )
    trials = study.trials()
    assert len(trials) == (4 if algorithm == "grid" else 6)
    assert {t.state for t in trials} == {"completed"}
    assert [t.number for t in trials] == list(range(len(trials)))
    assert all(t.steps == 12 and t.duration_s is not None and t.node for t in trials)
    assert study.status == "completed"
    best = study.best_trial
    assert best.value == min(t.value for t in trials)
    if algorithm == "grid":
        assert sorted(t.params["x"] for t in trials) == [-0.5, 0.0, 0.3, 0.9]
        assert best.params == {"x": 0.3}
    # each intermediate result is stored, in step order
    curves = study.intermediate([best.number])[best.number]["loss"]
    assert [s for s, _ in curves] == list(range(1, 13))
    # worker actors are reused between trials instead of one process per trial
    pids = {t.metrics["pid"] for t in trials}
    assert len(pids) <= 3, pids


@pytest.mark.parametrize("scheduler", ["asha", "hyperband", "median", "percentile", "extrapolate"])
def test_early_stopping_prunes_bad_trials_without_failing_them(ray_local, sqlite_url, scheduler):
    study = run(
        spec(
            f"es-{scheduler}",
            search={"num_trials": 12, "seed": 1},
            early_stopping={"scheduler": scheduler, "grace_period": 2, "reduction_factor": 2},
        ),
        sqlite_url,
    )
    trials = study.trials()
    pruned = [t for t in trials if t.state == "pruned"]
    completed = [t for t in trials if t.state == "completed"]
    assert pruned, "no trial was stopped early"
    assert completed, "every trial was stopped early"
    assert len(pruned) + len(completed) == 12
    assert all(t.steps < 12 and t.error is None for t in pruned)
    assert all(t.steps == 12 for t in completed)
    # the trials stopped early are the worse ones at the step they were cut
    assert study.best_trial.state == "completed"


def test_extrapolate_keeps_slow_starters_and_stops_only_trials_that_cannot_win(
    ray_local, sqlite_url
):
    import math

    study = run(
        spec(
            "es-extrapolate",
            function="slow_starter",
            search_space={"x": {"type": "float", "low": 0.0, "high": 1.0}},
            search={"num_trials": 16, "seed": 3},
            early_stopping={"scheduler": "extrapolate", "grace_period": 4, "min_samples": 2},
        ),
        sqlite_url,
    )
    trials = study.trials()
    pruned = [t for t in trials if t.state == "pruned"]
    assert pruned, "no trial was stopped early"
    assert all(4 <= t.steps < 12 for t in pruned)
    best = study.best_trial
    assert best.state == "completed"

    def final(x: float) -> float:  # what a trial would have ended on at step 12
        return 0.5 * x + math.exp(-12 * (0.2 + x))

    # no stopped trial would have beaten the best: the rule stopped only losers
    assert min(final(t.params["x"]) for t in pruned) > best.value
    # and it kept a slow starter that trailed a stopped trial at step 3
    curves = study.intermediate([t.number for t in trials])
    at3 = {n: dict(c["loss"])[3] for n, c in curves.items()}
    assert any(at3[best.number] > at3[t.number] for t in pruned)


def test_patience_ends_a_trial_on_a_plateau_as_completed_with_its_best_value(ray_local, sqlite_url):
    study = run(
        spec(
            "es-patience",
            function="u_shaped",
            search={"num_trials": 3},
            early_stopping={"patience": 3, "trial_value": "best"},
        ),
        sqlite_url,
    )
    trials = study.trials()
    assert len(trials) == 3  # a runner that records nothing must not pass
    for t in trials:
        # best at step 4; steps 5, 6, 7 do not improve on it
        assert (t.state, t.steps) == ("completed", 7)
        assert t.value == pytest.approx((t.params["x"] - 0.3) ** 2)


def test_no_scheduler_runs_every_trial_to_the_end(ray_local, sqlite_url):
    study = run(spec("es-none", early_stopping={"scheduler": "none"}), sqlite_url)
    assert {(t.state, t.steps) for t in study.trials()} == {("completed", 12)}


def test_failing_objective_fails_its_trial_not_the_study(ray_local, sqlite_url):
    study = run(
        spec("flaky", "fails_for_negative_x", search={"num_trials": 8, "seed": 2}), sqlite_url
    )
    trials = study.trials()
    failed = [t for t in trials if t.state == "failed"]
    ok = [t for t in trials if t.state == "completed"]
    assert failed and ok
    assert all(t.params["x"] < 0 for t in failed) and all(t.params["x"] >= 0 for t in ok)
    assert all(t.error.startswith("ValueError: x must be >= 0") for t in failed)
    assert study.status == "completed"


def test_every_trial_failing_fails_the_study_with_one_line(ray_local, sqlite_url):
    with pytest.raises(StudyFailedError) as info:
        run(spec("broken", "always_fails", search={"num_trials": 3}), sqlite_url)
    assert "RuntimeError: the data loader is broken" in str(info.value)
    assert "\n" not in str(info.value)
    study = tuner.load_study("broken", storage=sqlite_url)
    assert study.status == "failed"
    assert {t.state for t in study.trials()} == {"failed"}


def test_nan_metric_fails_the_trial_with_a_clear_error(ray_local, sqlite_url):
    with pytest.raises(StudyFailedError):
        run(spec("nan", "nan_at_step_2", search={"num_trials": 2}), sqlite_url)
    trial = tuner.load_study("nan", storage=sqlite_url).trials()[0]
    assert trial.state == "failed"
    assert "metric 'loss' is NaN at step 2" in trial.error
    assert trial.steps == 1  # the step before is kept


def test_returned_value_is_the_trials_result(ray_local, sqlite_url):
    study = run(spec("returns", "returns_value"), sqlite_url)
    trials = study.trials()
    assert len(trials) == 6  # spec()'s num_trials: a runner that records nothing fails
    for t in trials:
        assert t.state == "completed"
        assert t.value == pytest.approx((t.params["x"] - 0.5) ** 2)


def test_inactive_conditional_parameters_are_absent(ray_local, sqlite_url):
    space = {
        "x": {"type": "float", "low": -1.0, "high": 1.0},
        "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
        "rate_drop": {"type": "float", "low": 0.0, "high": 0.3, "when": {"booster": "dart"}},
    }
    study = run(
        spec("cond", "conditional", search_space=space, search={"num_trials": 8, "seed": 4}),
        sqlite_url,
    )
    trials = study.trials()
    assert {t.state for t in trials} == {"completed"}  # the objective checks what it gets
    assert {t.params["booster"] for t in trials} == {"gbtree", "dart"}
    for t in trials:
        assert ("rate_drop" in t.params) == (t.params["booster"] == "dart")
    frame = study.trials_dataframe()
    gbtree = frame[frame["params.booster"] == "gbtree"]
    assert gbtree["params.rate_drop"].isna().all()


def test_stop_from_another_process_ends_running_trials_as_stopped(ray_local, sqlite_url):
    study = tuner.create_study(
        spec("to-stop", "slow", search={"num_trials": 6}), storage=sqlite_url
    )
    runner = threading.Thread(target=lambda: study.run(progress=False))
    runner.start()
    deadline = time.monotonic() + 60
    while not study.trials() and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.5)
    tuner.load_study("to-stop", storage=sqlite_url).stop()  # what `tuner stop` does
    runner.join(timeout=90)
    assert not runner.is_alive()
    assert study.status == "stopped"
    states = {t.state for t in study.trials()}
    assert "stopped" in states and "running" not in states
    assert len(study.trials()) < 6
