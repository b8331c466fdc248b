"""`kind: sklearn`: the pipeline of one trial, its steps built by spec name.

Search-space names follow scikit-learn: ``pca__n_components`` goes to the pipeline's
``pca`` step, a bare name (``alpha``) to the estimator.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tuner.exceptions import SpecError
from tuner.spec import SklearnTrainer
from tuner.spec._model import ESTIMATOR_STEP
from tuner.trainers._imports import import_module


def estimator_class(path: str) -> type:
    """The estimator class an import path names.

    Raises:
        SpecError: the module or class cannot be found, or it is no estimator.
    """
    module_name, _, name = path.rpartition(".")
    module = import_module(
        module_name,
        repr(module_name),
        "give a full import path such as sklearn.linear_model.SGDClassifier, or install "
        "the package",
        ["trainer", "estimator"],
    )
    cls = getattr(module, name, None)
    if not (inspect.isclass(cls) and hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise SpecError(
            f"{module_name!r} has no estimator class {name!r}; check the spelling "
            "(e.g. sklearn.linear_model.SGDClassifier)",
            ["trainer", "estimator"],
        )
    return cls


def route(name: str) -> str:
    return name if "__" in name else f"{ESTIMATOR_STEP}__{name}"


def make_step(name: str, task: str, streaming: bool = False) -> Any:
    """A fresh pipeline step by its spec name."""
    from sklearn import decomposition, feature_selection, preprocessing

    classification = task == "classification"
    if name == "standard_scaler":
        return preprocessing.StandardScaler()
    if name == "minmax_scaler":
        return preprocessing.MinMaxScaler()
    if name == "pca":
        # IncrementalPCA learns batch by batch (n_components must then be an int).
        return decomposition.IncrementalPCA() if streaming else decomposition.PCA(random_state=0)
    if name == "select_k_best":
        score = feature_selection.f_classif if classification else feature_selection.f_regression
        return feature_selection.SelectKBest(score)
    if name == "select_from_model":
        from sklearn.linear_model import Lasso
        from sklearn.svm import LinearSVC

        l1: Any = LinearSVC(penalty="l1", dual=False, C=0.1) if classification else Lasso(0.01)
        return feature_selection.SelectFromModel(l1)
    raise ValueError(f"unknown pipeline step {name!r}")  # the spec allows none other


def build(
    trainer: SklearnTrainer,
    config: dict[str, Any],
    task: str,
    n_jobs: int,
    streaming: bool = False,
    where: list[str | int] | None = None,
) -> Any:
    """The pipeline for one trial: steps, then the estimator, with params applied.

    Raises:
        SpecError: (only when `where` is given) a fixed param the pipeline rejects.
        ValueError: otherwise, for a param the pipeline rejects (fails that trial).
    """
    from sklearn.pipeline import Pipeline

    cls = estimator_class(trainer.estimator)
    steps = [(name, make_step(name, task, streaming)) for name in trainer.pipeline]
    pipe = Pipeline([*steps, (ESTIMATOR_STEP, cls())])
    defaults: dict[str, Any] = {}
    own = pipe.steps[-1][1].get_params(deep=False)
    if "n_jobs" in own:
        defaults[f"{ESTIMATOR_STEP}__n_jobs"] = n_jobs
    if "random_state" in own:
        defaults[f"{ESTIMATOR_STEP}__random_state"] = trainer.dataset.seed
    params = {**defaults, **{route(k): v for k, v in {**trainer.params, **config}.items()}}
    try:
        pipe.set_params(**params)
    except ValueError as e:
        if where is None:
            raise
        raise SpecError(f"{first_line(e)}", where) from None
    return pipe


def fit_steps(
    pipe: Any,
    batches: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]],
    sample: tuple[np.ndarray, np.ndarray],
) -> None:
    """Fit the steps before the estimator, in order.

    A step with partial_fit (the scalers, IncrementalPCA) learns from every training
    batch, one pass each; the others (feature selection, PCA) are fitted on `sample`.
    """
    fitted: list[Any] = []

    def through(X: np.ndarray) -> np.ndarray:
        for step in fitted:
            X = step.transform(X)
        return X

    for _, step in pipe.steps[:-1]:
        if hasattr(step, "partial_fit"):
            # IncrementalPCA cannot learn from fewer rows than it has components.
            least = getattr(step, "n_components", None) or 1
            seen = False
            for Xb, _yb in batches():
                if len(Xb) >= least:
                    step.partial_fit(through(Xb))
                    seen = True
            if not seen:
                step.fit(through(sample[0]))
        else:
            step.fit(through(sample[0]), sample[1])
        fitted.append(step)


def transform(pipe: Any, X: np.ndarray) -> np.ndarray:
    for _, step in pipe.steps[:-1]:
        X = step.transform(X)
    return X


def first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
