"""Optional dependencies in tests: skipped on a developer's machine that lacks one,
a failure under CI=true, where ``make install`` installs every extra.

    torch = require("torch")
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

import pytest


def in_ci() -> bool:
    """Whether this run is CI's (``CI=true``, as .ci/run sets): nothing may be skipped."""
    return os.environ.get("CI") == "true"


def missing(message: str) -> None:
    """Skip the test with ``message``, or fail it under CI=true.

    Raises:
        pytest.skip.Exception, or pytest.fail.Exception under CI=true.
    """
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing dependency fails instead of skipping)")
    pytest.skip(message)


def require(module: str) -> ModuleType:
    """Import ``module`` and return it, or skip the test (fail it under CI=true).

    Raises:
        pytest.skip.Exception, or pytest.fail.Exception under CI=true, when the module
        cannot be imported.
    """
    try:
        return pytest.importorskip(module)
    except pytest.skip.Exception:
        # The package is absent (importorskip skips only on ImportError).
        if in_ci():
            pytest.fail(f"{module} is not installed; `make install` installs it")
        raise


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it (for skipif marks,
    which must be paired with :func:`missing` or :func:`require` so CI still fails)."""
    return importlib.util.find_spec(module) is not None
