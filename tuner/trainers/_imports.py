"""Importing what a spec names, with the spec's own error."""

from __future__ import annotations

import importlib
import traceback
from collections.abc import Sequence
from types import ModuleType

from tuner.exceptions import SpecError


def import_module(name: str, label: str, fix: str, where: Sequence[str | int]) -> ModuleType:
    """Import module `name` for the spec key `where`.

    A module that is not there gets ``cannot import <label> (<why>); <fix>``. A module
    that is there but fails on its own import (it imports a missing package, has a
    syntax error, raises) gets that real error and where it was raised instead: the
    `fix` would send the user looking for a file they already have.

    Raises:
        SpecError: the module is missing, or importing it raised, at `where`.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if _is_module_itself(e.name, name):
            raise SpecError(f"cannot import {label} ({e}); {fix}", where) from None
        raise SpecError(_own_error(label, e), where) from None
    except Exception as e:  # SyntaxError, NameError, ... raised by the module itself
        raise SpecError(_own_error(label, e), where) from None


def _is_module_itself(missing: str | None, name: str) -> bool:
    """Whether the module not found is `name` or a package on its way ('a' of 'a.b')."""
    if missing is None:
        return True
    return name == missing or name.startswith(missing + ".")


def _own_error(label: str, e: BaseException) -> str:
    """``importing <label> failed: <Type>: <message>, in FILE line N``: the frame of the
    user's code that raised (importlib's own frames skipped)."""
    where = ""
    if isinstance(e, SyntaxError) and e.filename:
        where = f", in {e.filename} line {e.lineno}"
    else:
        frames = [
            f
            for f in traceback.extract_tb(e.__traceback__)
            if not f.filename.startswith("<frozen ") and "importlib" not in f.filename
        ]
        if frames:
            where = f", in {frames[-1].filename} line {frames[-1].lineno}"
    message = str(e).splitlines()[0] if str(e) else ""
    return f"importing {label} failed: {type(e).__name__}: {message}{where}"
