"""`kind: xgboost`: boosting that reports its evaluation metrics every round."""

from __future__ import annotations

from typing import Any

from tuner import _report
from tuner.data import Dataset
from tuner.exceptions import SpecError
from tuner.spec import XGBoostTrainer


def defaults(trainer: XGBoostTrainer, n_classes: int) -> tuple[str, str]:
    """The objective and eval_metric used when the spec names none."""
    if n_classes == 0:
        objective, metric = "reg:squarederror", "rmse"
    elif n_classes == 2:
        objective, metric = "binary:logistic", "logloss"
    else:
        objective, metric = "multi:softprob", "mlogloss"
    return trainer.objective or objective, trainer.eval_metric or metric


def reported_metrics(trainer: XGBoostTrainer, n_classes: int) -> list[str]:
    """The metric names a trial reports every round."""
    _, metric = defaults(trainer, n_classes)
    return [f"valid_{metric}", f"train_{metric}"]


def check_metric(study_metric: str, trainer: XGBoostTrainer, n_classes: int) -> None:
    """Raise SpecError before any trial runs if the study's metric is never reported."""
    names = reported_metrics(trainer, n_classes)
    if study_metric not in names:
        raise SpecError(
            f"xgboost reports {' and '.join(names)} with eval_metric "
            f"{defaults(trainer, n_classes)[1]!r} (got {study_metric!r}); "
            "set metric to one of them or change trainer.eval_metric",
            ["metric"],
        )


# The last dataset's matrices in this process: Ray Tune reuses a trial's actor for the
# next trial, which then skips building them again (keyed by the shared arrays' address).
_cache: dict[tuple, tuple[Any, Any]] = {}


def _matrices(data: Dataset, params: dict[str, Any], nthread: int) -> tuple[Any, Any]:
    import xgboost as xgb

    method = params.get("tree_method", "hist")
    max_bin = params.get("max_bin", 256)
    key = (
        data.X_train.__array_interface__["data"][0],
        data.X_train.shape,
        data.X_valid.__array_interface__["data"][0],
        method,
        max_bin,
    )
    if key not in _cache:
        _cache.clear()
        dtrain: Any
        dvalid: Any
        if method in ("hist", "auto"):
            # Binned once: about a quarter of the float32 data, and reused by each trial.
            dtrain = xgb.QuantileDMatrix(
                data.X_train, label=data.y_train, max_bin=max_bin, nthread=nthread
            )
            dvalid = xgb.QuantileDMatrix(
                data.X_valid, label=data.y_valid, ref=dtrain, nthread=nthread
            )
        else:
            dtrain = xgb.DMatrix(data.X_train, label=data.y_train, nthread=nthread)
            dvalid = xgb.DMatrix(data.X_valid, label=data.y_valid, nthread=nthread)
        _cache[key] = (dtrain, dvalid)
    return _cache[key]


def run(
    trainer: XGBoostTrainer,
    config: dict[str, Any],
    data: Dataset,
    ctx: _report.TrialContext,
    nthread: int,
) -> None:
    import xgboost as xgb

    objective, eval_metric = defaults(trainer, data.n_classes)
    params: dict[str, Any] = {
        "objective": objective,
        "eval_metric": eval_metric,
        "nthread": nthread,
        "verbosity": 0,
        **trainer.params,
        **config,
    }
    if objective.startswith("multi:"):
        params.setdefault("num_class", data.n_classes)
    dtrain, dvalid = _matrices(data, params, nthread)

    class _Report(xgb.callback.TrainingCallback):
        def after_iteration(self, model: Any, epoch: int, evals_log: dict[str, Any]) -> bool:
            metrics = {
                f"{split}_{name}": values[-1]
                for split, logs in evals_log.items()
                for name, values in logs.items()
            }
            _report.report(step=epoch + 1, rounds=epoch + 1, workers=1, **metrics)
            return False

    xgb.train(
        params,
        dtrain,
        num_boost_round=trainer.max_rounds,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        callbacks=[_Report()],
        verbose_eval=False,
    )
