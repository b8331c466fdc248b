"""`kind: python`: the user's own function, which calls tuner.report as it goes."""

from __future__ import annotations

import importlib
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any

from tuner import _report
from tuner.exceptions import ReportError, SpecError

_imported: dict[str, Callable[..., Any]] = {}


def resolve(ref: str | Callable[..., Any], search_path: Sequence[str] = ()) -> Callable[..., Any]:
    """The function a trainer names: 'package.module:function' or a callable.

    The module is looked up in `search_path` (the spec's folder, the driver's current
    folder) first, then in the installed packages.

    Raises:
        SpecError: the module or the function cannot be found.
    """
    if callable(ref):
        return ref
    if ref in _imported:
        return _imported[ref]
    module_name, _, attr = ref.partition(":")
    for p in reversed(search_path):
        if p not in sys.path:
            sys.path.insert(0, p)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        raise SpecError(
            f"cannot import module {module_name!r} ({e}); put it beside the spec file, "
            "in the current folder, or install it",
            ["trainer", "function"],
        ) from None
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
