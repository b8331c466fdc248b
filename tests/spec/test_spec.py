from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from tuner.exceptions import SpecError
from tuner.spec import StudySpec, load_spec

ROOT = Path(__file__).resolve().parents[2]

BASE = {
    "name": "s1",
    "metric": "loss",
    "trainer": {"kind": "python", "function": "tests.objectives:quadratic"},
    "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
}


def spec_with(**changes):
    data = copy.deepcopy(BASE)
    data.update(changes)
    return data


def error_of(data) -> str:
    with pytest.raises(SpecError) as info:
        load_spec(data)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_minimal_spec_gets_documented_defaults():
    spec = load_spec(BASE)
    assert spec.mode == "min"
    assert spec.search.algorithm == "tpe"
    assert spec.early_stopping.scheduler == "none"
    assert spec.storage == "sqlite:///tuner.db"
    assert (spec.artifacts.store, spec.artifacts.keep) == (None, 3)


def test_design_example_spec_validates(tmp_path):
    text = """
name: xgb-breast-cancer
metric: valid_logloss
mode: min
trainer:
  kind: xgboost
  dataset: {source: sklearn, name: breast_cancer, valid_fraction: 0.2, seed: 0}
  num_workers: auto
  max_rounds: 200
search_space:
  eta:        {type: float, low: 0.01, high: 0.3, log: true}
  max_depth:  {type: int, low: 2, high: 10}
  booster:    {type: categorical, choices: [gbtree, dart]}
  rate_drop:  {type: float, low: 0.0, high: 0.3, when: {booster: dart}}
  gamma:      {type: float, values: [0, 0.1, 1.0]}
search: {algorithm: tpe, num_trials: 50, max_concurrent: 4, seed: 0}
early_stopping: {scheduler: asha, grace_period: 10, reduction_factor: 3}
resources: {cpus_per_trial: 1, address: null}
storage: sqlite:///tuner.db
"""
    path = tmp_path / "s.yaml"
    path.write_text(text)
    spec = load_spec(path)
    assert spec.base_dir == str(tmp_path)
    assert [n for n, _ in spec.ordered_params][-1] == "rate_drop"
    assert spec.search_space["gamma"].values == [0, 0.1, 1.0]


@pytest.mark.parametrize(
    "changes, expected",
    [
        (
            {"search_space": {"eta": {"type": "float", "low": 0.5, "high": 0.1}}},
            "search_space.eta: low must be < high (got low=0.5, high=0.1)",
        ),
        ({"mode": "minimize"}, "mode: input should be 'min' or 'max' (got 'minimize')"),
        ({"name": "has space"}, "name: must be 1-128 letters"),
        (
            {"search_space": {"x": {"type": "flot", "low": 0, "high": 1}}},
            "search_space.x: must be one of 'float', 'int', 'categorical' (got 'flot')",
        ),
        (
            {
                "search_space": {
                    "x": {"type": "float", "low": 1e-3, "high": 1, "log": True, "step": 0.1}
                }
            },
            "search_space.x: step and log cannot be used together",
        ),
        (
            {"search_space": {"x": {"type": "float", "low": 0, "high": 1, "log": True}}},
            "low must be > 0 when log is true",
        ),
        ({"search": {"algorithm": "grid"}}, "search_space.x: grid search needs explicit values"),
        (
            {"search": {"num_trials": 0}},
            "search.num_trials: input should be greater than or equal to 1",
        ),
        (
            {"trainer": {"kind": "python", "function": "nocolon"}},
            "trainer.function: must look like 'package.module:function'",
        ),
        ({"trainer": {"kind": "python"}}, "trainer.function: is required"),
        ({"colour": "blue"}, "colour: is not a known key"),
        (
            {
                "search_space": {
                    "x": {"type": "float", "low": 0, "high": 1},
                    "y": {"type": "int", "low": 0, "high": 2, "when": {"z": 1}},
                }
            },
            "search_space.y.when.z: names no parameter of the search space",
        ),
        (
            {
                "search_space": {
                    "b": {"type": "categorical", "choices": ["a", "b"]},
                    "y": {"type": "int", "low": 0, "high": 2, "when": {"b": "c"}},
                }
            },
            "search_space.y.when.b: 'c' is not one of b's choices",
        ),
        (
            {
                "search_space": {
                    "a": {"type": "int", "low": 0, "high": 2, "when": {"b": 1}},
                    "b": {"type": "int", "low": 0, "high": 2, "when": {"a": 1}},
                }
            },
            "search_space: conditions form a cycle among: a, b",
        ),
        ({"search_space": "no_such_space"}, "search_space: no search space named 'no_such_space'"),
        (
            {"early_stopping": {"scheduler": "asha", "grace_period": 500}},
            "early_stopping.grace_period: must be <= the trainer's budget 100",
        ),
        (
            # Found on an H200: xgboost refuses two workers on one CUDA device.
            {
                "trainer": {
                    "kind": "xgboost",
                    "num_workers": 2,
                    "dataset": {"source": "sklearn", "name": "breast_cancer"},
                },
                "resources": {"gpus_per_trial": 0.5},
            },
            "resources.gpus_per_trial: data-parallel xgboost workers cannot share a GPU",
        ),
        (
            {"artifacts": {"keep": 0}},
            "artifacts.keep: input should be greater than or equal to 1 (got 0)",
        ),
        ({"artifacts": {"store": ""}}, "artifacts.store: string should have at least 1"),
        ({"artifacts": {"stor": "/x"}}, "artifacts.stor: is not a known key"),
    ],
)
def test_bad_spec_names_key_path_and_expectation(changes, expected):
    assert expected in error_of(spec_with(**changes))


def test_error_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec_with(mode="up")))
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: mode:")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(SpecError, match="no such file"):
        load_spec(tmp_path / "nope.yaml")
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="invalid YAML"):
        load_spec(path)


def test_named_search_spaces_resolve_and_validate():
    files = sorted((ROOT / "search_spaces").glob("*.yaml"))
    assert {"xgboost", "random_forest"} <= {f.stem for f in files}
    for f in files:
        spec = load_spec(spec_with(search_space=f.stem))
        assert spec.search_space, f


def test_user_search_space_beside_spec_wins(tmp_path):
    (tmp_path / "search_spaces").mkdir()
    (tmp_path / "search_spaces" / "mine.yaml").write_text(
        "lr: {type: float, low: 0.1, high: 0.2}\n"
    )
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(spec_with(search_space="mine")))
    assert list(load_spec(path).search_space) == ["lr"]


def test_overrides_and_round_trip():
    spec = load_spec(BASE, {"name": "other", "search.num_trials": 7})
    assert (spec.name, spec.search.num_trials) == ("other", 7)
    again = load_spec(spec.to_dict())
    assert again == spec


def test_callable_function_is_stored_by_name():
    from tests.objectives import quadratic

    spec = load_spec(spec_with(trainer={"kind": "python", "function": quadratic}))
    assert spec.to_dict()["trainer"]["function"] == "tests.objectives:quadratic"


# --- property-based: random malformed specs are always a SpecError, never a crash ----

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10),
    st.floats(allow_nan=True),
    st.text(max_size=5),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
KEY_PATHS = [
    ("name",),
    ("metric",),
    ("mode",),
    ("trainer",),
    ("trainer", "kind"),
    ("trainer", "function"),
    ("trainer", "max_steps"),
    ("search_space",),
    ("search_space", "x"),
    ("search_space", "x", "type"),
    ("search_space", "x", "low"),
    ("search_space", "x", "high"),
    ("search_space", "x", "log"),
    ("search_space", "x", "when"),
    ("search_space", "x", "values"),
    ("search",),
    ("search", "algorithm"),
    ("search", "num_trials"),
    ("early_stopping",),
    ("early_stopping", "scheduler"),
    ("early_stopping", "grace_period"),
    ("resources",),
    ("storage",),
    ("extra",),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(KEY_PATHS), values), min_size=1, max_size=4))
def test_random_malformed_specs_raise_only_spec_error(edits):
    data = copy.deepcopy(BASE)
    for path, value in edits:
        node = data
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        node[path[-1]] = value
    try:
        spec = load_spec(data)
    except SpecError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert isinstance(spec, StudySpec)


@settings(max_examples=100, deadline=None)
@given(values)
def test_any_top_level_value_is_spec_error_or_valid(value):
    with contextlib.suppress(SpecError):
        load_spec(value) if isinstance(value, dict) else load_spec({"x": value})


def test_bohb_without_hyperband_like_early_stopping_is_one_line():
    message = error_of(spec_with(search={"algorithm": "bohb"}))
    assert message.startswith("search.algorithm: bohb fits its model at Hyperband's rungs")
    assert "got none" in message
    ok = spec_with(
        search={"algorithm": "bohb"},
        early_stopping={"scheduler": "hyperband", "grace_period": 1},
    )
    assert load_spec(ok).search.algorithm == "bohb"


def test_a_key_holding_a_newline_is_quoted_and_the_error_stays_one_line():
    # found by test_random_malformed_specs_raise_only_spec_error
    data = copy.deepcopy(BASE)
    data["search_space"]["x"]["when"] = {"\n": None}
    with pytest.raises(SpecError) as e:
        load_spec(data)
    assert "\n" not in str(e.value)
    assert str(e.value).startswith("search_space.x.when.'\\n': ")


def test_valid_fraction_defaults_to_0_2_unless_folds_are_given():
    def dataset(**keys):
        trainer = {
            "kind": "sklearn",
            "estimator": "sklearn.ensemble.RandomForestClassifier",
            "dataset": keys,
        }
        return load_spec(spec_with(trainer=trainer)).trainer.dataset

    plain = dataset(source="sklearn", name="iris")
    assert (plain.valid_fraction, plain.folds) == (0.2, None)
    assert dataset(source="sklearn", name="iris", valid_fraction=0.3).valid_fraction == 0.3
    folded = dataset(source="sklearn", name="iris", folds=3)
    assert (folded.valid_fraction, folded.folds) == (None, 3)
    # What storage keeps loads again to the same split.
    assert load_spec(load_spec(spec_with(trainer={
        "kind": "sklearn", "estimator": "sklearn.ensemble.RandomForestClassifier",
        "dataset": {"source": "sklearn", "name": "iris", "folds": 3},
    })).to_dict()).trainer.dataset.folds == 3  # fmt: skip


def test_the_spec_folder_survives_overrides_and_a_copy(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(BASE))
    spec = load_spec(path)
    assert load_spec(spec, {"search.num_trials": 3}).base_dir == str(tmp_path)
    assert spec.model_copy().base_dir == str(tmp_path)
    assert load_spec(spec.to_dict()).base_dir != str(tmp_path)  # a dict: the current folder


@pytest.mark.parametrize(
    "trainer, space",
    [
        (
            {
                "kind": "sklearn",
                "estimator": "sklearn.linear_model.SGDClassifier",
                "pipeline": ["standard_scaler", "pca"],
                "params": {"loss": "log_loss"},
                "dataset": {"source": "sklearn", "name": "digits"},
            },
            "pca_pipeline",
        ),
        (
            {
                "kind": "xgboost",
                "params": {"max_depth": 4},
                "dataset": {"source": "sklearn", "name": "breast_cancer"},
            },
            {"max_depth": {"type": "int", "low": 2, "high": 8}},
        ),
    ],
)
def test_a_parameter_both_fixed_and_searched_is_one_line(trainer, space):
    """pca_pipeline searches `loss`: a fixed `loss` would silently lose to it."""
    name = next(iter(trainer["params"]))
    message = error_of(spec_with(trainer=trainer, search_space=space))
    assert message.startswith(f"trainer.params.{name}: is fixed here and searched by "), message
    assert f"search_space.{name}" in message and "remove it from trainer.params" in message
    assert "\n" not in message
