"""Built-in trainables: what runs inside each Ray Tune trial.

`prepare` runs once in the driver before any trial starts: it imports the user's
function, loads the dataset and checks that the study's metric will be reported, so a
mistake fails the study at once with one clear error instead of failing every trial.

Trainer kinds are registered in :data:`TRAINERS`: adding one is its spec model (a member
of ``tuner.spec.TrainerSpec``, whose ``kind`` names it), its module with a ``prepare``
function, and one line here.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING

from tuner.trainers._prepared import Prepared

if TYPE_CHECKING:
    # Not at run time: a trial unpickles its function from a trainer module, and the
    # spec's models cost every new worker process about 0.2 s of CPU to import.
    from tuner.spec import StudySpec

__all__ = ["TRAINERS", "Prepared", "prepare"]

# kind -> "module:function", a function (spec, nthread) -> Prepared.
TRAINERS: dict[str, str] = {
    "python": "tuner.trainers._python:prepare",
    "sklearn": "tuner.trainers._sklearn:prepare",
    "xgboost": "tuner.trainers._xgboost:prepare",
}


def prepare(spec: StudySpec) -> Prepared:
    """Build the trial function for a spec (runs in the driver).

    Raises:
        SpecError: the python function or sklearn estimator cannot be imported, the
            dataset cannot be read (missing file or column, a column that is not
            numeric), or the study's metric is not one the trainer reports.
    """
    nthread = max(1, math.floor(spec.resources.cpus_per_trial))
    module, _, attr = TRAINERS[spec.trainer.kind].partition(":")
    prepare_kind: Callable[[StudySpec, int], Prepared] = getattr(
        importlib.import_module(module), attr
    )
    return prepare_kind(spec, nthread)
