"""`kind: sklearn`, in the trial: training, scoring and reporting.

One epoch loop (:func:`_epochs`) serves every incremental case: in-memory data, its
k folds, and streamed files (a :class:`_StreamSplit`). Estimators without
``partial_fit`` are fitted once and report once.

With an artifacts store, a trial that ends on its own saves its fitted pipeline (with
``folds``: the list of the folds' pipelines) in skops format as its model; a
``partial_fit`` trial also sends it as a checkpoint with every epoch's report but the
last, and an attempt that starts from one (a retry, ``tuner resume``) goes on from the
epoch after it.
"""

from __future__ import annotations

import functools
import inspect
import math
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tuner import _report
from tuner.spec import SklearnTrainer
from tuner.trainers._models import load_sklearn, save_model, write_sklearn
from tuner.trainers._sklearn_checks import reported_metrics, scoring_name
from tuner.trainers._sklearn_pipeline import build, fit_steps, transform

TRAIN_SCORE_ROWS = 50_000
SCORE_CHUNK = 65_536
Report = Callable[..., None]


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

    def fit_sample(self) -> tuple[np.ndarray, np.ndarray]:
        """What pipeline steps that cannot learn batch by batch are fitted on."""
        return self.train_all()

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


class _StreamSplit:
    """A streamed dataset as a split: every epoch reads the files batch by batch."""

    def __init__(self, plan: Any) -> None:
        self._plan = plan

    def fit_sample(self) -> tuple[np.ndarray, np.ndarray]:
        return self._plan.X_sample, self._plan.y_sample

    def train_sample(self) -> tuple[np.ndarray, np.ndarray]:
        return self._plan.X_sample, self._plan.y_sample

    def valid(self) -> tuple[np.ndarray, np.ndarray]:
        return self._plan.X_valid, self._plan.y_valid

    def batches(
        self, batch_size: int, rng: np.random.Generator
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """One epoch in the files' order (`rng` is unused: the files set the order)."""
        return self._plan.train_batches(batch_size)


Split = _Split | _StreamSplit


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
    splits = _splits(data)
    pipes = [build(trainer, config, data.task, nthread) for _ in splits]
    scores = _Scores(trainer, data.task, report)
    if not hasattr(pipes[0].steps[-1][1], "partial_fit"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; failures still raise
            for split, pipe in zip(splits, pipes, strict=True):
                pipe.fit(*split.train_all())
        try:
            scores(1, pipes, list(splits))
        except _report.Plateau:  # the plateau rule ended it at its one report: completed
            _save(pipes, 1)
            raise
        _save(pipes, 1)
        return pipes
    classes = np.arange(data.n_classes, dtype=data.y_train.dtype) if data.n_classes else None
    rng = np.random.default_rng(data.seed)
    return _epochs(trainer, pipes, list(splits), classes, rng, scores)


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
    pipe = build(trainer, config, plan.task, nthread, streaming=True)
    rng = np.random.default_rng(0)  # unused: streamed batches come in the files' order
    scores = _Scores(trainer, plan.task, report)
    return _epochs(trainer, [pipe], [_StreamSplit(plan)], plan.classes, rng, scores)[0]


def _epochs(
    trainer: SklearnTrainer,
    pipes: list[Any],
    splits: list[Split],
    classes: np.ndarray | None,
    rng: np.random.Generator,
    scores: _Scores,
) -> list[Any]:
    """Fit the steps, then `max_epochs` epochs of partial_fit; scores after each (see
    the module for checkpoints). Returns the fitted pipelines."""
    saving = _report.saves_artifacts()
    first = 1
    folder = _report.get_checkpoint() if saving else None
    if folder is not None:  # fitted steps and estimator as they were after that epoch
        restored = load_sklearn(folder)
        pipes = list(restored) if isinstance(restored, list) else [restored]
        first = (_report.restored_step() or 0) + 1
    epoch = first - 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter; failures still raise
            for split, pipe in zip(splits, pipes, strict=True):
                if len(pipe.steps) > 1 and folder is None:
                    # Steps that cannot learn batch by batch see the whole training split.
                    batches = functools.partial(split.batches, trainer.batch_size, rng)
                    fit_steps(pipe, batches, split.fit_sample())
            for epoch in range(first, trainer.max_epochs + 1):
                for split, pipe in zip(splits, pipes, strict=True):
                    est = pipe.steps[-1][1]
                    kwargs = _fit_kwargs(est, classes)
                    for Xb, yb in split.batches(trainer.batch_size, rng):
                        est.partial_fit(transform(pipe, Xb), yb, **kwargs)
                last = epoch == trainer.max_epochs
                scores(epoch, pipes, splits, pipes if saving and not last else None)
    except _report.Plateau:
        _save(pipes, epoch)
        raise
    _save(pipes, epoch)
    return pipes


def _model(pipes: list[Any]) -> Any:
    """What a trial saves: its pipeline, or with folds the list of the folds' ones."""
    return pipes[0] if len(pipes) == 1 else list(pipes)


def _save(pipes: list[Any], step: int) -> None:
    save_model(functools.partial(write_sklearn, _model(pipes)), step)


class _Scores:
    """Reports ``valid_<scoring>`` and ``train_<scoring>``, each the mean over splits."""

    def __init__(self, trainer: SklearnTrainer, task: str, report: Report) -> None:
        from sklearn.metrics import get_scorer

        self._scorer = get_scorer(scoring_name(trainer, task))
        self._valid_key, self._train_key = reported_metrics(trainer, task)
        self._report = report

    def __call__(
        self,
        step: int,
        pipes: list[Any],
        splits: list[Split],
        checkpoint: list[Any] | None = None,
    ) -> None:
        """Report the scores of `step`, with the pipelines `checkpoint` as the report's
        checkpoint where given."""
        pairs = list(zip(pipes, splits, strict=True))
        valid = [_score(self._scorer, p, *s.valid()) for p, s in pairs]
        train = [_score(self._scorer, p, *s.train_sample()) for p, s in pairs]
        metrics = {self._valid_key: _mean(valid), self._train_key: _mean(train)}
        if checkpoint is None:
            self._report(step=step, **metrics)
            return
        with tempfile.TemporaryDirectory(prefix="tuner-save-") as tmp:
            write_sklearn(_model(checkpoint), Path(tmp))
            self._report(step=step, checkpoint=tmp, **metrics)


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)
