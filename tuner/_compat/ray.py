"""Ray's private names that tuner touches (see :mod:`tuner._compat`). Imports Ray."""

from __future__ import annotations

import os
from typing import Any

from tuner._compat import incompatible

__all__ = [
    "check_internal_kv",
    "check_single_machine_switch",
    "kv_del",
    "kv_get",
    "kv_put",
    "single_machine",
]

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


# -- the GCS key-value store (a trial's identity and its final output) -----------------

_KV = "ray.experimental.internal_kv"
_KV_NAMES = ("_internal_kv_put", "_internal_kv_get", "_internal_kv_del")


def check_internal_kv() -> str | None:
    """None if Ray's internal key-value store has the functions :func:`kv_put`,
    :func:`kv_get` and :func:`kv_del` call."""
    import importlib

    try:
        module = importlib.import_module(_KV)
    except ImportError as e:
        return f"{_KV} is not importable ({e})"
    missing = [n for n in _KV_NAMES if not callable(getattr(module, n, None))]
    return f"{_KV} lacks {', '.join(missing)}" if missing else None


def _kv() -> Any:
    """The key-value store module, or None where it cannot be used (Ray not started in
    this process, or a Ray without it)."""
    import ray

    if not ray.is_initialized() or check_internal_kv() is not None:
        return None
    from ray.experimental import internal_kv

    return internal_kv


def kv_put(key: bytes, value: bytes, namespace: str) -> bool:
    """Store `value` under `key` in Ray's GCS key-value store (overwriting); whether it
    could (False outside Ray)."""
    kv = _kv()
    if kv is None:
        return False
    kv._internal_kv_put(key, value, overwrite=True, namespace=namespace)
    return True


def kv_get(key: bytes, namespace: str) -> bytes | None:
    """The value under `key` (None: none, or outside Ray)."""
    kv = _kv()
    if kv is None:
        return None
    value: bytes | None = kv._internal_kv_get(key, namespace=namespace)
    return value


def kv_del(key: bytes, namespace: str) -> None:
    """Forget `key` (nothing outside Ray)."""
    kv = _kv()
    if kv is not None:
        kv._internal_kv_del(key, namespace=namespace)
