"""Ray's private names that tuner touches (see :mod:`tuner._compat`). Imports Ray."""

from __future__ import annotations

import os

from tuner._compat import incompatible

__all__ = ["check_single_machine_switch", "single_machine"]

_CONSTANTS = "ray._private.ray_constants"
_SWITCH = "ENABLE_RAY_CLUSTER"


def check_single_machine_switch() -> str | None:
    """None if Ray has the single-machine switch :func:`single_machine` sets."""
    import importlib

    try:
        constants = importlib.import_module(_CONSTANTS)
    except ImportError as e:
        return f"{_CONSTANTS} is not importable ({e})"
    if not isinstance(getattr(constants, _SWITCH, None), bool):
        return f"{_CONSTANTS}.{_SWITCH} is missing or not a bool"
    return None


def single_machine() -> None:
    """Turn on Ray's switch for single-machine clusters, which keeps Ray on loopback:
    read by this process's Ray now (``ray._private.ray_constants.ENABLE_RAY_CLUSTER``),
    and by the Ray processes a local Ray starts through their environment.

    Raises:
        IncompatibleDependency: this Ray has no such switch.
    """
    if (missing := check_single_machine_switch()) is not None:
        raise incompatible("ray", missing)
    import ray._private.ray_constants as ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
