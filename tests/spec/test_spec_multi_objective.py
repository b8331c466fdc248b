"""Several objectives, constraints, initial points, warm start: valid specs and the one
clear SpecError for each mistake (key path named, the fix said)."""

from __future__ import annotations

import copy

import pytest

from tests.spec.test_spec import error_of
from tuner.spec import load_spec

MO = {
    "name": "mo",
    "objectives": [{"metric": "f1", "mode": "min"}, {"metric": "f2", "mode": "max"}],
    "constraints": [{"metric": "latency_ms", "max": 20}],
    "trainer": {"kind": "python", "function": "tests.objectives:two_parabolas"},
    "search_space": {
        "x": {"type": "float", "low": 0.0, "high": 1.0},
        "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
        "rate_drop": {"type": "float", "low": 0.0, "high": 0.3, "when": {"booster": "dart"}},
    },
    "search": {
        "algorithm": "nsga2",
        "initial_points": [{"x": 0.5, "booster": "gbtree"}],
    },
    "early_stopping": {"scheduler": "asha", "multi_objective": "scalarized", "weights": [1, 2]},
}


def spec_with(**changes):
    data = copy.deepcopy(MO)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        elif isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def test_a_multi_objective_spec_validates_and_round_trips():
    spec = load_spec(MO)
    assert spec.is_multi_objective
    assert spec.objective_metrics == ["f1", "f2"] and spec.objective_modes == ["min", "max"]
    assert (spec.metric, spec.mode) == ("f1", "min")  # the first objective's
    assert load_spec(spec.to_dict()) == spec  # what storage keeps loads again


def test_a_single_objective_spec_takes_constraints_initial_points_and_warm_start():
    spec = load_spec(
        spec_with(
            objectives=None,
            metric="f1",
            search={"algorithm": "tpe"},
            early_stopping={
                "scheduler": "asha",
                "multi_objective": "nondominated",
                "weights": None,
            },
            warm_start={"study": "earlier-study"},
        )
    )
    assert not spec.is_multi_objective and spec.objective_metrics == ["f1"]
    assert spec.constraints[0].violation(25) == 5 and spec.constraints[0].violation(10) < 0
    assert spec.warm_start.study == "earlier-study" and spec.warm_start.storage is None
    assert spec.warm_start.fixed == {}
    fixed = load_spec(spec_with(warm_start={"study": "earlier", "fixed": {"x": 0.5}}))
    assert fixed.warm_start.fixed == {"x": 0.5}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"constraints": [{"metric": "latency_ms"}]},
            "constraints.0: needs a bound: max and/or min (e.g. {metric: latency_ms, max: 20})",
        ),
        (
            {"constraints": [{"metric": "latency_ms", "min": 5, "max": 1}]},
            "constraints.0: min must be <= max (got min=5.0, max=1.0)",
        ),
        (
            {"search": {"initial_points": [{"x": 1.5, "booster": "gbtree"}]}},
            "search.initial_points.0.x: must be within [0.0, 1.0] (got 1.5)",
        ),
        (
            {"search": {"initial_points": [{"booster": "gbtree"}]}},
            "search.initial_points.0: is missing parameter 'x'; give every active parameter a value",
        ),
        (
            {"search": {"initial_points": [{"x": 0.1, "booster": "dart"}]}},
            "search.initial_points.0: is missing parameter 'rate_drop'",
        ),
        (
            {"search": {"initial_points": [{"x": 0.1, "booster": "gbtree", "eta": 1}]}},
            "search.initial_points.0.eta: is not a parameter of the search space",
        ),
        (
            {"search": {"initial_points": [{"x": 0.1, "booster": "gbtree", "rate_drop": 0.1}]}},
            "search.initial_points.0.rate_drop: is not active for this point",
        ),
        (
            {"search": {"algorithm": "cmaes"}},
            "search.algorithm: cmaes optimises one metric; with several objectives use one of",
        ),
        (
            {"early_stopping": {"scheduler": "median"}},
            "early_stopping.scheduler: median ranks trials on one metric; with several "
            "objectives use asha",
        ),
        (
            {"early_stopping": {"weights": [1, 2, 3]}},
            "early_stopping.weights: needs one weight per objective (2, got 3)",
        ),
        (
            {"early_stopping": {"multi_objective": "nondominated"}},
            "early_stopping.weights: is for multi_objective: scalarized",
        ),
        (
            {"objectives": [{"metric": "f1"}]},
            "objectives: list should have at least 2 items",
        ),
        (
            {"objectives": [{"metric": "f1"}, {"metric": "f1", "mode": "max"}]},
            "objectives.1.metric: 'f1' is listed twice",
        ),
        ({"metric": "f2"}, "metric: give either metric/mode or objectives, not both"),
        ({"objectives": None}, "metric: is required"),
        ({"warm_start": {"study": "no spaces allowed"}}, "warm_start.study: must be a study name"),
        ({"early_stopping": {"patience": 5}}, "early_stopping.patience: takes one objective"),
        (
            {"early_stopping": {"trial_value": "best"}},
            "early_stopping.trial_value: best takes one objective",
        ),
        (
            {"warm_start": {"study": "earlier", "fixed": {"lambda": 1.0}}},
            "warm_start.fixed.lambda: is not a parameter of the search space (x, booster, "
            "rate_drop); remove it",
        ),
        (
            {"warm_start": {"study": "earlier", "fixed": {"x": 2.0}}},
            "warm_start.fixed.x: must be within [0.0, 1.0] (got 2.0)",
        ),
        (
            {"warm_start": {"study": "earlier", "fixed": {"booster": "gblinear"}}},
            "warm_start.fixed.booster: must be one of ['gbtree', 'dart'] (got 'gblinear')",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_the_key_and_the_fix(changes, expected):
    assert expected in error_of(spec_with(**changes))


def test_one_objective_refuses_multi_objective_settings():
    data = spec_with(objectives=None, metric="f1", search={"algorithm": "tpe"})
    assert "early_stopping.multi_objective: is for several objectives; remove it" in error_of(data)


def test_initial_points_do_not_go_with_grid():
    data = spec_with(
        objectives=None,
        metric="f1",
        early_stopping=None,
        search_space={"x": {"type": "float", "values": [0.1, 0.5]}},
        search={"algorithm": "grid", "initial_points": [{"x": 0.1}]},
    )
    assert "search.initial_points: grid search runs every point" in error_of(data)
