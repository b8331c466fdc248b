"""Importing what a spec names, with the spec's own error."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType

from tuner.exceptions import SpecError


def import_module(name: str, label: str, fix: str, where: Sequence[str | int]) -> ModuleType:
    """Import module `name` for the spec key `where`.

    Raises:
        SpecError: ``cannot import <label> (<why>); <fix>``, at `where`.
    """
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise SpecError(f"cannot import {label} ({e}); {fix}", where) from None
