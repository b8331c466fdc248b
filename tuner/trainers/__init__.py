"""Built-in trainables: what runs inside each Ray Tune trial.

`prepare` runs once in the driver before any trial starts: it imports the user's
function, loads the dataset and checks that the study's metric will be reported, so a
mistake fails the study at once with one clear error instead of failing every trial.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tuner import _report
from tuner.spec import PythonTrainer, SklearnTrainer, StudySpec, XGBoostTrainer

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """A trainable for Ray Tune and the objects to share with every trial."""

    trainable: Callable[..., None]
    shared: dict[str, Any] = field(default_factory=dict)
    data_bytes: int = 0
    # Steps a trial that runs to the end reports (early stopping's budget); None: the
    # spec's own (trainer.budget). A trainer that reports once sets 1.
    budget: int | None = None
    # Ray Tune resources of one trial; None: {"cpu": resources.cpus_per_trial}.
    resources: dict[str, float] | None = None
    # Most trials in flight; None: search.max_concurrent.
    max_concurrent: int | None = None
    # Called once after Ray is up and before the first trial (starts shared workers).
    start: Callable[[], None] | None = None
    # Called once when the run ends, however it ends (releases shared workers).
    cleanup: Callable[[], None] | None = None


def prepare(spec: StudySpec) -> Prepared:
    """Build the trial function for a spec (runs in the driver).

    Raises:
        SpecError: the python function or sklearn estimator cannot be imported, the
            dataset cannot be read (missing file or column, a column that is not
            numeric), or the study's metric is not one the trainer reports.
    """
    metric = spec.metric
    trainer = spec.trainer
    nthread = max(1, math.floor(spec.resources.cpus_per_trial))
    if isinstance(trainer, PythonTrainer):
        from tuner.trainers import _python

        search_path = [spec.base_dir, os.getcwd()]
        _python.resolve(trainer.function, search_path)  # fail now, not in every trial
        function = trainer.function

        def tuner_trial(config: dict[str, Any]) -> None:
            with _report.trial(metric) as ctx:
                _python.run(_python.resolve(function, search_path), config, ctx)

        return Prepared(tuner_trial)

    if isinstance(trainer, SklearnTrainer):
        from tuner.trainers import _sklearn

        return _sklearn.prepare(spec, nthread)

    assert isinstance(trainer, XGBoostTrainer)
    from tuner.data import load_dataset
    from tuner.trainers import _xgboost

    data = load_dataset(trainer.dataset, spec.base_dir)
    _xgboost.check_metric(metric, trainer, data.n_classes)
    workers = trainer.num_workers
    if workers == "auto":
        from tuner.trainers._xgboost_dp import auto_workers

        workers = auto_workers(data.nbytes, max_workers=1024)
    if workers > 1:
        return _data_parallel(spec, trainer, data, workers, trainer.num_workers == "auto")

    def tuner_xgboost_trial(config: dict[str, Any], data: Any = None) -> None:
        with _report.trial(metric) as ctx:
            _xgboost.run(trainer, config, data, ctx, nthread)

    return Prepared(tuner_xgboost_trial, {"data": data}, data.nbytes)


def _data_parallel(
    spec: StudySpec, trainer: XGBoostTrainer, data: Any, workers: int, auto: bool
) -> Prepared:
    """xgboost trials on long-lived Ray Train worker groups (see _xgboost_dp)."""
    from tuner.trainers import _xgboost, _xgboost_dp

    objective, eval_metric = _xgboost.defaults(trainer, data.n_classes)
    params: dict[str, Any] = {
        "objective": objective,
        "eval_metric": eval_metric,
        "verbosity": 0,
        **trainer.params,
    }
    if objective.startswith("multi:"):
        params.setdefault("num_class", data.n_classes)
    groups = _xgboost_dp.WorkerGroups(
        data,
        workers,
        spec.resources.cpus_per_trial,
        params,
        trainer.max_rounds,
        spec.search.max_concurrent,
        fit_to_cluster=auto,
    )
    prepared = Prepared(
        _xgboost_dp.relay(groups.dispatcher_name, spec.metric),
        data_bytes=data.nbytes,
        # The relay only waits on its worker group, which holds the CPUs.
        resources={"cpu": 0, "memory": 1},
        cleanup=groups.close,
    )

    def start() -> None:
        prepared.max_concurrent = groups.start()

    prepared.start = start
    return prepared
