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

The code: checks in :mod:`._sklearn_checks` (driver), the pipeline in
:mod:`._sklearn_pipeline`, training and scoring in :mod:`._sklearn_train` (trial).

Search-space names follow scikit-learn: ``pca__n_components`` goes to the pipeline's
``pca`` step, a bare name (``alpha``) to the estimator.
"""

from __future__ import annotations

from typing import Any

from tuner import _report
from tuner.exceptions import SpecError
from tuner.spec import SklearnTrainer, StudySpec
from tuner.trainers._prepared import Prepared, check_study_metrics
from tuner.trainers._sklearn_checks import (
    check_fixed_params,
    check_metric,
    check_names,
    check_scoring,
    reported_metrics,
    task_of,
)
from tuner.trainers._sklearn_pipeline import build, estimator_class
from tuner.trainers._sklearn_train import _splits, run, run_stream

__all__ = ["_splits", "prepare", "run", "run_stream"]


def prepare(spec: StudySpec, nthread: int) -> Prepared:
    """Check the trainer and load (or plan the stream of) its dataset.

    Raises:
        SpecError: the estimator cannot be imported or built with its params, a search
            space name is no parameter of the pipeline, the scorer is unknown, the
            study's metric is not reported, or the dataset cannot be used.
    """
    trainer = spec.trainer
    assert isinstance(trainer, SklearnTrainer)  # the registry dispatches on kind
    cls = estimator_class(trainer.estimator)
    task = task_of(cls, trainer)
    pipe = build(trainer, {}, task, nthread, trainer.dataset.stream, where=["trainer", "params"])
    check_names(spec, pipe)
    check_fixed_params(pipe)
    check_scoring(trainer, task)
    check_metric(spec, trainer, task)
    check_study_metrics(spec, reported_metrics(trainer, task), "sklearn")
    incremental = hasattr(pipe.steps[-1][1], "partial_fit")
    ds = trainer.dataset
    rules = _report.rules(spec)
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
            _report.run_trial(rules, lambda _: run_stream(trainer, config, data, report, nthread))

        return Prepared(tuner_sklearn_stream_trial, {"data": plan}, plan.nbytes)

    from tuner.data import load_dataset

    data = load_dataset(ds, spec.base_dir, task)

    def tuner_sklearn_trial(config: dict[str, Any], data: Any = None) -> None:
        _report.run_trial(rules, lambda _: run(trainer, config, data, report, nthread))

    return Prepared(
        tuner_sklearn_trial, {"data": data}, data.nbytes, budget=None if incremental else 1
    )
