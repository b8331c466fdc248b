"""What both xgboost trainers use: params, the DMatrix pair, evals and each round's
metrics (:mod:`tuner.trainers._xgboost` in one process, :mod:`._xgboost_dp` across a
Ray Train worker group)."""

from __future__ import annotations

from typing import Any

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


def base_params(trainer: XGBoostTrainer, n_classes: int) -> dict[str, Any]:
    """The params every trial starts from: defaults, then the spec's fixed params."""
    objective, eval_metric = defaults(trainer, n_classes)
    params: dict[str, Any] = {
        "objective": objective,
        "eval_metric": eval_metric,
        "verbosity": 0,
        **trainer.params,
    }
    if objective.startswith("multi:"):
        params.setdefault("num_class", n_classes)
    return params


def matrix_key(params: dict[str, Any]) -> tuple[str, int]:
    """What the training and validation matrices depend on among the params."""
    return params.get("tree_method", "hist"), params.get("max_bin", 256)


def matrices(
    X_train: Any, y_train: Any, X_valid: Any, y_valid: Any, params: dict[str, Any], nthread: int
) -> tuple[Any, Any]:
    """The training and validation DMatrix for these params."""
    import xgboost as xgb

    method, max_bin = matrix_key(params)
    dtrain: Any
    dvalid: Any
    if method in ("hist", "auto"):
        # Binned once: about a quarter of the float32 data, and reused by each trial.
        dtrain = xgb.QuantileDMatrix(X_train, label=y_train, max_bin=max_bin, nthread=nthread)
        dvalid = xgb.QuantileDMatrix(X_valid, label=y_valid, ref=dtrain, nthread=nthread)
    else:
        dtrain = xgb.DMatrix(X_train, label=y_train, nthread=nthread)
        dvalid = xgb.DMatrix(X_valid, label=y_valid, nthread=nthread)
    return dtrain, dvalid


def train(
    params: dict[str, Any],
    dtrain: Any,
    dvalid: Any,
    rounds: int,
    callback: Any,
    start: Any = None,
) -> Any:
    """Boost `rounds` rounds (after those of booster `start`, if given), evaluating on
    both splits; `callback` sees every round. Returns the booster."""
    import xgboost as xgb

    return xgb.train(
        params,
        dtrain,
        num_boost_round=rounds,
        evals=[(dtrain, "train"), (dvalid, "valid")],
        callbacks=[callback],
        verbose_eval=False,
        xgb_model=start,
    )


def round_metrics(evals_log: dict[str, Any]) -> dict[str, float]:
    """The last value of every metric on every split: ``valid_logloss``, ..."""
    return {
        f"{split}_{name}": float(values[-1])
        for split, logs in evals_log.items()
        for name, values in logs.items()
    }


def gpu_assigned() -> bool:
    """Whether Ray gave this trial (or worker) a GPU: then xgboost trains on cuda."""
    import ray

    return ray.is_initialized() and bool(ray.get_gpu_ids())
