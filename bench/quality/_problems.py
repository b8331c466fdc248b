"""The problems: COCO/BBOB functions (cocoex) and model tuning on offline data.

A :class:`Problem` is plain data, so it travels to Ray workers; :func:`steps` runs one
configuration and yields ``(step, loss)`` after each unit of the problem's resource
(boosting round, SGD epoch; one step for a BBOB function or the sklearn pipeline).
Every way drives the same generator, so the objective is identical across ways.
Nothing is downloaded: BBOB is compiled into cocoex, the datasets ship with
scikit-learn or are generated from a seed.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

__all__ = ["PROBLEMS", "Problem", "bbob", "steps"]


@dataclass(frozen=True)
class Problem:
    """One benchmark problem.

    Attributes:
        name: e.g. ``bbob-f8-d5-i1`` or ``xgb-breast_cancer``.
        family: ``bbob``, ``xgb``, ``pipeline`` or ``sgd``: which evaluator runs it.
        space: the search space in tuner's spec form (float, int, categorical).
        max_steps: the resource a trial may use (rounds, epochs; 1 for one-shot).
        args: what the evaluator needs (BBOB: function, dimension, instance).
        optimum: the known minimum (BBOB), so results are regrets; None: losses.
        cost_s: seconds slept per step, so trials in flight take real wall time.
        fixed: ``(name, value)`` pairs merged into every config (parameters this
            variant does not search; see bench/quality/_warm.py).
    """

    name: str
    family: str
    space: dict[str, dict[str, Any]]
    max_steps: int
    args: tuple[Any, ...] = ()
    optimum: float | None = None
    cost_s: float = 0.0
    tags: tuple[str, ...] = field(default=())
    fixed: tuple[tuple[str, Any], ...] = ()
    """Parameters held at a value instead of searched (a space with one fewer)."""

    def with_cost(self, cost_s: float) -> Problem:
        """The same problem with `cost_s` seconds of simulated work per step."""
        return replace(
            self, cost_s=cost_s, name=f"{self.name}-{cost_s:g}s" if cost_s else self.name
        )


# --- BBOB --------------------------------------------------------------------------


@functools.cache
def _coco_problem(function: int, dimension: int, instance: int) -> Any:
    import cocoex

    # The suite's default instances are 1-5 and 71-80; asking for the instance by number
    # gives any (the same function as the default's for 1-5), so 10 seeds are 1-10.
    suite = cocoex.Suite(
        "bbob", f"instances: {instance}", f"function_indices:{function} dimensions:{dimension}"
    )
    return suite.get_problem_by_function_dimension_instance(function, dimension, instance)


@functools.cache
def _coco_optimum(function: int, dimension: int, instance: int) -> float:
    # cocoex writes the optimum's location to a file in the current folder; f there is
    # f_opt (BBOB's f_opt is rounded to 2 decimals by design).
    problem = _coco_problem(function, dimension, instance)
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as d:
        os.chdir(d)
        try:
            problem._best_parameter("print")
            x_opt = np.loadtxt("._bbob_problem_best_parameter.txt", ndmin=1)
        finally:
            os.chdir(here)
    return float(problem(x_opt))


def bbob(function: int, dimension: int, instance: int) -> Problem:
    """BBOB function `function` (1-24) in `dimension` dimensions, instance `instance`."""
    space = {f"x{i}": {"type": "float", "low": -5.0, "high": 5.0} for i in range(dimension)}
    return Problem(
        name=f"bbob-f{function}-d{dimension}-i{instance}",
        family="bbob",
        space=space,
        max_steps=1,
        args=(function, dimension, instance),
        optimum=_coco_optimum(function, dimension, instance),
        tags=("continuous",),
    )


# --- data ----------------------------------------------------------------------------


@functools.cache
def _data(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_breast_cancer, load_digits, make_classification
    from sklearn.model_selection import train_test_split

    if name == "breast_cancer":
        x, y = load_breast_cancer(return_X_y=True)
    elif name == "digits":
        x, y = load_digits(return_X_y=True)
    elif name.startswith("synthetic"):  # synthetic-ROWS
        rows = int(name.split("-")[1])
        x, y = make_classification(
            n_samples=rows,
            n_features=20,
            n_informative=10,
            n_redundant=4,
            flip_y=0.05,
            class_sep=0.8,
            random_state=0,
        )
    else:
        raise ValueError(f"unknown dataset {name!r}")
    x_train, x_valid, y_train, y_valid = train_test_split(
        x.astype(np.float32), y, test_size=0.2, random_state=0, stratify=y
    )
    return x_train, x_valid, y_train, y_valid


XGB_SPACE: dict[str, dict[str, Any]] = {
    "eta": {"type": "float", "low": 0.01, "high": 0.5, "log": True},
    "max_depth": {"type": "int", "low": 2, "high": 10},
    "min_child_weight": {"type": "float", "low": 0.5, "high": 20.0, "log": True},
    "subsample": {"type": "float", "low": 0.5, "high": 1.0},
    "colsample_bytree": {"type": "float", "low": 0.5, "high": 1.0},
    "lambda": {"type": "float", "low": 1e-3, "high": 10.0, "log": True},
}


def xgb(dataset: str, rounds: int) -> Problem:
    """xgboost on `dataset`, validation log loss, boosting rounds as the resource."""
    return Problem(
        f"xgb-{dataset}", "xgb", XGB_SPACE, rounds, (dataset,), tags=("mixed", "fidelity")
    )


def _xgb_steps(problem: Problem, config: dict[str, Any]) -> Iterator[tuple[int, float]]:
    import xgboost

    x_train, x_valid, y_train, y_valid = _data(problem.args[0])
    classes = int(y_train.max()) + 1
    params = {
        "eta": config["eta"],
        "max_depth": int(config["max_depth"]),
        "min_child_weight": config["min_child_weight"],
        "subsample": config["subsample"],
        "colsample_bytree": config["colsample_bytree"],
        "lambda": config["lambda"],
        "nthread": 1,
        "seed": 0,
        "verbosity": 0,
    }
    if classes > 2:
        params.update(objective="multi:softprob", num_class=classes, eval_metric="mlogloss")
    else:
        params.update(objective="binary:logistic", eval_metric="logloss")
    dtrain = xgboost.DMatrix(x_train, label=y_train)
    dvalid = xgboost.DMatrix(x_valid, label=y_valid)
    booster = xgboost.Booster(params, [dtrain, dvalid])
    for round_ in range(problem.max_steps):
        booster.update(dtrain, round_)
        # "[0]\tvalid-mlogloss:0.123"
        loss = float(booster.eval(dvalid, "valid", round_).rsplit(":", 1)[1])
        yield round_ + 1, loss


# --- sklearn pipeline: PCA and feature selection on digits -------------------------

PIPELINE_SPACE: dict[str, dict[str, Any]] = {
    "pca_components": {"type": "int", "low": 5, "high": 60},
    "whiten": {"type": "categorical", "choices": [False, True]},
    "keep_fraction": {"type": "float", "low": 0.2, "high": 1.0},
    "C": {"type": "float", "low": 1e-3, "high": 100.0, "log": True},
}


def pipeline() -> Problem:
    """StandardScaler -> PCA -> SelectKBest -> LogisticRegression on digits (log loss)."""
    return Problem("pipeline-digits", "pipeline", PIPELINE_SPACE, 1, ("digits",), tags=("mixed",))


def _pipeline_steps(problem: Problem, config: dict[str, Any]) -> Iterator[tuple[int, float]]:
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import SelectKBest, f_classif
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_valid, y_train, y_valid = _data(problem.args[0])
    n = int(config["pca_components"])
    k = max(1, round(n * float(config["keep_fraction"])))
    model = make_pipeline(
        StandardScaler(),
        PCA(n_components=n, whiten=bool(config["whiten"]), random_state=0),
        SelectKBest(f_classif, k=k),
        LogisticRegression(C=float(config["C"]), max_iter=300),
    )
    model.fit(x_train, y_train)
    yield 1, float(log_loss(y_valid, model.predict_proba(x_valid), labels=model.classes_))


# --- SGD epochs on streamed data -----------------------------------------------------

SGD_SPACE: dict[str, dict[str, Any]] = {
    "alpha": {"type": "float", "low": 1e-7, "high": 1e-1, "log": True},
    "eta0": {"type": "float", "low": 1e-4, "high": 1.0, "log": True},
    "learning_rate": {"type": "categorical", "choices": ["constant", "invscaling", "adaptive"]},
    "power_t": {"type": "float", "low": 0.1, "high": 0.9},
    "batch_size": {"type": "int", "low": 64, "high": 4096, "log": True},
}


def sgd(rows: int, epochs: int) -> Problem:
    """SGDClassifier (log loss) fed in mini-batches, one report per epoch."""
    return Problem(
        f"sgd-stream-{rows // 1000}k",
        "sgd",
        SGD_SPACE,
        epochs,
        (f"synthetic-{rows}",),
        tags=("mixed", "fidelity"),
    )


def _sgd_steps(problem: Problem, config: dict[str, Any]) -> Iterator[tuple[int, float]]:
    import warnings

    from sklearn.linear_model import SGDClassifier
    from sklearn.metrics import log_loss

    x_train, x_valid, y_train, y_valid = _data(problem.args[0])
    model = SGDClassifier(
        loss="log_loss",
        alpha=config["alpha"],
        eta0=config["eta0"],
        learning_rate=config["learning_rate"],
        power_t=config["power_t"],
        random_state=0,
    )
    classes = np.unique(y_train)
    batch = int(config["batch_size"])
    order = np.random.default_rng(0).permutation(len(x_train))
    for epoch in range(1, problem.max_steps + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for start in range(0, len(order), batch):  # the stream, one batch at a time
                rows = order[start : start + batch]
                model.partial_fit(x_train[rows], y_train[rows], classes=classes)
        proba = np.clip(model.predict_proba(x_valid), 1e-7, 1 - 1e-7)
        loss = float(log_loss(y_valid, proba, labels=classes))
        yield epoch, loss if math.isfinite(loss) else 10.0


# --- one entry point for every way -----------------------------------------------------


def steps(problem: Problem, config: dict[str, Any]) -> Iterator[tuple[int, float]]:
    """Run `config` on `problem`: ``(step, loss)`` after each unit of its resource."""
    if problem.fixed:
        config = {**dict(problem.fixed), **config}
    if problem.family == "bbob":
        f = _coco_problem(*problem.args)
        x = np.array([config[f"x{i}"] for i in range(problem.args[1])])
        if problem.cost_s:
            time.sleep(problem.cost_s)
        yield 1, float(f(x))
        return
    inner = {"xgb": _xgb_steps, "pipeline": _pipeline_steps, "sgd": _sgd_steps}[problem.family]
    for step, loss in inner(problem, config):
        if problem.cost_s:
            time.sleep(problem.cost_s)
        yield step, loss


def _named() -> dict[str, Any]:
    out: dict[str, Any] = {
        "xgb-breast_cancer": lambda: xgb("breast_cancer", 100),
        "xgb-digits": lambda: xgb("digits", 100),
        # named as --problems names it (xgb() would call it xgb-synthetic-200000)
        "xgb-synthetic-200k": lambda: replace(
            xgb("synthetic-200000", 100), name="xgb-synthetic-200k"
        ),
        "pipeline-digits": pipeline,
        "sgd-stream-100k": lambda: sgd(100_000, 20),
    }
    return out


PROBLEMS = _named()
"""Problem names -> a function making it (BBOB names are parsed: bbob-fF-dD-iI)."""


def make(name: str) -> Problem:
    """The problem called `name` (``bbob-f8-d5-i1``, ``xgb-digits``, ...)."""
    if name.startswith("bbob-"):
        parts = dict((p[0], int(p[1:])) for p in name.split("-")[1:])
        return bbob(parts["f"], parts["d"], parts.get("i", 1))
    if name not in PROBLEMS:
        raise SystemExit(f"unknown problem {name!r}; known: bbob-fF-dD-iI, {', '.join(PROBLEMS)}")
    return PROBLEMS[name]()
