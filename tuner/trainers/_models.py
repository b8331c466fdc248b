"""The built-in trainers' checkpoints and models: which file a saved folder holds, how a
trial writes it (through :func:`tuner._report.report` and
:func:`tuner._report.save_model`) and how it is read back (a retried trial,
:meth:`tuner.Trial.load_model`).

- ``kind: xgboost``: the booster in xgboost's own format, :data:`XGBOOST_FILE`;
- ``kind: sklearn``: the fitted pipeline in skops format, :data:`SKLEARN_FILE` (with
  ``dataset.folds``: the list of the folds' pipelines). Loading trusts only the types of
  scikit-learn, NumPy, SciPy and xgboost (:func:`load_sklearn`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tuner import _report
from tuner.exceptions import TunerError

__all__ = [
    "SKLEARN_FILE",
    "TRUSTED_MODULES",
    "XGBOOST_FILE",
    "load_booster",
    "load_sklearn",
    "report_checkpoint",
    "save_model",
    "write_booster",
    "write_sklearn",
]

XGBOOST_FILE = "model.ubj"
SKLEARN_FILE = "model.skops"
# The packages whose types a skops file may hold for load_sklearn to load it.
TRUSTED_MODULES = ("sklearn", "numpy", "scipy", "xgboost")


def write_booster(booster: Any, folder: Path) -> None:
    booster.save_model(str(folder / XGBOOST_FILE))


def write_sklearn(model: Any, folder: Path) -> None:
    import skops.io

    skops.io.dump(model, folder / SKLEARN_FILE)


def report_checkpoint(write: Callable[[Path], None], step: int, **metrics: float) -> None:
    """:func:`tuner._report.report` with a checkpoint that `write` puts in a temporary
    folder (the folder goes once the store holds its copy)."""
    with tempfile.TemporaryDirectory(prefix="tuner-save-") as tmp:
        write(Path(tmp))
        _report.report(step=step, checkpoint=tmp, **metrics)


def save_model(write: Callable[[Path], None], step: int) -> None:
    """The trial's model, which `write` puts in a temporary folder
    (:func:`tuner._report.save_model`); nothing without an artifacts store."""
    if not _report.saves_artifacts():
        return
    with tempfile.TemporaryDirectory(prefix="tuner-save-") as tmp:
        write(Path(tmp))
        _report.save_model(tmp, step)


def load_booster(folder: Path) -> Any:
    """The xgboost Booster saved in `folder`.

    Raises:
        TunerError: the folder holds no booster.
    """
    import xgboost as xgb

    path = Path(folder) / XGBOOST_FILE
    if not path.is_file():
        raise TunerError(f"{folder} holds no xgboost model ({XGBOOST_FILE})")
    booster = xgb.Booster()
    booster.load_model(str(path))
    return booster


def _trusted(name: str) -> bool:
    return name.split(".", 1)[0] in TRUSTED_MODULES


def load_sklearn(folder: Path) -> Any:
    """The fitted scikit-learn estimator or pipeline saved in `folder` (skops format),
    trusting only the types of scikit-learn, NumPy, SciPy and xgboost.

    Raises:
        TunerError: the folder holds no skops file, or the file holds another type.
    """
    import skops.io

    path = Path(folder) / SKLEARN_FILE
    if not path.is_file():
        raise TunerError(f"{folder} holds no scikit-learn model ({SKLEARN_FILE})")
    untrusted = skops.io.get_untrusted_types(file=path)
    refused = [t for t in untrusted if not _trusted(t)]
    if refused:
        raise TunerError(
            f"{path} holds types outside {', '.join(TRUSTED_MODULES)} "
            f"({', '.join(sorted(refused))}): not loaded; load it with skops.io.load "
            "if you trust it"
        )
    return skops.io.load(path, trusted=untrusted)
