"""`kind: sklearn`: any scikit-learn estimator, optionally after pipeline steps.

- Estimators with ``partial_fit`` (SGDClassifier, SGDRegressor, MLPClassifier,
  Perceptron, ...) train in mini-batch epochs of ``batch_size`` rows and report after
  every epoch, so early stopping can cut them. Pipeline steps are fitted first, on the
  training rows (``partial_fit`` ones batch by batch), and each batch goes through them
  before it reaches the estimator.
- Other estimators are fitted once and report once (the trial's budget is 1 report).
- Scores: ``valid_<scoring>`` on the validation rows (with `folds`: the mean over the
  folds) and ``train_<scoring>`` on at most :data:`TRAIN_SCORE_ROWS` training rows.
  Scoring predicts :data:`SCORE_CHUNK` rows at a time, so no full-size temporary.
- Streamed datasets (`stream: true`) are read again from the files every epoch; see
  :mod:`tuner.data._stream`.

Search-space names follow scikit-learn: ``pca__n_components`` goes to the pipeline's
``pca`` step, a bare name (``alpha``) to the estimator.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner import _report
from tuner.exceptions import SpecError
from tuner.spec import SklearnTrainer, StudySpec
from tuner.spec._model import ESTIMATOR_STEP

TRAIN_SCORE_ROWS = 50_000
SCORE_CHUNK = 65_536
Report = Callable[..., None]

if TYPE_CHECKING:
    from tuner.trainers import Prepared


# --- driver side -------------------------------------------------------------------


def prepare(spec: StudySpec, nthread: int) -> Prepared:
    """Check the trainer and load (or plan the stream of) its dataset.

    Raises:
        SpecError: the estimator cannot be imported or built with its params, a search
            space name is no parameter of the pipeline, the scorer is unknown, the
            study's metric is not reported, or the dataset cannot be used.
    """
    from tuner.trainers import Prepared

    trainer = spec.trainer
    assert isinstance(trainer, SklearnTrainer)
    cls = estimator_class(trainer.estimator)
    task = _task(cls, trainer)
    pipe = build(trainer, {}, task, nthread, trainer.dataset.stream, where=["trainer", "params"])
    _check_names(spec, pipe)
    _check_fixed_params(pipe)
    check_scoring(trainer, task)
    check_metric(spec, trainer, task)
    incremental = hasattr(pipe.steps[-1][1], "partial_fit")
    ds = trainer.dataset
    metric = spec.metric
    report = _report.report
    if ds.stream:
        if not incremental:
            raise SpecError(
                f"stream: true needs an estimator with partial_fit ({cls.__name__} has none); "
                "use e.g. sklearn.linear_model.SGDClassifier, or stream: false",
                ["trainer", "dataset", "stream"],
            )
        from tuner.data._stream import plan_stream

        plan = plan_stream(ds, spec.base_dir, task, trainer.batch_size)

        def tuner_sklearn_stream_trial(config: dict[str, Any], data: Any = None) -> None:
            with _report.trial(metric):
                run_stream(trainer, config, data, report, nthread)

        return Prepared(tuner_sklearn_stream_trial, {"data": plan}, plan.nbytes)

    from tuner.data import load_dataset

    data = load_dataset(ds, spec.base_dir, task)

    def tuner_sklearn_trial(config: dict[str, Any], data: Any = None) -> None:
        with _report.trial(metric):
            run(trainer, config, data, report, nthread)

    return Prepared(
        tuner_sklearn_trial, {"data": data}, data.nbytes, budget=None if incremental else 1
    )


def estimator_class(path: str) -> type:
    """The estimator class an import path names.

    Raises:
        SpecError: the module or class cannot be found, or it is no estimator.
    """
    module_name, _, name = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise SpecError(
            f"cannot import {module_name!r} ({e}); give a full import path such as "
            "sklearn.linear_model.SGDClassifier, or install the package",
            ["trainer", "estimator"],
        ) from None
    cls = getattr(module, name, None)
    if not (inspect.isclass(cls) and hasattr(cls, "fit") and hasattr(cls, "get_params")):
        raise SpecError(
            f"{module_name!r} has no estimator class {name!r}; check the spelling "
            "(e.g. sklearn.linear_model.SGDClassifier)",
            ["trainer", "estimator"],
        )
    return cls


def _task(cls: type, trainer: SklearnTrainer) -> str:
    from sklearn.base import is_classifier, is_regressor

    try:
        instance = cls()
    except TypeError as e:  # required constructor arguments
        raise SpecError(f"cannot build {cls.__name__}() ({e})", ["trainer", "estimator"]) from None
    if is_classifier(instance):
        task = "classification"
    elif is_regressor(instance):
        task = "regression"
    else:
        raise SpecError(
            f"{cls.__name__} is neither a classifier nor a regressor; use one of them",
            ["trainer", "estimator"],
        )
    given = trainer.dataset.task
    if given is not None and given != task:
        raise SpecError(
            f"{cls.__name__} does {task} but the dataset's task is {given}; use a "
            f"{'regressor' if given == 'regression' else 'classifier'} or change the task",
            ["trainer", "dataset", "task"],
        )
    return task


def scoring_name(trainer: SklearnTrainer, task: str) -> str:
    return trainer.scoring or ("accuracy" if task == "classification" else "r2")


def check_scoring(trainer: SklearnTrainer, task: str) -> str:
    from sklearn.metrics import get_scorer, get_scorer_names

    name = scoring_name(trainer, task)
    try:
        get_scorer(name)
    except ValueError:
        examples = [n for n in get_scorer_names() if not n.endswith(("_macro", "_micro"))][:12]
        raise SpecError(
            f"{name!r} is not a scikit-learn scorer (e.g. {', '.join(examples)}, ...; see "
            "sklearn.metrics.get_scorer_names())",
            ["trainer", "scoring"],
        ) from None
    return name


def reported_metrics(trainer: SklearnTrainer, task: str) -> list[str]:
    """The metric names a trial reports (every epoch, or once)."""
    name = scoring_name(trainer, task)
    return [f"valid_{name}", f"train_{name}"]


def check_metric(spec: StudySpec, trainer: SklearnTrainer, task: str) -> None:
    """Raise SpecError before any trial runs if the study's metric is never reported."""
    names = reported_metrics(trainer, task)
    if spec.metric not in names:
        raise SpecError(
            f"the sklearn trainer reports {' and '.join(names)} with scoring "
            f"{scoring_name(trainer, task)!r} (got {spec.metric!r}); set metric to one of "
            "them or change trainer.scoring",
            ["metric"],
        )
    if spec.mode != "max":
        raise SpecError(
            f"scikit-learn scorers are greater-is-better ({spec.metric} too); set mode: max",
            ["mode"],
        )


def _check_fixed_params(pipe: Any) -> None:
    """A fixed param every trial would reject fails the study now, not each trial."""
    for _, step in pipe.steps:
        # scikit-learn's own declared constraints (a private hook; absent: skip).
        validate = getattr(step, "_validate_params", None)
        if validate is None:
            continue
        try:
            validate()
        except (ValueError, TypeError) as e:
            raise SpecError(_first_line(e), ["trainer", "params"]) from None


def _check_names(spec: StudySpec, pipe: Any) -> None:
    known = pipe.get_params(deep=True)
    for name in spec.search_space:
        routed = _route(name)
        if routed not in known:
            step, _, param = routed.partition("__")
            obj = pipe.named_steps[step]
            own = sorted(obj.get_params(deep=False))
            raise SpecError(
                f"{type(obj).__name__} has no parameter {param!r} (it has: {', '.join(own)})",
                ["search_space", name],
            )


# --- building ----------------------------------------------------------------------


def _route(name: str) -> str:
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
    params = {**defaults, **{_route(k): v for k, v in {**trainer.params, **config}.items()}}
    try:
        pipe.set_params(**params)
    except ValueError as e:
        if where is None:
            raise
        raise SpecError(f"{_first_line(e)}", where) from None
    return pipe


# --- trial side ----------------------------------------------------------------------


class _Chunked:
    """Predicts a chunk of rows at a time, so scoring a large split allocates little."""

    _METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function")

    def __init__(self, model: Any) -> None:
        self._model = model

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._model, name)
        if name not in self._METHODS:
            return attr

        def chunked(X: np.ndarray) -> np.ndarray:
            if len(X) <= SCORE_CHUNK:
                return attr(X)
            parts = [attr(X[i : i + SCORE_CHUNK]) for i in range(0, len(X), SCORE_CHUNK)]
            return np.concatenate(parts)

        chunked.__name__ = name  # scikit-learn's scorers look methods up by this name
        return chunked


def _score(scorer: Any, model: Any, X: np.ndarray, y: np.ndarray) -> float:
    return float(scorer(_Chunked(model), X, y))


class _Split:
    """One train/valid split: the dataset's own, or one fold of it."""

    def __init__(
        self,
        X: np.ndarray,
        y: np.ndarray,
        train: np.ndarray | None,
        valid: tuple[np.ndarray, np.ndarray] | np.ndarray,
    ) -> None:
        self._X, self._y, self._train = X, y, train
        self._valid = valid

    def train_all(self) -> tuple[np.ndarray, np.ndarray]:
        if self._train is None:
            return self._X, self._y  # the shared arrays themselves: no copy
        return self._X[self._train], self._y[self._train]

    def train_sample(self) -> tuple[np.ndarray, np.ndarray]:
        if self._train is None:
            return self._X[:TRAIN_SCORE_ROWS], self._y[:TRAIN_SCORE_ROWS]
        rows = self._train[:TRAIN_SCORE_ROWS]
        return self._X[rows], self._y[rows]

    def valid(self) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(self._valid, tuple):
            return self._valid
        return self._X[self._valid], self._y[self._valid]

    def batches(
        self, batch_size: int, rng: np.random.Generator
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch: batches in a random order (slices of the shared arrays)."""
        n = len(self._y) if self._train is None else len(self._train)
        starts = np.arange(0, n, batch_size)
        for start in rng.permutation(starts):
            if self._train is None:
                yield self._X[start : start + batch_size], self._y[start : start + batch_size]
            else:
                rows = np.sort(self._train[start : start + batch_size])
                yield self._X[rows], self._y[rows]


def _splits(data: Any) -> list[_Split]:
    if not data.folds:
        return [_Split(data.X_train, data.y_train, None, (data.X_valid, data.y_valid))]
    from sklearn.model_selection import KFold, StratifiedKFold

    if data.n_classes:
        kfold: Any = StratifiedKFold(data.folds, shuffle=True, random_state=data.seed)
    else:
        kfold = KFold(data.folds, shuffle=True, random_state=data.seed)
    rng = np.random.default_rng(data.seed)
    out = []
    for train, valid in kfold.split(np.zeros(len(data.y_train)), data.y_train):
        out.append(_Split(data.X_train, data.y_train, rng.permutation(train), valid))
    return out


def _fit_kwargs(estimator: Any, classes: np.ndarray | None) -> dict[str, Any]:
    if classes is not None and "classes" in inspect.signature(estimator.partial_fit).parameters:
        return {"classes": classes}
    return {}


def _fit_steps(
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


def _transform(pipe: Any, X: np.ndarray) -> np.ndarray:
    for _, step in pipe.steps[:-1]:
        X = step.transform(X)
    return X


def run(
    trainer: SklearnTrainer,
    config: dict[str, Any],
    data: Any,
    report: Report,
    nthread: int,
) -> list[Any]:
    """Train one trial on an in-memory Dataset, reporting through `report`.

    Returns the fitted pipelines (one, or one per fold).
    """
    from sklearn.metrics import get_scorer

    task = data.task
    scorer = get_scorer(scoring_name(trainer, task))
    valid_key, train_key = reported_metrics(trainer, task)
    splits = _splits(data)
    pipes = [build(trainer, config, task, nthread) for _ in splits]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; failures still raise
        if not hasattr(pipes[0].steps[-1][1], "partial_fit"):
            for split, pipe in zip(splits, pipes, strict=True):
                pipe.fit(*split.train_all())
            _report_scores(report, 1, scorer, pipes, splits, valid_key, train_key)
            return pipes
        classes = np.arange(data.n_classes, dtype=data.y_train.dtype) if data.n_classes else None
        rng = np.random.default_rng(data.seed)
        for split, pipe in zip(splits, pipes, strict=True):
            if len(pipe.steps) > 1:
                # Steps that cannot learn batch by batch see the whole training split.
                batches = functools.partial(split.batches, trainer.batch_size, rng)
                _fit_steps(pipe, batches, split.train_all())
        for epoch in range(1, trainer.max_epochs + 1):
            for split, pipe in zip(splits, pipes, strict=True):
                est = pipe.steps[-1][1]
                kwargs = _fit_kwargs(est, classes)
                for Xb, yb in split.batches(trainer.batch_size, rng):
                    est.partial_fit(_transform(pipe, Xb), yb, **kwargs)
            _report_scores(report, epoch, scorer, pipes, splits, valid_key, train_key)
    return pipes


def _report_scores(
    report: Report,
    step: int,
    scorer: Any,
    pipes: list[Any],
    splits: list[_Split],
    valid_key: str,
    train_key: str,
) -> None:
    valid = [_score(scorer, p, *s.valid()) for p, s in zip(pipes, splits, strict=True)]
    train = [_score(scorer, p, *s.train_sample()) for p, s in zip(pipes, splits, strict=True)]
    report(step=step, **{valid_key: _mean(valid), train_key: _mean(train)})


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def run_stream(
    trainer: SklearnTrainer,
    config: dict[str, Any],
    plan: Any,
    report: Report,
    nthread: int,
) -> Any:
    """Train one trial on a streamed dataset: every epoch reads the files batch by batch.

    Returns the fitted pipeline.
    """
    from sklearn.metrics import get_scorer

    task = plan.task
    scorer = get_scorer(scoring_name(trainer, task))
    valid_key, train_key = reported_metrics(trainer, task)
    pipe = build(trainer, config, task, nthread, streaming=True)
    est = pipe.steps[-1][1]
    kwargs = _fit_kwargs(est, plan.classes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if len(pipe.steps) > 1:
            _fit_steps(
                pipe,
                lambda: plan.train_batches(trainer.batch_size),
                (plan.X_sample, plan.y_sample),
            )
        for epoch in range(1, trainer.max_epochs + 1):
            for Xb, yb in plan.train_batches(trainer.batch_size):
                est.partial_fit(_transform(pipe, Xb), yb, **kwargs)
            report(
                step=epoch,
                **{
                    valid_key: _score(scorer, pipe, plan.X_valid, plan.y_valid),
                    train_key: _score(scorer, pipe, plan.X_sample, plan.y_sample),
                },
            )
    return pipe


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
