"""Unknown xgboost parameters fail the study in the driver, before any trial."""

from __future__ import annotations

import time

import pytest
import yaml

from tuner.exceptions import SpecError
from tuner.spec import load_spec
from tuner.trainers import prepare
from tuner.trainers._xgboost_params import check_params

DATA = {"source": "sklearn", "name": "breast_cancer", "seed": 0}


def xgb_spec(params=None, space=None, **trainer):
    return load_spec(
        {
            "name": "xgb-params",
            "metric": "valid_logloss",
            "trainer": {
                "kind": "xgboost",
                "max_rounds": 5,
                "dataset": DATA,
                "params": params or {},
                **trainer,
            },
            "search_space": space or {"eta": {"type": "float", "low": 0.01, "high": 0.3}},
            "search": {"algorithm": "random", "num_trials": 20},
        }
    )


def test_a_misspelt_searched_parameter_is_one_line_with_a_suggestion():
    space = {
        "eta": {"type": "float", "low": 0.01, "high": 0.3, "log": True},
        "max_dpeth": {"type": "int", "low": 2, "high": 10},
    }
    with pytest.raises(SpecError) as info:
        prepare(xgb_spec(space=space))
    assert str(info.value) == (
        "search_space.max_dpeth: xgboost has no parameter 'max_dpeth' (did you mean 'max_depth'?)"
    )


def test_a_misspelt_fixed_parameter_is_one_line_with_a_suggestion():
    with pytest.raises(SpecError) as info:
        prepare(xgb_spec(params={"subsampel": 0.8}))
    assert str(info.value) == (
        "trainer.params.subsampel: xgboost has no parameter 'subsampel' (did you mean 'subsample'?)"
    )


def test_parameters_used_only_in_some_settings_are_known():
    """dart's rate_drop beside booster gbtree, an objective's own parameter, aliases,
    and the whole built-in xgboost search space pass."""
    from tuner.spec._load import BUILTIN_SEARCH_SPACES

    builtin = yaml.safe_load((BUILTIN_SEARCH_SPACES / "xgboost.yaml").read_text())
    space = {
        **builtin,
        "booster": {"type": "categorical", "choices": ["gbtree", "dart"]},
        "rate_drop": {"type": "float", "low": 0.0, "high": 0.3, "when": {"booster": "dart"}},
        "learning_rate": {"type": "float", "low": 0.01, "high": 0.3},
        "reg_lambda": {"type": "float", "low": 0.1, "high": 10.0},
    }
    space.pop("eta", None)
    spec = xgb_spec(params={"tree_method": "hist", "max_bin": 64}, space=space)
    prepare(spec)
    spec = xgb_spec(
        params={"tweedie_variance_power": 1.5}, objective="reg:tweedie", eval_metric="rmse"
    )
    check_params(spec, {"objective": "binary:logistic"})  # known in some setting


def test_the_check_is_quick():
    spec = xgb_spec(space={"max_depth": {"type": "int", "low": 2, "high": 10}})
    check_params(spec, {"objective": "binary:logistic"})  # imports xgboost
    started = time.perf_counter()
    for _ in range(5):
        check_params(spec, {"objective": "binary:logistic"})
    assert (time.perf_counter() - started) / 5 < 0.25
