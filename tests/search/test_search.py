from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from tuner.search import ALGORITHM_NAMES, build_searcher, grid_points, grid_size
from tuner.spec import load_spec


def make_spec(space, algorithm="tpe", **search):
    return load_spec(
        {
            "name": "s",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
            "search_space": space,
            "search": {"algorithm": algorithm, **search},
        }
    )


@dataclass
class Past:
    """A trial finished before a resume, as a searcher sees it."""

    params: dict
    state: str = "completed"
    value: float | None = 1.0
    steps: int = 1


CONDITIONAL = {
    "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
    "rate_drop": {"type": "float", "values": [0.1, 0.2], "when": {"booster": "dart"}},
    "depth": {"type": "int", "low": 1, "high": 3},
}


def test_grid_is_the_product_with_conditionals_expanded_only_when_active():
    spec = make_spec(CONDITIONAL, "grid")
    points = grid_points(spec)
    # gbtree x 3 depths + dart x 2 rate_drops x 3 depths
    assert len(points) == grid_size(spec) == 3 + 6
    assert all("rate_drop" not in p for p in points if p["booster"] == "gbtree")
    assert all(p["rate_drop"] in (0.1, 0.2) for p in points if p["booster"] == "dart")
    assert len({tuple(sorted(p.items())) for p in points}) == len(points)


def test_grid_searcher_finishes_and_skips_finished_points_on_resume():
    spec = make_spec({"a": {"type": "categorical", "choices": [1, 2, 3]}}, "grid")

    searcher = build_searcher(spec, [Past({"a": 2})])
    got = [searcher.suggest(str(i)) for i in range(3)]
    assert got[:2] == [{"a": 1}, {"a": 3}]
    assert got[2] == "FINISHED"


@pytest.mark.parametrize("algorithm", ["random", "tpe", "gp", "cmaes", "qmc"])
def test_optuna_searchers_respect_space_and_conditions(algorithm):
    space = {
        "x": {"type": "float", "low": 1e-3, "high": 1.0, "log": True},
        "n": {"type": "int", "low": 2, "high": 64, "step": 2},
        **CONDITIONAL,
    }
    searcher = build_searcher(make_spec(space, algorithm, seed=3))
    for i in range(14):
        config = searcher.suggest(str(i))
        assert 1e-3 <= config["x"] <= 1.0 and config["n"] % 2 == 0
        assert ("rate_drop" in config) == (config["booster"] == "dart")
        searcher.on_trial_complete(str(i), {"loss": config["x"] + config["n"] / 100})


@pytest.mark.parametrize("algorithm", ["random", "tpe", "qmc"])
def test_same_seed_same_suggestions(algorithm):
    def run():
        s = build_searcher(
            make_spec({"x": {"type": "float", "low": 0, "high": 1}}, algorithm, seed=7)
        )
        out = []
        for i in range(12):
            c = s.suggest(str(i))
            s.on_trial_complete(str(i), {"loss": (c["x"] - 0.2) ** 2})
            out.append(c["x"])
        return out

    assert run() == run()


def test_gp_suggestions_made_while_trials_are_pending_are_distinct():
    """Four suggestions asked before any result comes back do not collapse onto one point."""
    space = {f"x{i}": {"type": "float", "low": 0.0, "high": 1.0} for i in range(3)}
    searcher = build_searcher(make_spec(space, "gp", seed=0))
    rng = np.random.default_rng(0)
    for i in range(12):  # past the random start-up, with a smooth objective
        c = searcher.suggest(f"w{i}")
        searcher.on_trial_complete(
            f"w{i}", {"loss": float(sum((v - 0.3) ** 2 for v in c.values()))}
        )
    batch = [searcher.suggest(f"p{i}") for i in range(4)]
    points = np.array([[c[f"x{i}"] for i in range(3)] for c in batch])
    gaps = [np.linalg.norm(points[a] - points[b]) for a in range(4) for b in range(a + 1, 4)]
    assert min(gaps) > 0.02, gaps
    del rng


def test_pruned_and_failed_trials_reach_optuna_with_their_state():
    spec = make_spec({"x": {"type": "float", "low": 0, "high": 1}}, "tpe")
    searcher = build_searcher(spec)
    for i, outcome in enumerate(["complete", "pruned", "failed", "nan"]):
        searcher.suggest(str(i))
        searcher.on_trial_result(str(i), {"loss": 0.5, "training_iteration": 1})
        if outcome == "pruned":
            searcher.note_pruned(str(i))
        searcher.on_trial_complete(
            str(i),
            {"loss": math.nan if outcome == "nan" else 0.5},
            error=outcome == "failed",
        )
    states = [t.state.name for t in searcher._study.trials]
    assert states == ["COMPLETE", "PRUNED", "FAIL", "FAIL"]


def test_gp_learns_from_pruned_trials_as_completed():
    spec = make_spec({"x": {"type": "float", "low": 0, "high": 1}}, "gp")
    searcher = build_searcher(spec)
    searcher.suggest("a")
    searcher.on_trial_result("a", {"loss": 0.7, "training_iteration": 3})
    searcher.note_pruned("a")
    searcher.on_trial_complete("a", {"loss": 0.7})
    (trial,) = searcher._study.trials
    assert (trial.state.name, trial.value) == ("COMPLETE", 0.7)

    past = Past({"x": 0.4}, state="pruned", value=0.7, steps=3)
    resumed = build_searcher(spec, [past])  # the same rule after a resume
    (trial,) = resumed._study.trials
    assert (trial.state.name, trial.value) == ("COMPLETE", 0.7)


@pytest.mark.parametrize("trial_value, told", [("last", 0.4), ("best", 0.3)])
def test_the_sampler_is_told_the_last_or_the_best_report_as_the_spec_says(trial_value, told):
    spec = make_spec({"x": {"type": "float", "low": 0.0, "high": 1.0}})
    spec = load_spec(spec, {"early_stopping.trial_value": trial_value})
    searcher = build_searcher(spec)
    searcher.suggest("a")
    for step, loss in enumerate([0.5, 0.3, 0.4], start=1):
        searcher.on_trial_result("a", {"loss": loss, "training_iteration": step})
    searcher.on_trial_complete("a", {"loss": 0.4, "training_iteration": 3})
    assert searcher._study.trials[0].value == told


def test_under_extrapolate_a_pruned_trial_is_told_as_completed_with_its_value_at_the_stop():
    # extrapolate stops only trials that cannot beat the best: TPE ranks them by value
    spec = load_spec(
        {
            "name": "s",
            "metric": "loss",
            "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
            "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "early_stopping": {"scheduler": "extrapolate"},
        }
    )
    searcher = build_searcher(spec)
    searcher.suggest("a")
    searcher.on_trial_result("a", {"loss": 0.9, "training_iteration": 1})
    searcher.note_pruned("a")
    searcher.on_trial_complete("a", {"loss": 0.7, "training_iteration": 2})
    (a,) = searcher._study.trials
    assert a.state.name == "COMPLETE"
    assert a.value == 0.7


def test_a_pruned_trial_keeps_the_value_it_was_stopped_on():
    # Ray gives the result a scheduler stops a trial on to on_trial_complete only.
    searcher = build_searcher(make_spec({"x": {"type": "float", "low": 0.0, "high": 1.0}}))
    searcher.suggest("a")
    searcher.on_trial_result("a", {"loss": 0.9, "training_iteration": 1})
    searcher.note_pruned("a")
    searcher.on_trial_complete("a", {"loss": 0.7, "training_iteration": 2})
    searcher.suggest("b")
    searcher.note_pruned("b")  # stopped at its first report
    searcher.on_trial_complete("b", {"loss": 0.5, "training_iteration": 1})
    a, b = searcher._study.trials[:2]
    assert a.state.name == b.state.name == "PRUNED"
    assert a.intermediate_values == {1: 0.9, 2: 0.7}
    assert b.intermediate_values == {1: 0.5}


@pytest.mark.parametrize(
    ("algorithm", "objectives"),
    [*((a, 1) for a in ALGORITHM_NAMES), *((a, 2) for a in ("nsga2", "nsga3", "tpe", "gp"))],
)
def test_a_searcher_survives_rays_pickling_mid_study(algorithm, objectives):
    # Ray Tune pickles the searcher when a study starts and at every experiment
    # checkpoint; Optuna 5.1's NSGA samplers hold a lock that does not pickle.
    from ray import cloudpickle

    data = {
        "name": "p",
        "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
        "search_space": {"x": {"type": "float", "low": 0, "high": 1}},
        "search": {"algorithm": algorithm, "seed": 0},
    }
    if objectives == 1:
        data["metric"] = "loss"
    else:
        data["objectives"] = [{"metric": "loss", "mode": "min"}, {"metric": "x2", "mode": "max"}]
    if algorithm == "grid":
        data["search_space"] = {"x": {"type": "float", "values": [0.1, 0.5, 0.9]}}
    if algorithm == "bohb":
        data["early_stopping"] = {"scheduler": "asha"}
    searcher = build_searcher(load_spec(data))
    for i in range(12):  # past GP's 10 random start-up trials, one left in flight
        config = searcher.suggest(str(i))
        if i < 11 and isinstance(config, dict):
            searcher.on_trial_complete(str(i), {"loss": (config["x"] - 0.3) ** 2, "x2": 1.0})
    copy = cloudpickle.loads(cloudpickle.dumps(searcher))
    nxt = copy.suggest("12")
    if algorithm == "grid":
        assert nxt == "FINISHED"  # all 3 points were suggested before the pickling
    elif algorithm in ("pbt", "pb2"):
        # The population (8) was drawn and every member ended with no child queued:
        # the copy knows it as the original does.
        assert copy.population.size == 8 and copy.population.members == {}
        assert nxt == searcher.suggest("12") == "FINISHED"
    else:
        assert 0 <= nxt["x"] <= 1
        # Every other algorithm runs an Optuna sampler: the copy carries its trials.
        assert len(copy.optuna_study.trials) == len(searcher.optuna_study.trials) + 1
