"""`kind: xgboost`: boosting that reports its evaluation metrics every round.

With ``num_workers`` > 1 (or ``auto``) trials are data-parallel on Ray Train worker
groups (:mod:`tuner.trainers._xgboost_dp`); what both share is in
:mod:`tuner.trainers._xgboost_common`.
"""

from __future__ import annotations

import functools
from typing import Any

from tuner import _report
from tuner.data import Dataset
from tuner.spec import StudySpec, XGBoostTrainer
from tuner.trainers._models import load_booster, report_checkpoint, save_model, write_booster
from tuner.trainers._prepared import Prepared, check_study_metrics
from tuner.trainers._xgboost_common import (
    base_params,
    check_metric,
    gpu_assigned,
    matrices,
    matrix_key,
    reported_metrics,
    round_metrics,
    train,
)
from tuner.trainers._xgboost_params import check_params


def prepare(spec: StudySpec, nthread: int) -> Prepared:
    """Load the dataset and check the metric (in the driver).

    Raises:
        SpecError: the dataset cannot be read, or the study's metric is not reported.
    """
    from tuner.data import load_dataset

    trainer = spec.trainer
    assert isinstance(trainer, XGBoostTrainer)  # the registry dispatches on kind
    metric = spec.metric
    rules = _report.rules(spec)
    data = load_dataset(trainer.dataset, spec.base_dir)
    check_metric(metric, trainer, data.n_classes)
    reported = [*reported_metrics(trainer, data.n_classes), "rounds", "workers"]
    check_study_metrics(spec, reported, "xgboost")
    check_params(spec, base_params(trainer, data.n_classes))
    workers = trainer.num_workers
    if workers == "auto":
        from tuner.trainers._xgboost_dp import auto_workers

        workers = auto_workers(data.nbytes, max_workers=1024)
    if workers > 1:
        from tuner.trainers._xgboost_dp import prepare_data_parallel

        return prepare_data_parallel(spec, trainer, data, workers, trainer.num_workers == "auto")

    def tuner_xgboost_trial(config: dict[str, Any], data: Any = None) -> None:
        _report.run_trial(rules, lambda _: run(trainer, config, data, nthread))

    return Prepared(tuner_xgboost_trial, {"data": data}, data.nbytes)


# The last dataset's matrices in this process: Ray Tune reuses a trial's actor for the
# next trial, which then skips building them again (keyed by the shared arrays' address).
_cache: dict[tuple, tuple[Any, Any]] = {}


def _matrices(data: Dataset, params: dict[str, Any], nthread: int) -> tuple[Any, Any]:
    key = (
        data.X_train.__array_interface__["data"][0],
        data.X_train.shape,
        data.X_valid.__array_interface__["data"][0],
        *matrix_key(params),
    )
    if key not in _cache:
        _cache.clear()
        _cache[key] = matrices(
            data.X_train, data.y_train, data.X_valid, data.y_valid, params, nthread
        )
    return _cache[key]


def run(trainer: XGBoostTrainer, config: dict[str, Any], data: Dataset, nthread: int) -> None:
    """Train one trial in this process, reporting every round.

    With an artifacts store, every ``checkpoint_every`` rounds the report carries the
    booster as a checkpoint, and a trial that ends on its own saves its final booster as
    its model; an attempt that starts from a checkpoint (a retry, ``tuner resume``)
    boosts on from that booster for the remaining rounds, reporting from the next one.
    """
    import xgboost as xgb

    params = {"nthread": nthread, **base_params(trainer, data.n_classes), **config}
    if gpu_assigned():
        params.setdefault("device", "cuda")
    dtrain, dvalid = _matrices(data, params, nthread)
    saving = _report.saves_artifacts()
    done, start = 0, None
    folder = _report.get_checkpoint() if saving else None
    if folder is not None:
        start = load_booster(folder)
        done = start.num_boosted_rounds()
    every = trainer.checkpoint_every
    booster: list[Any] = [start]  # the latest, for the model of a trial cut by its plateau
    saved = [0]  # the round of the latest checkpoint

    class _Report(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            booster[0] = model
            round_ = done + epoch + 1
            metrics = {"rounds": round_, "workers": 1, **round_metrics(evals_log)}
            # The last round's too: a scheduler that stops the trial at its budget ends
            # it before it returns, and its last checkpoint is then its model.
            if saving and (round_ % every == 0 or round_ == trainer.max_rounds):
                report_checkpoint(functools.partial(write_booster, model), round_, **metrics)
                saved[0] = round_
            else:
                _report.report(step=round_, **metrics)
            return False

    def model() -> None:  # unless its last checkpoint is it already
        if booster[0] is not None and booster[0].num_boosted_rounds() != saved[0]:
            _save_model(booster[0])

    try:
        train(params, dtrain, dvalid, trainer.max_rounds - done, _Report(), start)
    except _report.Plateau:
        model()
        raise
    model()


def _save_model(booster: Any) -> None:
    if booster is not None:
        save_model(functools.partial(write_booster, booster), booster.num_boosted_rounds())
