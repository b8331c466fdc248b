"""tuner: distributed hyperparameter tuning on Ray Tune, with every result in SQL.

    import tuner
    study = tuner.create_study("study.yaml")
    study.run()
    print(study.best_trial.params)

Heavy modules (ray, optuna, torch, pandas) load on first use, so ``import tuner`` is quick.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tuner._output import TrialInfo, current_trial
from tuner._report import get_checkpoint, report
from tuner.exceptions import (
    ReportError,
    SpecError,
    StorageError,
    StudyExistsError,
    StudyFailedError,
    StudyInterrupted,
    StudyNotFoundError,
    TunerError,
)

if TYPE_CHECKING:
    from tuner.spec import StudySpec, load_spec
    from tuner.study import Study, Trial, create_study, load_study

__version__ = "0.1.0"

__all__ = [
    "ReportError",
    "SpecError",
    "StorageError",
    "Study",
    "StudyExistsError",
    "StudyFailedError",
    "StudyInterrupted",
    "StudyNotFoundError",
    "StudySpec",
    "Trial",
    "TrialInfo",
    "TunerError",
    "__version__",
    "create_study",
    "current_trial",
    "get_checkpoint",
    "load_spec",
    "load_study",
    "report",
]

_LAZY = {
    "Study": "tuner.study",
    "Trial": "tuner.study",
    "create_study": "tuner.study",
    "load_study": "tuner.study",
    "StudySpec": "tuner.spec",
    "load_spec": "tuner.spec",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
