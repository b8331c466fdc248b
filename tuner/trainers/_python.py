"""`kind: python`: the user's own function, which calls tuner.report as it goes."""

from __future__ import annotations

import numbers
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from tuner import _report
from tuner._ray import SHIPPED_ENV
from tuner.exceptions import ReportError, SpecError
from tuner.trainers._imports import import_module
from tuner.trainers._prepared import Prepared

if TYPE_CHECKING:  # a trial imports this module; the spec's models stay in the driver
    from tuner.spec import StudySpec

_imported: dict[str, Callable[..., Any]] = {}


def prepare(spec: StudySpec, nthread: int) -> Prepared:
    """Check that the function can be imported (in the driver).

    Raises:
        SpecError: the module or the function cannot be found.
    """
    from tuner.spec import PythonTrainer

    trainer = spec.trainer
    assert isinstance(trainer, PythonTrainer)  # the registry dispatches on kind
    rules = _report.rules(spec)
    search_path = [spec.base_dir, os.getcwd()]
    resolve(trainer.function, search_path)  # fail now, not in every trial
    function = trainer.function

    def tuner_trial(config: dict[str, Any]) -> None:
        # On a cluster the spec's folder comes with the trial (Ray's working_dir, first
        # on sys.path); the driver's folders, where this node has them, only after it.
        shipped = bool(os.environ.get(SHIPPED_ENV))
        _report.run_trial(
            rules, lambda ctx: run(resolve(function, search_path, last=shipped), config, ctx)
        )

    return Prepared(tuner_trial)


def resolve(
    ref: str | Callable[..., Any], search_path: Sequence[str] = (), *, last: bool = False
) -> Callable[..., Any]:
    """The function a trainer names: 'package.module:function' or a callable.

    The module is looked up in `search_path` (the spec's folder, the driver's current
    folder) first, then in the installed packages; with `last`, after everything else
    on sys.path (a trial on a cluster, whose own copy of the spec's folder comes first).

    Raises:
        SpecError: the module or the function cannot be found.
    """
    if callable(ref):
        return ref
    if ref in _imported:
        return _imported[ref]
    module_name, _, attr = ref.partition(":")
    for p in search_path if last else reversed(search_path):
        if p not in sys.path:
            if last:
                sys.path.append(p)
            else:
                sys.path.insert(0, p)
    module = import_module(
        module_name,
        f"module {module_name!r}",
        "put it beside the spec file, in the current folder, or install it",
        ["trainer", "function"],
    )
    fn: Any = module
    for part in attr.split("."):
        fn = getattr(fn, part, None)
    if not callable(fn):
        raise SpecError(f"module {module_name!r} has no function {attr!r}", ["trainer", "function"])
    _imported[ref] = fn
    return fn


def run(fn: Callable[..., Any], config: dict[str, Any], ctx: _report.TrialContext) -> None:
    """Run the user's function; a value it returns counts as its last report."""
    returned = fn(dict(config))
    if returned is None:
        return
    step = (ctx.last_step + 1) if ctx.last_step is not None else 0
    if isinstance(returned, dict):
        _report.report(step=step, **returned)
    elif isinstance(returned, numbers.Real) and not isinstance(returned, bool):
        _report.report(step=step, **{ctx.metric: float(returned)})
    else:
        raise ReportError(
            f"the objective returned {type(returned).__name__}; return None, a number "
            "or a dict of metrics"
        )
